"""pytest fixtures that serve the fakes and point the environment at them.

Active through the `pytest11` entry point of finetune-hub, or explicitly with
`pytest_plugins = ["finetune_hub.testing.pytest_plugin"]` in a root conftest.py.

    def test_my_training_code(fake_openai):
        client = fake_openai.client()           # openai.OpenAI on the fake
        my_code_that_fine_tunes()                # reads OPENAI_API_KEY / OPENAI_BASE_URL
        assert fake_openai.count("POST", "/fine_tuning/jobs") == 1
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .openai_fake import FakeAzureOpenAI, FakeOpenAI, FakeOpenAIServer


@pytest.fixture
def fh_store_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A fresh job-store home for the test (`FINETUNE_HUB_HOME`), so jobs made against a fake
    never land in the user's real store (where a dashboard would refresh them against the real
    providers). Every fake fixture uses it; request it directly for tests without a fake."""
    home = tmp_path_factory.mktemp("finetune_hub_home")
    monkeypatch.setenv("FINETUNE_HUB_HOME", str(home))
    return home


@pytest.fixture
def fake_provider(fh_store_home: Path) -> Iterator[Any]:
    """An in-memory `FakeProvider` registered as provider `"fake"` for the test: a `TuningJob`
    runs on it with no SDK and no network (scripted states on a fake clock, faults)."""
    from .fake_provider import FakeProvider

    with FakeProvider.registered() as fake:
        yield fake


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch, fh_store_home: Path) -> Iterator[FakeOpenAI]:
    """A served `FakeOpenAI`; sets `OPENAI_API_KEY` and `OPENAI_BASE_URL` for the test.

    The fake has `.server` (urls) and `.client(**kwargs)` (an `openai.OpenAI` on it).
    """
    fake = FakeOpenAI()
    with FakeOpenAIServer(fake) as server:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        yield fake


@pytest.fixture
def fake_azure_openai(
    monkeypatch: pytest.MonkeyPatch, fh_store_home: Path
) -> Iterator[FakeAzureOpenAI]:
    """A served `FakeAzureOpenAI` (data plane and ARM deployments on one server).

    Sets `AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_API_KEY`, `OPENAI_API_VERSION` and
    `FINETUNE_HUB_AZURE_MANAGEMENT_URL`. `.client()` returns an `openai.AzureOpenAI`;
    `.management_token` is a Bearer token the ARM routes accept.
    """
    fake = FakeAzureOpenAI()
    with FakeOpenAIServer(fake) as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_API_VERSION", fake.api_version)
        monkeypatch.setenv("FINETUNE_HUB_AZURE_MANAGEMENT_URL", server.management_url)
        yield fake


@pytest.fixture
def fake_bedrock(monkeypatch: pytest.MonkeyPatch, fh_store_home: Path) -> Iterator[Any]:
    """A served `FakeBedrock` (moto + finetune_hub's extension; needs `moto[s3]`, flask and
    flask-cors: pip install "finetune-hub[test-aws]").

    Sets `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY=testing`, `AWS_DEFAULT_REGION=us-east-1`,
    `AWS_EC2_METADATA_DISABLED=true` and `AWS_ENDPOINT_URL` (the server), creates the bucket, and
    yields the fake, with `.s3_uri` and `.role_arn` to put in a job's options. In moto's IAM the
    caller (user `moto`) and the role may do everything: `bedrock_fake_access.grant` narrows it.
    """
    pytest.importorskip("moto")
    from .bedrock_fake import FakeBedrock

    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL_BEDROCK",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with FakeBedrock() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        fake.reset()
        fake.create_bucket()
        from .bedrock_fake_access import grant

        grant(fake)  # IAM: the caller and the role may do everything (a preflight passes)
        yield fake


# --- Azure AI Foundry (azure-ai-ml) ----------------------------------------------------------


@pytest.fixture
def fake_azure_foundry(monkeypatch: pytest.MonkeyPatch, fh_store_home: Path) -> Iterator[Any]:
    """A `FakeAzureFoundry` (project workspace, catalog-model fine-tuning, serverless endpoints)
    reached through an in-process azure-core transport (needs azure-core and requests; the
    real SDK, azure-ai-ml, is what tests drive against it: pip install "finetune-hub[azure]").

    `.options` is ready for a job (subscription_id, resource_group, workspace, credential,
    transport); `.ml_client()` is an `MLClient` on the fake. azure-storage-blob clients that
    azure-ai-ml builds for local-file uploads are routed to the fake too, so nothing reaches
    the network. `AZUREML_CURRENT_CLOUD`, which MLClient writes into the environment, is
    restored afterwards.
    """
    pytest.importorskip("azure.core")
    from .azure_foundry_fake import FakeAzureFoundry

    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    fake = FakeAzureFoundry()
    with fake.route_storage_clients():
        yield fake


# --- Google Vertex AI + Cloud Storage (google-genai, google-cloud-aiplatform, -storage) ------

_GOOGLE_ENV = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_CLOUD_QUOTA_PROJECT",
    "GCLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "API_ENDPOINT_OVERRIDE",
)


@pytest.fixture
def fake_vertex(monkeypatch: pytest.MonkeyPatch, fh_store_home: Path) -> Iterator[Any]:
    """A served `FakeVertex`: Vertex AI (tuning jobs, pipelines, models, endpoints,
    generateContent) and Cloud Storage on one loopback server.

    Sets `STORAGE_EMULATOR_HOST` to it and `NO_GCE_CHECK=True`, clears the Google variables
    that would reach a real credential chain or project (`GOOGLE_APPLICATION_CREDENTIALS`,
    `GOOGLE_CLOUD_PROJECT`, ...), creates the bucket, and yields the fake: `.options` is ready
    for a job (project, location, gcs_uri, credentials, api_endpoint), `.genai_client()`,
    `.storage_client()` and `.init_aiplatform()` give the SDKs on the fake.
    """
    from .vertex_fake import FakeVertex

    for var in _GOOGLE_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with FakeVertex() as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)
        fake.storage.create_bucket(fake.bucket)
        yield fake


# --- PostgreSQL (a shared job store) -----------------------------------------------------------


@pytest.fixture(scope="session")
def fh_postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the test session (`TemporaryPostgres`:
    the machine's own binaries, a temporary folder, a free port); `.create_database(name)`
    returns a URL for `fh.JobStore(url=...)`.

    Where the binaries are missing the test is skipped with the command that installs them,
    except under CI (`$CI` set), where it fails: CI must run the PostgreSQL tests.
    """
    import os

    from .postgres_server import INSTALL_COMMAND, TemporaryPostgres, find_postgres_bin

    if find_postgres_bin() is None:
        message = f"no PostgreSQL server binaries here; install them with: {INSTALL_COMMAND}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("psycopg", reason='needs psycopg: pip install "finetune-hub[team]"')
    with TemporaryPostgres() as server:
        yield server
