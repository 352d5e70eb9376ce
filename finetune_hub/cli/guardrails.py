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
from typing import TYPE_CHECKING, Any

from finetune_hub.cli.output import emit_json, shell_hint
from finetune_hub.cli.store import add_store_location, open_store

if TYPE_CHECKING:
    from rich.console import Console

    from finetune_hub.jobs.tuning_job import TuningJob

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# -- watch ----------------------------------------------------------------------------------------
def add_watch_flags(p: argparse.ArgumentParser) -> None:
    """`--on-stall` and `--stall-after` for `watch` and `refresh`."""
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


# -- commands registered on the main parser -------------------------------------------------------
def add_guardrail_commands(sub: Any) -> None:
    """Register `reap` (and `migrate`) on the main parser's subparsers."""
    p = sub.add_parser(
        "reap",
        help="delete deployments past their ttl (dry run unless --yes); for cron or CI",
        description="Deployments made with deploy(..., ttl=...) carry an expiry. Without --yes "
        "this lists those past it with what they have cost so far; with --yes it deletes them "
        "(safe to repeat: a deleted one is not deleted again). Exit 1 when a delete failed.",
    )
    p.add_argument("--yes", action="store_true", help="delete them (default: a dry run)")
    p.add_argument("--json", action="store_true", help="print what was (or would be) reaped")
    add_store_location(p)
    p.set_defaults(handler=cmd_reap, json_native=True)

    from finetune_hub.cli.args import parse_hp

    p = sub.add_parser(
        "migrate",
        help="run a job again on its base model's successor (the rules' replacement by default)",
        description="Re-validate the job's data for the successor (converting the format "
        "where it takes another), carry over the hyperparameters it still takes, name those "
        "it drops, and submit a new job linked to the old one in the store.",
    )
    p.add_argument("job_id", help="the local job id (ftj_...) of the old job")
    p.add_argument("--to", metavar="MODEL", help="the successor (default: the rules' replacement)")
    p.add_argument(
        "--hp", action="append", type=parse_hp, default=[], metavar="K=V",
        help="a hyperparameter for the new job, repeatable (added to those carried over)",
    )  # fmt: skip
    p.add_argument(
        "--option", action="append", type=parse_hp, default=[], metavar="K=V",
        help="a provider option for the new job, repeatable",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="say what would happen; submit nothing")
    p.add_argument("--yes", action="store_true", help="submit without asking")
    p.add_argument("--json", action="store_true", help="print the plan and the new job as JSON")
    add_store_location(p)
    p.set_defaults(handler=cmd_migrate, json_native=True)


def _expired_rows(items: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            **item.record.model_dump(mode="json"),
            "status": item.status,
            "expired_for_hours": item.expired_for_hours,
            "accumulated_usd": item.accumulated_usd,
            "error": item.error,
        }
        for item in items
    ]


def _expired_table(items: list[Any], console: Console) -> None:
    from finetune_hub.cli.render import new_table

    table = new_table("deployment", "provider", "kind", "job", "expired", "so far", "")
    for item in items:
        r = item.record
        spent = "unknown" if item.accumulated_usd is None else f"${item.accumulated_usd:,.2f}"
        late = f"{item.expired_for_hours:g}h ago"
        table.add_row(r.name, r.provider, r.kind or "", r.job_id or "", late, spent, item.status)
    console.print(table)


def cmd_expired(args: argparse.Namespace, console: Console) -> int:
    """`deployments --expired`: the deployments past their ttl, with what they have cost."""
    from finetune_hub.jobs.reap import reap_expired

    with open_store(args) as store:
        items = reap_expired(store, dry_run=True)
    if args.json:
        emit_json(_expired_rows(items))
        return EXIT_OK
    if not items:
        console.print("no deployment has expired")
        return EXIT_OK
    _expired_table(items, console)
    console.print("delete them with: finetune-hub reap --yes")
    return EXIT_OK


def cmd_reap(args: argparse.Namespace, console: Console) -> int:
    """Delete the expired deployments (--yes), or say which would go."""
    from finetune_hub.jobs.reap import reap_expired

    with open_store(args) as store:
        items = reap_expired(store, dry_run=not args.yes)
    failed = [i for i in items if i.status == "failed"]
    if args.json:
        emit_json({"dry_run": not args.yes, "deployments": _expired_rows(items)})
        return EXIT_FAILED if failed else EXIT_OK
    if not items:
        console.print("no deployment has expired")
        return EXIT_OK
    _expired_table(items, console)
    for item in failed:
        console.print(f"{item.name}: {shell_hint(item.error or '')}", soft_wrap=True)
    if not args.yes:
        console.print(f"dry run: {len(items)} would be deleted; run again with --yes")
        return EXIT_OK
    done = len(items) - len(failed)
    console.print(
        f"deleted {done} expired deployment(s)" + (f", {len(failed)} failed" if failed else "")
    )
    return EXIT_FAILED if failed else EXIT_OK


# -- submit --preflight ---------------------------------------------------------------------------
def preflight_refused(job: TuningJob, console: Console, as_json: bool) -> bool:
    """Run the preflight and print it; True when it found an error (nothing was uploaded)."""
    report = job.preflight()
    if as_json and not report.ok:
        emit_json({"submitted": False, "preflight": report.to_dict()})
    elif not as_json:
        for text in report.lines():
            style = "red" if text.lstrip().startswith("error") else ""
            console.print(shell_hint(text), style=style, soft_wrap=True)
    if not report.ok:
        if not as_json:
            console.print("nothing was uploaded or submitted")
        return True
    return False


# -- migrate --------------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace, console: Console) -> int:
    """Plan, ask (or --yes), submit on the successor; the links are in the store."""
    from finetune_hub.cli.output import confirm
    from finetune_hub.errors import ValidationError
    from finetune_hub.jobs.migrate import migrate
    from finetune_hub.jobs.tuning_job import TuningJob

    old = TuningJob.attach(args.job_id, store=open_store(args))
    kwargs: dict[str, Any] = {"hyperparameters": dict(args.hp), "options": dict(args.option)}
    preview = migrate(old, args.to, submit=False, **kwargs)
    plan, report = preview.migration, preview.report  # type: ignore[attr-defined]
    if not args.json:
        for text in plan.lines():
            console.print(shell_hint(text), soft_wrap=True)
    if report is not None and not report.ok:
        from finetune_hub.cli.jobs import _refused

        return _refused(report, console, args.json)
    if args.dry_run or not confirm(f"Submit the new {plan.provider} job?", yes=args.yes):
        if args.json:
            emit_json({"submitted": False, "plan": plan.model_dump(mode="json")})
        else:
            console.print("not submitted: nothing was uploaded")
        return EXIT_OK if args.dry_run else EXIT_FAILED
    try:
        new = migrate(old, args.to, **kwargs)
    except ValidationError as exc:
        from finetune_hub.cli.jobs import _refused

        return _refused(exc.report, console, args.json)
    if args.json:
        emit_json(
            {
                "submitted": True,
                "plan": plan.model_dump(mode="json"),
                "job": new.store.require(new.id).model_dump(mode="json"),
            }
        )
        return EXIT_OK
    console.print(
        f"submitted {new.id} on {plan.to_model} ({new.provider} job {new.provider_job_id}), "
        f"linked to {old.id}"
    )
    return EXIT_OK
