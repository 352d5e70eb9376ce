"""The store in one SQLite file (the default): its tables at every schema version, migrations
(`PRAGMA user_version`), and the connection `JobStore` uses (WAL, busy timeout, short write
transactions that take the write lock up front). Python's own `sqlite3`, no extra package.

>>> db = connect(":memory:")
>>> db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
True
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finetune_hub.errors import FinetuneHubError
from finetune_hub.store.database import Database, Session
from finetune_hub.store.records import utc
from finetune_hub.store.tables import (  # noqa: F401 - the columns, also read from here
    DEPLOYMENT_COLUMNS,
    JOB_COLUMNS,
    SCHEMA_VERSION,
)

# --- SQLite -----------------------------------------------------------------------------------

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
    3: (
        "ALTER TABLE jobs ADD COLUMN checked_at TEXT",
        "CREATE INDEX IF NOT EXISTS jobs_by_provider_job ON jobs (provider, provider_job_id)",
        "CREATE INDEX IF NOT EXISTS jobs_by_updated ON jobs (updated_at)",
        """CREATE TABLE IF NOT EXISTS metrics (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            epoch REAL,
            train_loss REAL,
            valid_loss REAL,
            train_accuracy REAL,
            valid_accuracy REAL,
            extra TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (job_id, step)
        )""",
    ),
    4: (
        "ALTER TABLE deployments ADD COLUMN expires_at TEXT",
        "CREATE INDEX IF NOT EXISTS deployments_by_expiry ON deployments (expires_at)",
    ),
    5: (
        "ALTER TABLE jobs ADD COLUMN format TEXT",
        "ALTER TABLE jobs ADD COLUMN mapping TEXT NOT NULL DEFAULT '{}'",
    ),
}


def connect(path: str | Path, timeout: float = 5.0) -> sqlite3.Connection:
    """Open (creating and migrating) the store at `path`: WAL, busy timeout, foreign keys on.

    The connection is in autocommit mode and may be shared between threads if the caller
    serialises its use (`SqliteDatabase` holds a lock); write with `immediate()`.
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


# --- the database JobStore uses ----------------------------------------------------------------


class SqliteSession(Session):
    """Statements on the store's one `sqlite3` connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.execute(sql, params or {}).fetchall()]

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        return self.db.execute(sql, params or {}).rowcount

    def run_many(self, sql: str, rows: Any) -> None:
        self.db.executemany(sql, rows)


class SqliteDatabase(Database):
    """One SQLite file shared by threads (a lock) and processes (WAL, `BEGIN IMMEDIATE`).

    >>> SqliteDatabase(tmp / "jobs.sqlite3").schema_version() == SCHEMA_VERSION  # doctest: +SKIP
    True
    """

    kind = "sqlite"
    row_order = "rowid"

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.location = str(path)
        self._timeout = timeout
        self._lock = threading.RLock()
        self.connection = connect(path, timeout)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._lock:
            yield SqliteSession(self.connection)

    @contextmanager
    def writing(self) -> Iterator[Session]:
        with self._lock, immediate(self.connection) as db:
            yield SqliteSession(db)

    def time(self, value: dt.datetime | None) -> str | None:
        return to_db_time(value)

    def schema_version(self) -> int:
        with self._lock:
            return self.connection.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.connection.close()

    def after_fork(self) -> None:
        # A SQLite connection (or a held lock) must not cross fork(): a child opens its own.
        self._lock = threading.RLock()
        self.connection = connect(self.path, self._timeout)
