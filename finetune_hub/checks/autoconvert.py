"""Formats a backend's rules convert automatically (`auto_convert = {chat = "gemini"}` in a rules
block): validation checks the records as they will be uploaded, and the job layer uploads the
converted copy, so a chat-messages file can go to Vertex AI as Gemini `contents`.

Only a lossless conversion is made: a record that would be skipped or lose a field (a tool call,
an assistant `weight`, an unknown key) refuses the file with the reason, and the user converts it
themselves (`fh.convert`) after deciding what may go. Copies are temporary files, removed when
the check or the upload is done.

>>> from finetune_hub.rules import resolve
>>> rules, _ = resolve("vertex", "gemini-2.5-flash", "sft")
>>> planned_target("chat", rules)
<DataFormat.GEMINI: 'gemini'>
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

from finetune_hub.data.convert import ConversionSummary, Converter
from finetune_hub.data.formats import DataFormat
from finetune_hub.data.reader import JsonlReader
from finetune_hub.issues import Issue, Severity
from finetune_hub.rules.schema import ResolvedRules

__all__ = [
    "CONVERTED",
    "LOSSY",
    "Conversion",
    "conversion_issue",
    "converted_copy",
    "planned_target",
    "upload_copy",
]

#: Issue codes: a lossless conversion that will happen (warning), a lossy one refused (error).
CONVERTED = "converted_before_upload"
LOSSY = "lossy_conversion"


def planned_target(fmt: DataFormat | str | None, rules: ResolvedRules) -> DataFormat | None:
    """The accepted format `fmt` is converted to before upload, or None (already accepted, or
    no automatic conversion for it)."""
    if fmt is None:
        return None
    fmt = DataFormat(fmt)
    target = rules.auto_convert.get(fmt)
    if fmt in rules.formats or target is None or target not in rules.formats:
        return None
    return target


@dataclass
class Conversion:
    """A converted copy of `source` at `path` (a temporary file), with what was lost."""

    source: str
    path: str
    source_format: DataFormat
    target_format: DataFormat
    summary: ConversionSummary
    #: What the reader said about the original file (blank lines, unreadable lines).
    reader_issues: list[Issue] = field(default_factory=list)

    @property
    def lossless(self) -> bool:
        return self.summary.lossless


@contextmanager
def converted_copy(
    source: str | os.PathLike[str],
    source_format: DataFormat,
    target_format: DataFormat,
    *,
    keep_lines: bool = False,
) -> Iterator[Conversion]:
    """Convert `source` into a temporary file, removed on exit. `keep_lines=True` writes a blank
    line where the original had no convertible record, so line N of the copy is line N of the
    original (for validation issues); the uploaded copy has none."""
    converter = Converter(source_format, target_format)
    summary = ConversionSummary(
        source=str(source),
        target="(converted before upload)",
        source_format=source_format,
        target_format=target_format,
    )
    seen: list[Issue] = []

    def on_issue(issue: Issue) -> None:
        seen.append(issue)
        summary.unreadable(issue)

    fd, tmp = tempfile.mkstemp(suffix=f".{target_format.value}.jsonl")
    try:
        with os.fdopen(fd, "wb") as out:
            written = 0
            for line, _raw, record in JsonlReader(source, on_issue=on_issue):
                result = converter(record)
                summary.add(line, result)
                if result.record is None:
                    continue
                if keep_lines:
                    out.write(b"\n" * (line - 1 - written))
                    written = line
                out.write(orjson.dumps(result.record) + b"\n")
        yield Conversion(
            str(source), tmp, source_format, target_format, summary, reader_issues=seen
        )
    finally:
        os.unlink(tmp)


def conversion_issue(conv: Conversion, rules: ResolvedRules) -> Issue:
    """What the report says: a warning that the file will be converted (lossless), or an error
    naming what a conversion would lose."""
    s = conv.summary
    model = rules.model_id or rules.requested_model
    pair = f"{conv.source_format.value} -> {conv.target_format.value}"
    if s.lossless:
        return Issue(
            code=CONVERTED,
            severity=Severity.WARNING,
            file=conv.source,
            message=f"{model} takes {conv.target_format.label} records: the {s.records_out} "
            f"{conv.source_format.label} records are converted before upload ({pair}, "
            "lossless); the checks below are on the converted records",
        )
    lost = []
    if s.skipped:
        lost.append("records that cannot be converted: " + "; ".join(_skips(s)))
    if s.dropped_fields:
        fields = ", ".join(
            f"{k} ({n} record{'s' if n != 1 else ''})" for k, n in s.dropped_fields.items()
        )
        lost.append(f"fields the target has no place for: {fields}")
    return Issue(
        code=LOSSY,
        file=conv.source,
        message=f"{model} takes {conv.target_format.label} records, and this "
        f"{conv.source_format.label} file cannot be converted without loss ({pair}): "
        f"{'; '.join(lost)}. finetune_hub converts only losslessly; convert it yourself once "
        f"you have decided what may go: fh.convert({conv.source!r}, 'converted.jsonl', "
        f"to={conv.target_format.value!r})",
    )


def _skips(summary: ConversionSummary) -> list[str]:
    out = []
    for reason, count in summary.skipped.items():
        lines = summary.skipped_lines.get(reason, [])
        more = ", ..." if count > len(lines) else ""
        out.append(
            f"{reason} x{count} (line{'s' if count > 1 else ''} {', '.join(map(str, lines))}{more})"
        )
    return out


@contextmanager
def upload_copy(
    path: str, rules: ResolvedRules | None, given: DataFormat | str | None = None
) -> Iterator[str]:
    """The file to upload: `path` itself, or a temporary converted copy when its format is one
    the rules convert automatically (validation has refused a lossy one already; refused again
    here, so nothing lossy is ever uploaded)."""
    if rules is None or not rules.auto_convert:
        yield path
        return
    from finetune_hub.checks.validation import decide_format
    from finetune_hub.errors import DataFileError

    fmt, _ = decide_format(path, rules, given)
    target = planned_target(fmt, rules)
    if target is None:
        yield path
        return
    with converted_copy(path, fmt, target) as conv:
        if not conv.lossless:
            raise DataFileError(conversion_issue(conv, rules).message)
        yield conv.path
