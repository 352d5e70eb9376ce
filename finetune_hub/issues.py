"""`Issue`: one problem found in a training file or a job description."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Issue(BaseModel):
    """One problem, with where it is and what rule it breaks.

    `code` is a stable snake_case name (see docs/validation.md); `line` is 1-based (None for
    file-level or job-level problems); `field` is a path inside the record such as
    `messages[2].content`.

    >>> Issue(code="empty_content", message="content is empty", line=3, field="messages[1].content")
    Issue(error empty_content line 3 messages[1].content: content is empty)
    """

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    severity: Severity = Severity.ERROR
    line: int | None = None
    field: str | None = None
    file: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        elif self.line:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(self.field)
        return " ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return (
            f"{where}: {self.message} [{self.code}]" if where else f"{self.message} [{self.code}]"
        )

    def __repr__(self) -> str:
        loc = f" line {self.line}" if self.line else ""
        fld = f" {self.field}" if self.field else ""
        return f"Issue({self.severity.value} {self.code}{loc}{fld}: {self.message})"
