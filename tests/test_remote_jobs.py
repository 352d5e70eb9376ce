"""Jobs made on the provider's side without finetune_hub: listed (paged, marked when the store
knows them), adopted once, then followed to the end and deployed, on every provider whose
backend lists jobs (the in-memory FakeProvider; the real SDKs on the OpenAI, Azure OpenAI, Amazon
Bedrock, Vertex AI and Azure AI Foundry fakes; and the local backend's run folders)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh
from finetune_hub.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"


class Harness:
    """How a test makes a job directly on one provider's fake, as its SDK or console would."""

    provider: str
    deploys = False
    tries_model = True  # chat with the tuned model (local would load a real one)
    fake_sorts = True  # the fake lists newest first, as the provider does

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def options(self) -> dict[str, Any]:
        return {}

    def create_directly(self) -> str:
        raise NotImplementedError


class FakeHarness(Harness):
    provider, deploys = "fake", True

    def create_directly(self) -> str:
        return self.fake.create_job_directly("fake-base-1")


class OpenAIHarness(Harness):
    provider = "openai"

    def create_directly(self) -> str:
        client = self.fake.client()
        with open(CHAT, "rb") as f:
            uploaded = client.files.create(file=f, purpose="fine-tune")
        self.fake.advance(60)  # the file is processed
        created = client.fine_tuning.jobs.create(
            model="gpt-4.1-mini-2025-04-14", training_file=uploaded.id
        )
        return created.id


class AzureOpenAIHarness(OpenAIHarness):
    provider, deploys = "azure-openai", True

    def options(self) -> dict[str, Any]:
        fake = self.fake
        return {
            "management_token": fake.management_token,
            "subscription_id": fake.subscription_id,
            "resource_group": fake.resource_group,
            "account_name": fake.account,
        }


class BedrockHarness(Harness):
    provider, deploys, deploy_kind = "bedrock", True, "on-demand"
    fake_sorts = False  # moto lists in its own order
    made = 0

    def __init__(self, fake: Any) -> None:
        super().__init__(fake)
        fake.auto_complete_after = 2

    def options(self) -> dict[str, Any]:
        return {"role_arn": self.fake.role_arn, "s3_uri": self.fake.s3_uri}

    def create_directly(self) -> str:
        s3, bedrock = self.fake.client("s3"), self.fake.client("bedrock")
        s3.put_object(Bucket=self.fake.bucket, Key="console/train.jsonl", Body=b'{"x": 1}\n')
        BedrockHarness.made += 1
        created = bedrock.create_model_customization_job(
            jobName=f"console-job-{BedrockHarness.made}",
            customModelName=f"console-model-{BedrockHarness.made}",
            roleArn=self.fake.role_arn,
            baseModelIdentifier="amazon.nova-lite-v1:0:300k",
            customizationType="FINE_TUNING",
            trainingDataConfig={"s3Uri": f"s3://{self.fake.bucket}/console/train.jsonl"},
            outputDataConfig={"s3Uri": f"s3://{self.fake.bucket}/console/out/"},
            hyperParameters={"epochCount": "1"},
        )
        return created["jobArn"]


class LocalHarness(Harness):
    """A run folder another process started (another store, a lost one): the local backend's
    "console" is its output folder."""

    provider, tries_model = "local", False
    made = 0

    def options(self) -> dict[str, Any]:
        return {"output_dir": str(self.fake / "runs")}

    def create_directly(self) -> str:
        from finetune_hub.providers.local.runner import RunDir

        LocalHarness.made += 1
        run = RunDir(self.fake / "runs" / f"colleague-run-{LocalHarness.made}")
        run.path.mkdir(parents=True)
        at = f"2026-03-01T12:{LocalHarness.made:02d}:00+00:00"
        spec = {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "method": "sft"}
        run.job_path.write_text(json.dumps({"key": "", "spec": spec, "created_at": at}))
        run.write_status(state="succeeded", step=3, created_at=at, finished_at=at)
        run.adapter_dir.mkdir(parents=True)
        run.add_event("job created", type="state")
        run.add_event("training finished", type="state")
        return str(run.path)


