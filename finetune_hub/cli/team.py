"""The commands for many jobs at once: list (local or provider-side), adopt, refresh, prune,
and the deployments still billing.

    finetune-hub jobs --provider openai --status running
    finetune-hub jobs --remote --provider openai
    finetune-hub adopt openai ftjob-abc123
    finetune-hub refresh --concurrency 8
    finetune-hub jobs prune --older-than 90          # dry run: says what would go
    finetune-hub jobs prune --older-than 90 --yes
    finetune-hub deployments
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from finetune_hub.cli.store import add_store_location, open_store

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_team_commands(sub: Any) -> None:
    """Register `jobs`, `adopt`, `refresh` and `deployments` on the main parser's subparsers."""
    from finetune_hub.cli.args import parse_hp
    from finetune_hub.cli.guardrails import add_watch_flags

    option_help = "provider option, repeatable (region=us-east-1)"

    p = sub.add_parser(
        "jobs",
        help="list recorded jobs (age, last update, latest event); --remote: the provider's own; "
        "prune: remove what is no longer worth keeping",
        description="Without an action: the jobs in the store, newest first. With --remote "
        "--provider P: the jobs on the provider's side, whoever made them, marked with the local "
        "job id when the store knows them. `jobs prune`: see `finetune-hub jobs prune --help`.",
    )
    p.add_argument("action", nargs="?", choices=["prune"], help="prune: remove old jobs")
    p.add_argument("--provider", metavar="P")
    p.add_argument("--status", help="only jobs in this state")
    p.add_argument("--limit", type=int, metavar="N", help="at most N jobs (remote: per page)")
    p.add_argument("--remote", action="store_true", help="list the provider's jobs")
    p.add_argument("--after", metavar="CURSOR", help="with --remote: the page after this cursor")
    p.add_argument("--all", action="store_true", help="with --remote: every page")
    p.add_argument(
        "--option", action="append", type=parse_hp, default=[], metavar="K=V", help=option_help
    )
    p.add_argument(
        "--older-than", type=float, metavar="DAYS", help="prune: finished jobs older than DAYS"
    )
    p.add_argument(
        "--orphan-hours",
        type=float,
        default=24.0,
        metavar="H",
        help="prune: PENDING jobs never accepted by the provider, after H hours (default 24)",
    )
    p.add_argument("--yes", action="store_true", help="prune: really remove (default: dry run)")
    p.add_argument("--json", action="store_true")
    add_store_location(p)
    p.set_defaults(handler=cmd_jobs)

    p = sub.add_parser(
        "refresh",
        help="ask the providers about every unfinished job at once; print what changed",
    )
    p.add_argument("--provider", metavar="P", help="only this provider's jobs")
    p.add_argument("--concurrency", type=int, default=8, metavar="N", help="jobs at once (8)")
    p.add_argument(
        "--rate",
        action="append",
        type=parse_hp,
        default=[],
        metavar="P=N",
        help="at most N calls a second to provider P, repeatable (default 5)",
    )
    p.add_argument("--watch", type=float, metavar="SECONDS", help="keep refreshing this often")
    add_watch_flags(p)
    add_store_location(p)
    p.set_defaults(handler=cmd_refresh)

    p = sub.add_parser(
        "deployments", help="deployments still billing, with hourly and accumulated cost"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--expired", action="store_true", help="only those past their ttl (what `reap` deletes)"
    )
    add_store_location(p)
    p.set_defaults(handler=cmd_deployments)

    p = sub.add_parser("adopt", help="bring a job made elsewhere (SDK, console) under finetune_hub")
    p.add_argument("provider")
    p.add_argument("provider_job_id")
    p.add_argument(
        "--option", action="append", type=parse_hp, default=[], metavar="K=V", help=option_help
    )
    add_store_location(p)
    p.set_defaults(handler=cmd_adopt)


