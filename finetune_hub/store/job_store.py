"""The job store: every job, state change, event and deployment, in one SQLite file, secret-free.

It lives in `<home>/jobs.sqlite3`, where home is `$FINETUNE_HUB_HOME` or `~/.finetune_hub`. It is
safe to share between threads and between processes (WAL journal, short write transactions).
What it stores names where credentials come from (`"env:OPENAI_API_KEY"`), never a credential.

>>> store = JobStore(tmp_home)  # doctest: +SKIP
>>> job = store.create(JobRecord(provider="openai", base_model="gpt-4.1-mini",
...                              training_file="train.jsonl",
...                              credentials={"api_key": "env:OPENAI_API_KEY"}))  # doctest: +SKIP
>>> store.record_status(job.id, JobStatus.QUEUED, raw_status="queued")  # doctest: +SKIP
True
>>> [j.id for j in store.list(provider="openai", status="queued")] == [job.id]  # doctest: +SKIP
True
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finetune_hub.errors import DeploymentNotFound, JobExists, JobNotFound
from finetune_hub.status import JobEvent, JobStatus
from finetune_hub.store.records import (
    DeploymentRecord,
    JobRecord,
    Transition,
    now,
)
from finetune_hub.store.secret_policy import (
    check_record_fields,
)
from finetune_hub.store.sqlite import (
    DEPLOYMENT_COLUMNS,
    DEPLOYMENT_UPSERT,
    EVENT_INSERT,
    JOB_COLUMNS,
    JOB_INSERT,
    JOB_UPDATE,
    TRANSITION_INSERT,
    connect,
    from_row,
    immediate,
    to_db_time,
    to_row,
)

HOME_ENV = "FINETUNE_HUB_HOME"
STORE_FILE = "jobs.sqlite3"


def default_home() -> Path:
    """The store's folder: `$FINETUNE_HUB_HOME`, else `~/.finetune_hub`.

    >>> default_home().name  # doctest: +SKIP
    '.finetune_hub'
    """
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".finetune_hub"







_JOB_FIELDS = frozenset(JobRecord.model_fields)
_DEPLOYMENT_FIELDS = frozenset(DeploymentRecord.model_fields)


def _statuses(status: JobStatus | str | Iterable[JobStatus | str] | None) -> builtins.list[str]:
    if status is None:
        return []
    if isinstance(status, str):  # JobStatus is a str too
        return [JobStatus(status).value]
    return [JobStatus(s).value for s in status]


def _checked_update(fields: Mapping[str, Any], known: frozenset[str], kind: str) -> None:
    unknown = sorted(set(fields) - (known - {"id", "created_at"}))
    if unknown:
        raise TypeError(
            f"cannot update {kind} field(s) {unknown}; updatable: "
            + ", ".join(sorted(known - {"id", "created_at"}))
        )
    check_record_fields(fields)


# --- the store --------------------------------------------------------------------------------


class JobStore:
    """Jobs, their state changes and events, and deployments, in `<home>/jobs.sqlite3`.

    `home` overrides `$FINETUNE_HUB_HOME`, which overrides `~/.finetune_hub`. One store may be
    used from many threads; many processes may open the same home at once.

    >>> store = JobStore()  # doctest: +SKIP
    >>> store.list(provider="openai", status="running")  # doctest: +SKIP
    [JobRecord(id='ftj_3f2a9c1b7d4e', provider='openai', ...)]
    """

    def __init__(self, home: str | Path | None = None, *, timeout: float = 5.0) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.path = self.home / STORE_FILE
        self.home.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._db = connect(self.path, timeout)

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the store cannot be used afterwards)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        self._after_fork()
        with self._lock:
            yield self._db

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        self._after_fork()
        with self._lock, immediate(self._db) as db:
            yield db

    def _after_fork(self) -> None:
        # A SQLite connection (or a held lock) must not cross fork(): a child opens its own.
        if os.getpid() != self._pid:
            self._lock = threading.RLock()
            self._pid = os.getpid()
            self._db = connect(self.path, self._timeout)

    # --- jobs ---

    def create(self, record: JobRecord) -> JobRecord:
        """Insert a new job (and its first transition); raises `JobExists` for a used id.

        >>> store.create(JobRecord(provider="openai", base_model="gpt-4.1-mini",
        ...                        training_file="train.jsonl"))  # doctest: +SKIP
        """
        check_record_fields(record.model_dump())
        with self._writing() as db:
            try:
                db.execute(JOB_INSERT, to_row(record, JOB_COLUMNS))
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" not in str(exc):
                    raise
                raise JobExists(
                    f"A job {record.id!r} is already in the job store at {self.path}; "
                    "create the record with a fresh id (new_job_id())."
                ) from None
            self._add_transition(db, record.id, record.status, record.raw_status, None, "recorded")
        return record

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None if the store has no such id."""
        with self._reading() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else from_row(JobRecord, row)

    def require(self, job_id: str) -> JobRecord:
        """The job, or `JobNotFound` (whose message says how to list jobs)."""
        record = self.get(job_id)
        if record is None:
            raise JobNotFound(job_id, self.path)
        return record

    def update(self, job_id: str, **fields: Any) -> JobRecord:
        """Change some fields of a job; returns the updated record.

        A change of `status`/`raw_status` here is recorded as a transition too.

        >>> store.update(job.id, provider_job_id="ftjob-abc123")  # doctest: +SKIP
        """
        _checked_update(fields, _JOB_FIELDS, "job")
        with self._writing() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id, self.path)
            old = from_row(JobRecord, row)
            new = JobRecord.model_validate({**old.model_dump(), **fields, "updated_at": now()})
            db.execute(JOB_UPDATE, [*to_row(new, JOB_COLUMNS[1:]), job_id])
            if (new.status, new.raw_status) != (old.status, old.raw_status):
                self._add_transition(db, job_id, new.status, new.raw_status, new.updated_at)
        return new

    def record_status(
        self,
        job_id: str,
        status: JobStatus | str,
        raw_status: str | None = None,
        at: dt.datetime | None = None,
        message: str | None = None,
    ) -> bool:
        """Set the job's status; a transition is appended only if (status, raw_status) changed.

        Returns whether it changed, so pollers can call this on every poll.

        >>> store.record_status(job.id, JobStatus.RUNNING, raw_status="running")  # doctest: +SKIP
        True
        """
        status = JobStatus(status)
        with self._writing() as db:
            row = db.execute("SELECT status, raw_status FROM jobs WHERE id = ?", (job_id,))
            current = row.fetchone()
            if current is None:
                raise JobNotFound(job_id, self.path)
            if (current["status"], current["raw_status"]) == (status.value, raw_status):
                return False
            changed_at = now()
            db.execute(
                "UPDATE jobs SET status = ?, raw_status = ?, updated_at = ? WHERE id = ?",
                (status.value, raw_status, to_db_time(changed_at), job_id),
            )
            self._add_transition(db, job_id, status, raw_status, at or changed_at, message)
        return True

    @staticmethod
    def _add_transition(
        db: sqlite3.Connection,
        job_id: str,
        status: JobStatus,
        raw_status: str | None,
        at: dt.datetime | None,
        message: str | None = None,
    ) -> None:
        when = to_db_time(at or now())
        db.execute(TRANSITION_INSERT, (job_id, status.value, raw_status, when, message))

    def transitions(self, job_id: str) -> builtins.list[Transition]:
        """The job's recorded state changes, oldest first (the first is its state when created)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT status, raw_status, at, message FROM transitions WHERE job_id = ? "
                "ORDER BY seq",
                (job_id,),
            ).fetchall()
        return [from_row(Transition, r) for r in rows]

    def add_events(self, job_id: str, events: Iterable[JobEvent]) -> int:
        """Store events not seen before (by event id); returns how many were new.

        >>> store.add_events(job.id, provider.events(job.provider_job_id))  # doctest: +SKIP
        3
        """
        rows = [
            (job_id, e.id, to_db_time(e.created_at), e.level, e.message, e.type,
             None if e.data is None else json.dumps(e.data, default=str))
            for e in events
        ]  # fmt: skip
        with self._writing() as db:
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                raise JobNotFound(job_id, self.path)
            before = db.total_changes
            db.executemany(EVENT_INSERT, rows)
            return db.total_changes - before

    def events(self, job_id: str) -> builtins.list[JobEvent]:
        """The job's stored events, oldest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT event_id AS id, created_at, level, message, type, data FROM events "
                "WHERE job_id = ? ORDER BY created_at, seq",
                (job_id,),
            ).fetchall()
        return [from_row(JobEvent, r) for r in rows]

    def list(
        self,
        provider: str | None = None,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
        limit: int | None = None,
    ) -> builtins.list[JobRecord]:
        """Jobs, newest first, optionally for one provider and one or several statuses.

        >>> store.list(provider="openai", status=["queued", "running"], limit=10)  # doctest: +SKIP
        """
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
        if provider is not None:
            where.append("provider = ?")
            params.append(provider)
        if statuses := _statuses(status):
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._reading() as db:
            rows = db.execute(sql, params).fetchall()
        return [from_row(JobRecord, r) for r in rows]

    def find_pending(self, provider: str | None = None) -> builtins.list[JobRecord]:
        """Jobs recorded locally whose submission was never confirmed (status PENDING).

        Before submitting again, look these up at the provider by their local id.
        """
        return self.list(provider=provider, status=JobStatus.PENDING)

    # --- deployments ---

    def save_deployment(self, record: DeploymentRecord) -> DeploymentRecord:
        """Insert or replace a deployment record."""
        check_record_fields(record.model_dump())
        with self._writing() as db:
            db.execute(DEPLOYMENT_UPSERT, to_row(record, DEPLOYMENT_COLUMNS))
        return record

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        """The deployment, or None."""
        with self._reading() as db:
            sql = "SELECT * FROM deployments WHERE id = ?"
            row = db.execute(sql, (deployment_id,)).fetchone()
        return None if row is None else from_row(DeploymentRecord, row)

    def update_deployment(self, deployment_id: str, **fields: Any) -> DeploymentRecord:
        """Change some fields of a deployment, e.g. `deleted_at=` once it is torn down."""
        _checked_update(fields, _DEPLOYMENT_FIELDS, "deployment")
        with self._writing() as db:
            sql = "SELECT * FROM deployments WHERE id = ?"
            row = db.execute(sql, (deployment_id,)).fetchone()
            if row is None:
                raise DeploymentNotFound(deployment_id, self.path)
            old = from_row(DeploymentRecord, row)
            new = DeploymentRecord.model_validate({**old.model_dump(), **fields})
            db.execute(DEPLOYMENT_UPSERT, to_row(new, DEPLOYMENT_COLUMNS))
        return new

    def list_deployments(
        self, active_only: bool = True, job_id: str | None = None
    ) -> builtins.list[DeploymentRecord]:
        """Deployments, newest first; by default only those not deleted (they may cost money)."""
        where = ["deleted_at IS NULL"] if active_only else []
        params: builtins.list[Any] = []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        sql = "SELECT * FROM deployments" + (" WHERE " + " AND ".join(where) if where else "")
        with self._reading() as db:
            rows = db.execute(sql + " ORDER BY created_at DESC, rowid DESC", params).fetchall()
        return [from_row(DeploymentRecord, r) for r in rows]
