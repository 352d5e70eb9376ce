"""`split`: a deterministic, streaming train/validation split that copies lines byte for byte.

A first pass counts the readable records; the validation records (and, under a training cap, the
training records left out) are then drawn with `random.Random(seed)`, so memory holds only the
drawn positions, never the records. Unreadable lines are counted and not copied.

>>> summary = split("all.jsonl", "train.jsonl", "valid.jsonl", validation_size=0.1, seed=0)  # doctest: +SKIP
>>> summary.training_records, summary.validation_records  # doctest: +SKIP
(90, 10)
"""

from __future__ import annotations

import os
import random
from collections.abc import Container

from pydantic import BaseModel

from finetune_hub.data.convert import check_paths, open_output
from finetune_hub.data.reader import JsonlReader
from finetune_hub.errors import DataFileError
from finetune_hub.issues import Issue


class SplitSummary(BaseModel):
    """What `split` wrote: records read, written to each file, left out over the training cap,
    and unreadable lines skipped.

    >>> print(SplitSummary(source="a.jsonl", training="t.jsonl", validation="v.jsonl", records_in=10,
    ...                    training_records=9, validation_records=1, seed=0))
    split 10 records of a.jsonl (seed 0): 9 training -> t.jsonl, 1 validation -> v.jsonl
    """

    source: str
    training: str
    validation: str
    records_in: int
    training_records: int
    validation_records: int
    dropped_over_cap: int = 0
    unreadable_lines: int = 0
    seed: int

    def __str__(self) -> str:
        text = (
            f"split {self.records_in} records of {self.source} (seed {self.seed}): "
            f"{self.training_records} training -> {self.training}, "
            f"{self.validation_records} validation -> {self.validation}"
        )
        if self.dropped_over_cap:
            text += f"; {self.dropped_over_cap} training records left out over the cap"
        if self.unreadable_lines:
            text += f"; {self.unreadable_lines} unreadable line(s) not copied"
        return text


def validation_count(records: int, validation_size: float | int, cap: int | None = None) -> int:
    """How many of `records` go to validation: a fraction (rounded, at least 1 when there are
    several records and the fraction is not 0) or a count, at most `cap`.

    >>> validation_count(52, 0.1), validation_count(52, 5), validation_count(52, 0.5, cap=10)
    (5, 5, 10)
    """
    if isinstance(validation_size, bool) or not isinstance(validation_size, int | float):
        raise ValueError(f"validation_size must be a fraction or a count, got {validation_size!r}")
    if isinstance(validation_size, float):
        if not 0 <= validation_size < 1:
            raise ValueError(
                f"a fractional validation_size must be in [0, 1), got {validation_size}"
            )
        count = round(records * validation_size)
        if validation_size > 0 and records > 1:
            count = max(count, 1)
    elif validation_size < 0:
        raise ValueError(f"validation_size must not be negative, got {validation_size}")
    elif records and validation_size >= records:
        raise ValueError(
            f"validation_size {validation_size} leaves no training records (the file has {records})"
        )
    else:
        count = validation_size
    return min(count, cap) if cap is not None else count


def _draw(rng: random.Random, population: int, k: int) -> set[int]:
    return set(rng.sample(range(population), k))


class _Complement(Container[int]):
    """The positions in [0, n) outside a drawn set: keeps the smaller side in memory."""

    def __init__(self, drawn: set[int]) -> None:
        self.drawn = drawn

    def __contains__(self, position: object) -> bool:
        return position not in self.drawn


def _kept_training(rng: random.Random, training: int, cap: int | None) -> Container[int]:
    """The training positions kept under `cap`, drawn at random."""
    if cap is None or cap >= training:
        return range(training)
    left_out = training - cap
    if left_out <= cap:
        return _Complement(_draw(rng, training, left_out))
    return _draw(rng, training, cap)


def _count_records(src: str | os.PathLike[str]) -> tuple[int, int]:
    unreadable = 0

    def on_issue(issue: Issue) -> None:
        nonlocal unreadable
        unreadable += issue.is_error

    records = sum(1 for _ in JsonlReader(src, on_issue=on_issue))
    return records, unreadable


def _line(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else raw + b"\n"


def split(
    src: str | os.PathLike[str],
    train_dst: str | os.PathLike[str],
    validation_dst: str | os.PathLike[str],
    *,
    validation_size: float | int = 0.1,
    seed: int = 0,
    max_training_records: int | None = None,
    max_validation_records: int | None = None,
) -> SplitSummary:
    """Split the JSONL file `src` into disjoint training and validation files.

    `validation_size` is a fraction (float) or a record count (int); validation gets at most
    `max_validation_records`. Training records over `max_training_records` are left out (drawn
    at random with the same seed) and counted. Lines are copied byte for byte, in file order.

    >>> split("all.jsonl", "train.jsonl", "valid.jsonl", validation_size=200, seed=7,
    ...       max_training_records=10_000)  # doctest: +SKIP
    """
    for dst in (train_dst, validation_dst):
        check_paths(src, dst)
    if os.path.abspath(train_dst) == os.path.abspath(validation_dst):
        raise DataFileError(f"{train_dst}: training and validation files must be different paths")
    records, unreadable = _count_records(src)
    rng = random.Random(seed)
    validation = _draw(
        rng, records, validation_count(records, validation_size, max_validation_records)
    )
    kept = _kept_training(rng, records - len(validation), max_training_records)
    training_written = training_seen = 0
    with open_output(train_dst) as train, open_output(validation_dst) as valid:
        for index, (_line_no, raw, _record) in enumerate(JsonlReader(src)):
            if index in validation:
                valid.write(_line(raw))
                continue
            if training_seen in kept:
                train.write(_line(raw))
                training_written += 1
            training_seen += 1
    return SplitSummary(
        source=str(src),
        training=str(train_dst),
        validation=str(validation_dst),
        records_in=records,
        training_records=training_written,
        validation_records=len(validation),
        dropped_over_cap=training_seen - training_written,
        unreadable_lines=unreadable,
        seed=seed,
    )
