"""Streaming JSONL reader: one record at a time, with line numbers, never holding the file.

Reads `.jsonl` and `.jsonl.gz`. Problems in a line (invalid UTF-8, invalid JSON, a value that is
not an object, a blank line, a line over the size cap) become `Issue`s passed to `on_issue`, and
reading goes on with the next line. A UTF-8 byte-order mark is accepted and noted in `.bom`.

Reading is bounded whatever the input: only regular files are opened (a device such as
`/dev/zero` or a FIFO is a `DataFileError`), `max_bytes` stops reading once that many bytes have
been read (the decompressed bytes of a `.gz`), a run of more than `max_blank_run` blank lines is
skipped in bulk, and `max_lines` stops a file that has more lines than any data set should.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from finetune_hub.errors import DataFileError
from finetune_hub.issues import Issue, Severity

#: Default cap on one line's size. Records with inline base64 images can be several MB.
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
#: Lines read before reading stops with `too_many_lines`: 10x the largest record cap in the
#: rules (Vertex: 10M examples), so only a padded or decompression-bomb file reaches it.
DEFAULT_MAX_LINES = 100_000_000
#: Blank lines in a row reported one by one; the rest of such a run is skipped in bulk.
DEFAULT_MAX_BLANK_RUN = 1_000

BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20

IssueSink = Callable[[Issue], None]
#: `on_problem(code, message, severity, line)`: a sink that builds no `Issue` (the validator's
#: collector lists only the first few of each code and counts the rest).
ProblemSink = Callable[[str, str, Severity, int], None]


class JsonlReader:
    """Iterate `(line_number, raw_bytes, record)` over a JSONL file.

    `start`/`end` select the lines that *begin* inside a byte range, so a big file can be split
    across processes (plain files only); line numbers then count from `first_line`.
    After iterating, `lines` and `bytes_read` say how much was read, `stopped` names the issue
    code that ended reading early (`too_many_lines`) or is None, and `over_max_bytes` says
    reading stopped because more than `max_bytes` were read.

    >>> issues = []
    >>> for line, raw, record in JsonlReader("train.jsonl", on_issue=issues.append):  # doctest: +SKIP
    ...     print(line, record)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_issue: IssueSink | None = None,
        on_problem: ProblemSink | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
        max_lines: int | None = DEFAULT_MAX_LINES,
        max_blank_run: int = DEFAULT_MAX_BLANK_RUN,
        start: int = 0,
        end: int | None = None,
        first_line: int = 1,
    ) -> None:
        self.path = Path(path)
        self.on_issue: IssueSink = on_issue or (lambda issue: None)
        self.on_problem = on_problem
        self.max_line_bytes = max_line_bytes
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.max_blank_run = max(1, max_blank_run)
        self.start = start
        self.end = end
        self.first_line = first_line
        self.bom = False
        self.lines = 0  # lines seen (including bad and blank ones)
        self.bytes_read = 0
        self.stopped: str | None = None
        self.over_max_bytes = False
        self.compressed = is_gzip(self.path)
        if self.compressed and (start or end is not None):
            raise ValueError("byte ranges are not supported for .gz files")

    def __iter__(self) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        with _open_regular(self.path) as f:
            if f.peek(2)[:2] == b"\x1f\x8b":
                # our own 1 MiB buffer: GzipFile's is 8 KiB, and peek() skips blank runs with it
                gz = gzip.GzipFile(fileobj=f, mode="rb")
                yield from self._records(io.BufferedReader(gz, buffer_size=_CHUNK))  # type: ignore[arg-type]
            else:
                yield from self._records(f)

    def _records(self, f: io.BufferedReader) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
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
        # sentinels instead of None keep the per-line checks to one comparison each
        last_line = lineno + self.max_lines if self.max_lines else sys.maxsize
        last_byte = self.start + self.max_bytes if self.max_bytes is not None else sys.maxsize
        max_blank_run = self.max_blank_run
        blank_run = 0
        while end is None or pos < end:
            try:
                raw = readline(limit)
            except (EOFError, OSError, zlib.error) as exc:  # only a damaged .gz gets here
                self._corrupt(lineno + 1, exc)
                break
            if not raw:
                break
            pos += len(raw)
            lineno += 1
            if lineno > last_line:
                self.stopped = "too_many_lines"
                self._issue(
                    lineno,
                    "too_many_lines",
                    f"the file has more than {self.max_lines:,} lines; reading stopped here and "
                    "the rest was not checked (a padded or decompression-bomb file?)",
                )
                lineno -= 1
                break
            if pos > last_byte:
                self.over_max_bytes = True
                lineno -= 1
                break
            if first:
                first = False
                if raw.startswith(BOM):
                    self.bom = True
                    raw = raw[3:]
                elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    self._issue(
                        lineno,
                        "not_utf8",
                        "the file is UTF-16; save it as UTF-8 (JSON Lines must be UTF-8)",
                    )
                    pos += _skip_rest(f, raw, last_byte - pos)
                    if pos > last_byte:
                        self.over_max_bytes = True
                        break
                    continue
            if len(raw) == limit and raw[-1:] != b"\n":
                size = len(raw) + _skip_rest(f, raw, last_byte - pos)
                pos += size - len(raw)
                self._issue(
                    lineno,
                    "line_too_long",
                    f"line is longer than {self.max_line_bytes:,} bytes ({size:,} bytes"
                    f"{' or more' if pos > last_byte else ''}); it was skipped",
                )
                if pos > last_byte:
                    self.over_max_bytes = True
                    break
                continue
            if raw.isspace():
                blank_run += 1
                self._issue(lineno, "blank_line", "blank line", Severity.WARNING)
                if blank_run == max_blank_run and (end is None or pos < end):
                    try:
                        skipped, size = _skip_blank_lines(
                            f, pos, end, last_byte, last_line - lineno
                        )
                    except (EOFError, OSError, zlib.error) as exc:
                        self._corrupt(lineno + 1, exc)
                        break
                    if skipped:
                        self._issue(
                            lineno + 1,
                            "blank_lines_skipped",
                            f"{skipped:,} more blank lines in a row (lines {lineno + 1:,}-"
                            f"{lineno + skipped:,}) were skipped without a warning each",
                            Severity.WARNING,
                        )
                        lineno += skipped
                        pos += size
                        if lineno > last_line:  # checked in the same order as for one line
                            self.stopped = "too_many_lines"
                            lineno = last_line
                            self._issue(
                                last_line + 1,
                                "too_many_lines",
                                f"the file has more than {self.max_lines:,} lines; reading stopped "
                                "there and the rest was not checked (a padded or decompression-bomb file?)",
                            )
                            break
                        if pos > last_byte:
                            self.over_max_bytes = True
                            break
                    blank_run = 0
                continue
            blank_run = 0
            try:
                record = loads(raw)
            except orjson.JSONDecodeError as exc:
                if not raw.strip():  # only a BOM on the first line
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
            self._issue(
                lineno, "invalid_utf8", f"invalid UTF-8 at byte {err.start + 1} of the line"
            )
            return
        self._issue(lineno, "invalid_json", f"invalid JSON: {exc.msg} (column {exc.colno})")

    def _corrupt(self, lineno: int, exc: BaseException) -> None:
        self._issue(
            lineno, "corrupt_gzip", f"the compressed file is damaged ({exc}); reading stopped here"
        )

    def _issue(
        self, line: int, code: str, message: str, severity: Severity = Severity.ERROR
    ) -> None:
        if self.on_problem is not None:
            self.on_problem(code, message, severity, line)
        else:
            self.on_issue(
                Issue(code=code, message=message, severity=severity, line=line, file=str(self.path))
            )


