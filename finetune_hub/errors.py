"""The exceptions finetune_hub raises. Every one says what went wrong and what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune_hub.report import ValidationReport


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
