"""`convert`: rewrite a training file in another record format, streaming, with an account of
every record skipped and every field lost.

Conversions go through the neutral form of `finetune_hub.data.neutral`; instruction data goes
through the recipe of `finetune_hub.data.recipes`. Same-format "conversions" are normalising
copies (the older DPO names `preferred_completion`/`non_preferred_completion` become `*_output`).

>>> summary = convert("chat.jsonl", "gemini.jsonl", to="gemini")  # doctest: +SKIP
>>> print(summary)  # doctest: +SKIP
converted 20 of 20 records: chat -> gemini (lossless)
"""

from __future__ import annotations

import copy
import gzip
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import BaseModel, computed_field

from finetune_hub.data.emitters import EMITTERS
from finetune_hub.data.formats import DataFormat, candidate_formats
from finetune_hub.data.neutral import PARSERS, Conversation, Skip
from finetune_hub.data.reader import JsonlReader
from finetune_hub.data.recipes import (
    TOO_LONG,
    LengthLimit,
    TokenCounting,
    check_template,
    instruction_conversation,
)
from finetune_hub.data.records import CHECKERS
from finetune_hub.errors import ConversionError, DataFileError
from finetune_hub.issues import Issue

UNREADABLE_LINE = "unreadable_line"
#: How many line numbers a summary keeps per skip reason.
MAX_LINES_PER_REASON = 20
#: How many skipped records a summary describes in full (line, reason, the record's keys).
MAX_EXAMPLES = 3

#: The fields each source format reads, for messages about records that do not have them.
EXPECTED_FIELDS: dict[DataFormat, str] = {
    DataFormat.CHAT: "messages",
    DataFormat.PROMPT_COMPLETION: "prompt, completion",
    DataFormat.PREFERENCE: "input, preferred_output, non_preferred_output",
    DataFormat.GEMINI: "contents",
    DataFormat.GEMINI_PREFERENCE: "contents, completions",
    DataFormat.RLHF_PROMPT: "input_text",
    DataFormat.RLHF_PREFERENCE: "input_text, candidate_0, candidate_1, choice",
    DataFormat.BEDROCK_CONVERSATION: "schemaVersion, messages",
    DataFormat.BEDROCK_CLAUDE: "system, messages",
    DataFormat.CONTINUED_PRETRAINING: "input",
    DataFormat.INSTRUCTION: "instruction, output (or response), input (optional)",
}


def apply_mapping(record: dict[str, Any], mapping: Mapping[str, str] | None) -> dict[str, Any]:
    """`record` with each `field` of `mapping` read from its column (`{"instruction": "text"}`:
    the column `text` becomes the field `instruction`); columns the record lacks are left alone.

    >>> apply_mapping({"ID": 7, "text": "Name a river.", "output": "Shinano"}, {"instruction": "text"})
    {'ID': 7, 'output': 'Shinano', 'instruction': 'Name a river.'}
    """
    if not mapping:
        return record
    out = dict(record)
    for field_name, column in mapping.items():
        if column in record:
            value = out.pop(column)
            out[field_name] = value
    return out


def check_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """`mapping` as a plain dict; `ConversionError` for a key or column that is not a string.

    >>> check_mapping({"prompt": "question", "completion": "answer"})
    {'prompt': 'question', 'completion': 'answer'}
    """
    out: dict[str, str] = {}
    for key, column in (mapping or {}).items():
        if not isinstance(key, str) or not isinstance(column, str) or not key or not column:
            raise ConversionError(
                f"mapping must map field names to column names (strings), got {key!r}: {column!r}"
            )
        out[key] = column
    return out


_F = DataFormat
_CONVERSATIONAL = (
    _F.CHAT,
    _F.PROMPT_COMPLETION,
    _F.GEMINI,
    _F.BEDROCK_CONVERSATION,
    _F.BEDROCK_CLAUDE,
)
_PREFERENCE = (_F.PREFERENCE, _F.GEMINI_PREFERENCE, _F.RLHF_PREFERENCE)
_TARGETS: dict[DataFormat, tuple[DataFormat, ...]] = {
    **{f: (*_CONVERSATIONAL, _F.CONTINUED_PRETRAINING, _F.RLHF_PROMPT) for f in _CONVERSATIONAL},
    **{f: (*_PREFERENCE, _F.RLHF_PROMPT) for f in _PREFERENCE},
    _F.INSTRUCTION: (*_CONVERSATIONAL, _F.CONTINUED_PRETRAINING, _F.RLHF_PROMPT),
}


def reachable(source: DataFormat | str) -> tuple[DataFormat, ...]:
    """The formats `convert` can write from `source`, other than `source` itself.

    >>> [f.value for f in reachable("rlhf_preference")]
    ['preference', 'gemini_preference', 'rlhf_prompt']
    """
    source = DataFormat(source)
    return tuple(f for f in _TARGETS.get(source, ()) if f != source)


