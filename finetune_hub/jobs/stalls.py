"""Stalls and spent time budgets seen from the store, for `refresh_all` (cron, dashboards,
`finetune-hub refresh`): no `wait()` needs to be running for a stuck job to be noticed.

A job is stalled when neither its state nor its event log has moved for the provider's
`stall_after` (the same rule as `wait()`'s, `[guardrails.stall]` in the rules data). The last
move is the latest of: the job's submission, its last recorded state change, its newest stored
event. A stall found here is written to the store exactly as `wait()` writes one
(`extra.stalled`), so `finetune-hub jobs`, the dashboard and `guardrail_mark` show it, and it is
cleared once the job moves again. A job past its `submit(max_duration=...)` deadline is noticed
the same way (`extra.over_max_duration`), moving or not. Nothing is cancelled here:
`refresh_all(on_stall="cancel")` and `wait(on_stall="cancel")` do that with what this finds.

>>> notice = check_stall(store, store.require("ftj_1a2b3c4d5e6f"))  # doctest: +SKIP
>>> print(notice)  # doctest: +SKIP
ftj_1a2b3c4d5e6f on bedrock: no state change and no new event for 9h 12m (still running) ...
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pydantic import BaseModel

from finetune_hub.jobs.guardrails import (
    BUDGET_KEY,
    OVER_BUDGET,
    OVER_KEY,
    STALL_KEY,
    STALLED,
    budget_text,
    log,
    stall_rule,
    stall_text,
)
from finetune_hub.status import JobEvent, JobStatus

if TYPE_CHECKING:
    from finetune_hub.store import JobRecord, JobStore


class StallNotice(BaseModel):
    """One job found stalled (`kind` "stalled") or past its time budget
    ("max_duration_exceeded"): for how long, against which rule, and the message shown."""

    kind: str = STALLED
    job_id: str
    provider: str
    status: JobStatus
    raw_status: str | None = None
    since_at: dt.datetime
    stalled_for_s: float
    stall_after_s: float
    message: str
    first_seen: bool = False  # this check noticed it (and warned); later checks repeat it quietly
    cancelled: bool = False  # refresh_all(on_stall="cancel") cancelled the job for it

    def __str__(self) -> str:
        return self.message


def last_move(
    store: JobStore, record: JobRecord, latest_event: JobEvent | None = None
) -> dt.datetime:
    """When the job last moved: submitted, changed state, or logged an event (whichever is
    latest). `latest_event` saves a query when the caller has it already."""
    times = [record.submitted_at or record.created_at]
    transitions = store.transitions(record.id)
    if transitions:
        times.append(transitions[-1].at)
    event = latest_event or store.latest_events([record.id]).get(record.id)
    if event is not None:
        times.append(event.created_at)
    return max(_aware(t) for t in times)


def check_stall(
    store: JobStore,
    record: JobRecord,
    *,
    now: dt.datetime | None = None,
    stall_after: float | None = None,
) -> StallNotice | None:
    """The job's stall, noted in the store the first time it is seen (a warning on the
    `finetune_hub.guardrails` logger), or None; a stall noted earlier is cleared once the job
    has moved since. `stall_after` (seconds) overrides the provider's rule; a provider without
    one is never declared stalled.

    >>> check_stall(store, record, now=later)  # doctest: +SKIP
    StallNotice(job_id='ftj_...', provider='bedrock', status=<JobStatus.RUNNING: 'running'>, ...)
    """
    if record.status.is_terminal or not record.provider_job_id:
        return None
    now = _aware(now or dt.datetime.now(dt.UTC))
    rule = stall_rule(record.provider)
    after = stall_after if stall_after is not None else rule.value
    cite = "given to refresh_all()" if stall_after is not None else rule.cite
    since = last_move(store, record)
    note = record.extra.get(STALL_KEY)
    quiet = (now - since).total_seconds()
    if after is None or quiet < float(after):
        if isinstance(note, dict) and _moved_after(note, since):
            extra = {k: v for k, v in record.extra.items() if k != STALL_KEY}
            store.update(record.id, extra=extra)
            log.info("%s is moving again (%s)", record.id, record.status.value)
        return None
    message = stall_text(record, record.status, quiet, float(after), cite)
    notice = StallNotice(
        job_id=record.id,
        provider=record.provider,
        status=record.status,
        raw_status=record.raw_status,
        since_at=since,
        stalled_for_s=quiet,
        stall_after_s=float(after),
        message=message,
    )
    if not isinstance(note, dict) or _moved_after(note, since):  # a new stall: warn once
        notice.first_seen = True
        log.warning("%s", message)
        fields = {
            "since_at": since.isoformat(),
            "stalled_for_s": quiet,
            "stall_after_s": float(after),
            "noticed_at": now.isoformat(),
            "message": message,
        }
        store.update(record.id, extra={**record.extra, STALL_KEY: fields})
    return notice


def _moved_after(note: dict, since: dt.datetime) -> bool:
    """True when the job's last move is later than the stall that `note` records."""
    try:
        noted = _aware(dt.datetime.fromisoformat(str(note["since_at"])))
    except (KeyError, TypeError, ValueError):
        return True  # a note we cannot read is not worth keeping once the job is not stalled
    return since > noted


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def check_budget(
    store: JobStore, record: JobRecord, *, now: dt.datetime | None = None
) -> StallNotice | None:
    """The job's spent time budget (`submit(max_duration=...)`), noted in the store the first
    time it is seen (a warning), or None: no budget, not yet spent, or the job has ended.

    >>> check_budget(store, record, now=later)  # doctest: +SKIP
    StallNotice(kind='max_duration_exceeded', job_id='ftj_...', ...)
    """
    budget = record.extra.get(BUDGET_KEY)
    if record.status.is_terminal or not isinstance(budget, dict):
        return None
    try:
        deadline = _aware(dt.datetime.fromisoformat(str(budget["deadline_at"])))
        allowed = float(budget["seconds"])
    except (KeyError, TypeError, ValueError):
        return None
    now = _aware(now or dt.datetime.now(dt.UTC))
    if now < deadline:
        return None
    spent = allowed + (now - deadline).total_seconds()
    message = budget_text(record, record.status, spent, allowed)
    notice = StallNotice(
        kind=OVER_BUDGET,
        job_id=record.id,
        provider=record.provider,
        status=record.status,
        raw_status=record.raw_status,
        since_at=deadline - dt.timedelta(seconds=allowed),
        stalled_for_s=spent,
        stall_after_s=allowed,
        message=message,
    )
    if OVER_KEY not in record.extra:
        notice.first_seen = True
        log.warning("%s", message)
        note = {"noticed_at": now.isoformat(), "message": message}
        store.update(record.id, extra={**record.extra, OVER_KEY: note})
    return notice


def check_guardrails(
    store: JobStore,
    record: JobRecord,
    *,
    now: dt.datetime | None = None,
    stall_after: float | None = None,
) -> StallNotice | None:
    """A spent time budget first (it counts even while the job moves), else a stall."""
    over = check_budget(store, record, now=now)
    if over is not None:
        return over
    return check_stall(store, record, now=now, stall_after=stall_after)  # untouched if in budget