def read_records(
    path: str | os.PathLike[str], **kwargs: Any
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line_number, record)` for each readable record; bad lines are skipped.

    >>> for line, record in read_records("train.jsonl"):  # doctest: +SKIP
    ...     ...
    """
    for line, _raw, record in JsonlReader(path, **kwargs):
        yield line, record


def is_gzip(path: Path) -> bool:
    """Whether `path` holds gzip data (by its magic bytes; by its name when it cannot be read).
    Only regular files are opened: opening a FIFO would wait for a writer."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except (OSError, ValueError):
        return Path(path).suffix == ".gz"


def _open_regular(path: Path) -> io.BufferedReader:
    """Open a regular file, refusing directories, devices, FIFOs and sockets with a clear error.

    The file is opened without blocking (a FIFO with no writer would otherwise wait forever) and
    checked with `fstat` on the opened descriptor, so what is checked is what is read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataFileError(
            f"{path}: is a directory, expected a .jsonl or .jsonl.gz file"
        ) from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise DataFileError(f"{path!r}: cannot be opened ({exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise DataFileError(f"{path}: is a directory, expected a .jsonl or .jsonl.gz file")
        if not stat.S_ISREG(mode):
            raise DataFileError(
                f"{path}: is {_kind(mode)}, not a regular file; reading it could block or never "
                "end. Give a .jsonl or .jsonl.gz file (copy the data into one first)"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb", buffering=_CHUNK)
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _skip_rest(f: BinaryIO, raw: bytes, budget: int = sys.maxsize) -> int:
    """Consume the rest of an over-long line in bounded chunks; return the bytes skipped.
    Stops early once more than `budget` bytes were skipped (the rest of `max_bytes`)."""
    skipped = 0
    while raw[-1:] != b"\n" and skipped <= budget:
        raw = f.readline(_CHUNK)
        if not raw:
            break
        skipped += len(raw)
    return skipped


def _skip_blank_lines(
    f: io.BufferedReader, pos: int, end: int | None, last_byte: int, lines_left: int
) -> tuple[int, int]:
    """Consume whole blank lines straight from the buffer (C-speed `isspace`, no per-line loop);
    return `(lines, bytes)` skipped. Stops before the first line holding anything but whitespace,
    at `end` (a byte range's end), and within a buffer past `last_byte` (the `max_bytes` cap) or
    past `lines_left` lines (the line budget)."""
    lines = size = 0
    while True:
        buf = f.peek(_CHUNK)
        if not buf:
            break
        if end is not None:
            buf = buf[: max(0, end - pos - size)]
        ws = len(buf) if buf.isspace() else len(buf) - len(buf.lstrip())  # ASCII whitespace
        cut = buf.rfind(b"\n", 0, ws) + 1  # whole lines only: keep a record's leading spaces
        if not cut:
            break
        lines += buf.count(b"\n", 0, cut)
        size += cut
        f.read(cut)
        if cut < len(buf) or pos + size > last_byte or lines > lines_left:
            break
    return lines, size


def _json_type(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null"
    )
