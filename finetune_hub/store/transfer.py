"""Moving a store's contents: copy one store into another (a user's SQLite file into the team's
PostgreSQL database), and export a store as JSON.

`finetune-hub store migrate --to postgresql://...` and `finetune-hub store export` call these.
Copying is safe to repeat: what the target has already (by job or deployment id) is left as it
is and counted as skipped, so an interrupted copy is finished by running it again.

>>> summary = copy_store(JobStore(), JobStore(url="postgresql://fh@db/hub"))  # doctest: +SKIP
>>> print(summary)  # doctest: +SKIP
copied 42 jobs (0 already there) and 3 deployments (0 already there)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from finetune_hub.store.job_store import JobStore
from finetune_hub.store.records import now
from finetune_hub.store.tables import SCHEMA_VERSION


class CopySummary(BaseModel):
    """What `copy_store` did."""

    source: str
    target: str
    jobs_copied: int = 0
    jobs_skipped: int = 0
    deployments_copied: int = 0
    deployments_skipped: int = 0

    def __str__(self) -> str:
        return (
            f"copied {self.jobs_copied} jobs ({self.jobs_skipped} already there) and "
            f"{self.deployments_copied} deployments ({self.deployments_skipped} already there) "
            f"from {self.source} to {self.target}"
        )


def copy_store(
    source: JobStore, target: JobStore, progress: Callable[[int, int], None] | None = None
) -> CopySummary:
    """Copy every job (with its transitions, events and metrics, as they were) and every
    deployment record from `source` into `target`; one transaction per job. `progress(done,
    total)` is called after each job."""
    summary = CopySummary(source=source.location, target=target.location)
    jobs = source.list()
    for done, record in enumerate(reversed(jobs), 1):  # oldest first, as they were made
        copied = target.import_job(
            record,
            source.transitions(record.id),
            source.events(record.id),
            source.metrics(record.id),
        )
        if copied:
            summary.jobs_copied += 1
        else:
            summary.jobs_skipped += 1
        if progress is not None:
            progress(done, len(jobs))
    for deployment in reversed(source.list_deployments(active_only=False)):
        if target.import_deployment(deployment):
            summary.deployments_copied += 1
        else:
            summary.deployments_skipped += 1
    return summary


def export_store(store: JobStore, *, since: dt.datetime | None = None) -> dict[str, Any]:
    """The store as one JSON-ready dict: every job (newest first) with its transitions, events
    and metrics, and every deployment (deleted ones too). Secret-free, as the store is.

    >>> data = export_store(JobStore())  # doctest: +SKIP
    >>> sorted(data)  # doctest: +SKIP
    ['deployments', 'exported_at', 'jobs', 'schema_version', 'store']
    """
    jobs = []
    for record in store.list():
        if since is not None and record.updated_at < since:
            continue
        jobs.append(
            {
                **record.model_dump(mode="json"),
                "transitions": [t.model_dump(mode="json") for t in store.transitions(record.id)],
                "events": [e.model_dump(mode="json") for e in store.events(record.id)],
                "metrics": [m.model_dump(mode="json") for m in store.metrics(record.id)],
            }
        )
    return {
        "store": store.location,
        "schema_version": SCHEMA_VERSION,
        "exported_at": now().isoformat(),
        "jobs": jobs,
        "deployments": [
            d.model_dump(mode="json") for d in store.list_deployments(active_only=False)
        ],
    }
