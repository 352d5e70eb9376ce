"""Crash and resume: a process killed with SIGKILL at each step of submit and of deploy, and a
new process that attaches and reaches the same end state, with no second job or deployment.

The fake (OpenAI, Azure OpenAI) serves real sockets from this test process; a child process
runs `submit()` or `deploy()` on it and kills itself (`os.kill(os.getpid(), SIGKILL)`) at the
chosen step, through a patch inside the child. "Sent" steps kill the child while the create is
on the wire: the fake answers it late (a slow fault), so the server makes the job or the
deployment after the child is dead, the hardest case for a look-up. This process then plays the
new one: `TuningJob.attach(job_id).submit()` or the same deploy again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh
from finetune_hub.providers.openai import JOB_ID_KEY
from finetune_hub.store import new_job_id

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
MODEL = "gpt-4.1-mini-2025-04-14"
LATE = 1.5  # seconds the fake takes over a create in the "sent" steps (the child dies first)

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys, threading

    import finetune_hub as fh
    from finetune_hub.providers.azure_openai_deploy import AzureOpenAIDeployer
    from finetune_hub.providers.openai import OpenAIBackend
    from finetune_hub.store import JobStore

    args = json.loads(sys.argv[1])


    def die():
        os.kill(os.getpid(), signal.SIGKILL)


    def after(cls, name):  # the call completes, then the process dies
        original = getattr(cls, name)

        def wrapper(*a, **k):
            original(*a, **k)
            die()

        setattr(cls, name, wrapper)


    def while_sent(cls, name):  # the process dies while the call waits for its answer
        original = getattr(cls, name)

        def wrapper(*a, **k):
            threading.Timer(0.3, die).start()
            return original(*a, **k)

        setattr(cls, name, wrapper)


    STEPS = {
        "after-record": lambda: after(JobStore, "create"),
        "after-upload": lambda: after(OpenAIBackend, "upload"),
        "create-sent": lambda: while_sent(OpenAIBackend, "create"),
        "create-answered": lambda: after(OpenAIBackend, "create"),
        "deploy-after-record": lambda: after(JobStore, "save_deployment"),
        "deploy-sent": lambda: while_sent(AzureOpenAIDeployer, "create"),
        "deploy-answered": lambda: after(AzureOpenAIDeployer, "create"),
    }
    STEPS[args["step"]]()
    store = JobStore(args["store"])
    if args["action"] == "submit":
        job = fh.TuningJob(
            provider=args["provider"], base_model=args["model"],
            training_file=args["training_file"], options=args["options"], store=store,
            job_id=args["job_id"],
        )
        job.submit()
    else:
        job = fh.TuningJob.attach(args["job_id"], store=store, options=args["options"])
        job.result.deploy(confirm_cost=True)
    print("the step was never reached")
    sys.exit(3)
    """
)


def run_child(tmp_path: Path, **args: Any) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr[-2000:])


