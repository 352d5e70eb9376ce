"""Housekeeping of the store: what `finetune-hub jobs prune` removes, and which deployments are
still billing with what they have cost so far.

Prune never touches a job that may still run: it proposes orphan PENDING jobs (recorded, never
accepted by the provider), jobs whose tuned model was deleted or that the provider no longer
has, and finished jobs not changed for N days. It is a plan first (a dry run), then a delete.

>>> plan = plan_prune(JobStore(), older_than_days=90)  # doctest: +SKIP
>>> [(item.job.id, item.reason) for item in plan]  # doctest: +SKIP
[('ftj_1a2b3c4d5e6f', 'orphan: pending for 3d 2h, never accepted by the provider')]
>>> prune(JobStore(), plan)  # doctest: +SKIP
1
>>> sum(d.accumulated_usd or 0 for d in billing_deployments(JobStore()))  # doctest: +SKIP
40.8
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pydantic import BaseModel

from finetune_hub.status import DeploymentStatus, JobStatus
from finetune_hub.store import DeploymentRecord, JobRecord, JobStore


class PruneItem(BaseModel):
    """A job `prune` would remove, and why."""

    job: JobRecord
    reason: str


def _age(delta: dt.timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"


def plan_prune(
    store: JobStore,
    *,
    older_than_days: float | None = None,
    orphan_hours: float = 24.0,
    now: dt.datetime | None = None,
) -> list[PruneItem]:
    """The jobs worth removing, each with its reason (nothing is removed): orphan PENDING jobs
    older than `orphan_hours`, jobs whose model was deleted (`TunedModel.delete`) or that the
    provider no longer has (a refresh met 404), and, with `older_than_days`, finished jobs
    (succeeded, failed, cancelled) not changed for that long."""
    now = now or dt.datetime.now(dt.UTC)
    items: list[PruneItem] = []
    for job in reversed(store.list()):  # oldest first
        age = now - job.created_at
        if (
            job.status is JobStatus.PENDING
            and not job.provider_job_id
            and age > dt.timedelta(hours=orphan_hours)
        ):
            reason = f"orphan: pending for {_age(age)}, never accepted by the provider"
        elif "model_deleted_at" in job.extra:
            reason = (
                f"its model {job.fine_tuned_model} was deleted ({job.extra['model_deleted_at']})"
            )
        elif "gone_at" in job.extra:
            reason = (
                f"the provider no longer has job {job.provider_job_id} ({job.extra['gone_at']})"
            )
        elif (
            older_than_days is not None
            and job.status.is_terminal
            and now - job.updated_at > dt.timedelta(days=older_than_days)
        ):
            reason = f"{job.status.value}, unchanged for {_age(now - job.updated_at)}"
        else:
            continue
        items.append(PruneItem(job=job, reason=reason))
    return items


def prune(store: JobStore, plan: Iterable[PruneItem]) -> int:
    """Remove the planned jobs with their history; returns how many went."""
    return store.delete_jobs(item.job.id for item in plan)


class BillingDeployment(BaseModel):
    """A deployment that may be billing now, with what it has cost since it was created."""

    record: DeploymentRecord
    hours: float
    hourly_cost_usd: float | None
    accumulated_usd: float | None  # hourly x hours; None when the hourly price is unknown

    @property
    def id(self) -> str:
        return self.record.id


def billing_deployments(
    store: JobStore, *, now: dt.datetime | None = None
) -> list[BillingDeployment]:
    """Deployments not deleted and not failed, newest first, each with its hours since creation
    and its accumulated cost (`hourly_cost_usd` x hours, where the hourly price is known).

    >>> [(d.record.name, d.accumulated_usd) for d in billing_deployments(store)]  # doctest: +SKIP
    [('fh-1a2b3c4d5e6f', 40.8)]
    """
    now = now or dt.datetime.now(dt.UTC)
    found = []
    for record in store.list_deployments(active_only=True):
        try:
            status = DeploymentStatus(record.status)
        except ValueError:
            status = DeploymentStatus.UNKNOWN
        if not status.is_billing:
            continue
        hours = max(0.0, (now - record.created_at).total_seconds() / 3600)
        rate = record.hourly_cost_usd
        found.append(
            BillingDeployment(
                record=record,
                hours=hours,
                hourly_cost_usd=rate,
                accumulated_usd=None if rate is None else round(rate * hours, 2),
            )
        )
    return found
