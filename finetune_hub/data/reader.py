"""Streaming JSONL reader: one record at a time, with line numbers, never holding the file.

Reads `.jsonl` and `.jsonl.gz`. Problems in a line (invalid UTF-8, invalid JSON, a value that is
not an object, a blank line, a line over the size cap) become `Issue`s passed to `on_issue`, and
reading goes on with the next line. A UTF-8 byte-order mark is accepted and noted in `.bom`.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from finetune_hub.errors import DataFileError
from finetune_hub.issues import Issue, Severity

#: Default cap on one line's size. Records with inline base64 images can be several MB.
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024

BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20

IssueSink = Callable[[Issue], None]


class JsonlReader:
    """Iterate `(line_number, raw_bytes, record)` over a JSONL file.

    `start`/`end` select the lines that *begin* inside a byte range, so a big file can be split
    across processes (plain files only); line numbers then count from `first_line`.

    >>> issues = []
    >>> for line, raw, record in JsonlReader("train.jsonl", on_issue=issues.append):  # doctest: +SKIP
    ...     print(line, record)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_issue: IssueSink | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        start: int = 0,
        end: int | None = None,
        first_line: int = 1,
    ) -> None:
        self.path = Path(path)
        self.on_issue: IssueSink = on_issue or (lambda issue: None)
        self.max_line_bytes = max_line_bytes
        self.start = start
        self.end = end
        self.first_line = first_line
        self.bom = False
        self.lines = 0  # lines seen (including bad and blank ones)
        self.bytes_read = 0
        self.compressed = is_gzip(self.path)
        if self.compressed and (start or end is not None):
            raise ValueError("byte ranges are not supported for .gz files")

    def __iter__(self) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        with _open(self.path) as f:
            yield from self._records(f)

    def _records(self, f: BinaryIO) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        limit = self.max_line_bytes + 1
        readline = f.readline
        loads = orjson.loads
        pos = self.start
        if pos:
            f.seek(pos - 1)
            if f.read(1) != b"\n":  # we are inside a line that belongs to the previous range
                pos += len(readline())
        end = self.end
        lineno = self.first_line - 1
        first = self.start == 0
        while end is None or pos < end:
            try:
                raw = readline(limit)
            except (EOFError, OSError, zlib.error) as exc:  # only a damaged .gz gets here
                self._issue(lineno + 1, "corrupt_gzip", f"the compressed file is damaged ({exc}); reading stopped here")
                break
            if not raw:
                break
            pos += len(raw)
            lineno += 1
            if first:
                first = False
                if raw.startswith(BOM):
                    self.bom = True
                    raw = raw[3:]
                elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    self._issue(lineno, "not_utf8", "the file is UTF-16; save it as UTF-8 (JSON Lines must be UTF-8)")
                    pos += _skip_rest(f, raw)
                    continue
            if len(raw) == limit and raw[-1:] != b"\n":
                size = len(raw) + _skip_rest(f, raw)
                pos += size - len(raw)
                self._issue(
                    lineno,
                    "line_too_long",
                    f"line is longer than {self.max_line_bytes:,} bytes ({size:,} bytes); it was skipped",
                )
                continue
            try:
                record = loads(raw)
            except orjson.JSONDecodeError as exc:
                if not raw.strip():
                    self._issue(lineno, "blank_line", "blank line", Severity.WARNING)
                else:
                    self._bad_line(lineno, raw, exc)
                continue
            if type(record) is not dict:
                self._issue(
                    lineno,
                    "not_an_object",
                    f"each line must be a JSON object, found a JSON {_json_type(record)}",
                )
                continue
            yield lineno, raw, record
        self.lines = lineno - self.first_line + 1
        self.bytes_read = pos - self.start

    def _bad_line(self, lineno: int, raw: bytes, exc: orjson.JSONDecodeError) -> None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self._issue(lineno, "invalid_utf8", f"invalid UTF-8 at byte {err.start + 1} of the line")
            return
        self._issue(lineno, "invalid_json", f"invalid JSON: {exc.msg} (column {exc.colno})")

    def _issue(self, line: int, code: str, message: str, severity: Severity = Severity.ERROR) -> None:
        self.on_issue(Issue(code=code, message=message, severity=severity, line=line, file=str(self.path)))


def read_records(path: str | os.PathLike[str], **kwargs: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line_number, record)` for each readable record; bad lines are skipped.

    >>> for line, record in read_records("train.jsonl"):  # doctest: +SKIP
    ...     ...
    """
    for line, _raw, record in JsonlReader(path, **kwargs):
        yield line, record


def is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return path.suffix == ".gz"


def _open(path: Path) -> BinaryIO:
    if path.is_dir():
        raise DataFileError(f"{path}: is a directory, expected a .jsonl or .jsonl.gz file")
    try:
        if is_gzip(path):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb", buffering=_CHUNK)
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from None


def _skip_rest(f: BinaryIO, raw: bytes) -> int:
    """Consume the rest of an over-long line in bounded chunks; return the bytes skipped."""
    skipped = 0
    while raw[-1:] != b"\n":
        raw = f.readline(_CHUNK)
        if not raw:
            break
        skipped += len(raw)
    return skipped


def _json_type(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null"
    )
