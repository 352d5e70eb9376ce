"""Deployments that expire: `deploy(..., ttl=...)` records `expires_at`; `reap_expired()` (and
`finetune-hub reap`) deletes every deployment past it, for a cron job or a CI schedule.

A dry run first: `reap_expired(dry_run=True)` (the CLI's default) says what would go and what
each has cost so far. Deleting goes through `Deployment.from_record(...).delete()`, which is
idempotent and marks the record deleted, so a deployment is reaped once: a second run finds
nothing, and one whose delete failed is tried again next time.

>>> plan = fh.reap_expired(dry_run=True)  # doctest: +SKIP
>>> [(r.name, r.status) for r in plan]  # doctest: +SKIP
[('fh-1a2b3c4d5e6f', 'would delete')]
>>> fh.reap_expired()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from finetune_hub.errors import FinetuneHubError
from finetune_hub.jobs.housekeeping import billing_deployments
from finetune_hub.store import DeploymentRecord, JobStore


def expiry_text(at: dt.datetime, now: dt.datetime | None = None) -> str:
    """When a deployment expires, for a list: `in 3h 5m` or `expired 2h ago`.

    >>> now = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    >>> expiry_text(now + dt.timedelta(hours=3, minutes=5), now), expiry_text(now, now)
    ('in 3h 5m', 'expired 0s ago')
    """
    from finetune_hub.jobs.guardrails import human

    now = now or dt.datetime.now(dt.UTC)
    if at <= now:
        return f"expired {human((now - at).total_seconds())} ago"
    return f"in {human((at - now).total_seconds())}"


class Reaped(BaseModel):
    """One expired deployment and what `reap_expired` did with it.

    `status`: "would delete" (dry run), "deleted", or "failed" (with `error`; tried again on the
    next run)."""

    record: DeploymentRecord
    status: str
    expired_for_hours: float
    accumulated_usd: float | None = None  # what it has cost since creation, where known
    error: str | None = None

    @property
    def name(self) -> str:
        return self.record.name


def expired_deployments(
    store: JobStore, *, now: dt.datetime | None = None
) -> list[tuple[DeploymentRecord, float | None]]:
    """Deployments not deleted whose `expires_at` has passed, oldest expiry first, each with its
    accumulated cost so far (hourly price x hours since creation; None when unknown)."""
    now = now or dt.datetime.now(dt.UTC)
    costs = {d.id: d.accumulated_usd for d in billing_deployments(store, now=now)}
    found = [
        (record, costs.get(record.id))
        for record in store.list_deployments(active_only=True)
        if record.expires_at is not None and record.expires_at <= now
    ]
    return sorted(found, key=lambda pair: pair[0].expires_at or now)


def reap_expired(
    store: JobStore | None = None,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Reaped]:
    """Delete every deployment past its `expires_at` (`deploy(..., ttl=...)`); with `dry_run`,
    only say which. `options` gives per provider what the store does not keep (an API key
    passed in code): `{"azure-openai": {"api_key": ...}}`; otherwise the SDKs' environment
    variables and credential chains are used, as a cron job has them.

    >>> [r.status for r in fh.reap_expired(dry_run=True)]  # doctest: +SKIP
    ['would delete']
    """
    from finetune_hub.jobs.deployment import Deployment
    from finetune_hub.jobs.tuning_job import TuningJob

    store = store or JobStore()
    now = now or dt.datetime.now(dt.UTC)
    out: list[Reaped] = []
    for record, spent in expired_deployments(store, now=now):
        assert record.expires_at is not None
        late = max(0.0, (now - record.expires_at).total_seconds() / 3600)
        item = Reaped(
            record=record,
            status="would delete",
            expired_for_hours=round(late, 2),
            accumulated_usd=spent,
        )
        if not dry_run:
            try:
                if record.job_id is None:
                    raise FinetuneHubError(
                        f"deployment {record.name} has no job in the store to connect through; "
                        "delete it with the provider's console or SDK"
                    )
                extra = dict((options or {}).get(record.provider, {}))
                job = TuningJob.attach(record.job_id, store=store, options=extra)
                Deployment.from_record(job, record).delete()
                item.status = "deleted"
            except FinetuneHubError as exc:
                item.status, item.error = "failed", str(exc)
        out.append(item)
    return out
