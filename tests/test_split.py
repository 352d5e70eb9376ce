"""`split`: disjoint, deterministic, capped, streaming, and byte-identical to the input lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from finetune_hub.data.split import SplitSummary, split, validation_count
from finetune_hub.errors import DataFileError

SHARED = Path(__file__).resolve().parents[1] / "examples" / "data"


def make(path: Path, n: int, *, bad: dict[int, bytes] | None = None) -> list[bytes]:
    """Write n records (each line spelled differently, with odd spacing and non-ASCII) plus bad
    lines inserted before the given record indices; return the good lines."""
    good, out = [], []
    for i in range(n):
        if bad and i in bad:
            out.append(bad[i])
        line = (
            json.dumps(
                {"prompt": f"質問 {i}", "completion": f"answer   {i}"}, ensure_ascii=i % 2 == 0
            ).encode()
            + b"\n"
        )
        if i % 3 == 0:
            line = line.replace(b", ", b",  ")
        good.append(line)
        out.append(line)
    path.write_bytes(b"".join(out))
    return good


def lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.splitlines(keepends=True)


def run(
    tmp_path: Path, src: Path, name: str = "", **kwargs
) -> tuple[SplitSummary, list[bytes], list[bytes]]:
    train, valid = tmp_path / f"train{name}.jsonl", tmp_path / f"valid{name}.jsonl"
    summary = split(src, train, valid, **kwargs)
    return summary, lines(train), lines(valid)


def test_disjoint_complete_byte_identical_and_in_file_order(tmp_path):
    good = make(tmp_path / "all.jsonl", 100)
    summary, train, valid = run(tmp_path, tmp_path / "all.jsonl", validation_size=0.2, seed=3)
    assert (summary.records_in, summary.training_records, summary.validation_records) == (
        100,
        80,
        20,
    )
    assert len(train) == 80 and len(valid) == 20
    assert set(train).isdisjoint(valid)
    assert sorted(train + valid) == sorted(good)
    assert train == [line for line in good if line in set(train)]
    assert valid == [line for line in good if line in set(valid)]
    assert summary.dropped_over_cap == 0 and summary.unreadable_lines == 0 and summary.seed == 3


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    make(tmp_path / "all.jsonl", 200)
    _, train_a, valid_a = run(tmp_path, tmp_path / "all.jsonl", "a", seed=7)
    _, train_b, valid_b = run(tmp_path, tmp_path / "all.jsonl", "b", seed=7)
    _, _, valid_c = run(tmp_path, tmp_path / "all.jsonl", "c", seed=8)
    assert (train_a, valid_a) == (train_b, valid_b)
    assert valid_a != valid_c


def test_validation_size_as_count_fraction_and_cap():
    assert validation_count(52, 0.1) == 5
    assert validation_count(3, 0.1) == 1
    assert validation_count(1, 0.1) == 0
    assert validation_count(52, 0.0) == 0
    assert validation_count(52, 7) == 7
    assert validation_count(52, 0.5, cap=10) == 10
    for bad in (1.0, -0.1, -1, True, "0.1"):
        with pytest.raises(ValueError):
            validation_count(52, bad)
    with pytest.raises(ValueError, match="no training records"):
        validation_count(52, 52)


def test_caps_on_both_sides(tmp_path):
    good = make(tmp_path / "all.jsonl", 100)
    summary, train, valid = run(
        tmp_path,
        tmp_path / "all.jsonl",
        validation_size=30,
        max_validation_records=10,
        max_training_records=50,
    )
    assert summary.validation_records == len(valid) == 10
    assert summary.training_records == len(train) == 50
    assert summary.dropped_over_cap == 40
    assert set(train).isdisjoint(valid) and set(train + valid) <= set(good)
    assert "40 training records left out over the cap" in str(summary)


@pytest.mark.parametrize("cap", [1, 30, 89])
def test_training_cap_keeps_exactly_cap_records_deterministically(tmp_path, cap):
    make(tmp_path / "all.jsonl", 100)
    s1, train1, _ = run(
        tmp_path, tmp_path / "all.jsonl", "1", validation_size=10, max_training_records=cap, seed=5
    )
    s2, train2, _ = run(
        tmp_path, tmp_path / "all.jsonl", "2", validation_size=10, max_training_records=cap, seed=5
    )
    assert len(train1) == s1.training_records == cap and train1 == train2
    assert s1.dropped_over_cap == 90 - cap


def test_unreadable_lines_are_counted_and_not_copied(tmp_path):
    good = make(tmp_path / "all.jsonl", 20, bad={3: b'{"prompt": oops\n', 10: b"[1]\n"})
    summary, train, valid = run(tmp_path, tmp_path / "all.jsonl", validation_size=4)
    assert summary.records_in == 20 and summary.unreadable_lines == 2
    assert sorted(train + valid) == sorted(good)
    assert "2 unreadable line(s) not copied" in str(summary)


def test_last_line_without_newline_gets_one(tmp_path):
    src = tmp_path / "all.jsonl"
    src.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}')
    _, train, valid = run(tmp_path, src, validation_size=1)
    assert sorted(train + valid) == [b'{"a": 1}\n', b'{"a": 2}\n', b'{"a": 3}\n']


def test_gzip_in_and_out(tmp_path):
    good = make(tmp_path / "all.jsonl", 30)
    gz = tmp_path / "all.jsonl.gz"
    gz.write_bytes(gzip.compress((tmp_path / "all.jsonl").read_bytes()))
    train, valid = tmp_path / "train.jsonl.gz", tmp_path / "valid.jsonl.gz"
    summary = split(gz, train, valid, validation_size=0.1)
    assert summary.validation_records == 3
    assert sorted(lines(train) + lines(valid)) == sorted(good)


def test_shared_chat_sample(tmp_path):
    summary, train, valid = run(tmp_path, SHARED / "chat_gozaru.jsonl", validation_size=5, seed=1)
    assert (summary.training_records, summary.validation_records) == (15, 5)
    original = (SHARED / "chat_gozaru.jsonl").read_bytes().splitlines(keepends=True)
    assert sorted(train + valid) == sorted(original)


def test_paths_are_checked(tmp_path):
    src = tmp_path / "all.jsonl"
    make(src, 5)
    with pytest.raises(DataFileError, match="no such file"):
        split(tmp_path / "nope.jsonl", tmp_path / "t.jsonl", tmp_path / "v.jsonl")
    with pytest.raises(DataFileError):
        split(src, src, tmp_path / "v.jsonl")
    with pytest.raises(DataFileError, match="different"):
        split(src, tmp_path / "same.jsonl", tmp_path / "same.jsonl")
