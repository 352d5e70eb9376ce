"""One rank of a multi-process local run crashes: the run is failed, not cancelled.

When a rank crashes, torchrun sends SIGTERM to the others. Rank 0 stops on it (a checkpoint is
kept), but that SIGTERM is no cancel: the run must end `failed`, naming the crashed rank, so that
`resume()` takes it up again. A cancel the user asked for (the flag file that `job.cancel()`
writes, or SIGTERM to the worker, which writes the flag) still ends `cancelled`.

Real processes, no model: the worker (`worker.run`, which calls `supervise()`) runs in a child
process with its output in the run's `worker.log`, as the backend starts it; torchrun launches
`rank.py` in place of the training module. `rank.py` runs the real rank code (`worker.run(path,
rank=True)`: its SIGTERM handler, its status writes) with `Trainer` replaced by `FakeTrainer`,
which keeps the real trainer's cancel rule (rank 0 polls `run.cancel_requested()` between
batches, stops, keeps a checkpoint, returns "cancelled") without a model. One test replaces rank
0 entirely with a script that records `cancelled` on SIGTERM (the status write of rank 0's
cancel, copied from worker.py), to check the supervisor's rule on its own.

The end-to-end test trains the tiny model in 2 processes (about 25 s on 2 CPU cores, resume
included) with rank 1 crashing at step 3 (a `sitecustomize` on PYTHONPATH wraps its forward).
The real rank 0 is then usually inside a collective and fails there ("Connection closed by
peer") rather than stopping on torchrun's SIGTERM; the supervisor names rank 1 either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from finetune_hub.providers.local.runner import RunDir, pid_alive, write_json_atomic

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun runs on Linux here"),
]

RANK_SCRIPT = '''
import os, signal, sys, time
from pathlib import Path

from finetune_hub.providers.local import train, worker
from finetune_hub.providers.local.distributed import Dist
from finetune_hub.providers.local.runner import QuietRun, RunDir, now_iso

RANK = int(os.environ["RANK"])
ROLE = os.environ[f"FH_TEST_RANK{RANK}"]
RUN = Path(sys.argv[1])
READY = RUN.parent / "rank0-ready"


def wait_for(path, what):
    end = time.monotonic() + 60
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"no {what} after 60 s")
        time.sleep(0.02)


class FakeConfig:
    @classmethod
    def from_job(cls, job):
        return cls()


class FakeTrainer:
    """Trainer's cancel handling without a model."""

    def __init__(self, run, cfg):
        self.dist = Dist.from_env()
        self.run = run if self.dist.main else QuietRun(run.path)

    def setup(self):
        pass

    def fit(self):
        if ROLE == "train":  # rank 0: batches until a stop, then a checkpoint, as Trainer.fit
            READY.write_text("x")
            end = time.monotonic() + 60
            while not self.run.cancel_requested():
                if time.monotonic() > end:
                    raise TimeoutError("rank 0 was never stopped")
                time.sleep(0.02)
            folder = RUN / "checkpoint-1"
            folder.mkdir()
            (folder / "adapter_model.safetensors").write_bytes(b"")
            (folder / "trainer_state.json").write_text('{"step": 1}')
            return "cancelled"
        if ROLE == "crash":  # rank 1 dies while rank 0 trains
            wait_for(READY, "rank 0")
            raise RuntimeError("injected crash in rank 1")
        (RUN.parent / "rank1-ready").write_text("x")  # in fit: it has not seen a cancel yet
        if ROLE == "crash-on-cancel":  # rank 1 dies as the user's cancel comes
            wait_for(RUN / "cancel", "cancel flag")
            raise RuntimeError("injected crash in rank 1 during the cancel")
        if ROLE == "follow":  # rank 1 stops with rank 0 (the real one learns it from a broadcast)
            wait_for(RUN / "cancel", "cancel flag")
            return "cancelled"
        raise AssertionError(ROLE)


if ROLE == "record-cancelled":
    # Not the real rank code: a rank 0 that records `cancelled` when torchrun stops it, with
    # the status write of worker.run's cancel branch, and no cancel flag.
    run_dir = RunDir(RUN)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    READY.write_text("x")
    end = time.monotonic() + 60
    while not stop and time.monotonic() < end:
        time.sleep(0.02)
    run_dir.add_event("cancelled; the last checkpoint is kept", type="state")
    run_dir.write_status(state="cancelled", finished_at=now_iso())
    sys.exit(0)

