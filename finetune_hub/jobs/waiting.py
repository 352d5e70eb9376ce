"""Following a submitted job to its end: `job.wait()`, `job.wait_async()` and `fh.wait_all`.

One poll refreshes the job, or rides out a provider that cannot be reached by keeping the last
known state; the stall watch (jobs/guardrails.py) sees every poll; the schedule is
`backoff.poll` / `poll_async`. How a wait ends: the `TunedModel`, `fh.JobFailed` with the
provider's message, or `fh.WaitTimeout` (the job itself goes on).

>>> model = job.wait(timeout=3600)  # doctest: +SKIP
>>> results = fh.wait_all([job_a, job_b])  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from finetune_hub.backoff import Backoff, poll, poll_async
from finetune_hub.errors import FinetuneHubError, JobFailed, ProviderError, WaitTimeout
from finetune_hub.jobs.progress import Progress
from finetune_hub.status import JobStatus
from finetune_hub.store.records import now

if TYPE_CHECKING:
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.tuning_job import TuningJob


def wait(
    job: TuningJob,
    timeout: float | None,
    *,
    poll_interval: float,
    max_interval: float,
    progress: bool,
    on_stall: str,
    stall_after: float | dt.timedelta | None,
) -> TunedModel:
    """`job.wait(...)`: poll with `job.sleep` until the job ends, showing progress."""
    from finetune_hub.jobs.guardrails import StallWatch

    with Progress(job, enabled=progress) as bar:
        watch = StallWatch(job, on_stall=on_stall, stall_after=stall_after, bar=bar)
        poll(
            lambda: watch(poll_once(job, bar)),
            lambda s: s.is_terminal,
            backoff=_schedule(job, poll_interval, max_interval),
            timeout=timeout,
            sleep=job.sleep,
            on_timeout=_timeout_error(job, timeout),
        )
    return outcome(job)


async def wait_async(
    job: TuningJob,
    timeout: float | None,
    *,
    poll_interval: float,
    max_interval: float,
    gate: asyncio.Semaphore | None,
    on_stall: str,
    stall_after: float | dt.timedelta | None,
) -> TunedModel:
    """`job.wait_async(...)`: the same schedule with `asyncio.sleep`, each poll in a thread."""
    from finetune_hub.jobs.guardrails import StallWatch

    watch = StallWatch(job, on_stall=on_stall, stall_after=stall_after)

    async def fetch() -> JobStatus:
        if gate is None:
            return await asyncio.to_thread(lambda: watch(poll_once(job)))
        async with gate:
            return await asyncio.to_thread(lambda: watch(poll_once(job)))

    await poll_async(
        fetch,
        lambda s: s.is_terminal,
        backoff=_schedule(job, poll_interval, max_interval),
        timeout=timeout,
        on_timeout=_timeout_error(job, timeout),
    )
    return outcome(job)


def poll_once(job: TuningJob, bar: Progress | None = None) -> JobStatus:
    """One poll of a wait: refresh, or ride out a provider that cannot be reached (429, 5xx,
    timeouts, dropped connections, already retried) by keeping the last known state, noted
    as "provider unreachable since ...". Only a non-retryable error (401, 403, 404) ends the
    wait from here."""
    try:
        status = job.refresh()
    except ProviderError as exc:
        if not exc.retryable:
            raise
        job._unreachable_since = job._unreachable_since or now()
        since = job._unreachable_since.strftime("%H:%M:%S UTC")
        note = f"provider unreachable since {since}: {exc.message}"
        if bar is not None:
            bar.update(job.status, note)
        status = job.status
        return JobStatus.UNKNOWN if status.is_terminal else status
    job._unreachable_since = None
    if bar is not None:
        bar.update(status, _latest_event(job) if bar.active else None)
    return status


def outcome(job: TuningJob) -> TunedModel:
    """How an ended job's wait ends: its `TunedModel`, or `fh.JobFailed` saying why."""
    rec = job.store.require(job.id)
    if rec.status is JobStatus.SUCCEEDED:
        model = job.result
        if model is None:
            raise JobFailed(job.id, job.spec.provider, "the job succeeded but reported no model id")
        return model
    message = rec.error or f"the job ended {rec.status.value} ({rec.raw_status})"
    raise JobFailed(
        job.id, job.spec.provider, message, code=rec.error_code, status=rec.status.value
    )


def wait_all(
    jobs: Iterable[TuningJob],
    *,
    timeout: float | None = None,
    poll_interval: float = 10.0,
    max_interval: float = 60.0,
    concurrency: int = 8,
    on_stall: str = "warn",
    stall_after: float | dt.timedelta | None = None,
) -> list[TunedModel | BaseException]:
    """Follow many jobs at once, at most `concurrency` provider calls in flight; returns, per job,
    its `TunedModel` or the exception that ended its wait (`JobFailed`, `WaitTimeout`, ...).
    `on_stall` and `stall_after` hold each job to the guardrails as `wait()` does: a job
    cancelled for a stall or a spent `max_duration` ends with its `JobFailed`, the others go on.

    >>> results = fh.wait_all([job_a, job_b], timeout=3600, on_stall="cancel")  # doctest: +SKIP
    """

    async def run() -> list[TunedModel | BaseException]:
        gate = asyncio.Semaphore(concurrency)
        waits = (
            job.wait_async(
                timeout,
                poll_interval=poll_interval,
                max_interval=max_interval,
                gate=gate,
                on_stall=on_stall,
                stall_after=stall_after,
            )
            for job in jobs
        )
        return await asyncio.gather(*waits, return_exceptions=True)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    # Called from inside an event loop (a Jupyter cell): run ours in a worker thread.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _schedule(job: TuningJob, poll_interval: float, max_interval: float) -> Backoff:
    """The job's backoff shape (`job.backoff`) between the wait's own first and longest pause."""
    return Backoff(poll_interval, max_interval, job.backoff.factor, job.backoff.jitter)


def _timeout_error(job: TuningJob, timeout: float | None) -> Callable[[JobStatus], WaitTimeout]:
    def make(status: JobStatus) -> WaitTimeout:
        return WaitTimeout(
            f"job {job.id} is still {status.value} after {timeout:g} s; "
            "call wait() again to keep following it"
        )

    return make


def _latest_event(job: TuningJob) -> str | None:
    """The newest event's message for the progress line; none when events cannot be read."""
    try:
        events = job.events()
    except FinetuneHubError:
        return None
    return events[-1].message if events else None
