"""The Vertex AI provider on contract v2: Gemini tuning through the real google-genai, Cloud
Storage through the real google-cloud-storage, all against FakeVertex (`fake_vertex` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.providers.base import make_backend
from finetune_hub.providers.vertex_rlhf import preference_to_gemini
from finetune_hub.status import JobStatus

pytest.importorskip("google.genai")

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
BASE = "gemini-2.5-flash"


@pytest.fixture
def gemini_file(tmp_path) -> Path:
    out = tmp_path / "gozaru_gemini.jsonl"
    assert fh.convert(SAMPLES / "chat_gozaru.jsonl", out, to="gemini").lossless
    return out


@pytest.fixture
def store(tmp_path) -> fh.JobStore:
    return fh.JobStore(tmp_path / "store")


def make_job(fake, store, training_file, **kw) -> fh.TuningJob:
    options = {**fake.options, **kw.pop("options", {})}
    job = fh.TuningJob(
        provider="vertex",
        base_model=kw.pop("base_model", BASE),
        training_file=training_file,
        options=options,
        store=store,
        **kw,
    )
    job.sleep = lambda seconds: None
    return job


def creates(fake) -> list[dict]:
    return [r.json for r in fake.requests if r.operation == "tuningJobs.create"]


def test_sft_uploads_under_the_prefix_tunes_and_chats(fake_vertex, store, gemini_file):
    job = make_job(
        fake_vertex,
        store,
        gemini_file,
        hyperparameters={"epochs": 2, "adapter_size": 4, "learning_rate_multiplier": 0.5},
        suffix="gozaru",
        validation_file=gemini_file,
    )
    assert job.validate().ok
    job.submit()
    prefix = f"gs://{fake_vertex.bucket}/finetune-hub/{job.id}"
    assert fake_vertex.storage.list(prefix) == [
        f"{prefix}/training.jsonl",
        f"{prefix}/validation.jsonl",
    ]
    (body,) = creates(fake_vertex)
    assert body["baseModel"] == BASE and body["tunedModelDisplayName"] == "gozaru"
    assert body["labels"] == {"finetune-hub-job": job.id}
    assert body["supervisedTuningSpec"] == {
        "trainingDatasetUri": f"{prefix}/training.jsonl",
        "validationDatasetUri": f"{prefix}/validation.jsonl",
        "hyperParameters": {
            "epochCount": 2,
            "adapterSize": "ADAPTER_SIZE_FOUR",
            "learningRateMultiplier": 0.5,
        },
    }

    model = job.wait(poll_interval=0.01, progress=False)
    assert isinstance(model, fh.TunedModel) and job.status is JobStatus.SUCCEEDED
    assert model.id.startswith("projects/123456789012/locations/us-central1/models/")
    seen = [t.status for t in store.transitions(job.id)]
    assert JobStatus.QUEUED in seen and JobStatus.RUNNING in seen
    messages = [e.message for e in job.events()]
    assert messages[0] == "tuning job created" and messages[-1] == "tuning job succeeded"
    assert any(m.startswith("dataset read: 20 examples") for m in messages)
    assert [c.step for c in job.checkpoints()] == [3, 6]

    assert model.chat([{"role": "user", "content": "空は?"}]) == "Tuned echo: 空は?"
    chat = fake_vertex.chats[-1]
    assert "/endpoints/" in chat["model"]
    with pytest.raises(fh.UnsupportedOperation, match="tuned Gemini model"):
        model.deploy(confirm_cost=True)


def test_a_create_that_answered_500_after_taking_effect_makes_one_job(
    fake_vertex, store, gemini_file
):
    fake_vertex.inject("POST", "tuningJobs.create", "500", after=True)
    job = make_job(fake_vertex, store, gemini_file)
    job.submit()
    assert len(fake_vertex.tuning_jobs) == 1 and fake_vertex.count("POST", "tuningJobs.create") == 1
    assert job.provider_job_id in fake_vertex.tuning_jobs
    job.submit()
    fh.TuningJob.attach(job.id, store=store, options=fake_vertex.options).submit()
    assert len(fake_vertex.tuning_jobs) == 1
    assert fake_vertex.count("POST", "storage.objects.insert") == 1
    assert isinstance(job.wait(poll_interval=0.01, progress=False), fh.TunedModel)


def test_faults_are_retried_with_retry_after(fake_vertex, store, gemini_file):
    fake_vertex.inject("POST", "tuningJobs.create", "429", retry_after=0)
    fake_vertex.inject("POST", "storage.objects.insert", "503")
    fake_vertex.inject("GET", "tuningJobs.get", "drop")
    job = make_job(fake_vertex, store, gemini_file)
    job.submit()
    assert job.refresh() in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert len(fake_vertex.tuning_jobs) == 1


def test_provider_errors_carry_status_code_and_retry_after(fake_vertex):
    backend = make_backend("vertex", fake_vertex.options)
    fake_vertex.inject("GET", "tuningJobs.get", "429", retry_after=7)
    with pytest.raises(fh.ProviderError) as err:
        backend.get(f"projects/{fake_vertex.project}/locations/us-central1/tuningJobs/1")
    assert err.value.status_code == 429 and err.value.retry_after == 7.0
    assert err.value.code == "RESOURCE_EXHAUSTED" and err.value.retryable
    with pytest.raises(fh.ProviderError) as err:
        backend.get(f"projects/{fake_vertex.project}/locations/us-central1/tuningJobs/1")
    assert err.value.status_code == 404 and not err.value.retryable


def test_cancel(fake_vertex, store, gemini_file):
    fake_vertex.durations.update(pending=10.0**9)
    job = make_job(fake_vertex, store, gemini_file)
    job.submit()
    assert job.cancel() in (JobStatus.CANCELLING, JobStatus.CANCELLED)
    fake_vertex.advance(60)
    assert job.refresh() is JobStatus.CANCELLED


def test_a_failed_job_raises_job_failed_with_vertex_message(fake_vertex, store, gemini_file):
    fake_vertex.fail_next_tuning_job("Example 7 has no model turn.", "INVALID_ARGUMENT")
    job = make_job(fake_vertex, store, gemini_file)
    job.submit()
    with pytest.raises(fh.JobFailed, match="Example 7 has no model turn"):
        job.wait(poll_interval=0.01, progress=False)
    assert job.status is JobStatus.FAILED and job.record.error_code == "3"


def test_preference_tuning_from_the_rlhf_preferences(fake_vertex, store, tmp_path):
    prefs = tmp_path / "gemini_prefs.jsonl"
    summary = preference_to_gemini(SAMPLES / "vertex_rlhf_preferences.jsonl", prefs)
    assert summary.records_out == 5
    first = json.loads(prefs.read_text(encoding="utf-8").splitlines()[1])
    chosen = [c for c in first["completions"] if c["score"] == 1][0]
    assert chosen["completion"]["parts"][0]["text"].startswith("A timber cabin")  # choice = 1
    job = make_job(fake_vertex, store, prefs, method="dpo", hyperparameters={"beta": 0.1})
    assert job.validate().ok
    job.submit()
    (body,) = creates(fake_vertex)
    assert body["preferenceOptimizationSpec"]["hyperParameters"] == {"beta": 0.1}
    assert isinstance(job.wait(poll_interval=0.01, progress=False), fh.TunedModel)


# -- uploads -----------------------------------------------------------------------------------------
def test_upload_reuses_the_same_object_and_refuses_a_different_one(fake_vertex, tmp_path):
    backend = make_backend("vertex", fake_vertex.options)
    data = tmp_path / "t.jsonl"
    data.write_text('{"contents": []}\n')
    first = backend.upload(str(data), "training", "ftj_same")
    again = backend.upload(str(data), "training", "ftj_same")
    assert first.id == again.id and fake_vertex.count("POST", "storage.objects.insert") == 1
    data.write_text('{"contents": [1]}\n')
    with pytest.raises(fh.ProviderError, match="never overwrites") as err:
        backend.upload(str(data), "training", "ftj_same")
    assert not err.value.retryable
    assert fake_vertex.storage.get(first.id) == b'{"contents": []}\n'


def test_a_large_upload_is_resumable_in_chunks_and_checksummed(fake_vertex, tmp_path, monkeypatch):
    from finetune_hub.providers import vertex_storage

    monkeypatch.setattr(vertex_storage, "CHUNK_BYTES", 4 * 1024 * 1024)
    big = tmp_path / "big.jsonl"
    line = json.dumps({"contents": [{"role": "user", "parts": [{"text": "x" * 1000}]}]}) + "\n"
    big.write_text(line * 9000)  # ~9.2 MB
    ref = make_backend("vertex", fake_vertex.options).upload(str(big), "training", "ftj_big")
    puts = [r for r in fake_vertex.requests if r.operation == "storage.objects.upload_chunk"]
    assert [r.status for r in puts] == [308, 308, 200]
    assert puts[-1].headers["x-goog-hash"].startswith("crc32c=")
    assert fake_vertex.storage.get(ref.id) == big.read_bytes() and ref.bytes == big.stat().st_size


# -- options -----------------------------------------------------------------------------------------
def test_options_are_checked_and_credentials_never_stored(fake_vertex, store, gemini_file):
    job = make_job(fake_vertex, store, gemini_file, options={"gcs_uri": None})
    assert "gcs_uri" in str(job.validate().errors)
    job = make_job(fake_vertex, store, gemini_file, options={"locaton": "eu"})
    report = job.validate()
    assert "did you mean 'location'" in str(report.errors)
    job = make_job(fake_vertex, store, gemini_file)
    job.submit()
    record = store.require(job.id)
    assert "credentials" not in record.options and record.credentials == {"google": "explicit"}
    assert record.options["api_endpoint"] == fake_vertex.url
    assert fake_vertex.token not in json.dumps(record.model_dump(mode="json"))


# -- chat files converted before upload (rules: auto_convert) -----------------------------------
def test_a_chat_file_is_converted_to_gemini_before_upload_and_the_report_says_so(
    fake_vertex, store, gemini_file
):
    chat = SAMPLES / "chat_gozaru.jsonl"
    job = make_job(fake_vertex, store, chat, validation_file=chat)
    report = job.validate()
    assert report.ok and report.format.value == "gemini"
    notes = [w for w in report.warnings if w.code == "converted_before_upload"]
    assert [n.file for n in notes] == [str(chat), str(chat)]
    assert "20 chat messages records are converted before upload" in notes[0].message
    assert "lossless" in notes[0].message
    assert report.stats.training.path == str(chat) and report.stats.training.records == 20
    job.submit()
    prefix = f"gs://{fake_vertex.bucket}/finetune-hub/{job.id}"
    uploaded = fake_vertex.storage.get(f"{prefix}/training.jsonl")
    assert uploaded == gemini_file.read_bytes()  # exactly what fh.convert(..., to="gemini") writes
    assert fake_vertex.storage.get(f"{prefix}/validation.jsonl") == uploaded
    assert store.require(job.id).data_refs["training"]["path"] == str(chat)  # the user's file
    assert isinstance(job.wait(poll_interval=0.01, progress=False), fh.TunedModel)


def test_a_chat_file_that_would_lose_something_is_refused_with_the_reason(
    fake_vertex, store, tmp_path
):
    lines = [json.loads(x) for x in (SAMPLES / "chat_gozaru.jsonl").read_text().splitlines()]
    lines[2]["messages"][-1] = {
        "role": "assistant",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    lines[4]["messages"][-1]["weight"] = 0
    lossy = tmp_path / "lossy.jsonl"
    lossy.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    job = make_job(fake_vertex, store, lossy)
    with pytest.raises(fh.ValidationError) as refused:
        job.submit()
    (issue,) = [e for e in refused.value.report.errors if e.code == "lossy_conversion"]
    assert "has_tool_calls x1 (line 3)" in issue.message
    assert "weight (1 record)" in issue.message
    assert "fh.convert(" in issue.message and issue.file == str(lossy)
    assert not [r for r in fake_vertex.requests if r.operation.startswith("storage.objects")]


def test_rlhf_preferences_go_to_gemini_preference_tuning_converted_on_upload(
    fake_vertex, store, tmp_path
):
    prefs = SAMPLES / "vertex_rlhf_preferences.jsonl"
    job = make_job(fake_vertex, store, prefs, method="dpo", hyperparameters={"beta": 0.1})
    report = job.validate()
    assert report.ok and report.format.value == "gemini_preference"
    assert "converted_before_upload" in {w.code for w in report.warnings}
    job.submit()
    expected = tmp_path / "expected.jsonl"
    preference_to_gemini(prefs, expected)
    uploaded = fake_vertex.storage.get(
        f"gs://{fake_vertex.bucket}/finetune-hub/{job.id}/training.jsonl"
    )
    assert uploaded == expected.read_bytes()
    (body,) = creates(fake_vertex)
    assert "preferenceOptimizationSpec" in body


# -- the fake refuses retired models as Vertex does ----------------------------------------------
@pytest.mark.filterwarnings("ignore:The SDK's tuning implementation is experimental")
@pytest.mark.parametrize("model", ["gemini-2.0-flash-001", "gemini-1.5-pro-002", "text-bison@002"])
def test_the_fake_refuses_retired_models_as_vertex_does(fake_vertex, tmp_path, model):
    """Tuning or calling a retired model answers 404 NOT_FOUND in Google's error shape; the real
    google-genai raises it, and the backend turns it into a ProviderError."""
    from google.genai import errors, types

    client = fake_vertex.genai_client()
    with pytest.raises(errors.ClientError) as tuned:
        client.tunings.tune(
            base_model=model,
            training_dataset=types.TuningDataset(gcs_uri=f"gs://{fake_vertex.bucket}/t.jsonl"),
        )
    assert tuned.value.code == 404 and tuned.value.status == "NOT_FOUND"
    assert f"publishers/google/models/{model}` was not found" in tuned.value.message
    with pytest.raises(errors.ClientError) as called:
        client.models.generate_content(model=model, contents="hi")
    assert called.value.code == 404
    assert fake_vertex.tuning_jobs == {}

    backend = make_backend("vertex", fake_vertex.options)
    with pytest.raises(fh.ProviderError) as err:
        backend.chat(f"publishers/google/models/{model}", [{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404 and not err.value.retryable
