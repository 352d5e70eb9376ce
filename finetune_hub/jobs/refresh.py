"""Bulk refresh: every unfinished job asked about at once, within a concurrency bound and each
provider's rate limit, returning what changed; and a feed of changes for live views.

One job's failure never stops the others: errors are collected per job, never raised out of
the loop. Changes are handed to `on_change` on the calling thread as each job finishes (safe
for a UI), and `follow_changes` turns rounds of refreshes into one generator.

>>> result = fh.refresh_all(concurrency=8, rate_limits={"openai": 5})  # doctest: +SKIP
>>> [(c.job_id, c.old_status.value, c.new_status.value) for c in result.changed]  # doctest: +SKIP
[('ftj_1a2b3c4d5e6f', 'queued', 'running')]
>>> for change in fh.follow_changes(interval=30):  # doctest: +SKIP
...     print(change)
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from pydantic import BaseModel, Field

from finetune_hub.errors import FinetuneHubError, ProviderError
from finetune_hub.jobs.guardrails import ON_STALL, cancel_for_guardrail
from finetune_hub.jobs.stalls import StallNotice, check_guardrails
from finetune_hub.status import TERMINAL, JobStatus
from finetune_hub.store import JobRecord, JobStore

#: Provider calls per second when `rate_limits` names no rate for a provider.
DEFAULT_RATE = 5.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobChange(BaseModel):
    """One job's state as a refresh found it changed (status or raw status)."""

    job_id: str
    provider: str
    provider_job_id: str | None = None
    old_status: JobStatus
    new_status: JobStatus
    raw_status: str | None = None
    fine_tuned_model: str | None = None
    error: str | None = None
    new_events: int = 0
    at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __str__(self) -> str:
        tail = f" ({self.raw_status})" if self.raw_status else ""
        return f"{self.job_id} on {self.provider}: {self.old_status.value} -> {self.new_status.value}{tail}"


class RefreshError(BaseModel):
    """Why one job could not be refreshed this time."""

    job_id: str
    provider: str
    error_type: str
    message: str
    retryable: bool = False

    def __str__(self) -> str:
        return f"{self.job_id} on {self.provider}: {self.error_type}: {self.message}"


class RefreshResult(BaseModel):
    """What one bulk refresh did: how many jobs it asked about, what changed, what failed, and
    which unfinished jobs are stalled (`jobs/stalls.py`)."""

    checked: int = 0
    changed: list[JobChange] = Field(default_factory=list)
    errors: list[RefreshError] = Field(default_factory=list)
    new_events: int = 0
    stalled: list[StallNotice] = Field(default_factory=list)

    def __str__(self) -> str:
        stalled = f", {len(self.stalled)} stalled" if self.stalled else ""
        return (
            f"checked {self.checked} jobs: {len(self.changed)} changed, {len(self.errors)} errors, "
            f"{self.new_events} new events{stalled}"
        )


class RateLimiter:
    """At most `rate` acquisitions per second, spaced evenly, shared by threads.

    `clock` and `sleep` are injectable, so tests count pauses instead of waiting.

    >>> limiter = RateLimiter(2.0, clock=lambda: 0.0, sleep=lambda s: None)
    >>> [limiter.acquire() for _ in range(3)]
    [0.0, 0.5, 1.0]
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"a rate limit is a number of calls per second above 0, not {rate}")
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next = None  # type: float | None
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for the next slot; returns the pause taken (seconds)."""
        with self._lock:
            now = self.clock()
            start = now if self._next is None else max(now, self._next)
            self._next = start + self.interval
        pause = start - now
        if pause > 0:
            self.sleep(pause)
        return pause


def unfinished_jobs(store: JobStore, provider: str | None = None) -> list[JobRecord]:
    """Jobs a refresh asks about: submitted (they have a provider job id) and not finished."""
    open_states = [s for s in JobStatus if s not in TERMINAL]
    return [r for r in store.list(provider=provider, status=open_states) if r.provider_job_id]


