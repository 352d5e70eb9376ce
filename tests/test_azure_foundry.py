"""The azure-foundry provider end to end: TuningJob on the real azure-ai-ml (and
azure-storage-blob) against FakeAzureFoundry. Jobs: validate, upload, submit (idempotent, also
after a 500 that followed the create), wait, events, metrics, cancel, failures, marketplace
subscriptions, region and surface checks; refusals that happen before any network call."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest.importorskip("azure.ai.ml")

import finetune_hub as fh  # noqa: E402
from finetune_hub.providers.azure_foundry_upload import blob_path  # noqa: E402
from finetune_hub.status import JobStatus  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"
PHI = "Phi-4-mini-instruct"

logging.getLogger("azure.ai.ml").setLevel(logging.ERROR)  # "experimental" notices


@pytest.fixture
def store(tmp_path):
    return fh.JobStore(tmp_path / "home")


@pytest.fixture
def data(tmp_path):
    """Disjoint training and validation files from the ござる sample."""
    train, validation = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    fh.split(CHAT, train, validation, validation_size=4, seed=7)
    return train, validation


def make_job(fake, store, data, **kw) -> fh.TuningJob:
    train, validation = data
    args = {
        "provider": "azure-foundry",
        "base_model": PHI,
        "training_file": train,
        "validation_file": validation,
        "hyperparameters": {"epochs": 2, "batch_size": 1, "learning_rate": 2e-5},
        "options": fake.options,
        "store": store,
    }
    args.update(kw)
    job = fh.TuningJob(**args)
    job.sleep = fake.advance  # waits and retries move the fake clock, not real time
    return job


def job_puts(fake) -> int:
    return fake.count("PUT", r"/jobs/[^/]+")


# --- the lifecycle --------------------------------------------------------------------------------


def test_submit_wait_events_metrics(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    job = make_job(fake, store, data, suffix="gozaru")
    assert job.validate().ok
    assert fake.requests == []  # validation is local
    job.submit()
    assert job.provider_job_id == f"finetune-hub-{job.id}"
    put = next(r for r in fake.requests if r.method == "PUT" and r.surface == "arm")
    details = put.json["properties"]["fineTuningDetails"]
    assert details["hyperParameters"] == {
        "num_train_epochs": "2",
        "per_device_train_batch_size": "1",
        "learning_rate": "2e-05",
    }  # the provider's names, as strings
    assert details["model"]["uri"] == f"azureml://registries/azureml/models/{PHI}/versions/1"
    assert details["trainingData"]["uri"].endswith(blob_path(job.id, "training"))
    assert details["validationData"]["uri"].endswith(blob_path(job.id, "validation"))
    assert put.json["properties"]["tags"] == {"finetune_hub_job_id": job.id}
    assert fake.blob_data(blob_path(job.id, "training")) == data[0].read_bytes()

    model = job.wait(poll_interval=30, progress=False)
    assert model.id == (
        f"azureml://locations/{fake.location}/workspaces/{fake.workspace_id}"
        f"/models/{PHI}-ft-{job.id.removeprefix('ftj_')}-gozaru/versions/1"
    )
    seen = [t.status for t in store.transitions(job.id)]
    assert seen[0] is JobStatus.PENDING and seen[-1] is JobStatus.SUCCEEDED
    assert JobStatus.RUNNING in seen and job.raw_status == "Completed"

    events = job.events()
    assert [e.id for e in events] == ["created", "started", "ended"]
    assert events[-1].message == "job completed"
    assert job.events() == events  # nothing twice
    metrics = job.metrics()
    assert [m.step for m in metrics] == list(range(1, len(metrics) + 1))
    assert metrics[0].train_loss > metrics[-1].train_loss and metrics[-1].epoch
    assert any(m.valid_loss is not None for m in metrics)


def test_submit_twice_and_attach_make_one_job_and_one_upload_each(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    job = make_job(fake, store, data)
    job.submit()
    job.submit()
    again = fh.TuningJob.attach(job.id, store=store, options=fake.options)
    again.submit()
    assert job_puts(fake) == 1 and len(fake.jobs) == 1
    assert fake.count("PUT", rf"/{fake.container}/.*") == 2  # training + validation, once


def test_a_500_after_the_create_took_effect_leaves_exactly_one_job(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    fake.inject("PUT", r"/jobs/[^/]+", "500", after=True)
    job = make_job(fake, store, data)
    job.submit()
    assert len(fake.jobs) == 1 and job_puts(fake) == 1  # the retry found it by name
    assert job.provider_job_id in {j.name for j in fake.jobs.values()}
    assert fake.count("GET", r"/jobs/[^/]+") >= 2  # find before the create, find on the retry


def test_429_is_retried_after_retry_after(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    fake.inject("PUT", r"/jobs/[^/]+", "429", retry_after=7)
    waited = []
    job = make_job(fake, store, data)
    job.sleep = lambda s: (waited.append(s), fake.advance(s))
    job.submit()
    assert waited[0] == 7 and job_puts(fake) == 2 and len(fake.jobs) == 1
    assert fake.sleeps == []  # azure-ai-ml's own retries are off: one policy, the job layer's


def test_an_upload_whose_answer_was_lost_is_reused_on_the_retry(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    fake.inject("PUT", rf"/{fake.container}/.*training\.jsonl", "503", after=True)
    job = make_job(fake, store, data)
    job.submit()
    statuses = [r.status for r in fake.requests if r.surface == "blob" and r.method == "PUT"]
    assert statuses[:2] == [503, 409]  # stored, answer lost; the retry finds the same bytes
    assert len(fake.jobs) == 1


def test_dropped_connections_while_waiting_are_retried(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    job = make_job(fake, store, data)
    job.submit()
    fake.inject("GET", r"/jobs/[^/]+", "drop", times=2)
    assert job.wait(poll_interval=30, progress=False).id.endswith("/versions/1")
    assert [r.status for r in fake.requests].count(0) == 2


def test_upload_reuses_an_identical_blob_and_never_overwrites_another(
    fake_azure_foundry, store, data
):
    fake = fake_azure_foundry
    job = make_job(fake, store, data)
    backend = job.backend
    first = backend.upload(str(data[0]), "training", job.id)
    again = backend.upload(str(data[0]), "training", job.id)
    assert (
        first.id
        == again.id
        == f"azureml://datastores/workspaceblobstore/paths/{blob_path(job.id, 'training')}"
    )
    with pytest.raises(fh.ProviderError, match="never overwrites"):
        backend.upload(str(data[1]), "training", job.id)
    assert fake.blob_data(first.id) == data[0].read_bytes()


def test_cancel(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    job = make_job(fake, store, data)
    job.submit()
    status = job.cancel()
    assert status in (JobStatus.CANCELLING, JobStatus.CANCELLED)
    assert fake.count("POST", r"/jobs/[^/]+/cancel") == 1
    with pytest.raises(fh.JobFailed) as failed:
        job.wait(poll_interval=30, progress=False)
    assert failed.value.status == "cancelled"


def test_a_failed_job_says_why(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    job = make_job(fake, store, data)
    job.submit()
    fake.fail_job(job.provider_job_id, "Training data line 3: the assistant turn is empty.")
    with pytest.raises(fh.JobFailed, match="line 3: the assistant turn is empty"):
        job.wait(poll_interval=30, progress=False)
    assert job.record.error_code == "UserError"
    assert job.events()[-1].level == "error"


def test_a_non_microsoft_model_gets_its_marketplace_subscription_once(
    fake_azure_foundry, store, data
):
    fake = fake_azure_foundry
    for _ in range(2):
        make_job(fake, store, data, base_model="Ministral-3B").submit()
    assert fake.count("PUT", "/marketplaceSubscriptions/Ministral-3B-sub") == 1
    (sub,) = fake.subscriptions.values()
    assert sub.model_id == "azureml://registries/azureml-mistral/models/Ministral-3B"
    assert len(fake.jobs) == 2


def test_missing_validation_data_is_handled_despite_the_sdk_bug(fake_azure_foundry, store, data):
    """azure-ai-ml's create_finetuning_job(validation_data=None) raises UnboundLocalError; the
    backend builds the job entity itself, so a job without validation data goes through."""
    fake = fake_azure_foundry
    job = make_job(fake, store, data)
    prepared = job.prepare().model_copy(update={"validation_file": None})
    refs = {"training": job.backend.upload(str(data[0]), "training", job.id)}
    created = job.backend.create(prepared, refs)
    assert created.status is JobStatus.QUEUED
    put = [r for r in fake.requests if r.method == "PUT" and r.surface == "arm"][-1]
    assert "validationData" not in put.json["properties"]["fineTuningDetails"]


# --- refused before anything leaves the machine --------------------------------------------------


def test_tsuzumi_learning_rate_is_refused_before_any_network_call(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    job = make_job(
        fake, store, data, base_model="tsuzumi2", hyperparameters={"learning_rate": 1e-4}
    )
    with pytest.raises(fh.ValidationError) as refused:
        job.submit()
    (issue,) = refused.value.report.errors
    assert issue.code == "unknown_hyperparameter"
    assert "learning rate cannot be set" in issue.message
    assert issue.message.endswith("it takes: batch_size, epochs")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("model", "date", "replacement"),
    [("tsuzumi-7b", "2026-08-31", "tsuzumi2"), ("Meta-Llama-3.1-8B-Instruct", "2026-06-13", None)],
)
def test_retired_models_are_refused_with_date_and_replacement(
    fake_azure_foundry, store, data, model, date, replacement
):
    fake = fake_azure_foundry
    job = make_job(fake, store, data, base_model=model, hyperparameters={"epochs": 1})
    with pytest.raises(fh.ValidationError) as refused:
        job.submit()
    (issue,) = [e for e in refused.value.report.errors if e.code == "model_shutdown"]
    assert date in issue.message
    if replacement:
        assert replacement in issue.message
    assert fake.requests == []


def test_models_of_the_openai_surface_need_the_resource_endpoint(
    fake_azure_foundry, store, data, monkeypatch
):
    """gpt-oss-20b is tuned through a Foundry resource's OpenAI-compatible API (the rules'
    surface for it; tests/test_azure_foundry_openai.py runs it): a hub project's options alone
    are not enough, and validation names what is missing before anything is sent."""
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    fake = fake_azure_foundry
    job = make_job(fake, store, data, base_model="gpt-oss-20b", hyperparameters={})
    report = job.validate()
    (issue,) = [e for e in report.errors if e.code == "missing_option"]
    assert "OpenAI-compatible fine-tuning API" in issue.message
    assert "endpoint (or AZURE_OPENAI_ENDPOINT)" in issue.message
    assert fake.requests == []


def test_missing_connection_options_are_named(store, data, monkeypatch):
    for var in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_ML_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    job = fh.TuningJob(
        provider="azure-foundry",
        base_model=PHI,
        training_file=data[0],
        validation_file=data[1],
        store=store,
        options={"subscription_id": "s"},
    )
    (issue,) = [e for e in job.validate().errors if e.code == "missing_option"]
    assert "resource_group (or AZURE_RESOURCE_GROUP)" in issue.message
    assert "workspace (or AZURE_ML_WORKSPACE)" in issue.message
    with pytest.raises(fh.OptionsError, match="did you mean 'workspace'"):
        _ = fh.TuningJob(
            provider="azure-foundry",
            base_model=PHI,
            training_file=data[0],
            store=store,
            options={"workspce": "x"},
        ).backend


def test_a_project_in_a_region_without_fine_tuning_is_refused(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    fake.location = "swedencentral"
    job = make_job(fake, store, data)
    with pytest.raises(
        fh.ProviderError, match="projects in eastus2.*this project is in swedencentral"
    ):
        job.submit()
    assert fake.jobs == {}


def test_nothing_secret_is_stored(fake_azure_foundry, store, data):
    fake = fake_azure_foundry
    job = make_job(fake, store, data)
    job.submit()
    record = store.require(job.id)
    assert record.options == {
        "subscription_id": fake.subscription_id,
        "resource_group": fake.resource_group,
        "workspace": fake.workspace,
    }
    assert record.credentials == {"azure": "azure-identity:FakeAzureCredential"}
