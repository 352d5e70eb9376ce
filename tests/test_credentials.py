"""Credentials: every provider works with its SDK's default chain, records where credentials
come from (never what they are), and uses credentials passed in options over anything the
environment holds.

Token endpoints are faked on 127.0.0.1 (`TokenServer`): Google's OAuth token endpoint (the
`token_uri` of an authorized-user or service-account file found through Application Default
Credentials), the Azure App Service managed-identity endpoint (`IDENTITY_ENDPOINT`, which
`DefaultAzureCredential` tries after environment and workload credentials), the ECS
container-credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`) and EC2's instance
metadata service (`AWS_EC2_METADATA_SERVICE_ENDPOINT`), the last links of boto3's chain. The fakes then accept only the tokens handed out, so a
passing test shows the token travelled.

What cannot be faked here: `DefaultAzureCredential`'s environment service principal
(`AZURE_CLIENT_ID` / `AZURE_CLIENT_SECRET` / `AZURE_TENANT_ID`) goes through MSAL, which only
takes an https authority and validates any authority host it does not know against
https://login.microsoftonline.com/common/discovery/instance, and `DefaultAzureCredential()`
takes no option to skip that from the environment: it needs the network. Google's
authorized-user files (what `gcloud auth application-default login` writes) always get
https://oauth2.googleapis.com/token as their token endpoint from google-auth, whatever the file
says, so service-account files stand in for them. Bedrock's profiles, explicit keys and bare
default chain are tests/test_bedrock.py's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh
from finetune_hub.testing.fake_http import FakeRequest, FakeResponse, LoopbackServer

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"
MODEL = "gpt-4.1-mini-2025-04-14"


class TokenServer:
    """OAuth-style token endpoints on 127.0.0.1; `calls` lists (method, path) asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.google_token = "ya29.from-adc-TOKENSERVER"
        self.azure_tokens: dict[str, str] = {}  # resource -> token handed out
        self.identity_header = "identity-header-SECRET"
        self.aws = {
            "AccessKeyId": "ASIAFROMCONTAINER",
            "SecretAccessKey": "container-secret-TOKENSERVER",
            "Token": "container-session-TOKENSERVER",
        }
        self.server = LoopbackServer(self.handle)

    def __enter__(self) -> TokenServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def handle(self, request: FakeRequest) -> FakeResponse:
        self.calls.append((request.method, request.path))
        if request.path == "/token" and request.method == "POST":  # Google OAuth 2.0
            body = {"access_token": self.google_token, "expires_in": 3600, "token_type": "Bearer"}
            return FakeResponse.json_body(200, body)
        if request.path == "/msi/token":  # Azure App Service managed identity (2019-08-01)
            if request.headers.get("x-identity-header") != self.identity_header:
                return FakeResponse.json_body(401, {"error": "missing X-IDENTITY-HEADER"})
            resource = request.query.get("resource", "")
            token = self.azure_tokens.get(resource) or self.azure_jwt(resource)
            body = {
                "access_token": token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
            }
            return FakeResponse.json_body(200, body)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        if request.path == "/creds":  # ECS / EKS container credentials
            return FakeResponse.json_body(200, {**self.aws, "Expiration": expires})
        if request.path == "/latest/api/token" and request.method == "PUT":  # EC2 IMDSv2
            return FakeResponse(200, b"imds-session-TOKENSERVER", {"content-type": "text/plain"})
        if request.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if request.headers.get("x-aws-ec2-metadata-token") != "imds-session-TOKENSERVER":
                return FakeResponse(401, b"")
            role = request.path.rsplit("/", 1)[-1]
            if not role:
                return FakeResponse(200, b"finetune-hub-role", {"content-type": "text/plain"})
            body = {"Code": "Success", "Type": "AWS-HMAC", **self.aws, "Expiration": expires}
            return FakeResponse.json_body(200, body)
        return FakeResponse.json_body(404, {"error": f"no route {request.path}"})

    @staticmethod
    def azure_jwt(resource: str) -> str:
        from finetune_hub.testing.azure_foundry_fake_transport import fake_jwt

        return fake_jwt(resource.rstrip("/"))


