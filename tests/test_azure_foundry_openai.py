"""azure-foundry on the OpenAI-compatible surface of a Foundry resource (gpt-oss-20b, Qwen-32B,
Llama-3.3-70B-Instruct): the rules choose the surface per model, and the provider runs those jobs
itself through the Azure OpenAI backend and deployer (composition), with the surface's
hyperparameter names and types, Global training and a GlobalStandard deployment. Real openai
SDK against FakeAzureOpenAI."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openai")

import finetune_hub as fh  # noqa: E402
from finetune_hub.status import JobStatus  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"
OSS = "gpt-oss-20b"


@pytest.fixture
def fake(fake_azure_openai, monkeypatch):
    """FakeAzureOpenAI reached through azure-foundry options only (the fixture's Azure OpenAI
    environment variables are cleared, so nothing reaches it by accident)."""
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    for var in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_ML_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    return fake_azure_openai


def options(fake) -> dict:
    server = fake.server
    return {
        "endpoint": server.azure_endpoint,
        "api_key": fake.api_key,
        "api_version": fake.api_version,
        "management_url": server.management_url,
        "management_token": fake.management_token,
        "subscription_id": fake.subscription_id,
        "resource_group": fake.resource_group,
        "account_name": fake.account,
    }


@pytest.fixture
def store(tmp_path):
    return fh.JobStore(tmp_path / "home")


def make_job(fake, store, **kw) -> fh.TuningJob:
    args = {
        "provider": "azure-foundry",
        "base_model": OSS,
        "training_file": CHAT,
        "hyperparameters": {"epochs": 2, "batch_size": 1, "learning_rate_multiplier": 0.5},
        "suffix": "gozaru",
        "options": options(fake),
        "store": store,
    }
    args.update(kw)
    job = fh.TuningJob(**args)
    job.sleep = lambda seconds: None  # each poll moves the fake's clock
    return job


def creates(fake) -> list[dict]:
    return [r.json for r in fake.requests if r.method == "POST" and r.path == "/fine_tuning/jobs"]


def test_gpt_oss_runs_on_the_openai_compatible_surface_with_its_names_and_types(fake, store):
    job = make_job(fake, store)
    report = job.validate()
    assert report.ok, report.errors
    assert report.hyperparameters == {
        "n_epochs": 2,
        "batch_size": 1,
        "learning_rate_multiplier": 0.5,
    }
    job.submit()
    (body,) = creates(fake)
    assert body["model"] == OSS and body["suffix"] == "gozaru"
    assert body["method"]["supervised"]["hyperparameters"] == {
        "n_epochs": 2,
        "batch_size": 1,
        "learning_rate_multiplier": 0.5,
    }  # numbers, not the hub project's strings
    assert body["trainingType"] == "GlobalStandard"  # the rules' tier for this surface
    assert body["metadata"] == {"finetune_hub_job_id": job.id}
    assert job.provider_job_id.startswith("ftjob-")
    assert fake.count("POST", "/files") == 1

    model = job.wait(poll_interval=0.01, progress=False)
    assert model.id.startswith(f"{OSS}.ft-") and job.status is JobStatus.SUCCEEDED
    assert [e.message for e in job.events()][-1]
    assert job.metrics() and job.metrics()[0].train_loss is not None
    assert job.checkpoints()

    # a new process: attach finds the surface from the provider job id
    again = fh.TuningJob.attach(job.id, store=store, options=options(fake))
    assert again.refresh() is JobStatus.SUCCEEDED
    assert again.events() == job.events()


def test_a_500_after_the_create_leaves_exactly_one_job(fake, store):
    fake.inject("POST", "/fine_tuning/jobs", "500", after=True)
    job = make_job(fake, store)
    job.submit()
    job.submit()
    fh.TuningJob.attach(job.id, store=store, options=options(fake)).submit()
    assert len(fake.jobs) == 1 and len(creates(fake)) == 1
    assert job.provider_job_id in fake.jobs


def test_cancel(fake, store):
    fake.durations = {phase: 10.0**9 for phase in fake.durations}
    job = make_job(fake, store)
    job.submit()
    assert job.cancel() in (JobStatus.CANCELLING, JobStatus.CANCELLED)


def test_deploy_on_globalstandard_chat_and_delete(fake, store):
    job = make_job(fake, store)
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)

    with pytest.raises(fh.UnsupportedOperation, match=r"model.deploy\('globalstandard'"):
        model.deploy(confirm_cost=True)  # the default serving mode is the hub project's
    with pytest.raises(fh.CostConfirmationRequired, match="rate unknown to finetune_hub"):
        model.deploy("globalstandard")
    assert model.deployment_cost("globalstandard").hourly_usd is None  # no source states it
    assert not [r for r in fake.requests if r.surface == "arm"]  # nothing sent before confirming

    deployment = model.deploy("globalstandard", confirm_cost=True)
    assert deployment.kind == "globalstandard"
    put = next(r for r in fake.requests if r.surface == "arm" and r.method == "PUT")
    assert put.json["sku"]["name"] == "GlobalStandard"
    assert put.json["properties"]["model"]["name"] == model.id
    assert model.deploy("globalstandard", confirm_cost=True).name == deployment.name  # found
    assert len(fake.deployments) == 1
    assert deployment.wait_ready(poll_interval=0.01) is fh.DeploymentStatus.READY
    assert deployment.chat([{"role": "user", "content": "こんにちは"}]) == "Echo: こんにちは"
    assert [d.kind for d in store.list_deployments(active_only=True)] == ["globalstandard"]
    with pytest.raises(fh.UnsupportedOperation, match="deploy"):
        model.chat([{"role": "user", "content": "hi"}])  # served only through the deployment
    deployment.delete()
    deployment.delete()  # idempotent
    assert fake.deployments == {} and store.list_deployments(active_only=True) == []
    model.delete()
    assert model.id not in fake.fine_tuned_models


def test_a_learning_rate_is_refused_with_the_surface_s_multiplier(fake, store):
    job = make_job(fake, store, hyperparameters={"learning_rate": 1e-5})
    with pytest.raises(fh.ValidationError) as refused:
        job.submit()
    (issue,) = refused.value.report.errors
    assert issue.code == "unknown_hyperparameter"
    assert "use 'learning_rate_multiplier'" in issue.message
    assert issue.message.endswith("it takes: batch_size, epochs, learning_rate_multiplier")
    assert fake.requests == []


def test_the_endpoint_is_named_when_missing(fake, store):
    opts = {k: v for k, v in options(fake).items() if k != "endpoint"}
    job = make_job(fake, store, options=opts)
    (issue,) = [e for e in job.validate().errors if e.code == "missing_option"]
    assert "endpoint (or AZURE_OPENAI_ENDPOINT)" in issue.message
    assert "OpenAI-compatible" in issue.message
    assert fake.requests == []


def test_what_is_stored_and_what_is_not(fake, store):
    job = make_job(fake, store)
    job.submit()
    record = store.require(job.id)
    assert record.options == {
        "subscription_id": fake.subscription_id,
        "resource_group": fake.resource_group,
        "endpoint": fake.server.azure_endpoint,
        "api_version": fake.api_version,
        "account_name": fake.account,
        "management_url": fake.server.management_url,
    }
    assert record.credentials == {"azure": "default-chain", "api_key": "explicit"}


def test_each_surface_keeps_its_own_hyperparameter_types():
    from finetune_hub.rules import resolve

    oss, _ = resolve("azure-foundry", OSS, "sft")
    assert {s.provider_name: s.wire for s in oss.hyperparameters.values()} == {
        "n_epochs": "native",
        "batch_size": "native",
        "learning_rate_multiplier": "native",
    }
    phi, _ = resolve("azure-foundry", "Phi-4-mini-instruct", "sft")
    assert all(s.wire == "string" for s in phi.hyperparameters.values())
    qwen, notes = resolve("azure-foundry", "Qwen-32B", "sft")
    assert qwen.max_tokens_per_example == 8192 and not [n for n in notes if n.is_error]
