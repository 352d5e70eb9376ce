"""The streaming reader: every line accounted for, problems reported with line numbers, no crash."""

from __future__ import annotations

import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_hub.data.reader import JsonlReader


def read(path, **kwargs):
    issues = []
    reader = JsonlReader(path, on_issue=issues.append, **kwargs)
    records = list(reader)
    return reader, records, issues


def test_each_problem_has_its_line_and_reading_goes_on(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"a": 1}\n\n[1]\n{"b":\n\xff\xfe{}\n"text"\n{"c": "x"}\r\n')
    reader, records, issues = read(path)
    assert [(line, rec) for line, _raw, rec in records] == [(1, {"a": 1}), (7, {"c": "x"})]
    assert [(i.line, i.code) for i in issues] == [
        (2, "blank_line"),
        (3, "not_an_object"),
        (4, "invalid_json"),
        (5, "invalid_utf8"),
        (6, "not_an_object"),
    ]
    assert issues[0].severity.value == "warning"
    assert "JSON string" in issues[4].message
    assert reader.lines == 7 and reader.bytes_read == path.stat().st_size


def test_bom_is_stripped_and_noted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')
    reader, records, issues = read(path)
    assert reader.bom and not issues and [r for _l, _raw, r in records] == [{"a": 1}, {"a": 2}]


def test_utf16_file_gets_one_clear_message(tmp_path):
    path = tmp_path / "utf16.jsonl"
    path.write_bytes('{"a": 1}\n'.encode("utf-16"))
    _reader, records, issues = read(path)
    assert records == [] and issues[0].code == "not_utf8" and "UTF-16" in issues[0].message


def test_over_long_lines_are_skipped_in_bounded_chunks(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"a": "' + b"x" * 5000 + b'"}\n{"b": 1}\n')
    reader, records, issues = read(path, max_line_bytes=1000)
    assert [(i.line, i.code) for i in issues] == [(1, "line_too_long")]
    assert "5,010 bytes" in issues[0].message
    assert [(line, rec) for line, _raw, rec in records] == [(2, {"b": 1})]


def test_gzip_is_read_transparently(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\nnot json\n'))
    _reader, records, issues = read(path)
    assert len(records) == 1 and [(i.line, i.code) for i in issues] == [(2, "invalid_json")]


def test_damaged_gzip_is_reported_not_raised(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:-20])
    _reader, records, issues = read(path)
    assert issues[-1].code == "corrupt_gzip" and len(records) <= 1000


def test_byte_ranges_partition_the_lines(tmp_path):
    lines = [f'{{"i": {i}, "pad": "{"y" * (i % 13)}"}}' for i in range(500)]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n")
    size = path.stat().st_size
    cuts = [0, 1, size // 3, size // 2 + 7, size - 3, size]
    seen = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        seen += [rec["i"] for _l, _raw, rec in JsonlReader(path, start=start, end=end)]
    assert seen == list(range(500))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash_and_every_line_is_accounted_for(tmp_path, data):
    path = tmp_path / "random.jsonl"
    path.write_bytes(data)
    reader, records, issues = read(path, max_line_bytes=64)
    if data.startswith(b"\x1f\x8b"):  # read as gzip: damaged streams are reported, never raised
        assert all(i.code in ("corrupt_gzip", "invalid_json", "invalid_utf8", "not_an_object", "blank_line", "line_too_long") for i in issues)
        return
    expected_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert reader.lines == expected_lines
    lines_with_records = {line for line, _raw, _rec in records}
    lines_with_issues = {i.line for i in issues}
    assert lines_with_records.isdisjoint(lines_with_issues)
    assert all(isinstance(rec, dict) for _l, _raw, rec in records)
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        assert lines_with_records | lines_with_issues <= set(range(1, expected_lines + 1))