class Clock:
    """Virtual sleeps; each lets the fake finish what it is still answering (the late create
    of a dead process), as the real seconds of a look-up window would."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.now = 1_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        deadline = time.monotonic() + 10 * LATE
        while any(r.status is None for r in list(self.fake.requests)):
            assert time.monotonic() < deadline, "the fake never finished a request"
            time.sleep(0.01)


def attach(job_id: str, store: fh.JobStore, fake: Any, options: dict[str, Any]) -> fh.TuningJob:
    job = fh.TuningJob.attach(job_id, store=store, options=options)
    clock = Clock(fake)
    job.sleep, job.clock = clock.sleep, lambda: clock.now
    return job


def jobs_for(fake: Any, job_id: str) -> int:
    return sum((j.metadata or {}).get(JOB_ID_KEY) == job_id for j in fake.jobs.values())


SUBMIT_STEPS = ("after-record", "after-upload", "create-sent", "create-answered")


@pytest.mark.parametrize("step", SUBMIT_STEPS)
def test_a_submit_killed_at_each_step_resumes_to_one_job(fake_openai, tmp_path, step):
    store_path = tmp_path / "store"
    job_id = new_job_id()
    if step == "create-sent":
        fake_openai.inject("POST", "/fine_tuning/jobs", "slow", delay=LATE)
    run_child(
        tmp_path,
        step=step,
        action="submit",
        provider="openai",
        model=MODEL,
        training_file=str(SAMPLES / "chat_gozaru.jsonl"),
        options={},
        store=str(store_path),
        job_id=job_id,
    )
    store = fh.JobStore(store_path)
    killed = store.require(job_id)  # what the dead process left
    assert killed.provider_job_id is None and killed.status is fh.JobStatus.PENDING
    recorded_upload = step.startswith("create")  # a create comes after the upload is recorded
    assert ("training" in killed.data_refs) == recorded_upload
    assert ("create_attempted_at" in killed.extra) == step.startswith("create")
    creates = 1 if step.startswith("create") else 0
    assert fake_openai.count("POST", "/fine_tuning/jobs") == creates  # on the wire before death
    if step == "create-sent":  # the fake is still making it: a look-up now finds nothing
        assert jobs_for(fake_openai, job_id) == 0
    uploads = fake_openai.count("POST", "/files")
    assert uploads == (0 if step == "after-record" else 1)

    job = attach(job_id, store, fake_openai, {})
    job.submit()
    assert jobs_for(fake_openai, job_id) == 1, "one provider job, whatever the step"
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 1, "no second create was sent"
    rec = store.require(job_id)
    assert rec.provider_job_id and "create_attempted_at" not in rec.extra and rec.error is None
    model = job.wait(poll_interval=0.01, progress=False)  # the same end state as a clean run
    assert job.status is fh.JobStatus.SUCCEEDED and model.id.startswith("ft:")
    attach(job_id, store, fake_openai, {}).submit()  # and again: nothing new
    assert jobs_for(fake_openai, job_id) == 1


DEPLOY_STEPS = ("deploy-after-record", "deploy-sent", "deploy-answered")


@pytest.mark.parametrize("step", DEPLOY_STEPS)
def test_a_deploy_killed_at_each_step_resumes_to_one_deployment(fake_azure_openai, tmp_path, step):
    fake = fake_azure_openai
    options = {
        "management_token": fake.management_token,
        "subscription_id": fake.subscription_id,
        "resource_group": fake.resource_group,
        "account_name": fake.account,
    }
    store_path = tmp_path / "store"
    store = fh.JobStore(store_path)
    first = fh.TuningJob(
        provider="azure-openai",
        base_model=MODEL,
        training_file=SAMPLES / "chat_gozaru.jsonl",
        options=options,
        store=store,
    )
    first.sleep = lambda s: None
    first.submit()
    first.wait(poll_interval=0.01, progress=False)
    if step == "deploy-sent":
        fake.inject("PUT", r".*/deployments/[^/]+", "slow", delay=LATE)
    run_child(
        tmp_path,
        step=step,
        action="deploy",
        options=options,
        store=str(store_path),
        job_id=first.id,
    )

    (killed,) = store.list_deployments(active_only=False)
    assert killed.deleted_at is None
    assert ("create_attempted_at" in killed.extra) == (step != "deploy-after-record")
    sent = 0 if step == "deploy-after-record" else 1
    assert fake.count("PUT", r".*/deployments/[^/]+") == sent  # on the wire before death
    if step == "deploy-sent":  # the fake is still making it: a look-up now finds nothing
        assert fake.deployments == {}

    job = attach(first.id, store, fake, options)
    deployment = job.result.deploy(confirm_cost=True)
    assert [key[-1] for key in fake.deployments] == [deployment.name], "one deployment"
    assert fake.count("PUT", r".*/deployments/[^/]+") == 1, "no second create was sent"
    (rec,) = store.list_deployments()
    assert rec.name == deployment.name and "create_attempted_at" not in rec.extra
    assert deployment.wait_ready(poll_interval=0.01) is fh.DeploymentStatus.READY
    deployment.delete()
    assert fake.deployments == {} and store.list_deployments() == []
