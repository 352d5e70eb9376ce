"""What the job store holds: record shapes, the no-secrets rule, and the SQLite tables.

`finetune_hub.store.JobStore` is the public face; the names here are re-exported there.

>>> check_secret_free({"region": "us-east-1"}, "options")
>>> db = connect(":memory:")
>>> db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
True
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finetune_hub.errors import FinetuneHubError
from finetune_hub.status import JobStatus

#: Key names (normalised to snake_case) that hold secrets; `openai_api_key` matches `api_key`.
SECRET_KEYS = frozenset(
    {"api_key", "apikey", "key", "secret", "token", "password", "passwd", "credential"}
    | {"credentials", "access_key", "secret_access_key", "session_token", "connection_string"}
    | {"sas", "authorization"}
)
#: Names that match SECRET_KEYS by suffix but are identifiers, not secrets.
NOT_SECRET_KEYS = frozenset({"idempotency_key", "client_request_token"})
#: URL query parameters that carry a signature or a key (pre-signed URLs, SAS URLs).
SECRET_QUERY_KEYS = SECRET_KEYS | {"sig", "signature"}
#: What a `credentials` value may say: where the credential comes from.
CREDENTIAL_SOURCES = ("env:", "profile:", "file:", "default-chain", "azure-identity:", "explicit")


def new_job_id() -> str:
    """A fresh local job id: `ftj_` and 12 hex characters.

    >>> len(new_job_id()), new_job_id().startswith("ftj_")
    (16, True)
    """
    return "ftj_" + secrets.token_hex(6)


def new_deployment_id() -> str:
    """A fresh local deployment id: `ftd_` and 12 hex characters."""
    return "ftd_" + secrets.token_hex(6)


def now() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.UTC)


class SecretRefusedError(FinetuneHubError, ValueError):
    """A value bound for the store looks like a secret. Names the key, never echoes the value."""


# --- records ----------------------------------------------------------------------------------


class _StoreModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return utc(value) if isinstance(value, dt.datetime) else value


class JobRecord(_StoreModel):
    """One fine-tuning job as the store keeps it: enough to re-attach after a restart.

    `credentials` says where each credential comes from; `options` and `extra` are secret-free.

    >>> r = JobRecord(provider="openai", base_model="gpt-4.1-mini", training_file="train.jsonl",
    ...               credentials={"api_key": "env:OPENAI_API_KEY"})
    >>> r.status, r.id[:4]
    (<JobStatus.PENDING: 'pending'>, 'ftj_')
    """

    id: str = Field(default_factory=new_job_id)
    provider: str
    base_model: str
    method: str = "sft"
    training_file: str
    validation_file: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    suffix: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, Any] = Field(default_factory=dict)
    provider_job_id: str | None = None
    status: JobStatus = JobStatus.PENDING
    raw_status: str | None = None
    fine_tuned_model: str | None = None
    error: str | None = None
    data_refs: dict[str, Any] = Field(default_factory=dict)
    submitted_at: dt.datetime | None = None
    created_at: dt.datetime = Field(default_factory=now)
    updated_at: dt.datetime = Field(default_factory=now)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("training_file", "validation_file", mode="before")
    @classmethod
    def _path_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value


class Transition(_StoreModel):
    """One recorded change of a job's (status, raw_status)."""

    status: JobStatus
    raw_status: str | None = None
    at: dt.datetime
    message: str | None = None


class DeploymentRecord(_StoreModel):
    """A deployed tuned model; `deleted_at` is set once it has been torn down.

    >>> DeploymentRecord(provider="openai", name="bot", model="ft:gpt-4.1-mini:x").id[:4]
    'ftd_'
    """

    id: str = Field(default_factory=new_deployment_id)
    job_id: str | None = None
    provider: str
    name: str
    model: str
    status: str = "creating"
    endpoint: str | None = None
    hourly_cost_usd: float | None = None
    created_at: dt.datetime = Field(default_factory=now)
    deleted_at: dt.datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


