"""`job.preflight()`: ask the provider, before any upload, what it can answer cheaply.

The options the backend needs (`check`) and the provider's own preflight (`preflight` in the
contract: the model offered and accessible, permissions simulated where the provider can, the
bucket reachable, quota headroom where an API shows it), in one report. Nothing is uploaded and
nothing is created; the job need not be in the store. `finetune-hub submit --preflight` runs it
first and stops at an error.

>>> report = job.preflight()  # doctest: +SKIP
>>> report.ok, [i.code for i in report.errors]  # doctest: +SKIP
(False, ['model_access_denied', 'missing_pass_role'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from finetune_hub.errors import OptionsError, ProviderError, UnsupportedOperation
from finetune_hub.issues import Issue, Severity

if TYPE_CHECKING:
    from finetune_hub.jobs.tuning_job import TuningJob


class PreflightReport(BaseModel):
    """What the preflight found: each `Issue` says what is wrong and the fix."""

    job_id: str
    provider: str
    base_model: str
    issues: list[Issue] = Field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if not i.is_error]

    @property
    def ok(self) -> bool:
        """True when nothing found would make the job fail."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "ok": self.ok}

    def lines(self) -> list[str]:
        head = f"preflight of {self.job_id} ({self.provider}, {self.base_model}): "
        if not self.issues:
            return [head + "nothing found"]
        counts = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        return [head + counts] + [
            f"  {i.severity.value}: {i.message} [{i.code}]" for i in self.issues
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def run_preflight(job: TuningJob) -> PreflightReport:
    """The report for `job` (see the module doc); provider errors become issues, never raised."""
    report = PreflightReport(job_id=job.id, provider=job.provider, base_model=job.spec.base_model)
    try:
        backend = job.backend
    except UnsupportedOperation as exc:
        report.issues.append(_issue("preflight_not_checked", "provider", str(exc), warn=True))
        return report
    except OptionsError as exc:
        report.issues.append(_issue("invalid_option", "options", str(exc)))
        return report
    prepared = job.prepare()
    try:
        report.issues += job._call("check", lambda: backend.check(prepared), retries=False)
        report.issues += job._call("preflight", lambda: backend.preflight(prepared))
    except ProviderError as exc:
        code = "api_key_invalid" if exc.status_code == 401 else "preflight_failed"
        report.issues.append(
            _issue(code, "options", f"{exc.provider} could not be asked ({exc.message})")
        )
    return report


def _issue(code: str, field: str, message: str, *, warn: bool = False) -> Issue:
    severity = Severity.WARNING if warn else Severity.ERROR
    return Issue(code=code, field=field, message=message, severity=severity)
