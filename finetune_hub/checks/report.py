"""`ValidationReport`: every problem found, plus statistics, for one job's data."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from finetune_hub.data.formats import DataFormat
from finetune_hub.issues import Issue, Severity


class TokenStats(BaseModel):
    """Token statistics of one file, as counted by `tokenizer`."""

    tokenizer: str
    exact: bool
    description: str
    total: int = 0
    max: int = 0
    mean: float = 0.0
    p50: int = 0
    p90: int = 0
    p99: int = 0
    trained: int = (
        0  # tokens in turns that are trained on (assistant / completion / chosen+rejected)
    )
    limit: int | None = None
    over_limit: int = 0  # examples over the per-example limit
    near_limit: int = 0  # examples within the estimator's margin of the limit


def token_summary(tokens: Sequence[int]) -> dict[str, Any]:
    """`total`, `max`, `mean` and the nearest-rank `p50`, `p90`, `p99` of per-example counts.

    Counts are tallied by value instead of sorted, so the memory used grows with the number of
    distinct counts (at most about the square root of twice the file's tokens: 45,000 for a
    1 GB file), not with the number of records.

    >>> token_summary([5, 1, 3, 3])
    {'total': 12, 'max': 5, 'mean': 3.0, 'p50': 3, 'p90': 5, 'p99': 5}
    """
    n = len(tokens)
    if not n:
        return {"total": 0, "max": 0, "mean": 0.0, "p50": 0, "p90": 0, "p99": 0}
    tally = Counter(tokens)
    total = sum(tokens)
    wanted = [
        (name, min(n - 1, int(p * n))) for name, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    ]
    found: dict[str, Any] = {"total": total, "max": max(tally), "mean": round(total / n, 1)}
    seen = 0
    for value in sorted(tally):
        seen += tally[value]
        while wanted and wanted[0][1] < seen:
            found[wanted.pop(0)[0]] = value
        if not wanted:
            break
    return found


class FileStats(BaseModel):
    """What was read from one file."""

    path: str
    bytes: int = 0
    lines: int = 0
    records: int = 0  # readable records (JSON objects)
    bom: bool = False
    duplicates: int = 0
    images: int = 0
    tokens: TokenStats | None = None


class ValidationStats(BaseModel):
    training: FileStats
    validation: FileStats | None = None
    epochs: int | None = None
    epochs_source: str = ""  # "given", "default" or "auto heuristic"
    tokens_per_epoch: int | None = None  # sum(min(limit, tokens)): the tokens one epoch bills
    estimated_trained_tokens: int | None = None  # sum(min(limit, tokens)) x epochs


class ValidationReport(BaseModel):
    """The result of `fh.validate` / `job.validate()`.

    >>> report = fh.validate("train.jsonl", provider="openai", base_model="gpt-4.1-mini")  # doctest: +SKIP
    >>> report.ok, len(report.errors), report.stats.training.tokens.p90  # doctest: +SKIP
    """

    provider: str
    base_model: str
    method: str
    format: DataFormat | None = None
    validation_format: DataFormat | None = None
    errors: list[Issue] = Field(default_factory=list)
    warnings: list[Issue] = Field(default_factory=list)
    suppressed: dict[str, int] = Field(
        default_factory=dict
    )  # code -> problems not listed (per-code cap)
    stats: ValidationStats
    rules: dict[str, Any] = Field(default_factory=dict)  # the limits applied, each with its source
    hyperparameters: dict[str, Any] = Field(default_factory=dict)  # as they will be sent

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings do not count)."""
        return self.error_count == 0

    @property
    def error_count(self) -> int:
        return len(self.errors) + sum(
            n for code, n in self.suppressed.items() if self._severity_of(code) == "error"
        )

    @property
    def warning_count(self) -> int:
        return len(self.warnings) + sum(
            n for code, n in self.suppressed.items() if self._severity_of(code) == "warning"
        )

    def _severity_of(self, code: str) -> str:
        for issue in self.errors:
            if issue.code == code:
                return "error"
        return "warning"

    def issues(self, code: str | None = None) -> list[Issue]:
        """Errors and warnings (listed ones), optionally only those with `code`, in line order."""
        found = [i for i in self.errors + self.warnings if code is None or i.code == code]
        return sorted(found, key=lambda i: (i.file or "", i.line or 0))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what `finetune-hub validate --json` prints)."""
        data = self.model_dump(mode="json")
        data["ok"] = self.ok
        data["error_count"] = self.error_count
        data["warning_count"] = self.warning_count
        return data

    # -- display ------------------------------------------------------------------------------
    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{self.error_count} error(s)"
        warn = f", {self.warning_count} warning(s)" if self.warning_count else ""
        fmt = self.format.label if self.format else "unknown format"
        return f"{verdict}{warn}: {self.provider} {self.base_model} ({self.method}), {fmt}"

    def __str__(self) -> str:
        lines = [self.summary()]
        for title, fs in (("training", self.stats.training), ("validation", self.stats.validation)):
            if fs is not None:
                lines.append(f"  {title}: {_file_line(fs)}")
                if fs.tokens:
                    lines.append(f"    tokens: {_token_line(fs.tokens)}")
        if self.stats.estimated_trained_tokens is not None:
            lines.append(
                f"  estimated trained tokens: {self.stats.estimated_trained_tokens:,} "
                f"({self.stats.epochs} epochs, {self.stats.epochs_source})"
            )
        for label, items in (("errors", self.errors), ("warnings", self.warnings)):
            if items:  # errors first; each line led by its severity, so grep keeps it
                lines.append(f"  {label}:")
                lines.extend(f"    {i.severity.value}: {i}" for i in items)
        for code, n in sorted(self.suppressed.items(), key=lambda c: self._severity_of(c[0])):
            lines.append(f"    {self._severity_of(code)}: ... and {n:,} more {code}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        rows = "".join(
            f"<tr><td>{'❌' if i.severity is Severity.ERROR else '⚠️'} {i.severity.value}</td>"
            f"<td>{i.line or ''}</td>"
            f"<td><code>{html.escape(i.code)}</code></td><td>{html.escape(i.field or '')}</td>"
            f"<td>{html.escape(i.message)}</td></tr>"
            for i in self.errors + self.warnings
        )
        more = "".join(
            f"<li>… and {n:,} more <code>{html.escape(c)}</code></li>"
            for c, n in sorted(self.suppressed.items())
        )
        stats = html.escape(_file_line(self.stats.training))
        tokens = self.stats.training.tokens
        tok = f"<br>tokens: {html.escape(_token_line(tokens))}" if tokens else ""
        if self.stats.estimated_trained_tokens is not None:
            tok += (
                f"<br>estimated trained tokens: {self.stats.estimated_trained_tokens:,} "
                f"({self.stats.epochs} epochs, {html.escape(self.stats.epochs_source)})"
            )
        table = (
            "<table><tr><th>severity</th><th>line</th><th>code</th><th>field</th><th>message</th></tr>"
            + rows
            + "</table>"
            if rows
            else ""
        )
        return (
            f"<div><b style='color:{colour}'>{html.escape(self.summary())}</b>"
            f"<p>training: {stats}{tok}</p>{table}<ul>{more}</ul></div>"
        )


def _file_line(fs: FileStats) -> str:
    extra = f", {fs.duplicates:,} duplicates" if fs.duplicates else ""
    bom = ", UTF-8 BOM" if fs.bom else ""
    return f"{fs.path}: {fs.records:,} records, {fs.bytes:,} bytes{extra}{bom}"


def _token_line(t: TokenStats) -> str:
    kind = "exact" if t.exact else "estimated"
    limit = f", limit {t.limit:,}, {t.over_limit:,} over" if t.limit else ""
    return (
        f"{t.total:,} total ({kind}: {t.description}), max {t.max:,}, p50 {t.p50:,}, "
        f"p90 {t.p90:,}, p99 {t.p99:,}, trained {t.trained:,}{limit}"
    )
