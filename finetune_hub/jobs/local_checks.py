"""What a `TuningJob` checks before anything leaves the machine: `fh.validate`'s report of the
data and hyperparameters plus the backend's own check of the prepared job (`job.validate()`),
what the job will cost (`job.estimate_cost()`), and `submit(max_cost=...)`'s refusal of a job
over that limit or of unknown cost.

>>> report = job.validate()  # doctest: +SKIP
>>> job.estimate_cost().training.usd  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_hub.checks.cost import CostEstimate
from finetune_hub.checks.report import ValidationReport
from finetune_hub.errors import OptionsError, UnsupportedOperation
from finetune_hub.issues import Issue, Severity

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob


def validate(job: TuningJob) -> ValidationReport:
    """The job's validation report: the data rules, then the backend's checks when they pass."""
    from finetune_hub.checks.validation import validate as validate_data

    spec = job.spec
    report = validate_data(
        spec.training_file,
        spec.provider,
        spec.base_model,
        spec.method,
        validation_file=spec.validation_file,
        hyperparameters=spec.hyperparameters,
        format=spec.format,
        suffix=spec.suffix,
        quotas=spec.quotas or None,
        mapping=spec.mapping or None,
    )
    for issue in _provider_checks(job, report):
        target = report.errors if issue.severity is Severity.ERROR else report.warnings
        target.append(issue)
    return report


def _provider_checks(job: TuningJob, report: ValidationReport) -> list[Issue]:
    try:
        backend = job.backend
    except UnsupportedOperation:
        return []  # validation-only provider: the data rules are all there is
    except OptionsError as exc:
        return [Issue(code="invalid_option", field="options", message=str(exc))]
    if not report.ok:
        return []
    return job._call("check", lambda: backend.check(job.prepare()), retries=False)


def estimate_cost(job: TuningJob) -> CostEstimate:
    """The job's cost estimate (jobs/costing.py), from its last report or a fresh one."""
    from finetune_hub.jobs.costing import estimate_cost

    spec = job.spec
    report = job.report or job.validate()
    return estimate_cost(
        spec.training_file,
        spec.provider,
        spec.base_model,
        spec.method,
        options=spec.options,
        quotas=spec.quotas or None,
        report=report,
    )


def refuse_over_max_cost(job: TuningJob, max_cost: float) -> None:
    """`CostLimitExceeded` when the estimated training cost is over `max_cost` or unknown."""
    from finetune_hub.checks.cost import usd
    from finetune_hub.errors import CostLimitExceeded

    est = job.estimate_cost()
    training = est.training
    if training.usd is None:
        raise CostLimitExceeded(
            f"the training cost of {job.id} is unknown ({training.formula}), so "
            f"submit(max_cost={max_cost:g}) refuses it; nothing was uploaded. Give the price "
            "in the rules (docs/costs.md), or submit without max_cost",
            est,
        )
    if training.usd > max_cost:
        raise CostLimitExceeded(
            f"the training of {job.id} is estimated at {usd(training.usd)} "
            f"({training.formula}), over max_cost={usd(max_cost)}; nothing was uploaded",
            est,
        )
