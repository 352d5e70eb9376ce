"""The detached worker process of a local job: `python -m finetune_hub.providers.local.worker RUN_DIR`.

It trains, writing status, events, metrics and checkpoints into the run folder; it resumes from
the folder's last checkpoint when there is one. SIGTERM counts as a cancel (graceful).

A job with several processes (`num_processes`, `num_machines`) is trained by torchrun: this
worker supervises it (distributed.py), each rank runs `worker --rank RUN_DIR`, and rank 0 writes
the run folder; the supervisor records a crash of any rank.

No orphans (Linux): torchrun gets SIGTERM when this worker dies, even by SIGKILL, and stops its
ranks (SIGTERM, SIGKILL after its shutdown timeout); rank 0 then records the run as failed, not
cancelled. Each rank gets SIGKILL when torchrun dies (lifeline.py).

A cancel is the flag file (`RunDir.cancel_path`): `job.cancel()` writes it, and so does this
worker when it gets SIGTERM. A SIGTERM that reaches a rank is torchrun stopping it (a sibling
rank crashed, or this worker died): the rank stops at its next batch and keeps a checkpoint, but
remembers the signal in memory only, so the run is recorded as failed (naming the crashed rank,
from torchrun's report in the log), not cancelled, and `resume()` takes it up again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import traceback

from finetune_hub.providers.local.runner import TERMINAL_STATES, RunDir, pid_alive

#: The environment variable that tells the ranks the pid of the worker supervising them.
SUPERVISOR_PID = "FINETUNE_HUB_SUPERVISOR_PID"
#: How rank 0's error begins when torchrun stopped it without a cancel (the supervisor then
#: names the crashed rank).
STOPPED_BY_TORCHRUN = "torchrun stopped the training processes"
_RESUME_HINT = "Resume with LocalBackend.from_options(job.spec.options).resume(job.provider_job_id)"


class RankRun(RunDir):
    """The run folder as a training rank sees it: a SIGTERM (torchrun stopping the rank) stops
    training like a cancel, but is kept in `stopped`, not written as the cancel flag, so that
    rank 0 and the supervisor can tell it from a cancel the user asked for."""

    stopped = False

    def cancel_requested(self) -> bool:
        return self.stopped or self.user_cancel()

    def user_cancel(self) -> bool:
        """Whether the cancel flag is there (`job.cancel()`, or SIGTERM to the worker)."""
        return self.cancel_path.exists()


def run(path: str, *, rank: bool = False) -> int:
    if rank:
        from finetune_hub.providers.local.lifeline import die_with_parent

        # torchrun SIGKILLed: nothing would stop this rank (torchrun starts it in a session of
        # its own). A hard stop; the supervisor records the run as failed.
        die_with_parent(signal.SIGKILL)
    run_dir = RankRun(path) if rank else RunDir(path)
    main = not rank or os.environ.get("RANK", "0") == "0"

    def on_term(signum: int, frame: object) -> None:
        if isinstance(run_dir, RankRun):  # torchrun stops this rank: no cancel by the user
            run_dir.stopped = True
        else:
            run_dir.request_cancel()

    signal.signal(signal.SIGTERM, on_term)
    if not rank:
        run_dir.write_status(state="running", pid=os.getpid(), error=None)
        run_dir.add_event("worker started", type="state", data={"pid": os.getpid()})
    try:
        from finetune_hub.providers.local.distributed import world_size
        from finetune_hub.providers.local.train import TrainConfig, Trainer

        job = run_dir.job()
        options = (job.get("spec") or {}).get("options") or {}
        if not options.get("download"):
            from finetune_hub.providers.local.models import offline

            offline()
        if not rank and world_size(options) > 1:
            return supervise(run_dir, options)
        trainer = Trainer(run_dir, TrainConfig.from_job(job))
        if run_dir.cancel_requested():
            outcome = "cancelled"
        else:
            trainer.setup()
            outcome = trainer.fit()
        trainer.dist.close()
    except Exception as exc:  # the run fails with the message; the traceback goes to the log
        traceback.print_exc()
        if main:
            message = f"{type(exc).__name__}: {exc}"
            run_dir.add_event(f"training failed: {message}", level="error", type="state")
            run_dir.write_status(state="failed", error=message, finished_at=_now())
        return 1
    if not main:
        return 0
    if outcome == "cancelled" and rank and _supervisor_died():
        message = (
            f"the worker process (pid {os.environ.get(SUPERVISOR_PID)}) that supervised the "
            f"training processes died; they stopped and kept the last checkpoint. {_RESUME_HINT}"
        )
        run_dir.add_event(message, level="error", type="state")
        run_dir.write_status(state="failed", error=message, finished_at=_now())
    elif outcome == "cancelled" and isinstance(run_dir, RankRun) and not run_dir.user_cancel():
        # SIGTERM from torchrun with no cancel flag: another rank ended (a crash). The
        # supervisor names it once torchrun has reported; the run is failed from now on.
        message = (
            f"{STOPPED_BY_TORCHRUN} without a cancel: another training process ended first; its "
            f"traceback is in {run_dir.log_path}. The last checkpoint is kept. {_RESUME_HINT}"
        )
        run_dir.add_event(message, level="error", type="state")
        run_dir.write_status(state="failed", error=message, finished_at=_now())
    elif outcome == "cancelled":
        run_dir.add_event("cancelled; the last checkpoint is kept", type="state")
        run_dir.write_status(state="cancelled", finished_at=_now())
    else:
        from finetune_hub.providers.local.smoke import smoke_test_run

        smoke = smoke_test_run(run_dir, trainer)  # a report (smoke_test.json); never fails the run
        run_dir.add_event(f"succeeded: adapter at {run_dir.adapter_dir}", type="state")
        run_dir.write_status(
            state="succeeded", model=str(run_dir.adapter_dir), finished_at=_now(), smoke_test=smoke
        )
    return 0


def supervise(run_dir: RunDir, options: dict[str, object]) -> int:
    """Train through torchrun and wait; a rank that crashed fails the run (rank 0 has written
    the run's outcome otherwise). SIGTERM reaches the ranks as the cancel flag.

    A run that rank 0 recorded as cancelled while torchrun failed and no cancel flag is there
    was stopped by torchrun after a rank crashed: it is recorded as failed, naming that rank
    and its exit code when torchrun's report (in the log) gives them."""
    from finetune_hub.providers.local.distributed import launch_command, world_size

    cmd = launch_command(str(run_dir.path), options)
    run_dir.add_event(
        f"starting {world_size(options)} training processes through torchrun",
        type="state",
        data={"command": cmd[1:]},
    )
    sys.stdout.flush()
    from finetune_hub.providers.local.lifeline import parent_death_signal

    # If this worker dies (even by SIGKILL), torchrun gets SIGTERM and stops the ranks; a
    # SIGTERM to this worker stays a cancel (the flag), as it does not end this process.
    env = dict(os.environ, **{SUPERVISOR_PID: str(os.getpid())})
    log_start = _size(run_dir.log_path)
    code = subprocess.call(
        cmd, stdin=subprocess.DEVNULL, env=env, preexec_fn=parent_death_signal(signal.SIGTERM)
    )
    status = run_dir.status()
    state = status.get("state")
    if options.get("machine_rank"):  # a helper machine: rank 0 writes the run elsewhere
        state = "succeeded" if code == 0 else "failed"
        run_dir.write_status(state=state, finished_at=_now(), error=None if code == 0 else
                             f"torchrun ended with exit code {code}; see {run_dir.log_path}")  # fmt: skip
        return code
    failures = _failures(run_dir, log_start)
    if state not in TERMINAL_STATES:
        crash = f"{failures[0]}; " if failures else ""
        message = (
            f"a training process ended without finishing ({crash}torchrun exit code {code}); "
            f"see {run_dir.log_path}"
        )
        run_dir.add_event(message, level="error", type="state")
        run_dir.write_status(state="failed", error=message, finished_at=_now())
        return 1
    if code == 0:
        return 0
    error = str(status.get("error") or "")
    stopped = state == "cancelled" and not run_dir.cancel_requested()
    if stopped or (state == "failed" and error.startswith(STOPPED_BY_TORCHRUN)):
        # rank 0 stopped on torchrun's SIGTERM (a sibling crashed), not on a user's cancel
        message = (
            f"{failures[0] if failures else 'a training process crashed'}; torchrun stopped "
            f"the others (torchrun exit code {code}; see {run_dir.log_path}). The last "
            f"checkpoint is kept. {_RESUME_HINT}"
        )
        run_dir.add_event(message, level="error", type="state")
        run_dir.write_status(state="failed", error=message, finished_at=_now())
        return 1
    others = [f for f in failures if not f.startswith("training process rank 0 ")]
    if state == "failed" and others:
        # rank 0 failed with another rank: often a collective that lost its crashed peer.
        # torchrun's first observed failure comes first (its clock has whole seconds).
        if failures[0] == others[0]:
            message = f"{others[0]} first (see {run_dir.log_path}); then rank 0: {error}"
        else:
            message = f"{error}; {', '.join(others)} too (see {run_dir.log_path})"
        run_dir.add_event(message, level="error", type="state")
        run_dir.write_status(state="failed", error=message)
    return 0


_FAILURE = re.compile(
    r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*exitcode\s*:\s*(-?\d+) \(pid: \d+\)(?: *\((SIG\w+)\))?"
)
_ROOT_CAUSE = "Root Cause (first observed failure):"


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _failures(run_dir: RunDir, start: int) -> list[str]:
    """The failed ranks of torchrun's last report in the log since `start` (its stderr goes
    there when the backend started this worker), the first observed failure first, each as
    "training process rank R crashed (exit code N)"."""
    try:
        with open(run_dir.log_path, "rb") as f:
            f.seek(max(start, _size(run_dir.log_path) - (1 << 20)))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    root = text.rfind(_ROOT_CAUSE)
    if root < 0:
        return []
    others = text.rfind("Failures:", 0, root)
    found = [m.groups() for m in _FAILURE.finditer(text, others if others >= 0 else root)]
    if not found:
        return []
    found.insert(0, found.pop())  # the root cause is listed last
    return [
        f"training process rank {rank} crashed (exit code {code}{', ' + sig if sig else ''})"
        for rank, code, sig in found
    ]


def _supervisor_died() -> bool:
    """Whether this rank's supervising worker has died (then torchrun's SIGTERM was no cancel)."""
    pid = os.environ.get(SUPERVISOR_PID)
    return bool(pid) and not pid_alive(int(pid))


def _now() -> str:
    from finetune_hub.providers.local.runner import now_iso

    return now_iso()


if __name__ == "__main__":
    args = sys.argv[1:]
    as_rank = "--rank" in args
    sys.exit(run([a for a in args if a != "--rank"][0], rank=as_rank))
