"""The detached worker process of a local job: `python -m finetune_hub.providers.local.worker RUN_DIR`.

It trains, writing status, events, metrics and checkpoints into the run folder; it resumes from
the folder's last checkpoint when there is one. SIGTERM counts as a cancel (graceful).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

from finetune_hub.providers.local.runner import RunDir


def run(path: str) -> int:
    run_dir = RunDir(path)

    def on_term(signum: int, frame: object) -> None:
        run_dir.request_cancel()

    signal.signal(signal.SIGTERM, on_term)
    run_dir.write_status(state="running", pid=os.getpid(), error=None)
    run_dir.add_event("worker started", type="state", data={"pid": os.getpid()})
    try:
        from finetune_hub.providers.local.models import offline
        from finetune_hub.providers.local.train import TrainConfig, Trainer

        offline()
        trainer = Trainer(run_dir, TrainConfig.from_job(run_dir.job()))
        if run_dir.cancel_requested():
            outcome = "cancelled"
        else:
            trainer.setup()
            outcome = trainer.fit()
    except Exception as exc:  # the run fails with the message; the traceback goes to the log
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
        run_dir.add_event(f"training failed: {message}", level="error", type="state")
        run_dir.write_status(state="failed", error=message, finished_at=_now())
        return 1
    if outcome == "cancelled":
        run_dir.add_event("cancelled; the last checkpoint is kept", type="state")
        run_dir.write_status(state="cancelled", finished_at=_now())
    else:
        run_dir.add_event(f"succeeded: adapter at {run_dir.adapter_dir}", type="state")
        run_dir.write_status(state="succeeded", model=str(run_dir.adapter_dir), finished_at=_now())
    return 0


def _now() -> str:
    from finetune_hub.providers.local.runner import now_iso

    return now_iso()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
