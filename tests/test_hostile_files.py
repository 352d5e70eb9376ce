"""Files from issue 15 that were measured on the wrong bytes, took unbounded time or memory:
a .gz measured on its decompressed bytes (reading stops at the cap), blank-line floods skipped in
bulk, a line budget, devices and FIFOs refused, and a per-record footprint of a few bytes.

No test here asserts a duration: each asserts what was read, what was reported and how much
memory the per-record structures took.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import random
import signal
import sys
import tracemalloc
from array import array
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import finetune_hub as fh
from finetune_hub.checks import scan
from finetune_hub.checks.report import token_summary
from finetune_hub.checks.scan import duplicate_pairs
from finetune_hub.data.reader import DEFAULT_MAX_BLANK_RUN, JsonlReader
from finetune_hub.data.tokens import get_counter
from finetune_hub.errors import DataFileError, JobSpecError
from finetune_hub.jobs.spec import JobSpec
from finetune_hub.rules.catalog import Catalog

MB = 1 << 20
RECORD = {
    "messages": [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
}
LINE = json.dumps(RECORD).encode() + b"\n"


def chat(i: int) -> bytes:
    record = {
        "messages": [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i * 7}"},
        ]
    }
    return json.dumps(record).encode() + b"\n"


def read(path, **kwargs):
    issues = []
    reader = JsonlReader(path, on_issue=issues.append, **kwargs)
    records = list(reader)
    return reader, records, issues


@pytest.fixture
def no_hang():
    """Fail instead of hanging if a read blocks (a FIFO with no writer)."""

    def expired(signum, frame):
        raise AssertionError("reading blocked")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# -- limits measured on the decompressed bytes ------------------------------------------------
def bomb(path: Path, records: int, newline_mb: int) -> Path:
    """A small .gz that holds `newline_mb` MiB once decompressed (gzip members concatenate) of
    blank lines of 16 bytes (so the byte cap, not the line budget, is what stops it)."""
    member = gzip.compress(b" " * 15 + b"\n" + b"               \n" * (MB // 16 - 1), 9)
    with open(path, "wb") as f:
        f.write(gzip.compress(b"".join(chat(i) for i in range(records))))
        for _ in range(newline_mb):
            f.write(member)
    return path


def test_a_small_gz_holding_630_mb_fails_the_512_mb_cap_and_reading_stops_there(tmp_path):
    path = bomb(tmp_path / "bomb.jsonl.gz", records=20, newline_mb=630)
    assert path.stat().st_size < 2 * MB  # compressed it is far under the cap
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    [issue] = report.issues("file_too_large")
    assert issue.is_error and "once decompressed" in issue.message
    assert "at most 536,870,912" in issue.message and "reading stopped there" in issue.message
    stats = report.stats.training
    assert stats.records == 20
    # it stopped right past the cap, not at the end of the 630 MiB
    assert stats.lines <= 20 + (512 * MB + MB) // 16
    assert not report.ok


def test_a_gz_under_the_cap_once_decompressed_passes_and_one_over_it_does_not(tmp_path):
    cat = Catalog()
    cat.override("openai", "gpt-4.1-mini", max_file_bytes=len(LINE) * 30)
    small = tmp_path / "small.jsonl.gz"
    small.write_bytes(gzip.compress(b"".join(chat(i) for i in range(12))))
    report = fh.validate(small, provider="openai", base_model="gpt-4.1-mini", catalog=cat)
    assert not report.issues("file_too_large")
    big = tmp_path / "big.jsonl.gz"
    big.write_bytes(gzip.compress(b"".join(chat(i) for i in range(400))))
    assert big.stat().st_size < len(LINE) * 30  # the compressed size alone would pass
    report = fh.validate(big, provider="openai", base_model="gpt-4.1-mini", catalog=cat)
    [issue] = report.issues("file_too_large")
    assert "more than" in issue.message and "compressed" in issue.message
    assert report.stats.training.records < 400  # reading stopped at the cap


def test_plain_files_are_still_read_to_the_end_when_over_the_cap(tmp_path):
    cat = Catalog()
    cat.override("openai", "gpt-4.1-mini", max_file_bytes=len(LINE) * 5)
    path = tmp_path / "plain.jsonl"
    path.write_bytes(b"".join(chat(i) for i in range(40)))
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", catalog=cat)
    [issue] = report.issues("file_too_large")
    assert f"{path.stat().st_size:,} bytes;" in issue.message
    assert report.stats.training.records == 40  # every record is still checked


def test_the_reader_stops_once_past_max_bytes(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(LINE * 1000))
    reader, records, _issues = read(path, max_bytes=len(LINE) * 10 + 5)
    assert reader.over_max_bytes and len(records) == 10
    assert reader.bytes_read == len(LINE) * 11  # the line that crossed the cap, no further
    reader, records, _issues = read(path, max_bytes=len(LINE) * 1000)
    assert not reader.over_max_bytes and len(records) == 1000


def test_an_over_long_line_stops_at_the_cap_too(tmp_path):
    path = tmp_path / "long.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": "' + b"x" * (8 * MB) + b'"}\n' + LINE))
    reader, records, issues = read(path, max_line_bytes=1000, max_bytes=2 * MB)
    assert reader.over_max_bytes and records == []
    assert [i.code for i in issues] == ["line_too_long"] and "or more" in issues[0].message
    assert reader.bytes_read < 4 * MB


# -- unbounded time -------------------------------------------------------------------------------
def test_a_gz_of_only_newlines_is_skipped_in_bulk(tmp_path):
    path = tmp_path / "newlines.jsonl.gz"
    n = 3_000_000
    path.write_bytes(gzip.compress(b"\n" * n))
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", format="chat")
    stats = report.stats.training
    assert stats.lines == n and stats.records == 0
    listed = report.issues("blank_line")
    blank = len(listed) + report.suppressed.get("blank_line", 0)
    assert blank == DEFAULT_MAX_BLANK_RUN  # one warning a line for the start of the run only
    [skipped] = report.issues("blank_lines_skipped")
    assert skipped.line == DEFAULT_MAX_BLANK_RUN + 1
    assert f"{n - DEFAULT_MAX_BLANK_RUN:,} more blank lines" in skipped.message
    assert "empty_file" in {i.code for i in report.errors}


def test_records_after_a_blank_flood_are_read_with_their_line_numbers(tmp_path):
    for name, opener in (("flood.jsonl", open), ("flood.jsonl.gz", gzip.open)):
        path = tmp_path / name
        with opener(path, "wb") as f:
            f.write(LINE + b"\n" * 50_000 + b"  \t\r\n" * 10 + b'  {"a": 1}\n' + LINE)
        reader, records, issues = read(path)
        assert [line for line, _raw, _rec in records] == [1, 50_012, 50_013]
        assert records[1][2] == {"a": 1}
        assert reader.lines == 50_013
        codes = Counter(i.code for i in issues)
        assert codes == {"blank_line": DEFAULT_MAX_BLANK_RUN, "blank_lines_skipped": 1}


def test_short_blank_runs_are_still_reported_one_by_one(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_bytes((LINE + b"\n" * 3) * 500)
    _reader, records, issues = read(path)
    assert len(records) == 500
    assert Counter(i.code for i in issues) == {"blank_line": 1500}


def test_the_blank_flood_respects_byte_ranges(tmp_path):
    path = tmp_path / "ranges.jsonl"
    content = LINE + b"\n" * 30_000 + LINE + b"\n" * 30_000 + LINE
    path.write_bytes(content)
    mid = len(content) // 2
    first, records_a, _ = read(path, end=mid)
    second, records_b, _ = read(path, start=mid, first_line=first.lines + 1)
    assert first.lines + second.lines == 60_003
    lines = [line for line, _r, _rec in records_a + records_b]
    assert lines == [1, 30_002, 60_003]


def test_a_line_budget_stops_pathological_files(tmp_path):
    path = tmp_path / "many.jsonl.gz"
    path.write_bytes(gzip.compress(b"[]\n" * 5000))  # not blank, not records: one issue each
    reader, records, issues = read(path, max_lines=1000)
    assert reader.stopped == "too_many_lines" and reader.lines == 1000
    assert issues[-1].code == "too_many_lines" and issues[-1].line == 1001
    assert issues[-1].is_error and "1,000 lines" in issues[-1].message
    assert Counter(i.code for i in issues)["not_an_object"] == 1000
    # a file of exactly the budget is fine
    path.write_bytes(gzip.compress(b"[]\n" * 1000))
    reader, _records, issues = read(path, max_lines=1000)
    assert reader.stopped is None and "too_many_lines" not in {i.code for i in issues}


def test_the_line_budget_counts_skipped_blank_lines(tmp_path):
    path = tmp_path / "padded.jsonl"
    path.write_bytes(LINE + b"\n" * 10_000 + LINE)
    reader, records, issues = read(path, max_lines=5_000)
    assert reader.stopped == "too_many_lines" and len(records) == 1
    assert issues[-1].code == "too_many_lines" and issues[-1].line == 5_001


def test_the_validator_reports_the_line_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "JsonlReader", functools.partial(JsonlReader, max_lines=50))
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(chat(i) for i in range(80)))
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    [issue] = report.issues("too_many_lines")
    assert issue.line == 51 and issue.file == str(path)
    assert report.stats.training.records == 50 and not report.ok


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("given_format", [None, "chat"])
def test_dev_zero_is_refused_not_read_forever(no_hang, given_format):
    with pytest.raises(DataFileError, match="character device, not a regular file"):
        fh.validate("/dev/zero", provider="openai", base_model="gpt-4.1-mini", format=given_format)
    with pytest.raises(DataFileError, match="/dev/zero"):
        list(JsonlReader("/dev/zero"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path, no_hang):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DataFileError, match="FIFO"):
        fh.validate(fifo, provider="openai", base_model="gpt-4.1-mini")
    with pytest.raises(DataFileError, match="FIFO"):
        fh.validate(fifo, provider="openai", base_model="gpt-4.1-mini", format="chat")
    with pytest.raises(DataFileError, match="FIFO"):
        list(fh.read_records(fifo))
    job = tmp_path / "job.yaml"
    os.mkfifo(job)
    with pytest.raises(JobSpecError, match="not a regular file"):
        JobSpec.from_file(job)


def test_a_directory_keeps_its_message(tmp_path):
    with pytest.raises(DataFileError, match="is a directory"):
        fh.validate(tmp_path, provider="openai", base_model="gpt-4.1-mini", format="chat")


# -- memory ---------------------------------------------------------------------------------------
def write_chats(path: Path, n: int) -> Path:
    with open(path, "wb") as f:
        for i in range(0, n, 1000):
            f.write(b"".join(chat(j) for j in range(i, min(n, i + 1000))))
    return path


def chat_spec(path: Path) -> scan.ScanSpec:
    return scan.ScanSpec(
        rules=Catalog().resolve("openai", "gpt-4.1-mini", "sft")[0],
        format=fh.DataFormat.CHAT,
        tokenizer="o200k_base",
        limit=65_536,
        limit_field="max_tokens_per_example",
        limit_note="",
        cap=20,
        label=str(path),
    )


def test_what_is_kept_per_record_is_a_few_compact_bytes(tmp_path):
    """200k records: the arrays kept per record (token count, fingerprint, line number) and the
    peak of the duplicate search and the statistics (tracemalloc) stay under 40 bytes a record;
    the old dict of fingerprints and sorted list of counts took about 150."""
    from finetune_hub.checks import validation

    n = 200_000
    path = write_chats(tmp_path / "many.jsonl", n)
    result = scan.Scanner(chat_spec(path)).scan(path)
    assert result.records == n
    kept = sum(sys.getsizeof(getattr(result, a)) for a in ("tokens", "hashes", "hash_lines"))
    tracemalloc.start()
    try:
        issues, duplicates = validation._duplicates(result, None, 20)
        stats = validation._file_stats(result, duplicates, get_counter("o200k_base"), 65_536)
        after = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert duplicates == 0 and stats.tokens.p50 > 0
    assert kept / n <= 20, f"{kept / n:.1f} bytes per record kept"
    assert (kept + after) / n < 40, f"{(kept + after) / n:.1f} bytes per record at the peak"


def test_a_whole_validation_grows_by_a_few_bytes_per_record(tmp_path):
    """The same bound on everything `fh.validate` allocates (tracemalloc, which slows Python's
    allocations about tenfold, hence fewer records): growth from 5k to 25k records."""
    small = write_chats(tmp_path / "small.jsonl", 5_000)  # fills the first-text cache (4,096)
    big = write_chats(tmp_path / "big.jsonl", 25_000)

    def peak(file: Path) -> int:
        tracemalloc.start()
        try:
            report = fh.validate(file, provider="openai", base_model="gpt-4.1-mini")
            assert report.stats.training.records in (5_000, 25_000)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(small)  # rules, counters and regexes are built outside the measurement
    grown = (peak(big) - peak(small)) / 20_000
    assert grown < 64, f"{grown:.1f} bytes per record"


def test_the_per_record_arrays_are_compact(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(chat(i) for i in range(300)))
    rules = Catalog().resolve("openai", "gpt-4.1-mini", "sft")[0]
    spec = scan.ScanSpec(
        rules=rules,
        format=fh.DataFormat.CHAT,
        tokenizer="chars:4",
        limit=None,
        limit_field="max_tokens_per_example",
        limit_note="",
        cap=20,
        label=str(path),
    )
    result = scan.Scanner(spec).scan(path)
    for name in ("tokens", "hashes", "hash_lines"):
        values = getattr(result, name)
        assert isinstance(values, array) and len(values) == 300
    per_record = sum(getattr(result, n).itemsize for n in ("tokens", "hashes", "hash_lines"))
    assert per_record <= 16


# -- the compact structures give the same answers -------------------------------------------------
def naive_pairs(hashes, other=None):
    seen: dict[int, int] = {}
    if other is not None:
        for j, h in enumerate(other):
            seen.setdefault(h, j)
    for i, h in enumerate(hashes):
        if h in seen:
            yield i, seen[h]
        elif other is None:
            seen[h] = i


fingerprints = st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(0, 6), max_size=60)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(hashes=fingerprints, other=st.none() | fingerprints)
def test_duplicate_pairs_match_a_dict(hashes, other):
    h = array("q", hashes)
    o = array("q", other) if other is not None else None
    assert list(duplicate_pairs(h, o)) == list(naive_pairs(hashes, other))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 40), max_size=300))
def test_token_summary_matches_sorting(values):
    tokens = array("I", values)
    ordered = sorted(values)
    n = len(ordered)

    def pct(p):
        return ordered[min(n - 1, int(p * n))] if n else 0

    expected = {
        "total": sum(ordered),
        "max": ordered[-1] if n else 0,
        "mean": round(sum(ordered) / n, 1) if n else 0.0,
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
    }
    assert token_summary(tokens) == expected


def test_duplicates_and_overlap_are_still_found_at_scale(tmp_path):
    rnd = random.Random(5)
    train_ids = [rnd.randrange(3000) for _ in range(5000)]
    val_ids = [rnd.randrange(2500, 4000) for _ in range(800)]
    train = tmp_path / "train.jsonl"
    val = tmp_path / "val.jsonl"
    train.write_bytes(b"".join(chat(i) for i in train_ids))
    val.write_bytes(b"".join(chat(i) for i in val_ids))
    report = fh.validate(train, provider="openai", base_model="gpt-4.1-mini", validation_file=val)
    assert report.stats.training.duplicates == len(train_ids) - len(set(train_ids))
    in_train = sum(1 for i in val_ids if i in set(train_ids))
    assert report.stats.validation.duplicates == in_train
    first = {}
    for line, i in enumerate(train_ids, 1):
        first.setdefault(i, line)
    dup = [i for i in report.issues("duplicate_record") if i.line][0]
    assert dup.message == f"same record as line {first[train_ids[dup.line - 1]]}"
    overlap = [i for i in report.issues("validation_in_training") if i.line][0]
    assert overlap.message == f"same record as training line {first[val_ids[overlap.line - 1]]}"


def test_what_grows_with_records_is_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text("utf-8")
    for code in ("blank_lines_skipped", "too_many_lines", "file_too_large"):
        assert f"`{code}`" in docs
    assert "bytes per record" in docs and "decompressed" in docs


def test_a_converted_copy_padded_with_a_long_blank_run_reports_no_blank_lines(tmp_path):
    """Vertex converts chat files; the copy keeps line numbers with blank padding lines, and a
    long run of them (1,500 unreadable lines in a row) is no `blank_lines_skipped` either."""
    path = tmp_path / "chat.jsonl"
    path.write_bytes(b"".join(chat(i) for i in range(30)) + b"[1]\n" * 1500 + chat(99))
    report = fh.validate(path, provider="vertex", base_model="gemini-2.5-flash")
    codes = {i.code for i in report.issues()}
    assert "not_an_object" in codes
    assert not codes & {"blank_line", "blank_lines_skipped"}
    assert not set(report.suppressed) & {"blank_line", "blank_lines_skipped"}
