"""The secret scan: distinctive secrets planted through options and the environment (API keys,
management tokens, AWS secret keys and session tokens, OAuth tokens, storage account keys, a
managed-identity header, SAS tokens) never show up anywhere a user or an attacker could read
them: the store's files, logs at every level (DEBUG on `finetune_hub` and on every SDK logger),
exception messages and tracebacks, reprs and strs of public objects, JSON exports, CLI output.

Every planted value holds the marker `PLANTED`, so a fragment of one is found too. Each
provider runs its whole flow (submit, wait, events, metrics, deploy, undeploy, delete, a failed
call) on its fake with the SDKs logging at DEBUG; the CLI runs submit, status, watch, events,
jobs, deploy, undeploy, deployments and store export. Log records of the fakes themselves
(server side: werkzeug, moto, finetune_hub.testing) are not the client's and are left out.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"
MODEL = "gpt-4.1-mini-2025-04-14"
MARKER = "PLANTED"
SECRETS = {
    "openai api key (option)": "sk-PLANTED-openai-option-0001",
    "openai api key (env)": "sk-PLANTED-openai-env-0002",
    "azure api key (option)": "PLANTED-azure-option-key-0003",
    "azure api key (env)": "PLANTED-azure-env-key-0004",
    "azure management token (option)": "PLANTED-azure-management-token-0005",
    "aws secret access key (option)": "PLANTED/aws+secret/option0006",
    "aws session token (option)": "PLANTED-aws-session-token-option-0007",
    "aws secret access key (env)": "PLANTED/aws+secret/env0008",
    "aws session token (env)": "PLANTED-aws-session-token-env-0009",
    "google access token (credentials object)": "ya29.PLANTED-google-token-0010",
    "azure token (credential object)": "PLANTED-azure-credential-token-0011",
    "storage account key (datastore)": "PLANTEDsharedKEY" + "A" * 28,
    "managed identity header (env)": "PLANTED-identity-header-0012",
    "managed identity token": "PLANTED-managed-identity-token-0013",
    "sas token (option)": "sv=2025-01-05&sp=rw&sig=PLANTEDsas0014",
}
SDK_LOGGERS = (
    "",
    "finetune_hub",
    "openai",
    "httpx",
    "httpcore",
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "azure",
    "msal",
    "google",
    "google_genai",
    "requests",
)
SERVER_SIDE = ("werkzeug", "moto", "finetune_hub.testing")


class Scan:
    """Texts gathered from everywhere a secret could leak, each with where it came from."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        self.texts.append((where, str(value)))

    def public(self, where: str, obj: Any) -> None:
        """repr, str and (where there is one) the JSON dump of a public object."""
        self.add(f"repr({where})", repr(obj))
        self.add(f"str({where})", str(obj))
        dump = getattr(obj, "model_dump_json", None)
        if dump is not None:
            try:
                self.add(f"{where}.model_dump_json()", dump())
            except Exception as exc:  # a live credential object cannot be dumped: say so only
                self.add(f"{where}.model_dump_json() error", exc)

    def error(self, where: str, exc: BaseException) -> None:
        self.add(f"str({where})", exc)
        self.add(f"repr({where})", repr(exc))
        self.add(f"traceback({where})", "".join(traceback.format_exception(exc)))
        to_dict = getattr(exc, "to_dict", None)
        if to_dict is not None:
            self.add(f"{where}.to_dict()", json.dumps(to_dict(), default=str))

    def store(self, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.add(f"store file {path.name}", path.read_bytes())

    def logs(self, caplog: pytest.LogCaptureFixture) -> None:
        for record in caplog.records:
            if record.name.startswith(SERVER_SIDE):
                continue
            where = f"log {record.name} {record.levelname}"
            self.add(where, record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                self.add(where + " exc", "".join(traceback.format_exception(record.exc_info[1])))
        caplog.clear()

    def findings(self) -> list[str]:
        found = []
        for where, text in self.texts:
            if MARKER.lower() in text.lower():
                start = text.lower().index(MARKER.lower())
                found.append(f"{where}: ...{text[max(0, start - 60) : start + 60]!r}...")
        return found

    def assert_clean(self) -> None:
        assert len(self.texts) > 10, "the scan read what the flow produced"
        found = self.findings()
        assert not found, "secrets found:\n" + "\n".join(found)


@pytest.fixture(params=[logging.DEBUG])
def scan(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> Scan:
    """Logs captured from every SDK logger at the level asked (DEBUG: every record of every
    level; finetune_hub has no level-dependent code path, so DEBUG is a superset)."""
    for name in SDK_LOGGERS:
        caplog.set_level(request.param, logger=name)
    return Scan()


def sleepless(job: fh.TuningJob) -> fh.TuningJob:
    job.sleep = lambda s: None
    return job


def flow(scan: Scan, job: fh.TuningJob, *, deploy: dict[str, Any] | None, fail: Any) -> None:
    """submit, wait, events, metrics, [deploy, undeploy], a failed call, delete; every public
    object and error on the way goes to the scan."""
    scan.public("job.spec", job.spec)
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    job.events()
    job.metrics()
    for where, obj in (
        ("job", job),
        ("job.backend.options", job.backend.options),
        ("job.backend.connection", job.backend.connection),
        ("job.record", job.record),
        ("model", model),
    ):
        scan.public(where, obj)
    scan.add("job.backend.options.__dict__", vars(job.backend.options))
    scan.add("credentials_source()", job.backend.connection.credentials_source())
    scan.add("stored_options()", job.backend.connection.stored_options())
    if deploy is not None:
        deployment = model.deploy(confirm_cost=True, **deploy)
        scan.public("deployment", deployment)
        scan.public("deployment.info", deployment.info)
        scan.public("deployment.record", deployment.record)
        deployment.delete()
    fail()  # the provider answers errors for a while: the error the user sees
    with pytest.raises(fh.ProviderError) as caught:
        job.refresh()
    scan.error("ProviderError", caught.value)
    model.delete()
    again = fh.TuningJob.attach(job.id, store=job.store)
    scan.public("attached job.spec", again.spec)


def refused_options(scan: Scan, provider: str, **options: Any) -> None:
    """A secret-named option a provider does not take is refused without echoing its value."""
    job = fh.TuningJob(
        provider=provider,
        base_model=MODEL,
        training_file=CHAT,
        options=options,
        store=fh.JobStore(Path("/nonexistent-fh-store")),
    )
    scan.public("spec with a refused option", job.spec)
    report = job.validate()
    assert not report.ok
    scan.add("report", report.to_text() if hasattr(report, "to_text") else report)
    with pytest.raises(fh.FinetuneHubError) as caught:
        job.submit()
    scan.error("refused option", caught.value)


# -- the providers --------------------------------------------------------------------------------
def test_openai_leaks_nothing(fake_openai, scan, caplog, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["openai api key (env)"])
    fake_openai.api_keys = {SECRETS["openai api key (option)"], SECRETS["openai api key (env)"]}
    job = sleepless(
        fh.TuningJob(
            provider="openai",
            base_model=MODEL,
            training_file=CHAT,
            options={"api_key": SECRETS["openai api key (option)"]},
            store=fh.JobStore(tmp_path / "store"),
        )
    )
    flow(
        scan,
        job,
        deploy=None,
        fail=lambda: fake_openai.inject("GET", r"/fine_tuning/jobs/[^/]+", "503", times=None),
    )
    env_job = sleepless(
        fh.TuningJob(
            provider="openai", base_model=MODEL, training_file=CHAT,
            store=fh.JobStore(tmp_path / "store"),
        )
    )  # fmt: skip
    fake_openai.faults.clear()
    env_job.submit()
    scan.public("env job", env_job)
    fake_openai.api_keys = {"sk-another"}  # the key is refused: the 401 the user sees
    with pytest.raises(fh.ProviderError) as caught:
        env_job.refresh()
    scan.error("401", caught.value)
    refused_options(scan, "openai", sas_token=SECRETS["sas token (option)"])
    scan.store(tmp_path / "store")
    scan.logs(caplog)
    scan.assert_clean()


def test_azure_openai_leaks_nothing(fake_azure_openai, scan, caplog, tmp_path, monkeypatch):
    fake = fake_azure_openai
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRETS["azure api key (env)"])
    fake.api_keys = {SECRETS["azure api key (option)"]}
    fake.management_tokens = {SECRETS["azure management token (option)"]}
    options = {
        "api_key": SECRETS["azure api key (option)"],
        "management_token": SECRETS["azure management token (option)"],
        "subscription_id": fake.subscription_id,
        "resource_group": fake.resource_group,
        "account_name": fake.account,
    }
    job = sleepless(
        fh.TuningJob(
            provider="azure-openai", base_model=MODEL, training_file=CHAT, options=options,
            store=fh.JobStore(tmp_path / "store"),
        )
    )  # fmt: skip
    flow(
        scan,
        job,
        deploy={},
        fail=lambda: fake.inject("GET", r"/fine_tuning/jobs/[^/]+", "500", times=None),
    )
    refused_options(scan, "azure-openai", connection_string=f"AccountKey={MARKER}-0015")
    scan.store(tmp_path / "store")
    scan.logs(caplog)
    scan.assert_clean()


def test_bedrock_leaks_nothing(fake_bedrock, scan, caplog, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRETS["aws secret access key (env)"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", SECRETS["aws session token (env)"])
    training = tmp_path / "conversation.jsonl"
    fh.convert(CHAT, training, to="bedrock_conversation")
    fake_bedrock.auto_complete_after = 2
    job = sleepless(
        fh.TuningJob(
            provider="bedrock",
            base_model="amazon.nova-lite-v1:0:300k",
            training_file=training,
            options={
                "role_arn": fake_bedrock.role_arn,
                "s3_uri": fake_bedrock.s3_uri,
                "aws_access_key_id": "AKIAEXAMPLEKEYID0001",
                "aws_secret_access_key": SECRETS["aws secret access key (option)"],
                "aws_session_token": SECRETS["aws session token (option)"],
            },
            store=fh.JobStore(tmp_path / "store"),
        )
    )
    flow(
        scan,
        job,
        deploy={"kind": "on-demand"},
        fail=lambda: fake_bedrock.inject("GetModelCustomizationJob", "503", times=10**6),
    )
    fake_bedrock.faults.clear()
    env_job = sleepless(
        fh.TuningJob(
            provider="bedrock", base_model="amazon.nova-lite-v1:0:300k", training_file=training,
            options={"role_arn": fake_bedrock.role_arn, "s3_uri": fake_bedrock.s3_uri},
            store=fh.JobStore(tmp_path / "store"),
        )
    )  # fmt: skip
    env_job.submit()  # the environment's keys and session token, through boto3's chain
    scan.public("env job", env_job)
    refused_options(scan, "bedrock", password=f"{MARKER}-password-0016")
    scan.store(tmp_path / "store")
    scan.logs(caplog)
    scan.assert_clean()


def test_vertex_leaks_nothing(fake_vertex, scan, caplog, tmp_path):
    from google.oauth2.credentials import Credentials

    token = SECRETS["google access token (credentials object)"]
    fake_vertex.tokens = {token}
    training = tmp_path / "gemini.jsonl"
    fh.convert(CHAT, training, to="gemini")
    options = {**fake_vertex.options, "credentials": Credentials(token=token)}
    job = sleepless(
        fh.TuningJob(
            provider="vertex", base_model="gemini-2.5-flash", training_file=training,
            options=options, store=fh.JobStore(tmp_path / "store"),
        )
    )  # fmt: skip
    flow(
        scan,
        job,
        deploy=None,
        fail=lambda: fake_vertex.inject("GET", "tuningJobs.get", "503", times=None),
    )
    scan.store(tmp_path / "store")
    scan.logs(caplog)
    scan.assert_clean()


class TokenCredential:
    """An azure-core credential object handing out a planted token (JWT-shaped: azure-ai-ml
    reads its claims)."""

    def _token(self, scopes: tuple[str, ...]) -> str:
        from finetune_hub.testing.azure_foundry_fake_transport import fake_jwt

        jwt = fake_jwt(scopes[0].removesuffix("/.default"))
        head, claims, _ = jwt.split(".")
        return f"{head}.{claims}.{SECRETS['azure token (credential object)']}"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token(scopes), int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token(scopes), int(time.time()) + 3600)


def test_azure_foundry_leaks_nothing(fake_azure_foundry, scan, caplog, tmp_path):
    fake = fake_azure_foundry
    fake.delete_seconds = 0
    fake.blobs.account_key = SECRETS["storage account key (datastore)"]
    options = {**fake.options, "credential": TokenCredential()}
    job = sleepless(
        fh.TuningJob(
            provider="azure-foundry", base_model="Phi-4-mini-instruct", training_file=CHAT,
            options=options, store=fh.JobStore(tmp_path / "store"),
        )
    )  # fmt: skip
    flow(scan, job, deploy={}, fail=lambda: fake.inject("GET", r"/jobs/[^/]+", "503", times=None))
    refused_options(scan, "azure-foundry", sas_token=SECRETS["sas token (option)"])
    scan.store(tmp_path / "store")
    scan.logs(caplog)
    scan.assert_clean()


# -- the CLI ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scan", [logging.DEBUG, logging.INFO, logging.WARNING], indirect=True, ids=logging.getLevelName
)
def test_the_cli_leaks_nothing(fake_azure_openai, scan, caplog, capsys, tmp_path, monkeypatch):
    """submit with secrets as --option, then status, watch, events, jobs, deploy (management
    token from a managed identity: DefaultAzureCredential), deployments, undeploy, store export,
    and a refused secret-named option; with --debug too."""
    from tests.test_credentials import TokenServer, managed_identity

    fake = fake_azure_openai
    home = tmp_path / "home"
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRETS["azure api key (env)"])
    fake.api_keys = {SECRETS["azure api key (option)"], SECRETS["azure api key (env)"]}
    with TokenServer() as tokens:
        tokens.identity_header = SECRETS["managed identity header (env)"]
        tokens.azure_tokens = {"https://management.azure.com": SECRETS["managed identity token"]}
        fake.management_tokens = {SECRETS["managed identity token"]}
        managed_identity(monkeypatch, tokens)
        where = [
            "--option", f"subscription_id={fake.subscription_id}",
            "--option", f"resource_group={fake.resource_group}",
            "--option", f"account_name={fake.account}",
        ]  # fmt: skip
        code = main([
            "--debug", "submit", "--provider", "azure-openai", "--model", MODEL,
            "--training-file", str(CHAT), "--home", str(home), "--yes", "--json",
            "--option", f"api_key={SECRETS['azure api key (option)']}", *where,
        ])  # fmt: skip
        out = capsys.readouterr()
        scan.add("cli submit", out.out + out.err)
        assert code == 0, out.err
        job_id = json.loads(out.out)["job"]["id"] if out.out.strip().startswith("{") else None
        job_id = job_id or fh.JobStore(home).list()[0].id
        for argv in (
            ["status", job_id, "--json"],
            ["watch", job_id, "--json", "--poll-interval", "0.01"],
            ["events", job_id],
            ["jobs", "--json"],
            ["deploy", job_id, "--yes", "--json"],
            ["deployments"],
            ["undeploy", job_id],
            ["store", "export"],
            ["--debug", "status", job_id],
        ):
            code = (
                main([*argv, "--home", str(home)])
                if argv[0] != "--debug"
                else main([*argv, "--home", str(home)])
            )
            out = capsys.readouterr()
            scan.add(f"cli {' '.join(argv[:2])}", out.out + out.err)
            assert code == 0, (argv, out.err)
    code = main([
        "submit", "--provider", "azure-openai", "--model", MODEL, "--training-file", str(CHAT),
        "--home", str(home), "--yes", "--option", f"sas_token={SECRETS['sas token (option)']}",
    ])  # fmt: skip
    out = capsys.readouterr()
    scan.add("cli refused option", out.out + out.err)
    assert code in (1, 2) and "sas_token" in out.out + out.err  # refused, the value not shown
    scan.store(home)
    scan.logs(caplog)
    scan.assert_clean()
