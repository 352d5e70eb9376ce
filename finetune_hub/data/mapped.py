"""A training file read through a column mapping (`mapping={"instruction": "text"}`: the column
`text` is the field `instruction`), as a temporary copy whose line N is line N of the original, so
validation reports the user's line numbers and a job uploads records in the names its format
reads. The mapping itself is `fh.convert`'s (`data/convert.py`).

>>> with mapped_copy("qa.jsonl", {"instruction": "text"}) as path:  # doctest: +SKIP
...     fh.validate(path, provider="local", base_model="smollm2-135m-instruct")

`columns=` collects, in the same pass, the column names the records have, so a caller can tell
a mapped column no record has (a typo, the wrong file): `fh.validate` reports it as
`mapping_column_missing`.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import orjson

from finetune_hub.data.convert import apply_mapping, check_mapping
from finetune_hub.data.plain import is_gzip


@contextmanager
def mapped_copy(
    path: str | os.PathLike[str],
    mapping: Mapping[str, str] | None,
    *,
    columns: set[str] | None = None,
) -> Iterator[str]:
    """`path` itself when `mapping` is empty, else a temporary `.jsonl` copy (decompressed) with
    every JSON object's columns renamed by `mapping`; a line that is not a JSON object is copied
    as it is, so the validator still reports it where it is. Removed on exit.

    `columns`, when given, receives the column names (before renaming) of the file's JSON-object
    records while the copy is written; it stays empty when `mapping` is (no copy, no reading)
    or when no line is a JSON object."""
    mapping = check_mapping(mapping)
    if not mapping:
        yield os.fspath(path)
        return
    opener = gzip.open if is_gzip(path) else open
    fd, tmp = tempfile.mkstemp(suffix=".mapped.jsonl")
    try:
        with os.fdopen(fd, "wb") as out, opener(path, "rb") as src:
            for raw in src:
                line = raw.rstrip(b"\r\n")
                try:
                    record = orjson.loads(line) if line.strip() else None
                except orjson.JSONDecodeError:
                    record = None
                if isinstance(record, dict):
                    if columns is not None:
                        columns.update(record)
                    line = orjson.dumps(apply_mapping(record, mapping))
                out.write(line + b"\n")
        yield tmp
    finally:
        os.unlink(tmp)