class VertexHarness(Harness):
    """A Gemini tuning job made with google-genai on the Vertex fake."""

    provider = "vertex"
    made = 0

    def options(self) -> dict[str, Any]:
        return dict(self.fake.options)

    def create_directly(self) -> str:
        import warnings

        from google.genai import types

        VertexHarness.made += 1
        uri = f"gs://{self.fake.bucket}/console/train-{VertexHarness.made}.jsonl"
        row = {
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "hello, gozaru"}]},
            ]
        }
        self.fake.storage.put(uri, (json.dumps(row) + "\n").encode() * 16)
        self.client = getattr(self, "client", None) or self.fake.genai_client()  # kept open
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tuning is experimental"
            created = self.client.tunings.tune(
                base_model="gemini-2.5-flash",
                training_dataset=types.TuningDataset(gcs_uri=uri),
            )
        self.fake.advance(1)  # distinct creation times, so newest first is one order
        return str(created.name)


class AzureFoundryHarness(Harness):
    """A catalog model's fine-tuning job made with azure-ai-ml in the hub project on the fake."""

    provider, deploys, deploy_kind = "azure-foundry", True, "serverless"
    made = 0

    def options(self) -> dict[str, Any]:
        return dict(self.fake.options)

    def create_directly(self) -> str:
        import warnings

        from azure.ai.ml.finetuning import create_finetuning_job

        AzureFoundryHarness.made += 1
        name = f"console-ft-{AzureFoundryHarness.made}"
        data = self.fake.add_blob(f"console/{name}.jsonl", CHAT.read_bytes())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental"
            job = create_finetuning_job(
                model="azureml://registries/azureml/models/Phi-4-mini-instruct/versions/1",
                task="ChatCompletion",
                training_data=data,
                validation_data=data,
                output_model_name_prefix=f"phi-{name}",
                hyperparameters={"num_train_epochs": "1"},
                name=name,
            )
            self.fake.ml_client(show_progress=False).jobs.create_or_update(job)
        self.fake.advance(1)
        return name