# -- jobs -----------------------------------------------------------------------------------------
def cmd_jobs(args: argparse.Namespace, console: Console) -> int:
    """List local jobs, the provider's jobs (--remote), or prune."""
    if args.action == "prune":
        return cmd_prune(args, console)
    if args.remote:
        return _remote(args, console)
    from finetune_hub.cli.render import new_table

    with open_store(args) as store:
        records = store.list(provider=args.provider, status=args.status, limit=args.limit)
        latest = store.latest_events(r.id for r in records)
    if args.json:
        rows = [
            {**r.model_dump(mode="json"), "latest_event": _event_text(latest.get(r.id))}
            for r in records
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    from finetune_hub.jobs.guardrails import guardrail_mark

    now = dt.datetime.now(dt.UTC)
    table = new_table(
        "job", "provider", "base model", "status", "age", "updated", "provider job", "model",
        "latest event",
    )  # fmt: skip
    for r in records:
        mark = guardrail_mark(r, now=now)
        table.add_row(
            r.id,
            r.provider,
            r.base_model,
            r.status.value + (f" ({mark})" if mark else ""),
            duration(now - r.created_at),
            duration(now - r.updated_at) + " ago",
            r.provider_job_id or "",
            r.fine_tuned_model or "",
            _event_text(latest.get(r.id)) or "",
        )
    console.print(table)
    return EXIT_OK


def _event_text(event: Any) -> str | None:
    return None if event is None else event.message


def _remote(args: argparse.Namespace, console: Console) -> int:
    from finetune_hub.cli.render import new_table
    from finetune_hub.jobs.remote import remote_jobs

    if args.provider is None:
        console.print("jobs --remote needs --provider P (the provider whose jobs to list)")
        return EXIT_USAGE
    with open_store(args) as store:
        page = remote_jobs(
            args.provider,
            limit=args.limit or 50,
            after=args.after,
            pages=None if args.all else 1,
            store=store,
            **dict(args.option),
        )
    if args.status:
        page.jobs = [j for j in page.jobs if j.status.value == args.status]
    if args.json:
        print(page.model_dump_json(indent=2))
        return EXIT_OK
    now = dt.datetime.now(dt.UTC)
    table = new_table("provider job", "status", "base model", "age", "model", "in the store")
    for j in page:
        age = duration(now - j.created_at) if j.created_at else ""
        known = j.known_as or "not adopted"
        table.add_row(
            j.id, j.status.value, j.base_model or "", age, j.fine_tuned_model or "", known
        )
    console.print(table)
    if page.next_cursor:
        console.print(
            f"more: finetune-hub jobs --remote --provider {args.provider} --after {page.next_cursor}",
            soft_wrap=True,
        )
    waiting = [j for j in page if not j.known]
    if waiting:
        console.print(
            f"{len(waiting)} not adopted; adopt one with: finetune-hub adopt {args.provider} "
            f"{waiting[0].id}",
            soft_wrap=True,
        )
    return EXIT_OK


def cmd_adopt(args: argparse.Namespace, console: Console) -> int:
    """Adopt a provider's job into the store."""
    from finetune_hub.jobs.tuning_job import TuningJob

    store = open_store(args)
    job = TuningJob.adopt(args.provider, args.provider_job_id, store=store, **dict(args.option))
    rec = store.require(job.id)
    console.print(
        f"adopted {args.provider} job {args.provider_job_id} as {job.id}: {rec.status.value}",
        soft_wrap=True,
    )
    console.print(f"follow it with: finetune-hub watch {job.id}")
    return EXIT_OK


def cmd_refresh(args: argparse.Namespace, console: Console) -> int:
    """Refresh every unfinished job; print each change as it comes, then the errors. Exit 1 when
    a job could not be refreshed."""
    from finetune_hub.jobs.refresh import RefreshError, follow_changes, refresh_all

    rates = {str(k): float(v) for k, v in args.rate}
    common = {
        "provider": args.provider,
        "concurrency": args.concurrency,
        "rate_limits": rates,
        "stall_after": args.stall_after,
        "on_stall": args.on_stall,
    }

    def show(change: Any) -> None:
        console.print(str(change), soft_wrap=True)

    with open_store(args) as store:
        if args.watch:
            errors: list[RefreshError] = []
            for change in follow_changes(
                store=store,
                interval=args.watch,
                on_error=errors.append,
                on_stall=lambda stall: console.print(_guardrail_line(stall), soft_wrap=True),
                **common,
            ):
                show(change)
            for error in errors:
                console.print(f"error: {error}", soft_wrap=True)
            return EXIT_FAILED if errors else EXIT_OK
        result = refresh_all(store=store, on_change=show, **common)
    for error in result.errors:
        console.print(f"error: {error}", soft_wrap=True)
    for stall in result.stalled:
        console.print(_guardrail_line(stall), soft_wrap=True)
    console.print(str(result))
    return EXIT_FAILED if result.errors else EXIT_OK


def _guardrail_line(notice: Any) -> str:
    """`stalled: ...` or `over max_duration: ...`, and what --on-stall cancel did."""
    label = "stalled" if notice.kind == "stalled" else "over max_duration"
    return f"{label}: {notice}" + ("; cancelled by finetune_hub" if notice.cancelled else "")


def cmd_prune(args: argparse.Namespace, console: Console) -> int:
    """Say which jobs prune would remove and why; remove them with --yes."""
    from finetune_hub.cli.render import new_table
    from finetune_hub.jobs.housekeeping import plan_prune, prune

    with open_store(args) as store:
        plan = plan_prune(store, older_than_days=args.older_than, orphan_hours=args.orphan_hours)
        if args.provider:
            plan = [item for item in plan if item.job.provider == args.provider]
        if not plan:
            console.print("nothing to prune")
            return EXIT_OK
        table = new_table("job", "provider", "status", "created", "why")
        for item in plan:
            j = item.job
            table.add_row(j.id, j.provider, j.status.value, f"{j.created_at:%Y-%m-%d}", item.reason)
        console.print(table)
        if not args.yes:
            console.print(f"dry run: {len(plan)} jobs would be removed; run again with --yes")
            return EXIT_OK
        removed = prune(store, plan)
    console.print(f"removed {removed} jobs (their deployments' records are kept)")
    return EXIT_OK


def cmd_deployments(args: argparse.Namespace, console: Console) -> int:
    """Deployments still billing: hourly price, hours so far and accumulated cost."""
    from finetune_hub.cli.render import new_table
    from finetune_hub.jobs.housekeeping import billing_deployments
    from finetune_hub.jobs.reap import expiry_text

    if args.expired:
        from finetune_hub.cli.guardrails import cmd_expired

        return cmd_expired(args, console)
    with open_store(args) as store:
        billing = billing_deployments(store)
    if args.json:
        rows = [
            {
                **d.record.model_dump(mode="json"),
                "hours": d.hours,
                "accumulated_usd": d.accumulated_usd,
            }
            for d in billing
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not billing:
        console.print("no deployment is billing")
        return EXIT_OK
    table = new_table(
        "deployment", "provider", "kind", "model", "status", "age", "$/hour", "so far", "expires"
    )
    now = dt.datetime.now(dt.UTC)
    for d in billing:
        r = d.record
        rate = "unknown" if d.hourly_cost_usd is None else f"${d.hourly_cost_usd:,.2f}"
        total = "unknown" if d.accumulated_usd is None else f"${d.accumulated_usd:,.2f}"
        age = duration(dt.timedelta(hours=d.hours))
        ends = "" if r.expires_at is None else expiry_text(r.expires_at, now)
        table.add_row(r.name, r.provider, r.kind or "", r.model, r.status, age, rate, total, ends)
    console.print(table)
    known = sum(d.accumulated_usd or 0 for d in billing)
    hourly = sum(d.hourly_cost_usd or 0 for d in billing)
    console.print(f"{len(billing)} billing: ${hourly:,.2f}/hour now, ${known:,.2f} so far")
    console.print("delete one with: finetune-hub undeploy JOB_ID")
    return EXIT_OK


def duration(delta: dt.timedelta) -> str:
    """A short human duration: `45s`, `12m`, `3h 5m`, `4d 2h` (`guardrails.human`).

    >>> duration(dt.timedelta(hours=3, minutes=5))
    '3h 5m'
    """
    from finetune_hub.jobs.guardrails import human

    return human(delta.total_seconds())
