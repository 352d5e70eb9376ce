"""Every exception finetune_hub raises, in one place, all exported from `finetune_hub`.

Each says what went wrong and what to do next. Catch `fh.FinetuneHubError` for all of them, or
`fh.ProviderError` for anything a provider (or the network to it) answered:

>>> try:
...     raise ProviderError("openai", "create", "rate limited", status_code=429)
... except FinetuneHubError as exc:
...     (exc.retryable, exc.status_code)
(True, 429)
"""

from __future__ import annotations

from pathlib import Path
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

    def __init__(
        self,
        job_id: str,
        provider: str,
        message: str,
        *,
        code: str | None = None,
        status: str = "failed",
    ) -> None:
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


class CostLimitExceeded(FinetuneHubError):
    """An action's estimated cost is over the limit you set (`submit(max_cost=...)`,
    `deploy(max_hourly_cost=...)`), or cannot be estimated; nothing was sent. `estimate` is the
    `CostEstimate` (submit) or the `DeploymentCost` (deploy) it was judged on."""

    def __init__(self, message: str, estimate: object = None) -> None:
        super().__init__(message)
        self.estimate = estimate


class UnsupportedOperation(FinetuneHubError):
    """The provider (or this serving mode) does not offer the operation; the message says what it
    offers instead. Not a failure of anything: nothing was sent."""


class MissingDependencyError(FinetuneHubError):
    """A provider's SDK is not installed; the message names the pip command."""


class OptionsError(FinetuneHubError):
    """An option a provider does not take (misspelled, or of another provider), or one of the
    wrong type; the message names the nearest valid option."""


class JobSpecError(FinetuneHubError):
    """A job file or job description is malformed (names the file and the field)."""


class ModelNotFoundError(FinetuneHubError):
    """The base model is neither the embedded default nor a local Hugging Face folder."""


class SecretRefusedError(FinetuneHubError, ValueError):
    """A value bound for the store looks like a secret. Names the key, never echoes the value."""


class JobNotFound(FinetuneHubError):
    """No job with this id in the store; the message says how to list the ones there are."""

    def __init__(self, job_id: str, path: Path | None = None) -> None:
        self.job_id = job_id
        where = f"the job store at {path}" if path else "the job store"
        super().__init__(
            f"No job {job_id!r} in {where}. Run `finetune-hub jobs` (or `fh.JobStore().list()`) "
            "to see the jobs it holds; jobs recorded under another home need $FINETUNE_HUB_HOME."
        )


class DeploymentNotFound(FinetuneHubError):
    """No deployment with this id in the store."""

    def __init__(self, deployment_id: str, path: Path | None = None) -> None:
        self.deployment_id = deployment_id
        super().__init__(
            f"No deployment {deployment_id!r} in the job store at {path}. "
            "`fh.JobStore().list_deployments(active_only=False)` lists them."
        )


class JobExists(FinetuneHubError):
    """A job with this id is already in the store (ids are never reused)."""


class ProviderError(FinetuneHubError):
    """A provider call failed: the SDK's or the transport's error, turned into one shape at the
    provider boundary. Carries the provider, the operation, the HTTP status, the provider's
    error code (`code`), the request id, whether a retry may help (`retryable`) and the
    provider's own message (`message`).
    """

    def __init__(
        self,
        provider: str,
        operation: str,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        not_created: bool = False,
    ) -> None:
        self.provider = provider
        #: True when the provider code knows the failed create made nothing (so no look-up
        #: window is needed before trying again)
        self.not_created = not_created
        self.operation = operation
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after
        if retryable is None:
            retryable = status_code is None or status_code in (408, 429) or status_code >= 500
        self.retryable = retryable
        status = f" (HTTP {status_code})" if status_code else ""
        req = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{provider} {operation} failed{status}: {message}{req}")

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data (what the job store records)."""
        return {
            "provider": self.provider,
            "operation": self.operation,
            "message": self.message,
            "status_code": self.status_code,
            "code": self.code,
            "request_id": self.request_id,
            "retryable": self.retryable,
        }