# --- the no-secrets rule ----------------------------------------------------------------------


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower().replace("-", "_").replace(" ", "_")


def is_secret_key(key: str, names: frozenset[str] = SECRET_KEYS) -> bool:
    """Whether a key name says its value is a secret.

    >>> is_secret_key("OPENAI_API_KEY"), is_secret_key("sessionToken"), is_secret_key("region")
    (True, True, False)
    """
    norm = _snake(key)
    if norm in NOT_SECRET_KEYS:
        return False
    return norm in names or any(norm.endswith("_" + name) for name in names)


def _url_hides_secret(text: str) -> bool:
    if "://" not in text:
        return False
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return False
    query = parse_qsl(parts.query, keep_blank_values=True)
    return bool(password) or any(is_secret_key(k, SECRET_QUERY_KEYS) for k, _ in query)


def _refuse(where: str, why: str) -> SecretRefusedError:
    return SecretRefusedError(
        f"{where} {why}; the job store never holds secrets. Describe where the credential comes "
        "from instead, e.g. credentials={'api_key': 'env:OPENAI_API_KEY'}, and pass the value "
        "itself in code."
    )


def _walk(value: Any, where: str) -> Iterator[tuple[str, str | None, Any]]:
    """Yield (path, key, value) for every entry of nested dicts and lists, containers included."""
    if isinstance(value, Mapping):
        items = [(f"{where}[{str(k)!r}]", str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(f"{where}[{i}]", None, v) for i, v in enumerate(value)]
    else:
        return
    for path, key, item in items:
        yield path, key, item
        yield from _walk(item, path)


def check_secret_free(value: Any, where: str, *, check_keys: bool = True) -> None:
    """Raise `SecretRefusedError` if a key (at any depth) or a URL in `value` holds a secret.

    >>> check_secret_free({"region": "us-east-1"}, "options")
    >>> check_secret_free({"auth": {"token": "x"}}, "extra")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    finetune_hub.store_schema.SecretRefusedError: extra['auth']['token'] is a secret's key name; ...
    """
    for path, key, item in [(where, None, value), *_walk(value, where)]:
        if check_keys and key is not None and is_secret_key(key):
            raise _refuse(path, "is a secret's key name")
        if isinstance(item, str) and _url_hides_secret(item):
            raise _refuse(path, "is a URL carrying a password, key or signature")


def check_credentials(value: Mapping[str, Any], where: str = "credentials") -> None:
    """Every leaf must be a description of a source: `env:NAME`, `profile:NAME`, `file:PATH`,
    `default-chain`, `azure-identity:KIND` or `explicit` (passed in code, not stored).

    >>> check_credentials({"api_key": "env:OPENAI_API_KEY"})
    """
    for path, _key, item in _walk(value, where):
        if isinstance(item, Mapping | list | tuple):
            continue  # its own entries are checked
        if not (isinstance(item, str) and item.startswith(CREDENTIAL_SOURCES)):
            sources = ", ".join(repr(s) for s in CREDENTIAL_SOURCES)
            raise _refuse(
                path, f"is not a description of where a credential comes from ({sources})"
            )


def check_record_fields(fields: Mapping[str, Any]) -> None:
    """Refuse secrets in the fields of a job (or a deployment) about to be written."""
    for name, value in fields.items():
        if name in ("options", "extra"):
            check_secret_free(value, name)
        elif name == "credentials":
            check_credentials(value)
        elif name in ("training_file", "validation_file", "data_refs", "endpoint"):
            check_secret_free(value, name, check_keys=False)


# --- SQLite -----------------------------------------------------------------------------------

#: Bumped with every entry added to MIGRATIONS; stored in `PRAGMA user_version`.
SCHEMA_VERSION = 1

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


def utc(value: dt.datetime) -> dt.datetime:
    """`value` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


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
    for key in ("hyperparameters", "options", "credentials", "data_refs", "extra", "data"):
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
