"""FakeVertex driven by the real google-genai client in Vertex mode: tuning jobs (SFT and
preference), list with label filters, cancel, failures, generateContent, faults, request log."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import warnings

import httpx
import pytest

genai = pytest.importorskip("google.genai")
from google.genai import errors, types  # noqa: E402

from finetune_hub.testing import FakeVertex  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The SDK.s tuning implementation is experimental")

TRAIN = "gs://finetune-hub-test/data/train.jsonl"
PREFS = "gs://finetune-hub-test/data/prefs.jsonl"


def sft_rows(n: int = 20) -> str:
    row = {
        "contents": [
            {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
            {"role": "model", "parts": [{"text": "Paris."}]},
        ]
    }
    return "".join(json.dumps(row) + "\n" for _ in range(n))


def pref_rows(n: int = 20) -> str:
    row = {
        "contents": [{"role": "user", "parts": [{"text": "Say hi"}]}],
        "completions": [
            {"score": 1, "completion": {"role": "model", "parts": [{"text": "Hi!"}]}},
            {"score": 0, "completion": {"role": "model", "parts": [{"text": "Go away."}]}},
        ],
    }
    return "".join(json.dumps(row) + "\n" for _ in range(n))


@pytest.fixture
def client(fake_vertex):
    fake_vertex.storage.put(TRAIN, sft_rows())
    fake_vertex.storage.put(PREFS, pref_rows())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fake_vertex.genai_client()


def tune(client, uri: str = TRAIN, **config):
    return client.tunings.tune(
        base_model=config.pop("base_model", "gemini-2.5-flash"),
        training_dataset=types.TuningDataset(gcs_uri=uri),
        config=types.CreateTuningJobConfig(**config),
    )


def poll(client, name: str, limit: int = 20) -> tuple[types.TuningJob, list[str]]:
    seen = []
    for _ in range(limit):
        job = client.tunings.get(name=name)
        seen.append(job.state.name)
        if job.has_ended:
            return job, seen
    raise AssertionError(f"{name} never ended: {seen}")


# --- tuning ------------------------------------------------------------------------------------


def test_sft_job_runs_to_a_tuned_model_with_stats(fake_vertex, client):
    job = tune(
        client,
        epoch_count=2,
        learning_rate_multiplier=0.5,
        adapter_size="ADAPTER_SIZE_FOUR",
        tuned_model_display_name="capitals",
        validation_dataset=types.TuningValidationDataset(gcs_uri=TRAIN),
        labels={"finetune-hub-job": "job-1"},
    )
    assert job.name.startswith("projects/123456789012/locations/us-central1/tuningJobs/")
    assert job.state.name == "JOB_STATE_PENDING"
    (sent,) = fake_vertex.sent("POST", "tuningJobs.create")
    assert sent.path == "/v1beta1/projects/finetune-hub-test/locations/us-central1/tuningJobs"
    assert sent.json["supervisedTuningSpec"]["hyperParameters"] == {
        "epochCount": 2,
        "learningRateMultiplier": 0.5,
        "adapterSize": "ADAPTER_SIZE_FOUR",
    }
    # the API answers with int64 as strings and enums as names
    stored = fake_vertex.tuning_job(job.name)
    assert stored["supervisedTuningSpec"]["hyperParameters"]["epochCount"] == "2"

    done, seen = poll(client, job.name)
    assert seen[-1] == "JOB_STATE_SUCCEEDED" and "JOB_STATE_RUNNING" in seen
    assert done.tuned_model.model.endswith("@1")
    assert "/endpoints/" in done.tuned_model.endpoint
    assert [c.epoch for c in done.tuned_model.checkpoints] == [1, 2]
    stats = done.tuning_data_stats.supervised_tuning_data_stats
    assert stats.tuning_dataset_example_count == 20
    assert stats.total_billable_token_count > 0
    assert done.labels == {"finetune-hub-job": "job-1"}
    assert done.experiment.endswith(f"tuning-experiment-{job.name.rsplit('/', 1)[-1]}")


def test_preference_tuning_sends_beta_and_is_limited_to_its_models(fake_vertex, client):
    job = tune(client, PREFS, method="PREFERENCE_TUNING", beta=0.2, epoch_count=1)
    spec = fake_vertex.sent("POST", "tuningJobs.create")[-1].json["preferenceOptimizationSpec"]
    assert spec["hyperParameters"] == {"beta": 0.2, "epochCount": 1}
    done, _ = poll(client, job.name)
    assert done.state.name == "JOB_STATE_SUCCEEDED"
    assert done.tuning_data_stats.preference_optimization_data_stats.tuning_dataset_example_count
    with pytest.raises(errors.ClientError) as err:
        tune(client, PREFS, method="PREFERENCE_TUNING", base_model="gemini-2.5-pro")
    assert err.value.code == 400 and err.value.status == "INVALID_ARGUMENT"
    assert "not supported for preference tuning" in err.value.message


def test_bad_requests_answer_invalid_argument(client):
    with pytest.raises(errors.ClientError, match="Base model gemini-1.0-pro"):
        tune(client, base_model="gemini-1.0-pro")
    with pytest.raises(errors.ClientError, match="Invalid label"):
        tune(client, labels={"Bad Key": "x"})
    with pytest.raises(errors.ClientError, match="Cloud Storage URI"):
        tune(client, "https://example.com/train.jsonl")


def test_list_filters_by_label_and_pages(client):
    names = [tune(client, labels={"finetune-hub-job": f"job-{i}"}).name for i in range(3)]
    found = list(client.tunings.list(config={"filter": "labels.finetune-hub-job=job-1"}))
    assert [j.name for j in found] == [names[1]]
    everything = list(client.tunings.list(config={"page_size": 2}))
    assert {j.name for j in everything} == set(names)  # the pager followed nextPageToken
    assert list(client.tunings.list(config={"filter": 'labels.finetune-hub-job="none"'})) == []


def test_cancel_and_cancel_after_the_end(fake_vertex, client):
    fake_vertex.auto_advance = 0
    job = tune(client)
    client.tunings.cancel(name=job.name)
    assert client.tunings.get(name=job.name).state.name == "JOB_STATE_CANCELLING"
    fake_vertex.advance(10)
    cancelled = client.tunings.get(name=job.name)
    assert cancelled.state.name == "JOB_STATE_CANCELLED" and cancelled.error.code == 1
    with pytest.raises(errors.ClientError) as err:
        client.tunings.cancel(name=job.name)
    assert err.value.status == "FAILED_PRECONDITION"


def test_failed_jobs_carry_the_error(fake_vertex, client):
    fake_vertex.fail_next_tuning_job(
        "Example 3: contents must alternate roles.", "INVALID_ARGUMENT"
    )
    failed, _ = poll(client, tune(client).name)
    assert failed.state.name == "JOB_STATE_FAILED"
    assert failed.error.code == 3 and "Example 3" in failed.error.message

    missing, _ = poll(client, tune(client, "gs://finetune-hub-test/data/nope.jsonl").name)
    assert missing.state.name == "JOB_STATE_FAILED" and "does not exist" in missing.error.message

    running = tune(client)
    fake_vertex.advance(40)
    fake_vertex.fail_tuning_job(running.name, "Out of capacity.")
    assert poll(client, running.name)[0].error.message == "Out of capacity."


def test_get_unknown_job_is_not_found(client):
    with pytest.raises(errors.ClientError) as err:
        client.tunings.get(name="projects/p/locations/us-central1/tuningJobs/42")
    assert err.value.code == 404 and err.value.status == "NOT_FOUND"


# --- generateContent -----------------------------------------------------------------------


def test_generate_content_on_the_tuned_endpoint_and_on_the_base_model(fake_vertex, client):
    job = tune(client)
    fake_vertex.set_tuning_state(job.name, "JOB_STATE_SUCCEEDED")
    endpoint = client.tunings.get(name=job.name).tuned_model.endpoint
    tuned = client.models.generate_content(model=endpoint, contents="Capital of France?")
    assert tuned.text == "Tuned echo: Capital of France?"
    assert tuned.usage_metadata.total_token_count > 0
    base = client.models.generate_content(model="gemini-2.5-flash", contents="Capital?")
    assert base.text == "Echo: Capital?"
    assert fake_vertex.requests[-2].path.endswith(":generateContent")
    assert "/endpoints/" in fake_vertex.requests[-2].path

    fake_vertex.reply = lambda model, contents: "PARIS" if "/endpoints/" in model else "paris"
    assert client.models.generate_content(model=endpoint, contents="x").text == "PARIS"
    assert fake_vertex.chats[-1]["model"] == endpoint


def test_generate_content_on_unknown_endpoint_is_not_found(client):
    with pytest.raises(errors.ClientError) as err:
        client.models.generate_content(
            model="projects/p/locations/us-central1/endpoints/999", contents="hi"
        )
    assert err.value.code == 404


# --- auth, faults, log ---------------------------------------------------------------------


def test_requests_without_a_bearer_token_are_unauthenticated(fake_vertex):
    url = f"{fake_vertex.url}/v1beta1/projects/p/locations/us-central1/tuningJobs"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    body = json.loads(err.value.read())
    assert err.value.code == 401 and body["error"]["status"] == "UNAUTHENTICATED"


def test_fault_429_carries_retry_after(fake_vertex, client):
    fake_vertex.inject("POST", "tuningJobs.create", "429", retry_after=2)
    with pytest.raises(errors.ClientError) as err:
        tune(client)
    assert err.value.code == 429 and err.value.status == "RESOURCE_EXHAUSTED"
    assert err.value.response.headers["retry-after"] == "2"
    assert tune(client).state.name == "JOB_STATE_PENDING"  # one fault, then normal


@pytest.mark.parametrize(("kind", "status"), [("500", "INTERNAL"), ("503", "UNAVAILABLE")])
def test_server_faults(fake_vertex, client, kind, status):
    job = tune(client)
    fake_vertex.inject("GET", r"/v1beta1/.*/tuningJobs/\d+", kind, times=2)
    for _ in range(2):
        with pytest.raises(errors.ServerError) as err:
            client.tunings.get(name=job.name)
        assert err.value.code == int(kind) and err.value.status == status
    assert client.tunings.get(name=job.name).name == job.name


def test_fault_500_after_the_create_took_effect(fake_vertex, client):
    fake_vertex.inject("POST", "tuningJobs.create", "500", after=True)
    with pytest.raises(errors.ServerError):
        tune(client, labels={"finetune-hub-job": "retry-me"})
    found = list(client.tunings.list(config={"filter": "labels.finetune-hub-job=retry-me"}))
    assert len(found) == 1  # the job exists although the client saw a 500
    assert fake_vertex.count("POST", "tuningJobs.create") == 1


def test_dropped_connection_and_slow_answers(fake_vertex, client):
    fake_vertex.inject("*", "tuningJobs.list", "drop")
    with pytest.raises(httpx.TransportError):
        list(client.tunings.list())
    fake_vertex.inject("GET", "tuningJobs.list", "slow", delay=0.05)
    assert list(client.tunings.list()) == []
    assert [r.status for r in fake_vertex.requests[-2:]] == [0, 200]


def test_request_log_redacts_credentials_and_reset_forgets(fake_vertex, client):
    tune(client)
    assert fake_vertex.count("*", "tuningJobs.create") == 1
    assert fake_vertex.count("POST", r".*/tuningJobs") == 1
    (entry,) = fake_vertex.sent("POST", "tuningJobs.create")
    assert entry.headers["authorization"] == "<redacted>"
    assert FakeVertex.token not in repr(fake_vertex.requests)
    fake_vertex.reset()
    assert fake_vertex.requests == [] and fake_vertex.tuning_jobs == {}
    assert fake_vertex.storage.buckets == {}


def test_fixture_options_and_environment(fake_vertex, monkeypatch):
    import os

    options = fake_vertex.options
    assert options["api_endpoint"] == fake_vertex.url == os.environ["STORAGE_EMULATOR_HOST"]
    assert options["gcs_uri"] == "gs://finetune-hub-test/finetune-hub"
    assert options["credentials"].token == FakeVertex.token
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ
    assert "finetune-hub-test" in fake_vertex.storage.buckets
