"""A training file as providers take it: plain `.jsonl` (a `.gz` input is decompressed first).

>>> with plain_jsonl("train.jsonl") as path:  # doctest: +SKIP
...     upload(path)
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from finetune_hub.data.reader import is_gzip  # by its magic bytes, as validation reads it

__all__ = ["is_gzip", "plain_jsonl"]


@contextmanager
def plain_jsonl(path: str | os.PathLike[str]) -> Iterator[str]:
    """The path itself, or a temporary decompressed copy of a gzip file, removed afterwards."""
    if not is_gzip(path):
        yield os.fspath(path)
        return
    fd, tmp = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out)
        yield tmp
    finally:
        os.unlink(tmp)
