"""`job.submit()`: record the job, upload its files and create it on the provider, at most once.

The job is in the store (status `pending`) before any upload or create, each uploaded file's
reference is stored as soon as it is up (a resumed submit uploads only what is missing), and the
create runs under `AtMostOnce` (jobs/once.py), so a retried, repeated or resumed `submit()` never
makes a second (paid) provider job. A provider failure is recorded on the job (`error`,
`error_code`) before it is raised.

>>> job.submit(max_cost=20.0)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from typing import TYPE_CHECKING

from finetune_hub.errors import ProviderError, ValidationError
from finetune_hub.jobs.local_checks import refuse_over_max_cost
from finetune_hub.jobs.once import ATTEMPT_KEY, AtMostOnce, with_attempt
from finetune_hub.jobs.recording import record_job
from finetune_hub.providers.base import DataRef, PreparedJob, ProviderJob, TuningBackend
from finetune_hub.status import JobStatus
from finetune_hub.store import JobRecord
from finetune_hub.store.records import now

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob


def submit(
    job: TuningJob, *, max_cost: float | None, max_duration: float | dt.timedelta | None
) -> None:
    """`job.submit(...)`: validate, check the cost limit, record, upload, create."""
    from finetune_hub.jobs.guardrails import record_budget, seconds

    budget = seconds(max_duration, "max_duration")
    rec = job.record
    if rec is not None and rec.provider_job_id:
        if budget is not None:
            record_budget(job, budget)
        return
    report = job.validate()
    if not report.ok:
        raise ValidationError(report)
    if max_cost is not None:
        refuse_over_max_cost(job, max_cost)
    backend = job.backend
    prepared = job.prepare()
    if rec is None:
        rec = job.store.create(_new_record(job, backend))
    try:
        refs = _upload(job, rec, prepared)
        created = job._call("create", _create_guard(job, rec, prepared, refs))
    except ProviderError as exc:
        job.store.update(job.id, error=exc.message, error_code=exc.code or exc.operation)
        raise
    extra = with_attempt(job.store.require(job.id).extra, None)
    job.store.update(
        job.id,
        provider_job_id=created.id,
        submitted_at=now(),
        error=None,
        error_code=None,
        extra=extra,
    )
    record_job(job, created)
    if budget is not None:
        record_budget(job, budget)


def _new_record(job: TuningJob, backend: TuningBackend) -> JobRecord:
    """The job as first stored, `pending`: its spec, and where credentials come from."""
    spec = job.spec
    return JobRecord(
        id=job.id,
        provider=spec.provider,
        base_model=spec.base_model,
        method=spec.method,
        training_file=spec.training_file,
        validation_file=spec.validation_file,
        datasets=spec.datasets,
        hyperparameters=spec.hyperparameters,
        suffix=spec.suffix,
        quotas=spec.quotas,
        format=spec.format,
        mapping=spec.mapping,
        options=backend.connection.stored_options(),
        credentials=backend.connection.credentials_source(),
        status=JobStatus.PENDING,
    )


def _upload(job: TuningJob, rec: JobRecord, prepared: PreparedJob) -> dict[str, DataRef]:
    """Upload each file not uploaded yet (as plain JSONL, columns mapped, converted where the
    rules say so), storing each reference as soon as it is up."""
    from finetune_hub.checks.autoconvert import upload_copy
    from finetune_hub.data.mapped import mapped_copy
    from finetune_hub.data.plain import plain_jsonl

    refs = {k: DataRef(**v) for k, v in (rec.data_refs or {}).items()}
    files = {"training": prepared.training_file, "validation": prepared.validation_file}
    files.update(prepared.datasets)
    for purpose, path in files.items():
        if path is None or purpose in refs:
            continue
        with ExitStack() as stack:
            plain = stack.enter_context(plain_jsonl(path))
            plain = stack.enter_context(mapped_copy(plain, job.spec.mapping))  # columns
            # a format the rules convert automatically goes up converted (checks/autoconvert)
            plain = stack.enter_context(upload_copy(plain, prepared.rules, job.spec.format))
            ref = job._call("upload", lambda p=plain, u=purpose: job.backend.upload(p, u, job.id))
        refs[purpose] = ref.model_copy(update={"path": str(path)})
        job.store.update(job.id, data_refs={k: v.model_dump() for k, v in refs.items()})
    return refs


def _create_guard(
    job: TuningJob, rec: JobRecord, prepared: PreparedJob, refs: dict[str, DataRef]
) -> AtMostOnce[ProviderJob]:
    """`find` first; a create only when no earlier attempt (of this process or of one that
    was killed) can still take effect: see jobs/once.py."""

    def mark(at: float | None) -> None:
        extra = with_attempt(job.store.require(job.id).extra, at)
        job.store.update(job.id, extra=extra)

    return AtMostOnce(
        f"the job {job.id} on {job.spec.provider}",
        find=lambda: job.backend.find(job.id),
        create=lambda: job.backend.create(prepared, refs),
        sleep=job.sleep,
        window=job.lookup_window,
        attempted_at=rec.extra.get(ATTEMPT_KEY),
        on_attempt=mark,
        clock=job.clock,
        resume_hint=f"Check with `finetune-hub status {job.id}`; `submit()` again resumes.",
    )
