"""`TuningJob`: validate, upload, submit, follow, cancel and get the tuned model, on any backend.

Written once for all providers: a provider only implements primitives (`providers/base.py`).
Every state change is recorded in the `JobStore`, so a job survives a notebook restart
(`TuningJob.attach(job_id)`), and the intent to submit is recorded before the create call, so a
retried or repeated `submit()` never makes a second (paid) job.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from finetune_hub.checks.report import ValidationReport
from finetune_hub.errors import FinetuneHubError, JobFailed, ValidationError, WaitTimeout
from finetune_hub.issues import Severity
from finetune_hub.jobs.model import TunedModel
from finetune_hub.jobs.spec import JobSpec
from finetune_hub.providers.base import (
    DataRef,
    Provider,
    ProviderJob,
    call_with_retries,
    make_provider,
)
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, MetricPoint
from finetune_hub.store import JobRecord, JobStore, new_job_id


class TuningJob:
    """One fine-tuning job, described once, run on the backend named by `provider`.

    >>> job = fh.TuningJob(provider="openai", base_model="gpt-4.1-mini-2025-04-14",
    ...                    training_file="train.jsonl", hyperparameters={"epochs": 3})  # doctest: +SKIP
    >>> job.submit(); model = job.wait()  # doctest: +SKIP
    >>> model.chat([{"role": "user", "content": "hi"}])  # doctest: +SKIP
    """

    def __init__(
        self,
        provider: str | None = None,
        base_model: str | None = None,
        training_file: str | Path | None = None,
        *,
        validation_file: str | Path | None = None,
        method: str = "sft",
        hyperparameters: dict[str, Any] | None = None,
        suffix: str | None = None,
        format: str | None = None,
        options: dict[str, Any] | None = None,
        spec: JobSpec | None = None,
        store: JobStore | None = None,
        job_id: str | None = None,
    ) -> None:
        if spec is None:
            if provider is None or base_model is None or training_file is None:
                raise FinetuneHubError("TuningJob needs provider, base_model and training_file (or spec=)")
            spec = JobSpec(
                provider=provider,
                base_model=base_model,
                training_file=str(training_file),
                validation_file=str(validation_file) if validation_file is not None else None,
                method=method,
                hyperparameters=dict(hyperparameters or {}),
                suffix=suffix,
                format=format,
                options=dict(options or {}),
            )
        self.spec = spec
        self.store = store or JobStore()
        self.id = job_id or new_job_id()
        self._provider: Provider | None = None
        self._report: ValidationReport | None = None
        self.sleep: Callable[[float], None] = time.sleep  # replaceable in tests

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, *, store: JobStore | None = None, **overrides: Any) -> TuningJob:
        """A job from a YAML or TOML job file; keyword arguments override the file's fields."""
        spec = JobSpec.from_file(path)
        for key in ("hyperparameters", "options"):  # mappings merge: a flag changes one key, not all
            if key in overrides:
                overrides[key] = {**getattr(spec, key), **overrides[key]}
        if overrides:
            spec = spec.model_copy(update=overrides)
        return cls(spec=spec, store=store)

    @classmethod
    def attach(cls, job_id: str, *, store: JobStore | None = None, options: dict[str, Any] | None = None) -> TuningJob:
        """Re-attach to a job recorded in the store (after a restart, from another process).

        `options` adds what was not stored, such as an API key passed in code.

        >>> job = fh.TuningJob.attach("ftj_1a2b3c4d5e6f")  # doctest: +SKIP
        """
        store = store or JobStore()
        rec = store.require(job_id)
        spec = JobSpec(
            provider=rec.provider,
            base_model=rec.base_model,
            training_file=rec.training_file,
            validation_file=rec.validation_file,
            method=rec.method,
            hyperparameters=rec.hyperparameters,
            suffix=rec.suffix,
            options={**rec.options, **(options or {})},
        )
        return cls(spec=spec, store=store, job_id=job_id)

    # -- state ----------------------------------------------------------------------------------
    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = make_provider(self.spec.provider, self.spec.options)
        return self._provider

    @property
    def record(self) -> JobRecord | None:
        return self.store.get(self.id)

    @property
    def status(self) -> JobStatus:
        """The last known status (call `refresh()` to ask the provider)."""
        rec = self.record
        return rec.status if rec else JobStatus.PENDING

    @property
    def raw_status(self) -> str | None:
        rec = self.record
        return rec.raw_status if rec else None

    @property
    def provider_job_id(self) -> str | None:
        rec = self.record
        return rec.provider_job_id if rec else None

    @property
    def result(self) -> TunedModel | None:
        """The tuned model once the job has succeeded, else None."""
        rec = self.record
        if rec is None or rec.status is not JobStatus.SUCCEEDED or not rec.fine_tuned_model:
            return None
        return TunedModel(job=self, model_id=rec.fine_tuned_model)

    def __repr__(self) -> str:
        return f"<TuningJob {self.id} {self.spec.provider} {self.spec.base_model} {self.status.value}>"

    # -- validate and submit --------------------------------------------------------------------
    def validate(self) -> ValidationReport:
        """Check the data, hyperparameters and model/method support; nothing leaves the machine."""
        from finetune_hub.checks.validation import validate

        spec = self.spec
        report = validate(
            spec.training_file,
            spec.provider,
            spec.base_model,
            spec.method,
            validation_file=spec.validation_file,
            hyperparameters=spec.hyperparameters,
            format=spec.format,
            suffix=spec.suffix,
        )
        extra = self.provider.check(spec)
        if extra:
            report.errors.extend(i for i in extra if i.severity is Severity.ERROR)
            report.warnings.extend(i for i in extra if i.severity is not Severity.ERROR)
        self._report = report
        return report

    def submit(self) -> TuningJob:
        """Validate, upload and create the job. Refuses bad data (`fh.ValidationError` with the
        report) before anything is uploaded. Idempotent: calling it again, or after a crash, never
        creates a second provider job.
        """
        rec = self.record
        if rec is not None and rec.provider_job_id:
            return self
        report = self.validate()
        if not report.ok:
            raise ValidationError(report)
        provider = self.provider
        if rec is None:
            rec = self.store.create(
                JobRecord(
                    id=self.id,
                    provider=self.spec.provider,
                    base_model=self.spec.base_model,
                    method=self.spec.method,
                    training_file=self.spec.training_file,
                    validation_file=self.spec.validation_file,
                    hyperparameters=self.spec.hyperparameters,
                    suffix=self.spec.suffix,
                    options=provider.stored_options(),
                    credentials=provider.credentials_source(),
                    status=JobStatus.PENDING,
                )
            )
        refs = self._upload(rec)
        created = call_with_retries(lambda: self._create_once(refs), sleep=self.sleep)
        self.store.update(self.id, provider_job_id=created.id, submitted_at=_now())
        self._record_job(created)
        return self

    def _upload(self, rec: JobRecord) -> dict[str, DataRef]:
        refs = {k: DataRef(**v) for k, v in (rec.data_refs or {}).items()}
        for purpose, path in (("training", self.spec.training_file), ("validation", self.spec.validation_file)):
            if path is None or purpose in refs:
                continue
            refs[purpose] = call_with_retries(lambda p=path, u=purpose: self.provider.upload(p, u), sleep=self.sleep)
            self.store.update(self.id, data_refs={k: v.model_dump() for k, v in refs.items()})
        return refs

    def _create_once(self, refs: dict[str, DataRef]) -> ProviderJob:
        existing = self.provider.find(self.id)
        if existing is not None:
            return existing
        return self.provider.create(self.spec, refs, self.id)

    # -- follow ---------------------------------------------------------------------------------
    def refresh(self) -> JobStatus:
        """Ask the provider for the job's state; record any change in the store."""
        pid = self._require_submitted()
        job = call_with_retries(lambda: self.provider.get(pid), sleep=self.sleep)
        self._record_job(job)
        return job.status

    def _record_job(self, job: ProviderJob) -> None:
        self.store.record_status(self.id, job.status, job.raw_status)
        fields: dict[str, Any] = {}
        if job.fine_tuned_model:
            fields["fine_tuned_model"] = job.fine_tuned_model
        if job.error:
            fields["error"] = f"{job.error_code}: {job.error}" if job.error_code else job.error
        if fields:
            self.store.update(self.id, **fields)

    def wait(
        self,
        timeout: float | None = None,
        *,
        poll_interval: float = 10.0,
        max_interval: float = 60.0,
        progress: bool = True,
    ) -> TunedModel:
        """Poll until the job ends; return the `TunedModel` or raise `fh.JobFailed` with the
        provider's message. Non-terminal states (validating, queued, pending, paused) never end
        the wait. Polls back off (x1.5, with jitter) from `poll_interval` to `max_interval`.
        `timeout` raises `fh.WaitTimeout`; the job itself goes on.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll_interval
        with _Progress(self, enabled=progress) as bar:
            while True:
                status = self.refresh()
                bar.update(status, self._latest_event() if bar.active else None)
                if status.is_terminal:
                    return self._outcome()
                pause = interval * random.uniform(0.8, 1.2)
                if deadline is not None and time.monotonic() + pause > deadline:
                    raise WaitTimeout(f"job {self.id} is still {status.value} after {timeout:g} s; call wait() again to keep following it")
                self.sleep(pause)
                interval = min(max_interval, interval * 1.5)

    async def wait_async(
        self,
        timeout: float | None = None,
        *,
        poll_interval: float = 10.0,
        max_interval: float = 60.0,
        gate: asyncio.Semaphore | None = None,
    ) -> TunedModel:
        """The async twin of `wait()`: the same policy, sleeping with `asyncio.sleep`. `gate`
        bounds how many provider calls run at once across jobs (see `wait_all`).

        >>> model = await job.wait_async()  # doctest: +SKIP
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = poll_interval
        while True:
            if gate is None:
                status = await asyncio.to_thread(self.refresh)
            else:
                async with gate:
                    status = await asyncio.to_thread(self.refresh)
            if status.is_terminal:
                return self._outcome()
            pause = interval * random.uniform(0.8, 1.2)
            if deadline is not None and loop.time() + pause > deadline:
                raise WaitTimeout(f"job {self.id} is still {status.value} after {timeout:g} s")
            await asyncio.sleep(pause)
            interval = min(max_interval, interval * 1.5)

    def _outcome(self) -> TunedModel:
        rec = self.store.require(self.id)
        if rec.status is JobStatus.SUCCEEDED:
            model = self.result
            if model is None:
                raise JobFailed(self.id, self.spec.provider, "the job succeeded but reported no model id")
            return model
        message = rec.error or f"the job ended {rec.status.value} ({rec.raw_status})"
        code, _, text = message.partition(": ") if rec.error and ": " in rec.error else (None, "", message)
        raise JobFailed(self.id, self.spec.provider, text, code=code, status=rec.status.value)

    def events(self) -> list[JobEvent]:
        """All events seen so far (fetches new ones from the provider first), oldest first."""
        pid = self._require_submitted()
        seen = self.store.events(self.id)
        after = seen[-1].id if seen else None
        new = call_with_retries(lambda: self.provider.events(pid, after=after), sleep=self.sleep)
        self.store.add_events(self.id, new)
        return self.store.events(self.id)

    def _latest_event(self) -> str | None:
        try:
            events = self.events()
        except FinetuneHubError:
            return None
        return events[-1].message if events else None

    def metrics(self) -> list[MetricPoint]:
        """Training metrics (step, epoch, losses, accuracies) as the provider reports them."""
        pid = self._require_submitted()
        return call_with_retries(lambda: self.provider.metrics(pid), sleep=self.sleep)

    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints the provider kept (each usable as a model id), oldest step first."""
        pid = self._require_submitted()
        return call_with_retries(lambda: self.provider.checkpoints(pid), sleep=self.sleep)

    def cancel(self) -> JobStatus:
        """Ask the provider to cancel; returns the state right after."""
        pid = self._require_submitted()
        call_with_retries(lambda: self.provider.cancel(pid), sleep=self.sleep)
        return self.refresh()

    def _require_submitted(self) -> str:
        pid = self.provider_job_id
        if pid is None:
            raise FinetuneHubError(f"job {self.id} has not been submitted yet; call submit() first")
        return pid


def wait_all(
    jobs: Iterable[TuningJob],
    *,
    timeout: float | None = None,
    poll_interval: float = 10.0,
    max_interval: float = 60.0,
    concurrency: int = 8,
) -> list[TunedModel | BaseException]:
    """Follow many jobs at once, at most `concurrency` provider calls in flight; returns, per job,
    its `TunedModel` or the exception that ended its wait (`JobFailed`, `WaitTimeout`, ...).

    >>> results = fh.wait_all([job_a, job_b], timeout=3600)  # doctest: +SKIP
    """

    async def run() -> list[TunedModel | BaseException]:
        gate = asyncio.Semaphore(concurrency)
        waits = (
            job.wait_async(timeout, poll_interval=poll_interval, max_interval=max_interval, gate=gate) for job in jobs
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


class _Progress:
    """A one-line live status (state + latest event) in terminals and notebooks; silent otherwise."""

    def __init__(self, job: TuningJob, enabled: bool) -> None:
        self.job = job
        self.enabled = enabled
        self._status: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console

            console = Console(stderr=True)
            if console.is_terminal or console.is_jupyter:
                self._status = console.status(f"{self.job.id}: submitting")
                self._status.__enter__()
        return self

    @property
    def active(self) -> bool:
        """True when a live line is shown (a terminal or a notebook)."""
        return self._status is not None

    def update(self, status: JobStatus, event: str | None) -> None:
        if self._status is not None:
            raw = self.job.raw_status
            tail = f" — {event}" if event else ""
            self._status.update(f"{self.job.id} on {self.job.spec.provider}: {status.value} ({raw}){tail}")

    def __exit__(self, *exc: Any) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
