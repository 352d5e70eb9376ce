"""What a `TuningJob` writes into its store from the provider's answers: the job's state as the
provider reports it (status and raw status, the tuned model, the error and its code, a smoke
test's result), and the latest provider error, which dashboards show.

>>> record_job(job, job.backend.get(job.provider_job_id))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import ProviderJob
from finetune_hub.store.records import now

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob


def record_job(job: TuningJob, answer: ProviderJob) -> None:
    """Record the provider's view of `job`: a status change, and what changed beside it."""
    job.store.record_status(job.id, answer.status, answer.raw_status)
    fields: dict[str, Any] = {}
    if answer.fine_tuned_model:
        fields["fine_tuned_model"] = answer.fine_tuned_model
    if answer.error:
        fields["error"] = answer.error
        fields["error_code"] = answer.error_code
    if answer.smoke_test is not None:  # a post-training check (docs/guardrails.md)
        extra = job.store.require(job.id).extra
        if extra.get("smoke_test") != answer.smoke_test:
            fields["extra"] = {**extra, "smoke_test": answer.smoke_test}
    if fields:
        job.store.update(job.id, **fields)


def note_error(job: TuningJob, exc: ProviderError) -> None:
    """Keep the latest provider error on the job's record (dashboards show it)."""
    rec = job.record
    if rec is not None:
        note = {**exc.to_dict(), "at": now().isoformat()}
        job.store.update(job.id, extra={**rec.extra, "last_provider_error": note})