@pytest.fixture
def tokens() -> Any:
    with TokenServer() as server:
        yield server


def job_on(provider: str, store_dir: Path, training: Path = CHAT, **kw: Any) -> fh.TuningJob:
    job = fh.TuningJob(
        provider=provider,
        base_model=kw.pop("base_model", MODEL),
        training_file=training,
        store=fh.JobStore(store_dir),
        **kw,
    )
    job.sleep = lambda s: None
    return job


def store_bytes(store_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())


# -- OpenAI: OPENAI_API_KEY is the SDK's chain -----------------------------------------------------
def test_openai_key_from_the_environment_is_used_and_recorded(fake_openai, tmp_path):
    fake_openai.api_keys = {fake_openai.api_key}
    job = job_on("openai", tmp_path / "s").submit()
    assert job.record.credentials == {"api_key": "env:OPENAI_API_KEY"}
    assert fake_openai.api_key.encode() not in store_bytes(tmp_path / "s")


def test_openai_key_in_options_is_used_over_the_environment_and_never_kept(
    fake_openai, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-WRONG")
    fake_openai.api_keys = {"sk-options-RIGHT"}
    job = job_on("openai", tmp_path / "s", options={"api_key": "sk-options-RIGHT"}).submit()
    assert job.provider_job_id and job.record.credentials == {"api_key": "explicit"}
    assert b"sk-options-RIGHT" not in store_bytes(tmp_path / "s")
    for shown in (repr(job), repr(job.spec), str(job.spec), repr(job.backend.options)):
        assert "sk-options-RIGHT" not in shown


def test_openai_without_a_key_says_where_to_set_one(fake_openai, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    job = job_on("openai", tmp_path / "s")
    with pytest.raises(fh.ProviderError, match="OPENAI_API_KEY") as caught:
        job.submit()
    assert not caught.value.retryable and fake_openai.count("POST", "/files") == 0


# -- Azure OpenAI: key, credential object, DefaultAzureCredential ----------------------------------
def azure_options(fake: Any, **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": fake.subscription_id,
        "resource_group": fake.resource_group,
        "account_name": fake.account,
        **extra,
    }


def test_azure_key_in_options_is_used_over_the_environment(fake_azure_openai, tmp_path):
    fake = fake_azure_openai
    fake.api_keys = {"azure-options-RIGHT"}  # the environment's key is refused
    options = azure_options(fake, api_key="azure-options-RIGHT", management_token="mgmt-RIGHT")
    fake.management_tokens = {"mgmt-RIGHT"}
    job = job_on("azure-openai", tmp_path / "s", options=options).submit()
    assert job.record.credentials == {"api_key": "explicit", "management": "explicit"}
    job.wait(poll_interval=0.01, progress=False)
    deployment = job.result.deploy(confirm_cost=True)
    assert deployment.name and fake.deployments
    raw = store_bytes(tmp_path / "s")
    assert b"azure-options-RIGHT" not in raw and b"mgmt-RIGHT" not in raw


class TokenCredential:
    """An azure-core credential object passed in options."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes += scopes
        return AccessToken(f"object-token-for-{scopes[0]}", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.scopes += scopes
        return AccessTokenInfo(f"object-token-for-{scopes[0]}", int(time.time()) + 3600)


def test_azure_credential_in_options_is_used_even_with_a_key_in_the_environment(
    fake_azure_openai, tmp_path
):
    fake = fake_azure_openai  # AZURE_OPENAI_API_KEY is set by the fixture
    credential = TokenCredential()
    fake.api_keys = {"object-token-for-https://cognitiveservices.azure.com/.default"}
    fake.management_tokens = {"object-token-for-https://management.azure.com/.default"}
    job = job_on("azure-openai", tmp_path / "s", options=azure_options(fake, credential=credential))
    job.submit()
    assert job.record.credentials == {
        "api_key": "azure-identity:TokenCredential",
        "management": "azure-identity:TokenCredential",
    }
    job.wait(poll_interval=0.01, progress=False)
    job.result.deploy(confirm_cost=True)
    assert "https://management.azure.com/.default" in credential.scopes


def managed_identity(monkeypatch: pytest.MonkeyPatch, tokens: TokenServer) -> None:
    """The environment of an App Service with a managed identity (and nothing before it in
    DefaultAzureCredential's chain)."""
    for var in (
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_USERNAME",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IMDS_ENDPOINT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{tokens.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", tokens.identity_header)


def test_azure_openai_default_chain_takes_a_managed_identity(
    fake_azure_openai, tokens, tmp_path, monkeypatch
):
    fake = fake_azure_openai
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    managed_identity(monkeypatch, tokens)
    tokens.azure_tokens = {
        "https://cognitiveservices.azure.com": "mi-data-TOKENSERVER",
        "https://management.azure.com": "mi-management-TOKENSERVER",
    }
    fake.api_keys = {"mi-data-TOKENSERVER"}
    fake.management_tokens = {"mi-management-TOKENSERVER"}
    job = job_on("azure-openai", tmp_path / "s", options=azure_options(fake)).submit()
    assert job.record.credentials == {"api_key": "default-chain", "management": "default-chain"}
    job.wait(poll_interval=0.01, progress=False)
    job.result.deploy(confirm_cost=True)
    assert fake.deployments and ("GET", "/msi/token") in tokens.calls
    assert b"TOKENSERVER" not in store_bytes(tmp_path / "s")


# -- Azure AI Foundry: DefaultAzureCredential when no credential is given --------------------------
def test_azure_foundry_default_chain_takes_a_managed_identity(
    fake_azure_foundry, tokens, tmp_path, monkeypatch
):
    managed_identity(monkeypatch, tokens)
    options = {k: v for k, v in fake_azure_foundry.options.items() if k != "credential"}
    job = job_on("azure-foundry", tmp_path / "s", base_model="Phi-4-mini-instruct", options=options)
    job.submit()
    assert job.record.credentials == {"azure": "default-chain"}
    assert ("GET", "/msi/token") in tokens.calls and len(fake_azure_foundry.jobs) == 1


def test_azure_foundry_credential_in_options_is_used_and_named(fake_azure_foundry, tmp_path):
    credential = fake_azure_foundry.options["credential"]
    job = job_on(
        "azure-foundry",
        tmp_path / "s",
        base_model="Phi-4-mini-instruct",
        options=fake_azure_foundry.options,
    ).submit()
    assert job.record.credentials == {"azure": "azure-identity:FakeAzureCredential"}
    assert credential.scopes  # the object passed in is the one asked for tokens


# -- Vertex AI: Application Default Credentials (google.auth.default) ------------------------------
@pytest.fixture
def gemini_file(tmp_path: Path) -> Path:
    out = tmp_path / "gozaru_gemini.jsonl"
    fh.convert(CHAT, out, to="gemini")
    return out


def vertex_options(fake: Any, **extra: Any) -> dict[str, Any]:
    options = {**fake.options, **extra}
    options.pop("credentials")
    return options


def service_account_file(path: Path, tokens: TokenServer, project: str) -> Path:
    """A service-account key file (a fresh RSA key), its token_uri on the fake."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": project,
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": "tuner@finetune-hub-test.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": f"{tokens.url}/token",
            }
        )
    )
    return path


def test_vertex_adc_from_google_application_credentials_gives_the_project_too(
    fake_vertex, tokens, gemini_file, tmp_path, monkeypatch
):
    sa = service_account_file(tmp_path / "sa.json", tokens, fake_vertex.project)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa))
    fake_vertex.tokens = {tokens.google_token}  # only the token ADC fetched is accepted
    options = vertex_options(fake_vertex)
    options.pop("project")  # the service-account file names it
    job = job_on(
        "vertex", tmp_path / "s", gemini_file, base_model="gemini-2.5-flash", options=options
    )
    job.submit()
    assert job.record.credentials == {"google": "env:GOOGLE_APPLICATION_CREDENTIALS"}
    assert ("POST", "/token") in tokens.calls and len(fake_vertex.tuning_jobs) == 1
    assert b"PRIVATE KEY" not in store_bytes(tmp_path / "s")


def test_vertex_adc_from_the_gcloud_well_known_file_is_the_default_chain(
    fake_vertex, tokens, gemini_file, tmp_path, monkeypatch
):
    """The file `gcloud auth application-default login` writes, found in gcloud's config
    folder. (gcloud writes an authorized-user file there, whose token endpoint google-auth
    always sets to https://oauth2.googleapis.com/token: not fakeable, so a service-account
    file stands in; the look-up is the same.)"""
    config = tmp_path / "gcloud"
    config.mkdir()
    service_account_file(
        config / "application_default_credentials.json", tokens, fake_vertex.project
    )
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(config))
    fake_vertex.tokens = {tokens.google_token}
    job = job_on(
        "vertex", tmp_path / "s", gemini_file, base_model="gemini-2.5-flash",
        options=vertex_options(fake_vertex),
    )  # fmt: skip
    job.submit()
    assert job.record.credentials == {"google": "default-chain"}
    assert ("POST", "/token") in tokens.calls and len(fake_vertex.tuning_jobs) == 1


def test_vertex_credentials_in_options_are_used_over_adc(
    fake_vertex, tokens, gemini_file, tmp_path, monkeypatch
):
    adc = service_account_file(tmp_path / "sa.json", tokens, fake_vertex.project)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    fake_vertex.tokens = {fake_vertex.token}  # the explicit credentials' token only
    job = job_on(
        "vertex", tmp_path / "s", gemini_file, base_model="gemini-2.5-flash",
        options=fake_vertex.options,
    )  # fmt: skip
    job.submit()
    assert job.record.credentials == {"google": "explicit"} and tokens.calls == []


# -- Bedrock: boto3's chain down to a container (ECS task) role ------------------------------------
def test_bedrock_default_chain_takes_container_credentials(
    fake_bedrock, tokens, tmp_path, monkeypatch
):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{tokens.url}/creds")
    training = tmp_path / "conversation.jsonl"
    fh.convert(CHAT, training, to="bedrock_conversation")
    job = job_on(
        "bedrock", tmp_path / "s", training, base_model="amazon.nova-lite-v1:0:300k",
        options={"role_arn": fake_bedrock.role_arn, "s3_uri": fake_bedrock.s3_uri},
    )  # fmt: skip
    job.submit()
    assert job.record.credentials == {"aws": "default-chain"}
    assert ("GET", "/creds") in tokens.calls and len(fake_bedrock.jobs()) == 1
    assert b"TOKENSERVER" not in store_bytes(tmp_path / "s")


def test_bedrock_default_chain_takes_an_instance_role(fake_bedrock, tokens, tmp_path, monkeypatch):
    """EC2's instance metadata service (IMDSv2: a session token, then the role's credentials),
    the last link of boto3's chain."""
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"{tokens.url}/")
    training = tmp_path / "conversation.jsonl"
    fh.convert(CHAT, training, to="bedrock_conversation")
    job = job_on(
        "bedrock", tmp_path / "s", training, base_model="amazon.nova-lite-v1:0:300k",
        options={"role_arn": fake_bedrock.role_arn, "s3_uri": fake_bedrock.s3_uri},
    )  # fmt: skip
    job.submit()
    assert job.record.credentials == {"aws": "default-chain"}
    assert ("GET", "/latest/meta-data/iam/security-credentials/finetune-hub-role") in tokens.calls
    assert len(fake_bedrock.jobs()) == 1 and b"TOKENSERVER" not in store_bytes(tmp_path / "s")