HARNESSES = {
    "local": ("tmp_path", LocalHarness),
    "bedrock": ("fake_bedrock", BedrockHarness),
    "fake": ("fake_provider", FakeHarness),
    "openai": ("fake_openai", OpenAIHarness),
    "azure-openai": ("fake_azure_openai", AzureOpenAIHarness),
    "vertex": ("fake_vertex", VertexHarness),
    "azure-foundry": ("fake_azure_foundry", AzureFoundryHarness),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Harness:
    fixture, cls = HARNESSES[request.param]
    return cls(request.getfixturevalue(fixture))


@pytest.fixture
def store(tmp_path: Path) -> fh.JobStore:
    return fh.JobStore(tmp_path / "store")


def test_a_job_made_elsewhere_is_listed_adopted_and_followed(
    harness: Harness, store: fh.JobStore
) -> None:
    outside = harness.create_directly()
    listed = fh.remote_jobs(harness.provider, store=store, **harness.options())
    (remote,) = [j for j in listed if j.id == outside]
    assert not remote.known and remote.local_job_id is None and remote.base_model
    with pytest.raises(fh.JobNotFound):
        fh.TuningJob.attach(outside, store=store)

    job = fh.TuningJob.adopt(harness.provider, outside, store=store, **harness.options())
    job.sleep = lambda seconds: None
    record = store.require(job.id)
    assert record.provider_job_id == outside and record.extra["made_by"] == "outside finetune_hub"
    assert "api_key" not in record.options  # where credentials come from, never a key
    again = fh.TuningJob.adopt(harness.provider, outside, store=store, **harness.options())
    assert again.id == job.id and len(store.list()) == 1
    relisted = fh.remote_jobs(harness.provider, store=store, **harness.options())
    assert [j.known_as for j in relisted if j.id == outside] == [job.id]

    model = job.wait(poll_interval=0.01, progress=False)
    assert job.status is fh.JobStatus.SUCCEEDED and model.id
    assert job.events() and store.events(job.id)
    assert isinstance(job.metrics(), list)
    if harness.deploys:
        deployment = model.deploy(getattr(harness, "deploy_kind", None), confirm_cost=True)
        assert deployment.wait_ready(poll_interval=0.01) is fh.DeploymentStatus.READY
        assert [d.job_id for d in store.list_deployments()] == [job.id]
        deployment.delete()
    elif harness.tries_model:
        assert model.chat([{"role": "user", "content": "hello"}])


def test_listing_pages_with_a_cursor(harness: Harness, store: fh.JobStore) -> None:
    made = {harness.create_directly() for _ in range(5)}
    opts = harness.options()
    first = fh.remote_jobs(harness.provider, limit=2, store=store, **opts)
    assert len(first) == 2 and first.next_cursor is not None
    second = fh.remote_jobs(harness.provider, limit=2, after=first.next_cursor, store=store, **opts)
    assert len(second) == 2 and not {j.id for j in first} & {j.id for j in second}
    everything = fh.remote_jobs(harness.provider, limit=2, pages=None, store=store, **opts)
    ids = [j.id for j in everything]
    assert made <= set(ids) and len(ids) == len(set(ids)) and everything.next_cursor is None
    if harness.fake_sorts:
        assert [j.id for j in [*first, *second]] == ids[:4]


def test_a_job_submitted_through_finetune_hub_is_known(
    fake_provider: Any, store: fh.JobStore
) -> None:
    job = fh.TuningJob(provider="fake", base_model="fake-base-1", training_file=CHAT, store=store)
    job.submit()
    (remote,) = fh.remote_jobs("fake", store=store)
    assert remote.known_as == job.id == remote.local_job_id
    other = fh.JobStore(store.path.parent / "other")  # a colleague's store: the same id is kept
    adopted = fh.TuningJob.adopt("fake", job.provider_job_id, store=other)
    assert adopted.id == job.id
    assert other.require(job.id).extra["made_by"] == f"finetune_hub job {job.id}"


def test_errors_say_what_to_do(fake_provider: Any, store: fh.JobStore) -> None:
    with pytest.raises(fh.FinetuneHubError, match="jobs --remote --provider fake"):
        fh.TuningJob.adopt("fake", "fakejob-404", store=store)
    fake_provider.fail_next("list_jobs", status_code=403, message="no permission to list")
    with pytest.raises(fh.ProviderError, match="no permission"):
        fh.remote_jobs("fake", store=store)


def test_cli_lists_remote_jobs_and_adopts(
    fake_provider: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = fake_provider.create_job_directly()
    home = str(tmp_path / "cli")
    assert main(["jobs", "--remote", "--provider", "fake", "--home", home]) == 0
    out = capsys.readouterr().out
    assert outside in out and "not adopted" in out
    assert main(["adopt", "fake", outside, "--home", home]) == 0
    out = capsys.readouterr().out
    assert "adopted" in out and outside in out
    (record,) = fh.JobStore(home).list()
    assert record.provider_job_id == outside
    assert main(["jobs", "--remote", "--provider", "fake", "--home", home, "--json"]) == 0
    assert record.id in capsys.readouterr().out
    assert main(["jobs", "--remote", "--home", home]) == 2  # --remote needs --provider


def test_azure_foundry_lists_one_surface_after_the_other() -> None:
    """With the OpenAI-compatible surface configured beside the hub project, pages run through
    the surface's jobs, then the project's, and the cursor names the surface it stopped in."""
    from finetune_hub.providers.base import ProviderJob, make_backend

    class Listing:
        def __init__(self, ids: list[str]) -> None:
            self.ids = ids

        def list_jobs(self, limit: int, after: str | None) -> tuple[list[ProviderJob], str | None]:
            start = int(after or 0)
            page = [ProviderJob(id=i, status=fh.JobStatus.RUNNING) for i in self.ids[start:]]
            end = start + limit
            return page[:limit], (str(end) if end < len(self.ids) else None)

    backend: Any = make_backend(
        "azure-foundry",
        {
            "subscription_id": "sub",
            "resource_group": "rg",
            "workspace": "ws",
            "endpoint": "https://foundry.example",
        },
    )
    backend.surface("openai")._backend = Listing(["ftjob-1", "ftjob-2", "ftjob-3"])
    backend.surface("azure-ai-ml")._backend = Listing(["hub-1", "hub-2"])
    seen, cursor, cursors = [], None, []
    while True:
        page, cursor = backend.list_jobs(limit=2, after=cursor)
        seen += [j.id for j in page]
        cursors.append(cursor)
        if cursor is None:
            break
    assert seen == ["ftjob-1", "ftjob-2", "ftjob-3", "hub-1", "hub-2"]
    assert cursors == ["openai:2", "azure-ai-ml:1", None]
    with pytest.raises(fh.ProviderError, match="do not configure"):
        backend.list_jobs(after="elsewhere:3")
