"""One scenario, every provider: the contract suite of provider contract v2.

Each harness puts a provider's real SDK (or the in-memory FakeProvider) on its fake and says how
to count provider-side jobs and how to make a create fail after it took effect. The scenario is
written once: submit, a duplicate-free retry, wait, events, metrics, deploy (or chat without a
deployment), chat, undeploy, delete, cancel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"


class Harness:
    """How the scenario talks to one provider's fake."""

    provider: str
    base_model: str
    deploys: bool = False  # True when tuned models are served through a deployment

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def options(self) -> dict[str, Any]:
        return {}

    def job_count(self) -> int:
        raise NotImplementedError

    def fail_create_after_effect(self) -> None:
        raise NotImplementedError

    def stall(self) -> None:
        """Keep new jobs from ending (so cancel has something to cancel)."""

    def training_file(self, tmp_path: Path) -> Path:
        return CHAT

    deploy_kind: str | None = None  # the serving mode the scenario deploys (None: the default)


class FakeHarness(Harness):
    provider, base_model, deploys = "fake", "fake-base-1", True

    def job_count(self) -> int:
        return len(self.fake.jobs)

    def fail_create_after_effect(self) -> None:
        self.fake.fail_next("create", after=True)

    def stall(self) -> None:
        self.fake.stall()


class OpenAIHarness(Harness):
    provider, base_model = "openai", "gpt-4.1-mini-2025-04-14"

    def job_count(self) -> int:
        return len(self.fake.jobs)

    def fail_create_after_effect(self) -> None:
        self.fake.inject("POST", "/fine_tuning/jobs", "500", after=True)

    def stall(self) -> None:
        self.fake.durations = {phase: 10.0**9 for phase in self.fake.durations}


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


class VertexHarness(Harness):
    provider, base_model = "vertex", "gemini-2.5-flash"

    def options(self) -> dict[str, Any]:
        return self.fake.options

    def training_file(self, tmp_path: Path) -> Path:
        out = tmp_path / "gozaru_gemini.jsonl"
        fh.convert(CHAT, out, to="gemini")  # lossless: chat -> Gemini contents
        return out

    def job_count(self) -> int:
        return len(self.fake.tuning_jobs)

    def fail_create_after_effect(self) -> None:
        self.fake.inject("POST", "tuningJobs.create", "500", after=True)

    def stall(self) -> None:
        self.fake.durations.update(pending=10.0**9)


class BedrockHarness(Harness):
    provider, base_model, deploys = "bedrock", "amazon.nova-lite-v1:0:300k", True
    deploy_kind = "on-demand"

    def __init__(self, fake: Any) -> None:
        super().__init__(fake)
        fake.auto_complete_after = 2

    def options(self) -> dict[str, Any]:
        return {"role_arn": self.fake.role_arn, "s3_uri": self.fake.s3_uri}

    def training_file(self, tmp_path: Path) -> Path:
        out = tmp_path / "gozaru_conversation.jsonl"
        fh.convert(CHAT, out, to="bedrock_conversation")
        return out

    def job_count(self) -> int:
        return len(self.fake.jobs())

    def fail_create_after_effect(self) -> None:
        self.fake.inject("CreateModelCustomizationJob", "500", after=True)

    def stall(self) -> None:
        self.fake.auto_complete_after = None


class AzureFoundryHarness(Harness):
    provider, base_model, deploys = "azure-foundry", "Phi-4-mini-instruct", True

    def options(self) -> dict[str, Any]:
        self.fake.delete_seconds = 0
        return self.fake.options

    def job_count(self) -> int:
        return len(self.fake.jobs)

    def fail_create_after_effect(self) -> None:
        self.fake.inject("PUT", r"/jobs/[^/]+", "500", after=True)

    def stall(self) -> None:
        self.fake.phases = (("Running", 10.0**9),)


