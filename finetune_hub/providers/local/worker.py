"""The detached worker process of a local job: `python -m finetune_hub.providers.local.worker RUN_DIR`.

It trains, writing status, events, metrics and checkpoints into the run folder; it resumes from
the folder's last checkpoint when there is one. SIGTERM counts as a cancel (graceful).

A job with several processes (`num_processes`, `num_machines`) is trained by torchrun: this
worker supervises it (distributed.py), each rank runs `worker --rank RUN_DIR`, and rank 0 writes
the run folder; the supervisor records a crash of any rank.

No orphans (Linux): torchrun gets SIGTERM when this worker dies, even by SIGKILL, and stops its
ranks (SIGTERM, SIGKILL after its shutdown timeout); rank 0 then records the run as failed, not
cancelled. Each rank gets SIGKILL when torchrun dies (lifeline.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import traceback

from finetune_hub.providers.local.runner import TERMINAL_STATES, RunDir, pid_alive

#: The environment variable that tells the ranks the pid of the worker supervising them.
SUPERVISOR_PID = "FINETUNE_HUB_SUPERVISOR_PID"


def run(path: str, *, rank: bool = False) -> int:
    if rank:
        from finetune_hub.providers.local.lifeline import die_with_parent

        # torchrun SIGKILLed: nothing would stop this rank (torchrun starts it in a session of
        # its own). A hard stop; the supervisor records the run as failed.
        die_with_parent(signal.SIGKILL)
    run_dir = RunDir(path)
    main = not rank or os.environ.get("RANK", "0") == "0"

    def on_term(signum: int, frame: object) -> None:
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
            "training processes died; they stopped and kept the last checkpoint. Resume with "
            "LocalBackend.from_options(job.spec.options).resume(job.provider_job_id)"
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
    the run's outcome otherwise). SIGTERM reaches the ranks as the cancel flag."""
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
    code = subprocess.call(
        cmd, stdin=subprocess.DEVNULL, env=env, preexec_fn=parent_death_signal(signal.SIGTERM)
    )
    state = run_dir.status().get("state")
    if options.get("machine_rank"):  # a helper machine: rank 0 writes the run elsewhere
        state = "succeeded" if code == 0 else "failed"
        run_dir.write_status(state=state, finished_at=_now(), error=None if code == 0 else
                             f"torchrun ended with exit code {code}; see {run_dir.log_path}")  # fmt: skip
        return code
    if state not in TERMINAL_STATES:
        message = (
            f"a training process ended without finishing (torchrun exit code {code}); see "
            f"{run_dir.log_path}"
        )
        run_dir.add_event(message, level="error", type="state")
        run_dir.write_status(state="failed", error=message, finished_at=_now())
        return 1
    return 0


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
