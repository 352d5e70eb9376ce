"""Stores of each kind for tests: `fresh_store_url` yields a fresh SQLite file or a fresh
database on the session's PostgreSQL server (`fh_postgres`, which the test setup starts on
127.0.0.1). Test modules wrap it in their own fixtures:

    @pytest.fixture(params=STORE_KINDS)
    def store_url(request, tmp_path):
        yield from fresh_store_url(request, tmp_path)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_hub.store import JobRecord

STORE_KINDS = ["sqlite", "postgresql"]


def fresh_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of the kind `request.param` names: a SQLite file, or a new database
    on the session's PostgreSQL server (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'jobs.sqlite3'}"
        return
    yield from postgres_database(request.getfixturevalue("fh_postgres"))


def postgres_database(server: Any) -> Iterator[str]:
    """A fresh database on `server` (a `TemporaryPostgres`), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    server.drop_database(name)


def job(**fields) -> JobRecord:
    base = {"provider": "openai", "base_model": "gpt-4.1-mini", "training_file": "train.jsonl"}
    return JobRecord(**{**base, **fields})
