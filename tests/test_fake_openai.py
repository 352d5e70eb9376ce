"""The OpenAI / Azure OpenAI fake, driven by the real openai SDK over real HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import openai
import pytest

from finetune_hub.testing import FakeAzureOpenAI, FakeClock, FakeOpenAI, FakeOpenAIServer

# The pytest11 entry point registers the fixtures once finetune-hub is (re)installed with it;
# until then, load the plugin here (loading it twice would be an error).
if not any(ep.value.startswith("finetune_hub.testing") for ep in entry_points(group="pytest11")):
    pytest_plugins = ["finetune_hub.testing.pytest_plugin"]

BASE = "gpt-4o-mini-2024-07-18"


def jsonl(n: int = 12) -> bytes:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"answer {i}"},
            ]
        }
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def upload(client: openai.OpenAI, data: bytes | None = None) -> str:
    return client.files.create(file=("train.jsonl", data or jsonl()), purpose="fine-tune").id


def wait(client: openai.OpenAI, job_id: str, polls: int = 50) -> tuple[object, list[str]]:
    seen = []
    for _ in range(polls):
        job = client.fine_tuning.jobs.retrieve(job_id)
        seen.append(job.status)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job, seen
    raise AssertionError(f"job {job_id} never finished: {seen}")


# --- OpenAI -----------------------------------------------------------------------------------


def test_full_lifecycle(fake_openai):
    client = fake_openai.client()
    file_id = upload(client)
    assert client.files.retrieve(file_id).status == "processed"

    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=file_id,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        metadata={"run": "r1"},
        suffix="gozaru",
    )
    assert job.status == "validating_files"
    assert job.metadata == {"run": "r1"}

    job, seen = wait(client, job.id)
    assert job.status == "succeeded"
    assert {"queued", "running"} <= set(seen)
    assert job.fine_tuned_model.startswith(f"ft:{BASE}:fake-org:gozaru:")
    assert job.trained_tokens > 0 and job.finished_at is not None
    assert job.hyperparameters.n_epochs == 3

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=2))
    assert fake_openai.count("GET", r"/fine_tuning/jobs/[^/]+/events") > 3  # paginated
    messages = [e.message for e in events]
    assert messages[0] == "The job has successfully completed"
    assert messages[-1].startswith("Created fine-tuning job")
    metrics = [e for e in events if e.type == "metrics"]
    assert metrics and metrics[0].message.startswith("Step ") and "train_loss" in metrics[0].data
    assert len({e.id for e in events}) == len(events)

    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert len(checkpoints) == 3
    assert sorted(c.step_number for c in checkpoints) == [12, 24, 36]
    assert checkpoints[0].fine_tuned_model_checkpoint.startswith(job.fine_tuned_model)
    assert checkpoints[0].metrics.train_loss is not None

    result = client.files.retrieve(job.result_files[0])
    assert result.purpose == "fine-tune-results"
    csv = client.files.content(job.result_files[0]).text.splitlines()
    assert csv[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert len(csv) == 1 + 36

    reply = client.chat.completions.create(
        model=job.fine_tuned_model, messages=[{"role": "user", "content": "hello"}]
    )
    assert reply.choices[0].message.content == "Echo: hello"
    assert client.models.retrieve(job.fine_tuned_model).id == job.fine_tuned_model

    deleted = client.models.delete(job.fine_tuned_model)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.models.delete(job.fine_tuned_model)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=job.fine_tuned_model, messages=[{"role": "user", "content": "hi"}]
        )


def test_env_points_the_default_client_at_the_fake(fake_openai):
    client = openai.OpenAI()  # OPENAI_API_KEY / OPENAI_BASE_URL come from the fixture
    assert client.files.list().data == []
    assert fake_openai.requests[-1].surface == "openai"


def test_custom_reply_and_streaming(fake_openai):
    fake_openai.reply = lambda model, messages: f"{model} says hi"
    client = fake_openai.client()
    stream = client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "gpt-4.1-mini says hi"


def test_uploads_chunked(fake_openai, tmp_path: Path):
    line = json.dumps({"messages": [{"role": "user", "content": "x" * 1000}]}) + "\n"
    path = tmp_path / "big.jsonl"
    path.write_bytes(line.encode() * 3000)  # ~3 MB
    client = fake_openai.client()
    done = client.uploads.upload_file_chunked(
        file=path, mime_type="text/jsonl", purpose="fine-tune", part_size=1024 * 1024
    )
    assert done.status == "completed"
    assert done.file.bytes == path.stat().st_size
    assert fake_openai.count("POST", r"/uploads/[^/]+/parts") == 3
    assert client.files.content(done.file.id).content == path.read_bytes()


def test_upload_with_wrong_byte_count_fails(fake_openai):
    client = fake_openai.client()
    up = client.uploads.create(
        bytes=10, filename="t.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    part = client.uploads.parts.create(up.id, data=b"12345")
    with pytest.raises(openai.BadRequestError, match="does not match"):
        client.uploads.complete(up.id, part_ids=[part.id])
    assert client.uploads.cancel(up.id).status == "cancelled"


def test_jobs_list_metadata_filter_and_pages(fake_openai):
    client = fake_openai.client()
    file_id = upload(client)
    ids = [
        client.fine_tuning.jobs.create(
            model=BASE, training_file=file_id, metadata={"team": team}
        ).id
        for team in ("a", "b", "a")
    ]
    team_a = [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "a"})]
    assert team_a == [ids[2], ids[0]]  # newest first
    assert [j.id for j in client.fine_tuning.jobs.list(limit=1)] == ids[::-1]


def test_cancel_pause_resume(fake_openai):
    client = fake_openai.client()
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    paused = client.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"
    assert client.fine_tuning.jobs.resume(job.id).status == "validating_files"
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError, match="already completed"):
        client.fine_tuning.jobs.cancel(job.id)


def test_fail_next_job(fake_openai):
    client = fake_openai.client()
    fake_openai.fail_next_job()
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    job, _ = wait(client, job.id)
    assert job.status == "failed"
    assert job.error.code == "invalid_training_file"
    assert "line 3" in job.error.message
    assert job.fine_tuned_model is None


def test_fail_job_and_set_state(fake_openai):
    fake_openai.auto_advance = 0
    client = fake_openai.client()
    first = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    fake_openai.fail_job(first.id, code="quota_exceeded", message="Out of quota")
    fake_openai.advance(5)
    failed = client.fine_tuning.jobs.retrieve(first.id)
    assert (failed.status, failed.error.code) == ("failed", "quota_exceeded")

    second = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    assert client.fine_tuning.jobs.retrieve(second.id).status == "validating_files"
    fake_openai.set_state(second.id, "running")
    assert client.fine_tuning.jobs.retrieve(second.id).status == "running"
    fake_openai.set_state(second.id, "succeeded")
    assert client.fine_tuning.jobs.retrieve(second.id).fine_tuned_model.startswith("ft:")


def test_too_few_examples_fail_validation(fake_openai):
    client = fake_openai.client()
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client, jsonl(3)))
    job, _ = wait(client, job.id)
    assert (job.status, job.error.code) == ("failed", "invalid_n_examples")


def test_create_errors(fake_openai):
    client = fake_openai.client()
    file_id = upload(client)
    cases = [
        ({"training_file": "file-nope"}, "invalid_training_file"),
        ({"model": "gpt-9"}, "model_not_available"),
        ({"suffix": "x" * 65}, "invalid_suffix"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "invalid_metadata"),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 99}}}},
            "invalid_hyperparameters",
        ),
    ]
    for override, code in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(**{"model": BASE, "training_file": file_id, **override})
        assert err.value.code == code, override
    assert fake_openai.jobs == {}


def test_invalid_jsonl_and_slow_processing():
    fake = FakeOpenAI(file_processing_seconds=30)
    with FakeOpenAIServer(fake):
        client = fake.client()
        bad = client.files.create(file=("t.jsonl", b'{"a": 1}\n[1, 2]\n'), purpose="fine-tune")
        assert bad.status == "uploaded"
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model=BASE, training_file=bad.id)
        assert err.value.code == "file_not_ready"
        fake.advance(30)
        bad = client.files.retrieve(bad.id)
        assert bad.status == "error" and "Line 2" in bad.status_details
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model=BASE, training_file=bad.id)
        assert err.value.code == "invalid_training_file"
        assert client.files.delete(bad.id).deleted


def test_auth_is_checked():
    fake = FakeOpenAI(api_keys={"sk-good"})
    with FakeOpenAIServer(fake) as server:
        assert httpx.get(f"{server.openai_base_url}/files").status_code == 401
        with pytest.raises(openai.AuthenticationError):
            fake.client(api_key="sk-bad").files.list()
        assert fake.client(api_key="sk-good").files.list().data == []


def test_async_client(fake_openai):
    async def run() -> str:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=fake_openai.server.openai_base_url)
        file = await client.files.create(file=("t.jsonl", jsonl()), purpose="fine-tune")
        job = await client.fine_tuning.jobs.create(model=BASE, training_file=file.id)
        await client.close()
        return job.status

    assert asyncio.run(run()) == "validating_files"


# --- faults -----------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after(fake_openai):
    fake_openai.inject("GET", "/files", "429", retry_after=0.01)
    assert fake_openai.client(max_retries=2).files.list().data == []
    assert fake_openai.count("GET", "/files") == 2
    assert [r.status for r in fake_openai.requests] == [429, 200]

    fake_openai.inject("GET", "/files", 429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as err:
        fake_openai.client(max_retries=0).files.list()
    assert err.value.response.headers["retry-after"] == "3"
    assert err.value.response.headers["retry-after-ms"] == "3000"
    assert err.value.code == "rate_limit_exceeded"


def test_5xx_faults(fake_openai):
    client = fake_openai.client(max_retries=0)
    fake_openai.inject("GET", "/files", "500")
    with pytest.raises(openai.InternalServerError):
        client.files.list()
    fake_openai.inject("*", r"/fi.*", "503", times=2)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as err:
            client.files.list()
        assert err.value.status_code == 503
    assert client.files.list().data == []  # faults used up


def test_drop_and_slow(fake_openai):
    fake_openai.inject("GET", "/files", "drop")
    with pytest.raises(openai.APIConnectionError):
        fake_openai.client(max_retries=0).files.list()
    assert fake_openai.requests[-1].status == 0

    fake_openai.inject("GET", "/files", "slow", delay=0.5)
    with pytest.raises(openai.APITimeoutError):
        fake_openai.client(max_retries=0, timeout=0.1).files.list()
    fake_openai.inject("GET", "/files", "slow", delay=0.05)
    assert fake_openai.client(max_retries=0).files.list().data == []


def test_fault_after_the_work(fake_openai):
    client = fake_openai.client(max_retries=0)
    file_id = upload(client)
    fake_openai.inject("POST", "/fine_tuning/jobs", "500", after=True)
    with pytest.raises(openai.InternalServerError):
        client.fine_tuning.jobs.create(model=BASE, training_file=file_id, metadata={"k": "v"})
    assert len(fake_openai.jobs) == 1  # the create happened; the client only saw a 500
    assert [j.metadata for j in client.fine_tuning.jobs.list(metadata={"k": "v"})] == [{"k": "v"}]


# --- Azure OpenAI -----------------------------------------------------------------------------


def test_azure_lifecycle_deploy_and_chat(fake_azure_openai):
    fake = fake_azure_openai
    client = fake.client()
    file_id = upload(client)
    job = client.fine_tuning.jobs.create(model=BASE, training_file=file_id, suffix="faq")
    job, seen = wait(client, job.id)
    assert "pending" in seen and "queued" not in seen
    assert job.status == "succeeded"
    assert job.fine_tuned_model.startswith(f"{BASE}.ft-")
    assert all(r.query.get("api-version") == fake.api_version for r in fake.requests)

    url, headers = fake.deployment_url("faq-bot"), fake.management_headers()
    body = {
        "sku": {"name": "standard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": job.fine_tuned_model, "version": "1"}},
    }
    created = httpx.put(url, json=body, headers=headers)
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Creating"
    assert httpx.get(url, headers=headers).json()["properties"]["provisioningState"] == "Creating"

    chat = {"model": "faq-bot", "messages": [{"role": "user", "content": "hello"}]}
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(**chat)
    assert err.value.code == "DeploymentNotFound"

    fake.advance(60)
    assert httpx.get(url, headers=headers).json()["properties"]["provisioningState"] == "Succeeded"
    listed = httpx.get(url.replace("/deployments/faq-bot", "/deployments"), headers=headers)
    assert [d["name"] for d in listed.json()["value"]] == ["faq-bot"]
    reply = client.chat.completions.create(**chat)
    assert reply.choices[0].message.content == "Echo: hello"
    assert fake.requests[-1].path == "/deployments/faq-bot/chat/completions"

    with pytest.raises(openai.BadRequestError, match="deployed"):
        client.models.delete(job.fine_tuned_model)
    assert httpx.delete(url, headers=headers).status_code == 202
    assert httpx.delete(url, headers=headers).status_code == 204
    gone = httpx.get(url, headers=headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "DeploymentNotFound"
    assert client.models.delete(job.fine_tuned_model).deleted

    log = repr(fake.requests)
    assert fake.api_key not in log and fake.management_token not in log
    assert "<redacted>" in log


def test_azure_rules_and_errors(fake_azure_openai):
    fake = fake_azure_openai
    client = fake.client()
    file_id = upload(client)
    for suffix in ("x" * 19, "a.b"):
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model=BASE, training_file=file_id, suffix=suffix)
        assert err.value.code == "invalid_suffix"

    url = fake.server.azure_endpoint + "/openai/fine_tuning/jobs"
    missing = httpx.get(url, headers={"api-key": fake.api_key})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    assert httpx.get(url, params={"api-version": fake.api_version}).status_code == 401

    arm = fake.deployment_url("x")
    assert httpx.get(arm).status_code == 401
    assert httpx.get(arm.split("?")[0], headers=fake.management_headers()).status_code == 400


def test_azure_v1_surface(fake_azure_openai):
    client = fake_azure_openai.v1_client()
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    assert client.fine_tuning.jobs.retrieve(job.id).status == "pending"
    assert fake_azure_openai.requests[-1].surface == "azure-v1"
    assert "api-version" not in fake_azure_openai.requests[-1].query


def test_azure_fixture_env(fake_azure_openai, monkeypatch):
    import os

    assert os.environ["AZURE_OPENAI_ENDPOINT"] == fake_azure_openai.server.azure_endpoint
    assert os.environ["FINETUNE_HUB_AZURE_MANAGEMENT_URL"] == fake_azure_openai.server.url
    assert openai.AzureOpenAI().files.list().data == []  # everything from the environment


# --- the package itself -----------------------------------------------------------------------


def test_clock_and_server_lifecycle():
    clock = FakeClock(start=0)
    fake = FakeAzureOpenAI(clock=clock, durations={"running": 5}, auto_advance=0)
    assert fake.durations["running"] == 5
    with pytest.raises(RuntimeError, match="not being served"):
        fake.client()
    with pytest.raises(ValueError, match="unknown phase"):
        FakeOpenAI(durations={"training": 1})
    with pytest.raises(ValueError, match="fault kind"):
        fake.inject("GET", "/files", "418")
    server = FakeOpenAIServer(fake).start()
    url = server.url
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v1/files")


def test_importing_the_fake_imports_no_sdk():
    code = (
        "import sys, finetune_hub; before = set(sys.modules); "
        "import finetune_hub.testing as t; t.FakeOpenAI, t.FakeClock; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "bad = new - set(sys.stdlib_module_names) - {'finetune_hub'}; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- retired models ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-3.5-turbo-0125", "babbage-002", "o4-mini-2025-04-16"])
def test_retired_models_are_refused_as_openai_does(fake_openai, model):
    """A shut-down base model: fine-tuning answers 400 model_not_available, chat 404
    model_not_found ("has been deprecated"), in OpenAI's error shape."""
    client = fake_openai.client()
    file_id = upload(client)
    with pytest.raises(openai.BadRequestError) as tuned:
        client.fine_tuning.jobs.create(model=model, training_file=file_id)
    error = tuned.value.body
    assert tuned.value.status_code == 400 and error["code"] == "model_not_available"
    assert error["param"] == "model" and error["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as chatted:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert chatted.value.body["code"] == "model_not_found"
    assert "has been deprecated" in chatted.value.body["message"]
    assert model not in {m.id for m in client.models.list()}
    assert fake_openai.jobs == {}


def test_retired_models_can_be_accepted_again_and_azure_keeps_its_own_list(fake_azure_openai):
    assert FakeOpenAI(retired={}).is_tunable("gpt-3.5-turbo-0125")
    assert FakeOpenAI().retired["gpt-3.5-turbo-0125"] == "2026-10-23"
    # Azure OpenAI still tunes o4-mini (its rules end training in 2027) and tunes Foundry's
    # open models through the same API
    assert fake_azure_openai.is_tunable("o4-mini-2025-04-16")
    assert fake_azure_openai.is_tunable("gpt-oss-20b")
    assert not FakeOpenAI().is_tunable("gpt-oss-20b")