class AzureFoundryOpenAIHarness(OpenAIHarness):
    """azure-foundry on a Foundry resource's OpenAI-compatible API (the rules' surface for
    gpt-oss-20b), served from a GlobalStandard deployment."""

    provider, base_model, deploys = "azure-foundry", "gpt-oss-20b", True
    deploy_kind = "globalstandard"

    def options(self) -> dict[str, Any]:
        fake = self.fake
        return {
            "endpoint": fake.server.azure_endpoint,
            "api_key": fake.api_key,
            "management_token": fake.management_token,
            "subscription_id": fake.subscription_id,
            "resource_group": fake.resource_group,
            "account_name": fake.account,
        }


HARNESSES = {
    "azure-foundry": ("fake_azure_foundry", AzureFoundryHarness),
    "azure-foundry-openai": ("fake_azure_openai", AzureFoundryOpenAIHarness),
    "fake": ("fake_provider", FakeHarness),
    "bedrock": ("fake_bedrock", BedrockHarness),
    "openai": ("fake_openai", OpenAIHarness),
    "azure-openai": ("fake_azure_openai", AzureOpenAIHarness),
    "vertex": ("fake_vertex", VertexHarness),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Harness:
    fixture, cls = HARNESSES[request.param]
    return cls(request.getfixturevalue(fixture))


def make_job(harness: Harness, tmp_path: Path, **kw: Any) -> fh.TuningJob:
    job = fh.TuningJob(
        provider=harness.provider,
        base_model=harness.base_model,
        training_file=harness.training_file(tmp_path),
        options=harness.options(),
        store=fh.JobStore(tmp_path / "store"),
        **kw,
    )
    job.sleep = lambda seconds: None
    return job


def test_the_whole_flow(harness: Harness, tmp_path: Path) -> None:
    job = make_job(harness, tmp_path, hyperparameters={"epochs": 2})
    assert job.validate().ok
    job.submit()
    job.submit()  # repeated: nothing new
    fh.TuningJob.attach(job.id, store=job.store, options=harness.options()).submit()
    assert harness.job_count() == 1

    model = job.wait(poll_interval=0.01, progress=False)
    assert isinstance(model, fh.TunedModel) and job.status is fh.JobStatus.SUCCEEDED
    assert job.events(), "a finished job has events"
    assert isinstance(job.metrics(), list)

    if harness.deploys:
        kind = harness.deploy_kind
        with pytest.raises(fh.CostConfirmationRequired, match="per hour|bill"):
            model.deploy(kind)
        deployment = model.deploy(kind, confirm_cost=True)
        assert model.deploy(kind, confirm_cost=True).name == deployment.name  # found, not twice
        assert deployment.wait_ready(poll_interval=0.01) is fh.DeploymentStatus.READY
        assert deployment.chat([{"role": "user", "content": "hello"}])
        assert [d.name for d in job.store.list_deployments(active_only=True)] == [deployment.name]
        deployment.delete()
        deployment.delete()  # idempotent
        assert deployment.status is fh.DeploymentStatus.DELETED
        assert job.store.list_deployments(active_only=True) == []
    else:
        with pytest.raises(fh.UnsupportedOperation, match="needs no deployment"):
            model.deploy(confirm_cost=True)
        assert model.chat([{"role": "user", "content": "hello"}])
    model.delete()


def test_a_create_that_failed_after_taking_effect_makes_one_job(
    harness: Harness, tmp_path: Path
) -> None:
    harness.fail_create_after_effect()
    job = make_job(harness, tmp_path)
    job.submit()
    assert harness.job_count() == 1
    assert job.provider_job_id is not None


def test_cancel(harness: Harness, tmp_path: Path) -> None:
    harness.stall()
    job = make_job(harness, tmp_path)
    job.submit()
    status = job.cancel()
    assert status in (fh.JobStatus.CANCELLED, fh.JobStatus.CANCELLING)


def test_unknown_options_are_refused_with_the_nearest_name(harness: Harness, tmp_path: Path) -> None:
    job = make_job(harness, tmp_path)
    job.spec.options["timeuot"] = 5
    report = job.validate()
    assert not report.ok
    (issue,) = [i for i in report.errors if i.code == "invalid_option"]
    assert "did you mean 'timeout'" in issue.message
    with pytest.raises(fh.ValidationError, match="timeuot"):
        job.submit()
    assert harness.job_count() == 0
