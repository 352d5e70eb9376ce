"""The guardrail commands of `finetune-hub`: watching with stall detection, expired deployments,
reaping them, preflight and migration (docs/guardrails.md).

    finetune-hub watch ftj_1a2b3c4d5e6f --on-stall cancel --stall-after 7200
    finetune-hub deployments --expired
    finetune-hub reap                 # dry run: what would be deleted
    finetune-hub reap --yes           # for a cron job or a CI schedule
    finetune-hub migrate ftj_1a2b3c4d5e6f --to gpt-4.1-mini
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from finetune_hub.jobs.tuning_job import TuningJob

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# -- watch ----------------------------------------------------------------------------------------
def add_watch_flags(p: argparse.ArgumentParser) -> None:
    """`--on-stall` and `--stall-after` for `watch`."""
    p.add_argument(
        "--on-stall",
        choices=["warn", "cancel"],
        default="warn",
        help="what a stalled job, or one over its max_duration, gets (default: warn)",
    )
    p.add_argument(
        "--stall-after",
        type=float,
        metavar="SECONDS",
        help="no state change and no new event for this long counts as a stall "
        "(default: the provider's, see docs/guardrails.md)",
    )


class _ConsoleHandler(logging.Handler):
    """Guardrail warnings printed as lines while a job is followed (also when not a terminal)."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(f"warning: {record.getMessage()}", style="yellow", soft_wrap=True)


def watch_job(job: TuningJob, console: Console, args: argparse.Namespace) -> int:
    """Follow a job to its end with the guardrails on: stall warnings printed, a cancel (with
    `--on-stall cancel`) said with its reason and what the provider still charges for."""
    from finetune_hub.errors import JobFailed, WaitTimeout

    logger = logging.getLogger("finetune_hub.guardrails")
    handler = _ConsoleHandler(console)
    logger.addHandler(handler)
    try:
        model = job.wait(
            timeout=args.timeout,
            poll_interval=args.poll_interval,
            progress=True,
            on_stall=args.on_stall,
            stall_after=args.stall_after,
        )
    except (JobFailed, WaitTimeout) as exc:
        console.print(str(exc), soft_wrap=True)
        return EXIT_FAILED
    finally:
        logger.removeHandler(handler)
    console.print(f"{job.id} succeeded: {model.id}")
    return EXIT_OK
