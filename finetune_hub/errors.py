"""The exceptions finetune_hub raises. Every one says what went wrong and what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune_hub.checks.report import ValidationReport


class FinetuneHubError(Exception):
    """Base class of every error raised by finetune_hub."""


class DataFileError(FinetuneHubError):
    """A training file cannot be opened or read at all (missing, a directory, unreadable).

    Problems *inside* a readable file never raise: they become `Issue`s in a report.
    """


class UnknownProviderError(FinetuneHubError):
    """The provider name is not one finetune_hub knows."""


class RulesError(FinetuneHubError):
    """A rules file or a rules override is malformed (names the file and key)."""


class ConversionError(FinetuneHubError):
    """A conversion was asked for that is not possible (names the formats)."""


class ValidationError(FinetuneHubError):
    """Raised by `submit()` when the data or job settings break the backend's rules.

    The full report is on `.report`.
    """

    def __init__(self, report: ValidationReport, message: str | None = None) -> None:
        self.report = report
        super().__init__(message or _summary(report))


def _summary(report: Any) -> str:
    errors = report.errors
    head = "; ".join(str(i) for i in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"{len(errors)} error(s) in the job: {head}{more}"


class JobFailed(FinetuneHubError):
    """A job ended `failed` (or `cancelled`); carries the provider's own error message and code."""

    def __init__(self, job_id: str, provider: str, message: str, *, code: str | None = None, status: str = "failed") -> None:
        self.job_id = job_id
        self.provider = provider
        self.provider_message = message
        self.code = code
        self.status = status
        detail = f" [{code}]" if code else ""
        super().__init__(f"job {job_id} on {provider} {status}: {message}{detail}")


class WaitTimeout(FinetuneHubError, TimeoutError):
    """`wait()` gave up before the job ended; the job goes on and can be waited for again."""


class CostConfirmationRequired(FinetuneHubError):
    """A cost-bearing action (a deployment billed by the hour) was asked for without `confirm_cost=True`."""