@dataclass(frozen=True, slots=True)
class ConvertedRecord:
    """One record's conversion: the new `record`, or None with a `skip_reason`; `dropped` names
    the fields the conversion lost."""

    record: dict[str, Any] | None
    skip_reason: str | None = None
    dropped: list[str] = field(default_factory=list)


class Converter:
    """Converts records from one format to another with fixed settings.

    `system_prompt` is added as the system message of records that have none, where the target
    has a place for one; a record's system text equal to `system_prompt` is not reported dropped
    when the target has no place for it (converting back with the same `system_prompt` restores it).

    >>> Converter("prompt_completion", "chat")({"prompt": "Hi", "completion": "Hello"}).record
    {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]}
    """

    def __init__(
        self,
        source: DataFormat | str,
        target: DataFormat | str,
        *,
        system_prompt: str | None = None,
        template: str | None = None,
        limit: LengthLimit | None = None,
    ) -> None:
        self.source, self.target = parse_format(source), parse_format(target)
        if self.source != self.target and self.target not in reachable(self.source):
            raise ConversionError(_no_path(self.source, self.target))
        self.system_prompt = system_prompt
        self.template = check_template(template) if template is not None else None
        self.limit = limit if limit is not None and limit.active else None

    def __call__(self, record: dict[str, Any]) -> ConvertedRecord:
        try:
            out, dropped = self._convert(record)
            if self.limit is not None and self.limit.exceeded(_texts(out, self.target)):
                raise Skip(TOO_LONG)
        except Skip as skip:
            return ConvertedRecord(None, skip.reason)
        return ConvertedRecord(out, None, dropped)

    def _convert(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        if self.source == self.target:
            return normalise(record, self.target, self.system_prompt), []
        conv = self._parse(record)
        return EMITTERS[self.target](conv, self.system_prompt), conv.dropped

    def _parse(self, record: dict[str, Any]) -> Conversation:
        if self.source == DataFormat.INSTRUCTION:
            return instruction_conversation(record, template=self.template)
        return PARSERS[self.source](record)


def convert_record(
    record: dict[str, Any],
    source: DataFormat | str,
    target: DataFormat | str,
    *,
    system_prompt: str | None = None,
    template: str | None = None,
) -> ConvertedRecord:
    """Convert one record; see `Converter` (build one to convert many records).

    >>> convert_record({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
    ...     {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]},
    ...     "chat", "prompt_completion").skip_reason
    'multi_turn'
    """
    return Converter(source, target, system_prompt=system_prompt, template=template)(record)


def normalise(
    record: dict[str, Any], fmt: DataFormat, system_prompt: str | None = None
) -> dict[str, Any]:
    """A same-format copy: older DPO field names renamed, `system_prompt` added where missing.

    >>> normalise({"input": {"messages": []}, "preferred_completion": [], "non_preferred_completion": []}, DataFormat.PREFERENCE)
    {'input': {'messages': []}, 'preferred_output': [], 'non_preferred_output': []}
    """
    if fmt == DataFormat.PREFERENCE:
        record = {_current_name(k, record): v for k, v in record.items()}
    add = _ADD_SYSTEM.get(fmt)
    if system_prompt is not None and add is not None:
        record = copy.deepcopy(record)
        add(record, system_prompt)
    return record


_LEGACY_NAMES = {
    "preferred_completion": "preferred_output",
    "non_preferred_completion": "non_preferred_output",
}


def _current_name(key: str, record: dict[str, Any]) -> str:
    new = _LEGACY_NAMES.get(key)
    return new if new is not None and new not in record else key


def _add_system_message(messages: Any, text: str) -> None:
    if not isinstance(messages, list):
        return
    first = messages[0] if messages else None
    if type(first) is not dict or first.get("role") not in ("system", "developer"):
        messages.insert(0, {"role": "system", "content": text})


def _add_chat_system(record: dict[str, Any], text: str) -> None:
    _add_system_message(record.get("messages"), text)


def _add_preference_system(record: dict[str, Any], text: str) -> None:
    if type(record.get("input")) is dict:
        _add_system_message(record["input"].get("messages"), text)


def _add_claude_system(record: dict[str, Any], text: str) -> None:
    if record.get("system") is None:
        record["system"] = text


def _add_bedrock_system(record: dict[str, Any], text: str) -> None:
    if not record.get("system"):
        record["system"] = [{"text": text}]


def _add_gemini_system(record: dict[str, Any], text: str, key: str = "systemInstruction") -> None:
    if record.get("systemInstruction") is None and record.get("system_instruction") is None:
        record[key] = {"parts": [{"text": text}]}


def _add_gemini_preference_system(record: dict[str, Any], text: str) -> None:
    _add_gemini_system(record, text, "system_instruction")


_ADD_SYSTEM: dict[DataFormat, Callable[[dict[str, Any], str], None]] = {
    DataFormat.CHAT: _add_chat_system,
    DataFormat.PREFERENCE: _add_preference_system,
    DataFormat.BEDROCK_CLAUDE: _add_claude_system,
    DataFormat.BEDROCK_CONVERSATION: _add_bedrock_system,
    DataFormat.GEMINI: _add_gemini_system,
    DataFormat.GEMINI_PREFERENCE: _add_gemini_preference_system,
}


def _texts(record: dict[str, Any], fmt: DataFormat) -> list[str]:
    checker = CHECKERS.get(fmt)
    return checker(record, lambda *args, **kwargs: None).texts if checker else []


def parse_format(value: DataFormat | str) -> DataFormat:
    """A `DataFormat` from its value; `ConversionError` listing the formats when unknown."""
    try:
        return DataFormat(value)
    except ValueError:
        names = ", ".join(f.value for f in DataFormat)
        raise ConversionError(f"unknown data format {value!r}; the formats are {names}") from None


def _no_path(source: DataFormat, target: DataFormat) -> str:
    head = f"cannot convert {source.value} ({source.label}) to {target.value} ({target.label})"
    targets = ", ".join(f.value for f in reachable(source))
    if not targets:
        return f"{head}; {source.value} converts to no other format"
    return f"{head}; {source.value} converts to: {targets}"


# -- files ------------------------------------------------------------------------------------------
class ConversionSummary(BaseModel):
    """What `convert` did: records in and out, skips by reason (with line numbers), and the fields
    lost, by how many records lost each.

    >>> ConversionSummary(source="a.jsonl", target="b.jsonl", source_format="chat",
    ...                   target_format="gemini", records_in=2, records_out=2).lossless
    True
    """

    source: str
    target: str
    source_format: DataFormat
    target_format: DataFormat
    records_in: int = 0
    records_out: int = 0
    skipped: dict[str, int] = {}
    skipped_lines: dict[str, list[int]] = {}
    dropped_fields: dict[str, int] = {}
    mapping: dict[str, str] = {}
    examples: list[dict[str, Any]] = []  # the first skipped records: line, reason, keys

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """False when records were read but none was converted (the CLI exits 1)."""
        return self.records_out > 0 or self.records_in == 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lossless(self) -> bool:
        return not self.skipped and not self.dropped_fields

    def add(self, line: int, result: ConvertedRecord, record: dict[str, Any] | None = None) -> None:
        """Count one record's conversion (`record`: the record read, to describe a skip)."""
        self.records_in += 1
        if result.skip_reason is not None:
            self._skip(result.skip_reason, line)
            if record is not None and len(self.examples) < MAX_EXAMPLES:
                keys = sorted(map(str, record))
                self.examples.append({"line": line, "reason": result.skip_reason, "keys": keys})
            return
        self.records_out += 1
        for name in result.dropped:
            self.dropped_fields[name] = self.dropped_fields.get(name, 0) + 1

    def unreadable(self, issue: Issue) -> None:
        """Count a line the reader could not read (blank lines, a warning, are not records)."""
        if issue.is_error:
            self.records_in += 1
            self._skip(UNREADABLE_LINE, issue.line or 0)

    def _skip(self, reason: str, line: int) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        lines = self.skipped_lines.setdefault(reason, [])
        if len(lines) < MAX_LINES_PER_REASON:
            lines.append(line)

    def __str__(self) -> str:
        head = f"converted {self.records_out} of {self.records_in} records: {self.source_format.value} -> {self.target_format.value}"
        out = [
            head + (" (lossless)" if self.lossless else ""),
            f"  from {self.source}",
            f"  to   {self.target}",
        ]
        if self.skipped:
            out.append(
                f"skipped {sum(self.skipped.values())}: "
                + "; ".join(self._skip_text(r) for r in self.skipped)
            )
        if self.dropped_fields:
            out.append(
                "dropped: "
                + ", ".join(f"{k} ({_records(n)})" for k, n in self.dropped_fields.items())
            )
        if not self.ok:
            out.extend(self.why_nothing())
        return "\n".join(out)

    def why_nothing(self, map_hint: str = "mapping={FIELD: COLUMN}") -> list[str]:
        """Why no record was converted: the first skipped records, their reasons and keys, and
        the fields the source format reads (`map_hint`: how to map columns where shown)."""
        wanted = EXPECTED_FIELDS.get(self.source_format, "")
        out = [
            f"nothing was converted: no record of {self.records_in} could be read as "
            f"{self.source_format.value} ({self.source_format.label})"
        ]
        for ex in self.examples:
            keys = ", ".join(ex["keys"]) or "none"
            out.append(f"  line {ex['line']}: {ex['reason']} (the record's keys: {keys})")
        if wanted:
            out.append(
                f"  {self.source_format.value} records need {wanted}; read them from other "
                f"column names with {map_hint}, or name the right source format"
            )
        return out

    def _skip_text(self, reason: str) -> str:
        count, lines = self.skipped[reason], self.skipped_lines.get(reason, [])
        more = ", ..." if count > len(lines) else ""
        return (
            f"{reason} {count} (line{'s' if count > 1 else ''} {', '.join(map(str, lines))}{more})"
        )


def _records(n: int) -> str:
    return f"{n} record" + ("s" if n != 1 else "")


def open_output(path: str | os.PathLike[str]) -> BinaryIO:
    """Open `path` for writing bytes, gzip-compressed when it ends in `.gz`.

    >>> with open_output("out.jsonl.gz") as f:  # doctest: +SKIP
    ...     f.write(b'{"input": "text"}\\n')
    """
    if str(path).endswith(".gz"):
        return gzip.open(path, "wb")  # type: ignore[return-value]
    return open(path, "wb")


def check_paths(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """`DataFileError` when `src` is not a readable file or `dst` would overwrite it."""
    source = Path(src)
    if not source.exists():
        raise DataFileError(f"{source}: no such file")
    if source.is_dir():
        raise DataFileError(f"{source}: is a directory, expected a .jsonl or .jsonl.gz file")
    if Path(dst).resolve() == source.resolve():
        raise DataFileError(f"{dst}: is the input file; write the output to another path")


def detect_source_format(
    path: str | os.PathLike[str], mapping: Mapping[str, str] | None = None
) -> DataFormat:
    """The first candidate format of the first readable record, read through `mapping`
    (`ConversionError` when none).

    >>> detect_source_format("dolly.jsonl")  # doctest: +SKIP
    <DataFormat.INSTRUCTION: 'instruction'>
    """
    for _line, _raw, record in JsonlReader(path):
        formats = candidate_formats(apply_mapping(record, mapping))
        if not formats:
            raise ConversionError(
                f"{path}: the first readable record has no known shape; pass source_format="
            )
        return formats[0]
    raise ConversionError(
        f"{path}: no readable record to detect the format from; pass source_format="
    )


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    to: DataFormat | str,
    *,
    source_format: DataFormat | str | None = None,
    system_prompt: str | None = None,
    template: str | None = None,
    max_tokens: int | None = None,
    max_chars: int | None = None,
    tokenizer: TokenCounting | None = None,
    mapping: Mapping[str, str] | None = None,
) -> ConversionSummary:
    """Convert the JSONL file `src` to format `to`, writing `dst` (gzip when it ends in `.gz`).

    The source format is detected from the first readable record unless `source_format` is
    given. `mapping` reads the source format's fields from other column names
    (`{"instruction": "text"}`: the column `text` is the instruction). `template` builds the
    prompt of instruction data from the placeholders `{instruction}` and `{input}` (both, and
    no others; a record with an empty input gets the instruction alone). Records that cannot
    be converted, and records over `max_chars` characters or `max_tokens` tokens (counted by
    `tokenizer.count`), are skipped, never cut; `summary.ok` is False when nothing was
    converted, and `summary.examples` says why for the first records.

    >>> summary = fh.convert("dolly.jsonl", "pc.jsonl", to="prompt_completion", max_chars=4000)  # doctest: +SKIP
    >>> summary.records_out, summary.skipped  # doctest: +SKIP
    (8, {})
    >>> fh.convert("qa.jsonl", "chat.jsonl", to="chat",
    ...            mapping={"instruction": "text"})  # doctest: +SKIP
    """
    check_paths(src, dst)
    mapping = check_mapping(mapping)
    target = parse_format(to)
    source = (
        parse_format(source_format)
        if source_format is not None
        else detect_source_format(src, mapping)
    )
    limit = LengthLimit(max_chars=max_chars, max_tokens=max_tokens, tokenizer=tokenizer)
    converter = Converter(
        source, target, system_prompt=system_prompt, template=template, limit=limit
    )
    summary = ConversionSummary(
        source=str(src),
        target=str(dst),
        source_format=source,
        target_format=target,
        mapping=mapping,
    )
    dumps = orjson.dumps
    with open_output(dst) as out:
        for line, _raw, record in JsonlReader(src, on_issue=summary.unreadable):
            result = converter(apply_mapping(record, mapping))
            summary.add(line, result, record)
            if result.record is not None:
                out.write(dumps(result.record) + b"\n")
    return summary
