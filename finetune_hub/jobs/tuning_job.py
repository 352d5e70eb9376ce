"""`TuningJob`: validate, upload, submit, follow, cancel and get the tuned model, on any backend.

Written once for all providers: a backend only implements primitives (`providers/base.py`).
Every state change is recorded in the `JobStore`, so a job survives a notebook restart
(`TuningJob.attach(job_id)`), and the intent to submit is recorded before the create call, so a
retried or repeated `submit()` never makes a second (paid) job. Every call into a backend goes
through one boundary (`_call`): retries for what may pass, and anything raised below it arrives
as a `fh.ProviderError` (recorded on the job when it ends a submit).

The class keeps the public methods and their docstrings; whole steps live beside it:
jobs/spec_sources.py (the spec), jobs/local_checks.py (validate, cost), jobs/submission.py
(upload and create), jobs/recording.py (the provider's answers into the store) and
jobs/waiting.py (wait, wait_async, wait_all).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from finetune_hub.backoff import Backoff
from finetune_hub.checks.cost import CostEstimate
from finetune_hub.checks.report import ValidationReport
from finetune_hub.errors import FinetuneHubError, ProviderError
from finetune_hub.jobs import local_checks, recording, submission, waiting
from finetune_hub.jobs.model import TunedModel
from finetune_hub.jobs.once import DEFAULT_WINDOW
from finetune_hub.jobs.prepare import prepare_job
from finetune_hub.jobs.spec import JobSpec
from finetune_hub.jobs.spec_sources import spec_from_arguments, spec_from_file, spec_from_record
from finetune_hub.jobs.waiting import wait_all
from finetune_hub.providers.base import PreparedJob, TuningBackend, guarded_call, make_backend
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, MetricPoint
from finetune_hub.store import JobRecord, JobStore, new_job_id

if TYPE_CHECKING:
    from finetune_hub.jobs.preflight import PreflightReport

__all__ = ["TuningJob", "wait_all"]

T = TypeVar("T")


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
        datasets: dict[str, str | Path] | None = None,
        method: str = "sft",
        hyperparameters: dict[str, Any] | None = None,
        suffix: str | None = None,
        format: str | None = None,
        mapping: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
        quotas: dict[str, Any] | None = None,
        spec: JobSpec | None = None,
        store: JobStore | None = None,
        job_id: str | None = None,
    ) -> None:
        if spec is None:
            spec = spec_from_arguments(
                provider=provider,
                base_model=base_model,
                training_file=training_file,
                validation_file=validation_file,
                datasets=datasets,
                method=method,
                hyperparameters=hyperparameters,
                suffix=suffix,
                format=format,
                mapping=mapping,
                options=options,
                quotas=quotas,
            )
        self.spec = spec
        self.store = store or JobStore()
        self.id = job_id or new_job_id()
        self._backend: TuningBackend | None = None
        self._report: ValidationReport | None = None
        self.sleep: Callable[[float], None] = time.sleep  # replaceable in tests
        self.clock: Callable[[], float] = (
            time.time
        )  # wall clock: attempts are compared across processes
        self.backoff = Backoff()
        #: seconds after an ambiguous create during which no second create is sent (jobs/once.py)
        self.lookup_window = DEFAULT_WINDOW
        self._unreachable_since: dt.datetime | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_file(
        cls, path: str | Path, *, store: JobStore | None = None, **overrides: Any
    ) -> TuningJob:
        """A job from a YAML or TOML job file; keyword arguments override the file's fields."""
        return cls(spec=spec_from_file(path, overrides), store=store)

    @classmethod
    def attach(
        cls, job_id: str, *, store: JobStore | None = None, options: dict[str, Any] | None = None
    ) -> TuningJob:
        """Re-attach to a job recorded in the store (after a restart, from another process).

        `options` adds what was not stored, such as an API key passed in code.

        >>> job = fh.TuningJob.attach("ftj_1a2b3c4d5e6f")  # doctest: +SKIP
        """
        store = store or JobStore()
        spec = spec_from_record(store.require(job_id), options)
        return cls(spec=spec, store=store, job_id=job_id)

    @classmethod
    def adopt(
        cls, provider: str, provider_job_id: str, *, store: JobStore | None = None, **options: Any
    ) -> TuningJob:
        """Bring a job made anywhere (the provider's SDK or console, another store) under
        finetune_hub: it is recorded with its state and events, then followed like any other
        (`refresh`, `events`, `metrics`, `wait`, `result.deploy`). `options` are the
        provider's connection options. A job the store knows already is returned as it is.
        `fh.remote_jobs(provider)` lists the jobs there are (see jobs/remote.py).

        >>> job = fh.TuningJob.adopt("openai", "ftjob-abc123")  # doctest: +SKIP
        >>> model = job.wait()  # doctest: +SKIP
        """
        from finetune_hub.jobs.remote import adopt

        return adopt(cls, provider, provider_job_id, store=store, options=options)

    # -- state ----------------------------------------------------------------------------------
    @property
    def provider(self) -> str:
        """The provider's name (`"openai"`, `"bedrock"`, ...)."""
        return self.spec.provider

    @property
    def backend(self) -> TuningBackend:
        """The provider's tuning backend, built on first use from `spec.options`."""
        if self._backend is None:
            self._backend = make_backend(self.spec.provider, self.spec.options)
        return self._backend

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
        spec = self.spec
        return f"<TuningJob {self.id} {spec.provider} {spec.base_model} {self.status.value}>"

    def _repr_html_(self) -> str:
        from finetune_hub.jobs.display import job_html

        return job_html(self)

    # -- the provider boundary ------------------------------------------------------------------
    def _call(self, operation: str, fn: Callable[[], T], *, retries: bool = True) -> T:
        """One backend call: anything raised below becomes `ProviderError` (or stays one of ours),
        and retryable failures are retried with backoff."""

        try:
            return guarded_call(
                self.spec.provider, operation, fn, retries=retries, sleep=self.sleep
            )
        except ProviderError as exc:
            recording.note_error(self, exc)
            raise

    # -- validate and submit --------------------------------------------------------------------
    def validate(self) -> ValidationReport:
        """Check the data, hyperparameters, options and model/method support; nothing leaves the
        machine."""
        self._report = local_checks.validate(self)
        return self._report

    def prepare(self) -> PreparedJob:
        """The job as the backend receives it: rules resolved, hyperparameters in the
        provider's names and types (built once; see `jobs/prepare.py`)."""
        return prepare_job(self.spec, self.id)

    def preflight(self) -> PreflightReport:
        """Ask the provider, before any upload, what it can answer cheaply: the model offered in
        this region and account and access to it, the permissions a job needs (simulated where
        the provider can), the bucket reachable; each finding an issue with the fix. Uploads and
        creates nothing (docs/guardrails.md).

        >>> report = job.preflight()  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
        """
        from finetune_hub.jobs.preflight import run_preflight

        return run_preflight(self)

    def migrate(
        self,
        to: str | None = None,
        *,
        submit: bool = True,
        hyperparameters: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> TuningJob:
        """The same job on the successor model `to` (default: the rules' `replacement` for this
        base model): the data re-validated for it (converted first where it takes another
        format), the hyperparameters it still takes carried over and the others dropped with
        the reason (`new_job.migration`), submitted unless `submit=False`, and linked to this
        job in the store (`extra.migrated_from` / `extra.migrated_to`). See docs/guardrails.md.

        >>> new = fh.TuningJob.attach("ftj_1a2b3c4d5e6f").migrate()  # doctest: +SKIP
        >>> print(new.migration)  # doctest: +SKIP
        """
        from finetune_hub.jobs.migrate import migrate

        return migrate(self, to, submit=submit, hyperparameters=hyperparameters, options=options)

    @property
    def report(self) -> ValidationReport | None:
        """The report of the last `validate()` (or `submit()`); its warnings (a legacy model, a
        date fine-tuning ends) still matter after a successful submit."""
        return self._report

    def estimate_cost(self) -> CostEstimate:
        """What this job will cost, before anything is uploaded: trained tokens, training,
        storage and each way of serving the model, every price with its source and read date,
        "unknown" where no source gives one (docs/costs.md). Validates first if needed.

        >>> est = job.estimate_cost()  # doctest: +SKIP
        >>> est.trained_tokens, est.training.usd, est.serving[0].monthly_usd  # doctest: +SKIP
        """
        return local_checks.estimate_cost(self)

    def submit(
        self,
        *,
        max_cost: float | None = None,
        max_duration: float | dt.timedelta | None = None,
    ) -> TuningJob:
        """Validate, upload and create the job. Refuses bad data (`fh.ValidationError` with the
        report) before anything is uploaded. With `max_cost` (USD), refuses a job whose
        estimated training cost is over it, or cannot be estimated (`fh.CostLimitExceeded`),
        also before anything is uploaded. Idempotent: calling it again, or after a crash, never
        creates a second provider job. A provider failure is recorded on the job (`error`,
        `error_code`) and raised as `fh.ProviderError`. `max_duration` (seconds or a timedelta)
        is the job's time budget, recorded on it: `wait(on_stall="cancel")` cancels a job over
        it (docs/guardrails.md).

        >>> job.submit(max_cost=20.0, max_duration=4 * 3600)  # doctest: +SKIP
        """
        submission.submit(self, max_cost=max_cost, max_duration=max_duration)
        return self

    # -- follow ---------------------------------------------------------------------------------
    def refresh(self) -> JobStatus:
        """Ask the provider for the job's state; record any change in the store."""
        pid = self._require_submitted()
        job = self._call("get", lambda: self.backend.get(pid))
        recording.record_job(self, job)
        return job.status

    def wait(
        self,
        timeout: float | None = None,
        *,
        poll_interval: float = 10.0,
        max_interval: float = 60.0,
        progress: bool = True,
        on_stall: str = "warn",
        stall_after: float | dt.timedelta | None = None,
    ) -> TunedModel:
        """Poll until the job ends; return the `TunedModel` or raise `fh.JobFailed` with the
        provider's message. Non-terminal states (validating, queued, pending, paused) never end
        the wait. Polls back off (x1.5, with jitter) from `poll_interval` to `max_interval`.
        `timeout` raises `fh.WaitTimeout`; the job itself goes on. A job with no state change
        and no new event for `stall_after` seconds (default: the provider's, from the rules) is
        reported stalled; `on_stall="cancel"` cancels it, or a job over its `max_duration`,
        and raises `fh.JobFailed` saying why and what the provider still charges for
        (docs/guardrails.md).
        """
        return waiting.wait(
            self,
            timeout,
            poll_interval=poll_interval,
            max_interval=max_interval,
            progress=progress,
            on_stall=on_stall,
            stall_after=stall_after,
        )

    async def wait_async(
        self,
        timeout: float | None = None,
        *,
        poll_interval: float = 10.0,
        max_interval: float = 60.0,
        gate: asyncio.Semaphore | None = None,
        on_stall: str = "warn",
        stall_after: float | dt.timedelta | None = None,
    ) -> TunedModel:
        """The async twin of `wait()`: the same schedule, sleeping with `asyncio.sleep`. `gate`
        bounds how many provider calls run at once across jobs (see `wait_all`).

        >>> model = await job.wait_async()  # doctest: +SKIP
        """
        return await waiting.wait_async(
            self,
            timeout,
            poll_interval=poll_interval,
            max_interval=max_interval,
            gate=gate,
            on_stall=on_stall,
            stall_after=stall_after,
        )

    def events(self) -> list[JobEvent]:
        """All events seen so far (fetches new ones from the provider first), oldest first."""
        pid = self._require_submitted()
        seen = self.store.events(self.id)
        after = seen[-1].id if seen else None
        new = self._call("events", lambda: self.backend.events(pid, after=after))
        self.store.add_events(self.id, new)
        return self.store.events(self.id)

    def metrics(self) -> list[MetricPoint]:
        """Training metrics (step, epoch, losses, accuracies) as the provider reports them."""
        pid = self._require_submitted()
        return self._call("metrics", lambda: self.backend.metrics(pid))

    def metrics_frame(self) -> Any:
        """`metrics()` as a pandas DataFrame, one row per step (step, epoch, train_loss,
        valid_loss, train_accuracy, valid_accuracy, then any extra metric); needs the
        `notebook` extra (`pip install "finetune-hub[notebook]"`).

        >>> job.metrics_frame().tail()  # doctest: +SKIP
        """
        from finetune_hub.plotting import metrics_frame

        return metrics_frame(self.metrics())

    def plot(self, ax: Any = None) -> Any:
        """Training and validation loss by step as a matplotlib Figure (labelled axes, a title
        naming the job and model, a legend); draws into `ax` when given. Needs the `notebook`
        extra. Save it with `job.plot().savefig("loss.png")`.

        >>> job.plot()  # doctest: +SKIP
        """
        from finetune_hub.plotting import loss_figure

        title = f"{self.spec.base_model} ({self.spec.provider}, {self.id}): loss by step"
        return loss_figure(self.metrics(), title=title, ax=ax)

    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints the provider kept (each usable as a model id), oldest step first."""
        pid = self._require_submitted()
        return self._call("checkpoints", lambda: self.backend.checkpoints(pid))

    def cancel(self) -> JobStatus:
        """Ask the provider to cancel; returns the state right after. A job that has already
        ended is not an error: its final state is returned (`succeeded`, `failed`,
        `cancelled`), whether the store knew it or the provider refused the cancel for it."""
        pid = self._require_submitted()
        if self.status.is_terminal:
            return self.status
        try:
            self._call("cancel", lambda: self.backend.cancel(pid))
        except ProviderError as exc:
            if exc.retryable or not self.refresh().is_terminal:
                raise
            return self.status  # it ended before the cancel arrived
        return self.refresh()

    def _require_submitted(self) -> str:
        pid = self.provider_job_id
        if pid is None:
            raise FinetuneHubError(f"job {self.id} has not been submitted yet; call submit() first")
        return pid
