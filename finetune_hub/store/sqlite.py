"""The store's SQLite tables, migrations and row conversions.

>>> db = connect(":memory:")
>>> db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
True
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from finetune_hub.errors import FinetuneHubError
from finetune_hub.store.records import DeploymentRecord, JobRecord, utc

# --- SQLite -----------------------------------------------------------------------------------

#: Bumped with every entry added to MIGRATIONS; stored in `PRAGMA user_version`.
SCHEMA_VERSION = 2

#: version -> statements that bring a store from version - 1 to it. Never edit a released entry.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            base_model TEXT NOT NULL,
            method TEXT NOT NULL,
            training_file TEXT NOT NULL,
            validation_file TEXT,
            hyperparameters TEXT NOT NULL DEFAULT '{}',
            suffix TEXT,
            options TEXT NOT NULL DEFAULT '{}',
            credentials TEXT NOT NULL DEFAULT '{}',
            provider_job_id TEXT,
            status TEXT NOT NULL,
            raw_status TEXT,
            fine_tuned_model TEXT,
            error TEXT,
            data_refs TEXT NOT NULL DEFAULT '{}',
            submitted_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            extra TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at)",
        "CREATE INDEX IF NOT EXISTS jobs_by_provider_status ON jobs (provider, status)",
        """CREATE TABLE IF NOT EXISTS transitions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            raw_status TEXT,
            at TEXT NOT NULL,
            message TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS transitions_by_job ON transitions (job_id, seq)",
        """CREATE TABLE IF NOT EXISTS events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            event_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            type TEXT,
            data TEXT,
            UNIQUE (job_id, event_id)
        )""",
        "CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, created_at, seq)",
        # No foreign key to jobs: a model tuned elsewhere can be deployed too (job_id NULL).
        """CREATE TABLE IF NOT EXISTS deployments (
            id TEXT PRIMARY KEY,
            job_id TEXT,
            provider TEXT NOT NULL,
            name TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            endpoint TEXT,
            hourly_cost_usd REAL,
            created_at TEXT NOT NULL,
            deleted_at TEXT,
            extra TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX IF NOT EXISTS deployments_by_job ON deployments (job_id)",
    ),
    2: (
        "ALTER TABLE jobs ADD COLUMN error_code TEXT",
        "ALTER TABLE jobs ADD COLUMN datasets TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE jobs ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE deployments ADD COLUMN kind TEXT",
        "ALTER TABLE deployments ADD COLUMN raw_status TEXT",
    ),
}

# The tables' columns are the records' fields, in order (tests check they agree).
JOB_COLUMNS = list(JobRecord.model_fields)
DEPLOYMENT_COLUMNS = list(DeploymentRecord.model_fields)


def connect(path: str | Path, timeout: float = 5.0) -> sqlite3.Connection:
    """Open (creating and migrating) the store at `path`: WAL, busy timeout, foreign keys on.

    The connection is in autocommit mode and may be shared between threads if the caller
    serialises its use (JobStore holds a lock); write with `immediate()`.
    """
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    db.execute("PRAGMA foreign_keys = ON")
    _enable_wal(db, timeout)
    db.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, and much faster
    migrate(db)
    return db


def _enable_wal(db: sqlite3.Connection, timeout: float) -> None:
    # Switching a new file to WAL needs a brief exclusive lock that can fail fast when another
    # process opens the same new store at the same moment; retry within the busy timeout.
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema up to SCHEMA_VERSION; idempotent and safe with several processes."""
    with immediate(db):
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FinetuneHubError(
                f"The job store was written by a newer finetune_hub (schema {version}, this one "
                f"reads up to {SCHEMA_VERSION}). Upgrade finetune-hub, or point "
                "$FINETUNE_HUB_HOME at another folder."
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                db.execute(statement)
        if version != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction that takes the write lock up front (no lock-upgrade deadlock)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")



def to_db_time(value: dt.datetime | None) -> str | None:
    """Fixed-width UTC ISO text, so that text order is time order."""
    return None if value is None else utc(value).isoformat(timespec="microseconds")


# --- rows -------------------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def to_row(record: BaseModel, columns: list[str]) -> list[Any]:
    """`record`'s values for `columns`: dicts as JSON text, datetimes as `to_db_time` text."""
    data = record.model_dump(mode="json")
    row = []
    for column in columns:
        value = getattr(record, column)
        if isinstance(value, dt.datetime):
            row.append(to_db_time(value))
        elif isinstance(value, dict):
            row.append(json.dumps(data[column]))
        else:
            row.append(data[column])
    return row


def from_row(model: type[_M], row: sqlite3.Row) -> _M:
    """A `model` from a row whose column names are its fields."""
    data = dict(row)
    for key in ("hyperparameters", "options", "credentials", "data_refs", "extra", "data", "datasets", "quotas"):
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
    return model.model_validate(data)


JOB_INSERT = (
    f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})"
)
JOB_UPDATE = f"UPDATE jobs SET {', '.join(c + ' = ?' for c in JOB_COLUMNS[1:])} WHERE id = ?"
DEPLOYMENT_UPSERT = (
    f"INSERT INTO deployments ({', '.join(DEPLOYMENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(DEPLOYMENT_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in DEPLOYMENT_COLUMNS[1:])
)
TRANSITION_INSERT = (
    "INSERT INTO transitions (job_id, status, raw_status, at, message) VALUES (?, ?, ?, ?, ?)"
)
EVENT_INSERT = (
    "INSERT OR IGNORE INTO events (job_id, event_id, created_at, level, message, type, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