train.Trainer, train.TrainConfig = FakeTrainer, FakeConfig
sys.exit(worker.run(str(RUN), rank=True))
'''

WORKER_SCRIPT = """
import sys
from finetune_hub.providers.local import distributed, worker

real_launch = distributed.launch_command

def fake_launch(run_path, options):
    cmd = real_launch(run_path, options)
    return [*cmd[: cmd.index("-m", 3)], "rank.py", run_path]

distributed.launch_command = fake_launch
sys.exit(worker.run(sys.argv[1]))
"""


@pytest.fixture(autouse=True)
def _needs_torch():
    pytest.importorskip("torch")


def make_run(tmp_path: Path) -> RunDir:
    (tmp_path / "rank.py").write_text(RANK_SCRIPT)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    spec = {"base_model": "tiny", "training_file": "x", "options": {"num_processes": 2}}
    write_json_atomic(run.job_path, {"key": "ftj_x", "spec": spec, "hyperparameters": {}})
    run.write_status(state="queued", step=0)
    return run


def start_worker(tmp_path: Path, run: RunDir, rank0: str, rank1: str) -> subprocess.Popen[bytes]:
    """The worker as the backend starts it: output into worker.log, a session of its own."""
    env = dict(os.environ, FH_TEST_RANK0=rank0, FH_TEST_RANK1=rank1, OMP_NUM_THREADS="1")
    with open(run.log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER_SCRIPT), str(run.path)],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def finish(proc: subprocess.Popen[bytes], run: RunDir, timeout: float = 180) -> dict:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"the worker did not finish:\n{run.log_path.read_text()}") from None
    return run.status()


def wait_for(path: Path, proc: subprocess.Popen[bytes], run: RunDir) -> None:
    end = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, run.log_path.read_text()
        assert time.monotonic() < end, f"no {path.name}:\n{run.log_path.read_text()}"
        time.sleep(0.05)


def test_a_crashed_rank_fails_the_run_instead_of_cancelling_it(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    status = finish(start_worker(tmp_path, run, "train", "crash"), run)
    log = run.log_path.read_text()
    assert status["state"] == "failed", (status, log)
    error = status["error"]
    assert error.startswith("training process rank 1 crashed (exit code 1); torchrun stopped")
    assert "torchrun exit code 1" in error and str(run.log_path) in error
    assert "resume(job.provider_job_id)" in error
    assert "RuntimeError: injected crash in rank 1" in log  # the traceback the error points at
    assert not run.cancel_requested()  # torchrun's SIGTERM left no cancel flag behind
    assert [step for step, _ in run.checkpoints()] == [1]  # rank 0 kept its checkpoint
    messages = [e["message"] for e in run.events()]
    assert any(m.startswith("torchrun stopped the training processes without") for m in messages)
    assert messages[-1] == error
    assert not any(m.startswith("cancelled") for m in messages)

    # resume() takes a failed run up again (it refuses cancelled ones)
    from finetune_hub.providers.local.backend import LocalBackend
    from finetune_hub.status import JobStatus

    backend = LocalBackend.from_options({"output_dir": str(tmp_path)})
    assert backend.get(str(run.path)).status == JobStatus.FAILED
    started = []
    monkeypatch.setattr(LocalBackend, "_start", lambda self, r: started.append(r.path))
    assert backend.resume(str(run.path)).raw_status == "queued"
    assert started == [run.path]


def test_a_cancelled_record_without_a_cancel_flag_is_turned_into_a_failure(tmp_path):
    """The supervisor's rule alone: rank 0 (a stand-in) records `cancelled` on torchrun's
    SIGTERM; torchrun failed and nobody asked for a cancel, so the run failed."""
    run = make_run(tmp_path)
    status = finish(start_worker(tmp_path, run, "record-cancelled", "crash"), run)
    assert status["state"] == "failed", (status, run.log_path.read_text())
    assert status["error"].startswith("training process rank 1 crashed (exit code 1)")
    assert "torchrun exit code 1" in status["error"]


def test_a_user_cancel_stays_cancelled_even_if_a_rank_crashes_during_it(tmp_path):
    run = make_run(tmp_path)
    proc = start_worker(tmp_path, run, "train", "crash-on-cancel")
    wait_for(tmp_path / "rank0-ready", proc, run)
    wait_for(tmp_path / "rank1-ready", proc, run)
    from finetune_hub.providers.local.backend import LocalBackend

    LocalBackend.from_options({"output_dir": str(tmp_path)}).cancel(str(run.path))
    status = finish(proc, run)
    log = run.log_path.read_text()
    assert "injected crash in rank 1 during the cancel" in log  # torchrun did fail
    assert proc.returncode == 0
    assert status["state"] == "cancelled", (status, log)


@pytest.mark.parametrize("how", ["backend", "sigterm"])
def test_a_user_cancel_of_a_multi_process_run_ends_cancelled(tmp_path, how):
    """Both cancel paths: the flag from `job.cancel()`, and SIGTERM to the worker."""
    run = make_run(tmp_path)
    proc = start_worker(tmp_path, run, "train", "follow")
    wait_for(tmp_path / "rank0-ready", proc, run)
    wait_for(tmp_path / "rank1-ready", proc, run)
    if how == "backend":
        from finetune_hub.providers.local.backend import LocalBackend

        LocalBackend.from_options({"output_dir": str(tmp_path)}).cancel(str(run.path))
    else:
        proc.send_signal(signal.SIGTERM)
    status = finish(proc, run)
    assert proc.returncode == 0
    assert status["state"] == "cancelled", (status, run.log_path.read_text())
    assert [step for step, _ in run.checkpoints()] == [1]
    assert not pid_alive(proc.pid)


def test_the_crashed_ranks_are_read_from_torchruns_report(tmp_path):
    from finetune_hub.providers.local.worker import _failures

    run = RunDir(tmp_path)
    run.log_path.write_text(
        "an earlier run\nFailures:\nRoot Cause (first observed failure):\n[0]:\n"
        "  rank      : 5 (local_rank: 1)\n  exitcode  : 1 (pid: 1)\n"
    )
    start = run.log_path.stat().st_size
    report = """
        ============================================================
        finetune_hub.providers.local.worker FAILED
        ------------------------------------------------------------
        Failures:
        [1]:
          time      : 2026-11-30_12:00:01
          host      : box
          rank      : 0 (local_rank: 0)
          exitcode  : 1 (pid: 4241)
          error_file: <N/A>
          traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
        ------------------------------------------------------------
        Root Cause (first observed failure):
        [0]:
          time      : 2026-11-30_12:00:00
          host      : box
          rank      : 3 (local_rank: 1)
          exitcode  : -9 (pid: 4242)  (SIGKILL)
          error_file: <N/A>
          traceback : Signal 9 (SIGKILL) received by PID 4242
        ============================================================
    """
    with open(run.log_path, "a") as f:
        f.write(textwrap.dedent(report))
    assert _failures(run, start) == [
        "training process rank 3 crashed (exit code -9, SIGKILL)",
        "training process rank 0 crashed (exit code 1)",
    ]
    assert _failures(run, 0)[0] == "training process rank 3 crashed (exit code -9, SIGKILL)"
    assert _failures(run, run.log_path.stat().st_size) == []  # nothing since: no guess
    assert _failures(RunDir(tmp_path / "nothing"), 0) == []


# -- end to end: a real 2-process run of the tiny model -----------------------------------------


def test_a_real_two_process_run_whose_rank_1_crashes_fails_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("peft")
    from local_support import LOCAL_QUESTIONS, crash_rank1_at, write_tiny_chat

    import finetune_hub as fh
    from finetune_hub.providers.local.backend import LocalBackend
    from finetune_hub.providers.local.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "model", [*LOCAL_QUESTIONS, "yes, gozaru!"])
    crash_rank1_at(3, tmp_path / "hooks", monkeypatch)  # step 3, after checkpoint-2
    options = {"output_dir": str(tmp_path / "runs"), "num_threads": 1, "num_processes": 2}
    job = fh.TuningJob(
        provider="local",
        base_model=str(model),
        training_file=str(write_tiny_chat(tmp_path / "chat.jsonl")),
        hyperparameters={
            "per_device_train_batch_size": 4,
            "max_steps": 4,
            "save_steps": 2,
            "lora_rank": 4,
            "max_seq_length": 64,
        },  # fmt: skip
        options=options,
        store=fh.JobStore(tmp_path / "home"),
    )
    job.sleep = lambda s: time.sleep(min(s, 0.2))
    job.submit()
    with pytest.raises(fh.JobFailed):
        job.wait(timeout=300, poll_interval=0.2, progress=False)
    run = RunDir(job.provider_job_id)
    end = time.monotonic() + 120
    while pid_alive(run.status()["pid"]):  # the supervisor adds torchrun's report when it ends
        assert time.monotonic() < end, run.log_path.read_text()
        time.sleep(0.2)
    log = run.log_path.read_text()
    error = run.status()["error"]
    assert run.status()["state"] == "failed"
    # rank 0 failed too (gloo lost its peer); which failure torchrun saw first varies, and rank
    # 1 exits with 1 or, its process group left open, aborts (-6, SIGABRT)
    assert "training process rank 1 crashed (exit code " in error, (error, log)
    assert "RuntimeError: injected crash in rank 1" in log
    assert [step for step, _ in run.checkpoints()] == [2]

    monkeypatch.delenv("FH_TEST_CRASH_AT_FORWARD")
    LocalBackend.from_options(options).resume(job.provider_job_id)
    end = time.monotonic() + 300
    while run.status().get("state") not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < end, run.log_path.read_text()
        time.sleep(0.2)
    assert run.status()["state"] == "succeeded", run.log_path.read_text()
    assert [json.loads(line)["step"] for line in run.metrics_path.read_text().splitlines()][-1] == 4
