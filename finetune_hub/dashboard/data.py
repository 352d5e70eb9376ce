"""What the dashboard shows, read from the store: rows of jobs, one job's loss curve, and the
deployments still billing. Plain functions returning JSON-ready dicts, so the web app stays a
thin layer and tests can check the numbers without a browser.

>>> rows = job_rows(JobStore())  # doctest: +SKIP
>>> rows[0]["status"], rows[0]["progress"]  # doctest: +SKIP
('running', {'fraction': 0.4, 'text': 'step 40/100'})
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from finetune_hub.jobs.guardrails import guardrail_mark
from finetune_hub.jobs.housekeeping import billing_deployments
from finetune_hub.jobs.reap import expiry_text
from finetune_hub.status import JobStatus
from finetune_hub.store import JobStore

_OF = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")


def progress(status: JobStatus, latest_event: str | None, last_step: int | None) -> dict[str, Any]:
    """How far a job is: done when it succeeded; `N/M` when its latest event says so (most
    providers log "Step 40/100"); else the last step with metrics; else nothing known.

    >>> progress(JobStatus.RUNNING, "Step 40/100: training loss=0.61", 40)
    {'fraction': 0.4, 'text': 'step 40/100'}
    >>> progress(JobStatus.RUNNING, "state running", 7)
    {'fraction': None, 'text': 'step 7'}
    """
    if status is JobStatus.SUCCEEDED:
        return {"fraction": 1.0, "text": "done"}
    match = _OF.search(latest_event or "")
    if match and int(match.group(2)) > 0:
        done, total = int(match.group(1)), int(match.group(2))
        return {"fraction": min(1.0, done / total), "text": f"step {done}/{total}"}
    if last_step is not None:
        return {"fraction": None, "text": f"step {last_step}"}
    return {"fraction": None, "text": ""}


def _seconds(delta: dt.timedelta) -> int:
    return max(0, int(delta.total_seconds()))


def job_rows(store: JobStore, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every job, newest first, with status, age and last update (seconds), progress, its
    latest event and its guardrail mark (`stalled 3h`, `over max_duration`, `cancelled: stalled`
    or "")."""
    now = now or dt.datetime.now(dt.UTC)
    records = store.list()
    latest = store.latest_events(r.id for r in records)
    rows = []
    for r in records:
        event = latest.get(r.id)
        points = store.metrics(r.id) if not r.status.is_terminal else []
        last_step = points[-1].step if points else None
        rows.append(
            {
                "id": r.id,
                "provider": r.provider,
                "base_model": r.base_model,
                "status": r.status.value,
                "raw_status": r.raw_status,
                "provider_job_id": r.provider_job_id,
                "model": r.fine_tuned_model,
                "error": r.error,
                "created_at": r.created_at.isoformat(),
                "age_seconds": _seconds(now - r.created_at),
                "updated_seconds": _seconds(now - r.updated_at),
                "checked_seconds": None if r.checked_at is None else _seconds(now - r.checked_at),
                "latest_event": None if event is None else event.message,
                "progress": progress(r.status, None if event is None else event.message, last_step),
                "guardrail": guardrail_mark(r, now=now),
            }
        )
    return rows


def loss_curve(store: JobStore, job_id: str) -> dict[str, Any]:
    """A job's stored metrics as series by step: training and validation loss."""
    points = store.metrics(job_id)
    return {
        "job_id": job_id,
        "steps": [p.step for p in points],
        "train_loss": [p.train_loss for p in points],
        "valid_loss": [p.valid_loss for p in points],
    }


def deployment_rows(store: JobStore, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Deployments still billing, with hourly and accumulated cost, when each expires
    (`deploy(..., ttl=...)`: `in 3h`, `expired 2h ago`, or None), and the totals."""
    now = now or dt.datetime.now(dt.UTC)
    billing = billing_deployments(store, now=now)
    rows = [
        {
            "id": d.record.id,
            "name": d.record.name,
            "provider": d.record.provider,
            "kind": d.record.kind,
            "model": d.record.model,
            "job_id": d.record.job_id,
            "status": d.record.status,
            "hours": round(d.hours, 2),
            "hourly_usd": d.hourly_cost_usd,
            "accumulated_usd": d.accumulated_usd,
            "expires": None
            if d.record.expires_at is None
            else expiry_text(d.record.expires_at, now),
            "expired": d.record.expires_at is not None and d.record.expires_at <= now,
        }
        for d in billing
    ]
    return {
        "deployments": rows,
        "hourly_usd": round(sum(d.hourly_cost_usd or 0 for d in billing), 2),
        "accumulated_usd": round(sum(d.accumulated_usd or 0 for d in billing), 2),
        "unknown_prices": sum(1 for d in billing if d.hourly_cost_usd is None),
        "expired": sum(1 for row in rows if row["expired"]),
    }
