"""TuningJob end to end on the real openai SDK, over HTTP, against finetune_hub.testing's fake."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.status import JobStatus

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
MODEL = "gpt-4.1-mini-2025-04-14"


@pytest.fixture
def store(tmp_path):
    return fh.JobStore(tmp_path / "home")


def make_job(store, **kw) -> fh.TuningJob:
    args = {"provider": "openai", "base_model": MODEL, "training_file": SAMPLES / "chat_gozaru.jsonl", "store": store}
    args.update(kw)
    job = fh.TuningJob(**args)
    job.sleep = lambda seconds: None  # the fake's clock moves per poll; no real waiting
    return job


def test_full_lifecycle(fake_openai, store):
    job = make_job(store, hyperparameters={"epochs": 3, "seed": 7}, suffix="gozaru")
    assert job.status is JobStatus.PENDING
    job.submit()
    assert job.provider_job_id.startswith("ftjob-")
    created = [r for r in fake_openai.requests if r.method == "POST" and r.path == "/fine_tuning/jobs"][0].json
    assert created["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    assert created["seed"] == 7 and created["suffix"] == "gozaru"
    assert created["metadata"] == {"finetune_hub_job_id": job.id}

    model = job.wait(poll_interval=0.01, progress=False)
    assert model.id.startswith(f"ft:{MODEL}:") and job.status is JobStatus.SUCCEEDED
    seen = [t.status for t in store.transitions(job.id)]
    assert seen[0] is JobStatus.PENDING and seen[-1] is JobStatus.SUCCEEDED
    assert {JobStatus.VALIDATING, JobStatus.QUEUED, JobStatus.RUNNING} <= set(seen)

    events = job.events()
    assert len(events) >= 4 and events == sorted(events, key=lambda e: e.created_at)
    assert store.events(job.id) == events  # persisted
    assert job.events() == events  # no duplicates on a second fetch

    metrics = job.metrics()
    assert metrics and metrics[0].step == 1 and metrics[-1].train_loss is not None
    checkpoints = job.checkpoints()
    assert checkpoints and checkpoints == sorted(checkpoints, key=lambda c: c.step)
    assert all(c.model.startswith("ft:") for c in checkpoints) and "train_loss" in checkpoints[-1].metrics
    assert model.chat([{"role": "user", "content": "空は?"}]) == "Echo: 空は?"
    model.delete()
    assert fake_openai.count("DELETE", "/models/.*") == 1
    assert [r.id for r in store.list(provider="openai", status="succeeded")] == [job.id]


def test_submit_is_idempotent(fake_openai, store):
    job = make_job(store)
    job.submit()
    job.submit()
    again = fh.TuningJob.attach(job.id, store=store)
    again.submit()
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 1
    assert fake_openai.count("POST", "/files") == 1


def test_bad_data_uploads_and_submits_nothing(fake_openai, store, tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = (SAMPLES / "chat_gozaru.jsonl").read_text(encoding="utf-8").splitlines()
    lines[4] = '{"messages": [}'
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = make_job(store, training_file=bad, hyperparameters={"lora_rank": 8})
    with pytest.raises(fh.ValidationError) as caught:
        job.submit()
    codes = {(i.line, i.code) for i in caught.value.report.errors}
    assert (5, "invalid_json") in codes and (None, "unknown_hyperparameter") in codes
    assert fake_openai.requests == []
    assert store.get(job.id) is None


def test_failure_surfaces_the_providers_message(fake_openai, store):
    fake_openai.fail_next_job(code="invalid_training_file", message="Training file line 3: bad role")
    job = make_job(store)
    job.submit()
    with pytest.raises(fh.JobFailed) as caught:
        job.wait(poll_interval=0.01, progress=False)
    assert caught.value.code == "invalid_training_file" and "line 3" in caught.value.provider_message
    assert job.status is JobStatus.FAILED and "line 3" in store.get(job.id).error


def test_cancel(fake_openai, store):
    job = make_job(store)
    job.submit()
    assert job.cancel() is JobStatus.CANCELLED
    with pytest.raises(fh.JobFailed, match="cancelled"):
        job.wait(poll_interval=0.01, progress=False)


def test_non_terminal_states_never_end_a_wait(fake_openai, store):
    fake_openai.auto_advance = 0
    job = make_job(store)
    job.submit()
    fake_openai.set_state(job.provider_job_id, "paused")
    job.sleep = __import__("time").sleep
    with pytest.raises(fh.WaitTimeout):
        job.wait(timeout=0.2, poll_interval=0.02, progress=False)
    assert job.status is JobStatus.PAUSED


FAULTS = [
    ("POST", "/files", "429"),
    ("POST", "/files", "500"),
    ("POST", "/files", "drop"),
    ("GET", "/fine_tuning/jobs", "429"),
    ("GET", "/fine_tuning/jobs", "500"),
    ("POST", "/fine_tuning/jobs", "429"),
    ("POST", "/fine_tuning/jobs", "500"),
    ("POST", "/fine_tuning/jobs", "503"),
    ("POST", "/fine_tuning/jobs", "drop"),
    ("POST", "/fine_tuning/jobs", "slow"),
    ("GET", r"/fine_tuning/jobs/[^/]+", "429"),
    ("GET", r"/fine_tuning/jobs/[^/]+", "500"),
    ("GET", r"/fine_tuning/jobs/[^/]+", "drop"),
    ("GET", r"/fine_tuning/jobs/[^/]+/events", "500"),
]


@pytest.mark.parametrize(("method", "route", "kind"), FAULTS)
def test_each_fault_still_makes_exactly_one_job_and_wait_returns(fake_openai, store, method, route, kind):
    fake_openai.inject(method, route, kind, times=2, retry_after=1 if kind == "429" else None, delay=0.2)
    job = make_job(store)
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    job.events()
    assert len(fake_openai.jobs) == 1 and model.id


@pytest.mark.parametrize("kind", ["500", "drop"])
def test_a_fault_after_the_server_created_the_job_makes_no_second_job(fake_openai, store, kind):
    fake_openai.inject("POST", "/fine_tuning/jobs", kind, after=True)
    job = make_job(store)
    job.submit()
    assert len(fake_openai.jobs) == 1
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 1
    assert job.provider_job_id == next(iter(fake_openai.jobs))
    assert job.wait(poll_interval=0.01, progress=False).id


def test_retry_after_is_honoured(fake_openai, store):
    fake_openai.inject("POST", "/fine_tuning/jobs", "429", retry_after=3)
    job = make_job(store)
    slept: list[float] = []
    job.sleep = slept.append
    job.submit()
    assert 3.0 in slept


def test_async_twin_and_wait_all(fake_openai, store):
    import asyncio

    jobs = [make_job(store, suffix=f"s{i}") for i in range(3)]
    for job in jobs:
        job.submit()
    results = fh.wait_all(jobs, poll_interval=0.01, concurrency=2)
    assert all(isinstance(r, fh.TunedModel) for r in results)
    one = make_job(store)
    one.submit()
    model = asyncio.run(one.wait_async(poll_interval=0.01))
    assert model.id.startswith("ft:")


def test_job_file_yaml_and_toml(fake_openai, store, tmp_path):
    (tmp_path / "train.jsonl").write_bytes((SAMPLES / "chat_gozaru.jsonl").read_bytes())
    (tmp_path / "job.yaml").write_text(f"provider: openai\nbase_model: {MODEL}\ntraining_file: train.jsonl\nhyperparameters: {{epochs: 2}}\n")
    (tmp_path / "job.toml").write_text(f'provider = "openai"\nbase_model = "{MODEL}"\ntraining_file = "train.jsonl"\n[hyperparameters]\nepochs = 2\n')
    for name in ("job.yaml", "job.toml"):
        job = fh.TuningJob.from_file(tmp_path / name, store=store)
        assert job.spec.training_file == str(tmp_path / "train.jsonl") and job.spec.hyperparameters == {"epochs": 2}
    (tmp_path / "bad.yaml").write_text("provider: openai\nbase_mdl: x\n")
    with pytest.raises(fh.FinetuneHubError, match="bad.yaml"):
        fh.TuningJob.from_file(tmp_path / "bad.yaml")


def test_unknown_state_becomes_unknown_not_a_crash(fake_openai, store, caplog):
    fake_openai.auto_advance = 0
    job = make_job(store)
    job.submit()
    fake_openai.set_state(job.provider_job_id, "teleporting", allow_unknown=True)
    with caplog.at_level(logging.WARNING, logger="finetune_hub"):
        assert job.refresh() is JobStatus.UNKNOWN
    assert job.raw_status == "teleporting" and "teleporting" in caplog.text


def test_no_api_key_in_store_logs_or_reprs(fake_openai, store, tmp_path, caplog, monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.delenv("OPENAI_API_KEY")
    fake_openai.api_keys = {secret}
    with caplog.at_level(logging.DEBUG):
        job = make_job(store, options={"api_key": secret, "base_url": fake_openai.server.openai_base_url})
        job.submit()
        model = job.wait(poll_interval=0.01, progress=False)
        texts = [repr(job), repr(model), repr(store), repr(job.record), repr(job.spec.model_copy(update={"options": {}}))]
    assert store.get(job.id).credentials == {"api_key": "explicit"}
    for path in Path(tmp_path / "home").iterdir():
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in caplog.text
    assert all(secret not in t for t in texts)


def test_attach_after_the_waiting_process_is_killed(fake_openai, store, tmp_path):
    fake_openai.auto_advance = 0
    script = textwrap.dedent(
        f"""
        import sys, finetune_hub as fh
        job = fh.TuningJob(provider="openai", base_model="{MODEL}", training_file={str(SAMPLES / "chat_gozaru.jsonl")!r},
                           store=fh.JobStore({str(tmp_path / "home")!r}))
        job.submit()
        print(job.id, flush=True)
        job.wait(poll_interval=0.05, progress=False)
        """
    )
    env = {**__import__("os").environ}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        job_id = proc.stdout.readline().strip()
        assert job_id.startswith("ftj_")
        deadline = __import__("time").monotonic() + 20
        while fake_openai.count("GET", r"/fine_tuning/jobs/[^/]+") < 2 and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode != 0  # it was killed while waiting
    fake_openai.advance(10_000)
    job = fh.TuningJob.attach(job_id, store=store)
    job.sleep = lambda s: None
    model = job.wait(poll_interval=0.01, progress=False)
    assert model.id.startswith("ft:") and len(fake_openai.jobs) == 1


def test_azure_openai_lifecycle_with_deployment(fake_azure_openai, store, monkeypatch):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub-1")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg-1")
    monkeypatch.setenv("AZURE_OPENAI_ACCOUNT", "acct-1")
    job = fh.TuningJob(
        provider="azure-openai",
        base_model=MODEL,
        training_file=SAMPLES / "chat_gozaru.jsonl",
        suffix="gozaru-v1",
        options={"management_token": fake_azure_openai.management_token},
        store=store,
    )
    job.sleep = lambda s: None
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    assert ".ft-" in model.id
    raws = {t.raw_status for t in store.transitions(job.id)}
    assert "pending" in raws  # Azure's queued state, mapped to QUEUED
    assert JobStatus.QUEUED in {t.status for t in store.transitions(job.id) if t.raw_status == "pending"}

    with pytest.raises(fh.CostConfirmationRequired, match=r"\$1\.70 per hour"):
        model.deploy()
    assert fake_azure_openai.count("PUT", ".*") == 0
    deployment = model.deploy(confirm_cost=True)
    assert deployment.wait_ready(poll_interval=0.01) is fh.DeploymentStatus.READY
    assert deployment.info.raw_status == "Succeeded" and deployment.kind == "azure-deployment"
    assert deployment.chat([{"role": "user", "content": "一週間は?"}]) == "Echo: 一週間は?"
    deployment.delete()
    deployment.delete()  # idempotent
    assert store.list_deployments(active_only=True) == []
    assert store.get(job.id).options.get("endpoint") and "management_token" not in json.dumps(store.get(job.id).options)


def test_azure_suffix_rule_refuses_before_upload(fake_azure_openai, store):
    job = fh.TuningJob(provider="azure-openai", base_model=MODEL, training_file=SAMPLES / "chat_gozaru.jsonl", suffix="gozaru.v1", store=store)
    with pytest.raises(fh.ValidationError, match="suffix"):
        job.submit()
    assert fake_azure_openai.requests == []


def test_examples_run_against_the_fakes(fake_openai, store, tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    try:
        import openai_legacy_to_chat

        model_id = openai_legacy_to_chat.main(tmp_path, store=store, poll_interval=0.01)
    finally:
        sys.path.pop(0)
    assert model_id.startswith("ft:") and len(fake_openai.jobs) == 1


def test_azure_example_runs_against_the_fake(fake_azure_openai, store, monkeypatch):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub-1")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg-1")
    monkeypatch.setenv("AZURE_OPENAI_ACCOUNT", "acct-1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    try:
        import azure_openai_gozaru

        model_id = azure_openai_gozaru.main(store=store, options={"management_token": fake_azure_openai.management_token}, poll_interval=0.01)
    finally:
        sys.path.pop(0)
    assert ".ft-" in model_id
    assert fake_azure_openai.count("DELETE", ".*deployments.*") == 1 and store.list_deployments(active_only=True) == []


def test_wait_all_works_inside_a_running_event_loop(fake_openai, store):
    import asyncio

    jobs = [make_job(store, suffix=f"n{i}") for i in range(2)]
    for job in jobs:
        job.submit()

    async def notebook_cell():
        return fh.wait_all(jobs, poll_interval=0.01)

    results = asyncio.run(notebook_cell())
    assert all(isinstance(r, fh.TunedModel) for r in results)


def test_job_file_mappings_merge_with_overrides(tmp_path, store):
    (tmp_path / "train.jsonl").write_bytes((SAMPLES / "chat_gozaru.jsonl").read_bytes())
    (tmp_path / "job.yaml").write_text(f"provider: openai\nbase_model: {MODEL}\ntraining_file: train.jsonl\nhyperparameters: {{epochs: 3, batch_size: 4}}\n")
    job = fh.TuningJob.from_file(tmp_path / "job.yaml", store=store, hyperparameters={"epochs": 2})
    assert job.spec.hyperparameters == {"epochs": 2, "batch_size": 4}


def test_openai_models_need_no_deployment_and_say_so_before_any_cost_talk(fake_openai, store):
    job = make_job(store)
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    with pytest.raises(fh.UnsupportedOperation, match=r"OpenAI needs no deployment.*model\.chat"):
        model.deploy()


def test_a_known_zero_rate_is_stated_as_zero(fake_azure_openai, store):
    job = fh.TuningJob(provider="azure-openai", base_model=MODEL, training_file=SAMPLES / "chat_gozaru.jsonl", store=store)
    job.sleep = lambda s: None
    job.submit()
    model = job.wait(poll_interval=0.01, progress=False)
    assert model.hourly_cost(sku="developertier") == 0.0
    with pytest.raises(fh.CostConfirmationRequired, match=r"\$0\.00 per hour"):
        model.deploy(sku="developertier")