def refresh_all(
    *,
    store: JobStore | None = None,
    provider: str | None = None,
    job_ids: Iterable[str] | None = None,
    concurrency: int = 8,
    rate_limits: Mapping[str, float] | None = None,
    default_rate: float = DEFAULT_RATE,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    events: bool = True,
    metrics: bool = True,
    on_change: Callable[[JobChange], None] | None = None,
    stall_after: float | None = None,
    on_stall: str = "warn",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], dt.datetime] = _now,
) -> RefreshResult:
    """Ask the providers about every unfinished job in the store (or `job_ids`), at most
    `concurrency` at once and at most `rate_limits[provider]` calls per second per provider
    (`default_rate` for the rest), recording each state, new events and metrics, and
    `checked_at`. Returns what changed and, per job, what failed: nothing is raised.

    `options` adds per-provider options not kept in the store (an API key passed in code):
    `options={"openai": {"api_key": key}}`. `on_change` is called on this thread as each
    changed job comes back.

    With `events` on, each unfinished job is also checked for a stall (no state change and no
    new event for the provider's `stall_after`, or the `stall_after` seconds given) and for a
    spent `submit(max_duration=...)`: such jobs are listed in `result.stalled` and marked in the
    store, as `wait()` marks them. `on_stall="cancel"` also cancels them, recording why and what
    the provider still charges (`notice.cancelled`), for a cron job that nobody watches.

    >>> result = fh.refresh_all(rate_limits={"bedrock": 2})  # doctest: +SKIP
    >>> print(result)  # doctest: +SKIP
    checked 12 jobs: 3 changed, 1 errors, 40 new events
    """
    from finetune_hub.jobs.tuning_job import TuningJob

    if on_stall not in ON_STALL:
        raise ValueError(f"on_stall must be one of {', '.join(ON_STALL)}, not {on_stall!r}")
    store = store or JobStore()
    if job_ids is None:
        records = unfinished_jobs(store, provider)
    else:
        records = [store.require(i) for i in job_ids]
    limits: dict[str, RateLimiter] = {}
    backends: dict[str, Any] = {}
    lock = threading.Lock()

    def limiter(name: str) -> RateLimiter:
        with lock:
            if name not in limits:
                rate = (rate_limits or {}).get(name, default_rate)
                limits[name] = RateLimiter(rate, clock=clock, sleep=sleep)
            return limits[name]

    def job_for(rec: JobRecord) -> TuningJob:
        extra = dict((options or {}).get(rec.provider, {}))
        job = TuningJob.attach(rec.id, store=store, options=extra)
        job.sleep = sleep
        key = rec.provider + json.dumps({**rec.options, **_plain(extra)}, sort_keys=True)
        with lock:
            if key not in backends:
                backends[key] = job.backend
        job._backend = backends[key]
        return job

    def one(rec: JobRecord) -> tuple[JobChange | None, int, StallNotice | None]:
        job = job_for(rec)
        gate = limiter(rec.provider)
        gate.acquire()
        try:
            status = job.refresh()
        except ProviderError as exc:
            if exc.status_code == 404:  # gone at the provider: prune can clear it
                store.update(rec.id, extra={**rec.extra, "gone_at": _now().isoformat()})
            raise
        finally:
            store.mark_checked(rec.id)
        new_events = 0
        if events:
            before = len(store.events(rec.id))
            gate.acquire()
            new_events = len(job.events()) - before
        if metrics and (status is JobStatus.RUNNING or status.is_terminal):
            gate.acquire()
            store.add_metrics(rec.id, job.metrics())
        now_rec = store.require(rec.id)
        stall = (
            check_guardrails(store, now_rec, now=now(), stall_after=stall_after) if events else None
        )
        if stall is not None and on_stall == "cancel":
            gate.acquire()
            after, _ = cancel_for_guardrail(job, stall.kind, stall.message)
            stall.cancelled = after is not JobStatus.SUCCEEDED
            now_rec = store.require(rec.id)
        if (now_rec.status, now_rec.raw_status) == (rec.status, rec.raw_status):
            return None, new_events, stall
        change = JobChange(
            job_id=rec.id,
            provider=rec.provider,
            provider_job_id=rec.provider_job_id,
            old_status=rec.status,
            new_status=now_rec.status,
            raw_status=now_rec.raw_status,
            fine_tuned_model=now_rec.fine_tuned_model,
            error=now_rec.error,
            new_events=new_events,
        )
        return change, new_events, stall

    result = RefreshResult(checked=len(records))
    if not records:
        return result
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(one, rec): rec for rec in records}
        for future in as_completed(futures):
            rec = futures[future]
            try:
                change, new_events, stall = future.result()
            except Exception as exc:  # collected per job: one failure never stops the rest
                result.errors.append(_error(rec, exc))
                continue
            result.new_events += new_events
            if stall is not None:
                result.stalled.append(stall)
            if change is not None:
                result.changed.append(change)
                if on_change is not None:
                    on_change(change)
    return result


def follow_changes(
    *,
    interval: float = 30.0,
    rounds: int | None = None,
    store: JobStore | None = None,
    on_error: Callable[[RefreshError], None] | None = None,
    on_stall: Callable[[StallNotice], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **refresh_options: Any,
) -> Iterator[JobChange]:
    """Refresh every `interval` seconds and yield each change as it is found, until no job is
    left unfinished (or after `rounds` refreshes). Errors go to `on_error` (and the round goes
    on); a job found stalled goes to `on_stall` once per stall. Keyword arguments are those of
    `refresh_all`.

    >>> for change in fh.follow_changes(interval=60, rate_limits={"openai": 2}):  # doctest: +SKIP
    ...     print(change)
    ftj_1a2b3c4d5e6f on openai: queued -> running (running)
    """
    store = store or JobStore()
    done = 0
    while rounds is None or done < rounds:
        found: list[JobChange] = []
        result = refresh_all(store=store, on_change=found.append, sleep=sleep, **refresh_options)
        done += 1
        yield from found
        for error in result.errors:
            if on_error is not None:
                on_error(error)
        for stall in result.stalled:
            if on_stall is not None and stall.first_seen:
                on_stall(stall)
        if not unfinished_jobs(store, refresh_options.get("provider")):
            return
        if rounds is None or done < rounds:
            sleep(interval)


def _error(rec: JobRecord, exc: BaseException) -> RefreshError:
    retryable = isinstance(exc, ProviderError) and exc.retryable
    message = exc.message if isinstance(exc, ProviderError) else str(exc)
    kind = (
        type(exc).__name__
        if isinstance(exc, FinetuneHubError)
        else f"unexpected {type(exc).__name__}"
    )
    return RefreshError(
        job_id=rec.id, provider=rec.provider, error_type=kind, message=message, retryable=retryable
    )


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool) else repr(type(v))
        for k, v in options.items()
    }
