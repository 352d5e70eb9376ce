"""What `JobStore` needs from a database, and how a store URL picks one.

Two databases sit behind one `JobStore`: SQLite (the default, one file, Python's own `sqlite3`, no
extra package) and PostgreSQL (a shared store for a team, through SQLAlchemy Core and psycopg 3:
`pip install "finetune-hub[team]"`). `JobStore` writes its SQL once, with `:name` parameters;
each database says the little that differs (how rows are locked, how times are kept, which
column breaks ties in insertion order).

>>> store_url_kind("postgresql://fh@db.internal/finetune_hub")
'postgresql'
>>> store_url_kind("sqlite:////home/me/.finetune_hub/jobs.sqlite3")
'sqlite'
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from finetune_hub.errors import FinetuneHubError

#: Environment variable naming the store by URL (`sqlite:///PATH` or `postgresql://...`).
STORE_URL_ENV = "FINETUNE_HUB_STORE_URL"


class Session(ABC):
    """One transaction's statements: `:name` parameters, rows as dicts."""

    @abstractmethod
    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row the statement returns."""

    def one(self, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The first row, or None."""
        rows = self.all(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Execute a statement that returns no rows; returns how many rows it changed."""

    def run_many(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        """Execute a statement once per parameter dict."""
        for row in rows:
            self.run(sql, row)


class Database(ABC):
    """A store's database: transactions, and what differs between SQLite and PostgreSQL."""

    #: "sqlite" or "postgresql"
    kind: str
    #: the column that orders rows of jobs and deployments by insertion, after created_at
    row_order: str
    #: appended to a SELECT that reads a row about to be changed in the same transaction
    lock_rows: str = ""
    #: where the store lives, fit to show (a file path, or a URL without its password)
    location: str
    #: the SQLite file, or None
    path: Path | None = None

    @abstractmethod
    def reading(self) -> AbstractContextManager[Session]:
        """A read-only use of the database (one consistent snapshot where the database has them)."""

    @abstractmethod
    def writing(self) -> AbstractContextManager[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    def time(self, value: dt.datetime | None) -> Any:
        """`value` as this database keeps times (fixed-width UTC text, or a timestamp)."""

    def serialize(self, session: Session, key: str) -> None:
        """Serialise writers that use the same `key` until this transaction ends (a find-or-create
        must not create twice). SQLite's write transactions are serialised already."""
        return None

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version of the tables as they are now."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (the store cannot be used afterwards)."""

    def after_fork(self) -> None:
        """Called in a child process before its first use: connections must not cross fork()."""
        return None


def store_url_kind(url: str) -> str:
    """`"sqlite"` or `"postgresql"` for a store URL; anything else is refused with the forms
    finetune_hub takes."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    raise FinetuneHubError(
        f"unsupported job store URL {redact_url(url)!r}: use sqlite:///PATH (one file) or "
        "postgresql://USER@HOST:PORT/DATABASE (a shared store)"
    )


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***` (safe to print or store).

    >>> redact_url("postgresql://fh:s3cret@db:5432/hub")
    'postgresql://fh:***@db:5432/hub'
    """
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    netloc, sep, tail = rest.partition("/")
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    return f"{scheme}://{netloc}{sep}{tail}"


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest in ("/", "/:memory:"):
        raise FinetuneHubError(
            f"a SQLite store URL names a file: sqlite:///relative/path or sqlite:////absolute/path "
            f"(got {url!r})"
        )
    return Path(rest[1:]).expanduser()


def open_database(url: str, timeout: float) -> Database:
    """The database a store URL names, created and migrated to the current schema."""
    kind = store_url_kind(url)
    if kind == "sqlite":
        from finetune_hub.store.sqlite import SqliteDatabase

        return SqliteDatabase(sqlite_path(url), timeout)
    from finetune_hub.store.postgres import PostgresDatabase

    return PostgresDatabase(url, timeout)
