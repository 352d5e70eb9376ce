"""The job store: every job, state change, event, metric and deployment, secret-free.

Where it lives, first match wins: `JobStore(url=...)`, `JobStore(home)` (the file
`<home>/jobs.sqlite3`), `$FINETUNE_HUB_STORE_URL`, `$FINETUNE_HUB_HOME`, `~/.finetune_hub`.
A URL is `sqlite:///PATH` (one file, the default kind) or `postgresql://USER@HOST/DATABASE`
(a store shared by a team: `pip install "finetune-hub[team]"`). Either is safe to share between
threads and processes, and a PostgreSQL store between machines. What it stores names where
credentials come from (`"env:OPENAI_API_KEY"`), never a credential.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finetune_hub.errors import DeploymentNotFound, JobExists, JobNotFound
from finetune_hub.status import JobEvent, JobStatus, MetricPoint
from finetune_hub.store.database import STORE_URL_ENV, Database, Session, open_database
from finetune_hub.store.records import DeploymentRecord, JobRecord, Transition, now
from finetune_hub.store.secret_policy import check_record_fields
from finetune_hub.store.tables import (
    DEPLOYMENT_COLUMNS,
    DEPLOYMENT_INSERT_NEW,
    DEPLOYMENT_SELECT,
    DEPLOYMENT_UPSERT,
    EVENT_INSERT,
    JOB_COLUMNS,
    JOB_INSERT,
    JOB_SELECT,
    JOB_UPDATE,
    METRIC_COLUMNS,
    METRIC_UPSERT,
    TRANSITION_INSERT,
    from_row,
    to_params,
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


def default_url() -> str:
    """The store URL used when none is given: `$FINETUNE_HUB_STORE_URL`, else the SQLite file
    in `default_home()`.

    >>> default_url()  # doctest: +SKIP
    'sqlite:////home/me/.finetune_hub/jobs.sqlite3'
    """
    return os.environ.get(STORE_URL_ENV) or _sqlite_url(default_home())


def _sqlite_url(home: str | Path) -> str:
    return f"sqlite:///{Path(home).expanduser().absolute() / STORE_FILE}"


_JOB_FIELDS = frozenset(JobRecord.model_fields)
_DEPLOYMENT_FIELDS = frozenset(DeploymentRecord.model_fields)
_EVENT_SELECT = "SELECT event_id AS id, created_at, level, message, type, data FROM events"


def _statuses(status: JobStatus | str | Iterable[JobStatus | str] | None) -> builtins.list[str]:
    if status is None:
        return []
    if isinstance(status, str):  # JobStatus is a str too
        return [JobStatus(status).value]
    return [JobStatus(s).value for s in status]


def _in(column: str, values: Sequence[Any], params: dict[str, Any]) -> str:
    """`column IN (:column_0, :column_1, ...)` with the values added to `params`."""
    keys = [f"{column}_{i}" for i in range(len(values))]
    params.update(zip(keys, values, strict=True))
    return f"{column} IN ({', '.join(':' + k for k in keys)})"


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
    """Jobs, their state changes, events and metrics, and deployments, in SQLite or PostgreSQL.

    `url` names the store (`sqlite:///PATH`, `postgresql://USER@HOST/DB`); `home` is the
    folder of the default SQLite file. Without either: `$FINETUNE_HUB_STORE_URL`, then
    `$FINETUNE_HUB_HOME`, then `~/.finetune_hub`. One store may be used from many threads; many
    processes (and, with PostgreSQL, machines) may open the same store at once.

    >>> store = JobStore()  # doctest: +SKIP
    >>> store.list(provider="openai", status="running")  # doctest: +SKIP
    [JobRecord(id='ftj_3f2a9c1b7d4e', provider='openai', ...)]
    >>> JobStore(url="postgresql://fh@db.internal/finetune_hub")  # doctest: +SKIP
    JobStore('postgresql+psycopg://fh@db.internal/finetune_hub')
    """

    def __init__(
        self, home: str | Path | None = None, *, url: str | None = None, timeout: float = 5.0
    ) -> None:
        if url is None:
            url = _sqlite_url(home) if home is not None else default_url()
        self._url = url
        self._pid = os.getpid()
        self.db: Database = open_database(url, timeout)
        self.kind = self.db.kind
        self.path: Path | None = self.db.path
        self.home: Path | None = self.path.parent if self.path is not None else None
        self.location = self.db.location

    def __repr__(self) -> str:
        return f"JobStore({self.location!r})"

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (the store cannot be used afterwards)."""
        self.db.close()

    @property
    def url(self) -> str:
        """The store's URL as given (it may hold a password: print `location` instead)."""
        return self._url

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        self._after_fork()
        with self.db.reading() as s:
            yield s

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        self._after_fork()
        with self.db.writing() as s:
            yield s

    def _after_fork(self) -> None:
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self.db.after_fork()

    def _t(self, value: dt.datetime | None) -> Any:
        return self.db.time(value)

    def _job_row(self, s: Session, job_id: str, lock: bool = False) -> JobRecord | None:
        sql = JOB_SELECT + " WHERE id = :id" + (self.db.lock_rows if lock else "")
        row = s.one(sql, {"id": job_id})
        return None if row is None else from_row(JobRecord, row)

    # --- jobs ---

    def create(self, record: JobRecord) -> JobRecord:
        """Insert a new job (and its first transition); raises `JobExists` for a used id.

        >>> store.create(JobRecord(provider="openai", base_model="gpt-4.1-mini",
        ...                        training_file="train.jsonl"))  # doctest: +SKIP
        """
        check_record_fields(record.model_dump())
        with self._writing() as s:
            self._insert_job(s, record)
        return record

    def _insert_job(self, s: Session, record: JobRecord) -> None:
        if not s.all(JOB_INSERT, to_params(record, JOB_COLUMNS, self._t)):
            raise JobExists(
                f"A job {record.id!r} is already in the job store at {self.location}; "
                "create the record with a fresh id (new_job_id())."
            )
        self._add_transition(s, record.id, record.status, record.raw_status, None, "recorded")

    def create_for_provider_job(self, record: JobRecord) -> tuple[JobRecord, bool]:
        """Insert `record` unless the store already has a job for its (provider,
        provider_job_id); returns (the stored job, whether it was inserted). Safe when several
        processes adopt the same provider job at once: one record, never two.

        >>> rec, new = store.create_for_provider_job(record)  # doctest: +SKIP
        """
        if not record.provider_job_id:
            raise ValueError("create_for_provider_job needs a record with a provider_job_id")
        check_record_fields(record.model_dump())
        with self._writing() as s:
            self.db.serialize(s, f"adopt {record.provider} {record.provider_job_id}")
            found = self._by_provider_job(s, record.provider, record.provider_job_id)
            if found is not None:
                return found, False
            self._insert_job(s, record)
        return record, True

    def _by_provider_job(self, s: Session, provider: str, provider_job_id: str) -> JobRecord | None:
        row = s.one(
            JOB_SELECT + " WHERE provider = :provider AND provider_job_id = :pid "
            f"ORDER BY created_at, {self.db.row_order} LIMIT 1",
            {"provider": provider, "pid": provider_job_id},
        )
        return None if row is None else from_row(JobRecord, row)

    def find_by_provider_job(self, provider: str, provider_job_id: str) -> JobRecord | None:
        """The job the store keeps for a provider-side job id, or None.

        >>> store.find_by_provider_job("openai", "ftjob-abc123")  # doctest: +SKIP
        """
        with self._reading() as s:
            return self._by_provider_job(s, provider, provider_job_id)

    def known_provider_jobs(self, provider: str, provider_job_ids: Iterable[str]) -> dict[str, str]:
        """Which of these provider-side job ids the store knows: {provider_job_id: job id}."""
        ids = sorted(set(provider_job_ids))
        if not ids:
            return {}
        params: dict[str, Any] = {"provider": provider}
        sql = "SELECT id, provider_job_id FROM jobs WHERE provider = :provider AND "
        sql += _in("provider_job_id", ids, params)
        with self._reading() as s:
            rows = s.all(sql, params)
        return {r["provider_job_id"]: r["id"] for r in rows}

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None if the store has no such id."""
        with self._reading() as s:
            return self._job_row(s, job_id)

    def require(self, job_id: str) -> JobRecord:
        """The job, or `JobNotFound` (whose message says how to list jobs)."""
        record = self.get(job_id)
        if record is None:
            raise JobNotFound(job_id, self.location)
        return record

    def update(self, job_id: str, **fields: Any) -> JobRecord:
        """Change some fields of a job; returns the updated record.

        A change of `status`/`raw_status` here is recorded as a transition too.

        >>> store.update(job.id, provider_job_id="ftjob-abc123")  # doctest: +SKIP
        """
        _checked_update(fields, _JOB_FIELDS, "job")
        with self._writing() as s:
            old = self._job_row(s, job_id, lock=True)
            if old is None:
                raise JobNotFound(job_id, self.location)
            new = JobRecord.model_validate({**old.model_dump(), **fields, "updated_at": now()})
            s.run(JOB_UPDATE, to_params(new, JOB_COLUMNS, self._t))
            if (new.status, new.raw_status) != (old.status, old.raw_status):
                self._add_transition(s, job_id, new.status, new.raw_status, new.updated_at)
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
        with self._writing() as s:
            current = s.one(
                "SELECT status, raw_status FROM jobs WHERE id = :id" + self.db.lock_rows,
                {"id": job_id},
            )
            if current is None:
                raise JobNotFound(job_id, self.location)
            if (current["status"], current["raw_status"]) == (status.value, raw_status):
                return False
            changed_at = now()
            s.run(
                "UPDATE jobs SET status = :status, raw_status = :raw, updated_at = :at "
                "WHERE id = :id",
                {
                    "status": status.value,
                    "raw": raw_status,
                    "at": self._t(changed_at),
                    "id": job_id,
                },
            )
            self._add_transition(s, job_id, status, raw_status, at or changed_at, message)
        return True

    def mark_checked(self, job_id: str, at: dt.datetime | None = None) -> None:
        """Note when the provider was last asked about the job (`checked_at`), whatever it said.

        >>> store.mark_checked(job.id)  # doctest: +SKIP
        """
        with self._writing() as s:
            s.run(
                "UPDATE jobs SET checked_at = :at WHERE id = :id",
                {"at": self._t(at or now()), "id": job_id},
            )

    def _add_transition(
        self,
        s: Session,
        job_id: str,
        status: JobStatus,
        raw_status: str | None,
        at: dt.datetime | None,
        message: str | None = None,
    ) -> None:
        s.run(
            TRANSITION_INSERT,
            {
                "job_id": job_id,
                "status": status.value,
                "raw_status": raw_status,
                "at": self._t(at or now()),
                "message": message,
            },
        )

    def transitions(self, job_id: str) -> builtins.list[Transition]:
        """The job's recorded state changes, oldest first (the first is its state when created)."""
        with self._reading() as s:
            rows = s.all(
                "SELECT status, raw_status, at, message FROM transitions WHERE job_id = :id "
                "ORDER BY seq",
                {"id": job_id},
            )
        return [from_row(Transition, r) for r in rows]

    def _event_params(self, job_id: str, events: Iterable[JobEvent]) -> builtins.list[dict]:
        return [
            {
                "job_id": job_id,
                "event_id": e.id,
                "created_at": self._t(e.created_at),
                "level": e.level,
                "message": e.message,
                "type": e.type,
                "data": None if e.data is None else json.dumps(e.data, default=str),
            }
            for e in events
        ]

    def add_events(self, job_id: str, events: Iterable[JobEvent]) -> int:
        """Store events not seen before (by event id); returns how many were new.

        >>> store.add_events(job.id, provider.events(job.provider_job_id))  # doctest: +SKIP
        3
        """
        rows = self._event_params(job_id, events)
        with self._writing() as s:
            if s.one("SELECT 1 AS found FROM jobs WHERE id = :id", {"id": job_id}) is None:
                raise JobNotFound(job_id, self.location)
            return sum(len(s.all(EVENT_INSERT, row)) for row in rows)

    def events(self, job_id: str) -> builtins.list[JobEvent]:
        """The job's stored events, oldest first."""
        with self._reading() as s:
            rows = s.all(
                _EVENT_SELECT + " WHERE job_id = :id ORDER BY created_at, seq", {"id": job_id}
            )
        return [from_row(JobEvent, r) for r in rows]

    def latest_events(self, job_ids: Iterable[str]) -> dict[str, JobEvent]:
        """Each job's newest stored event (jobs without events are left out), in one query.

        >>> store.latest_events([job.id])[job.id].message  # doctest: +SKIP
        'Step 40/100: training loss=0.61'
        """
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        params: dict[str, Any] = {}
        sql = (
            "SELECT job_id, id, created_at, level, message, type, data FROM ("
            "SELECT job_id, event_id AS id, created_at, level, message, type, data, "
            "ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY created_at DESC, seq DESC) AS n "
            f"FROM events WHERE {_in('job_id', ids, params)}) AS latest WHERE n = 1"
        )
        with self._reading() as s:
            rows = s.all(sql, params)
        return {r.pop("job_id"): from_row(JobEvent, r) for r in rows}

    def add_metrics(self, job_id: str, points: Iterable[MetricPoint]) -> int:
        """Store training metrics by step (a step seen again is replaced); returns how many.

        >>> store.add_metrics(job.id, job.metrics())  # doctest: +SKIP
        40
        """
        rows = [{**to_params(p, METRIC_COLUMNS[1:], self._t), "job_id": job_id} for p in points]
        with self._writing() as s:
            if s.one("SELECT 1 AS found FROM jobs WHERE id = :id", {"id": job_id}) is None:
                raise JobNotFound(job_id, self.location)
            s.run_many(METRIC_UPSERT, rows)
        return len(rows)

    def metrics(self, job_id: str) -> builtins.list[MetricPoint]:
        """The job's stored training metrics, by step."""
        cols = ", ".join(METRIC_COLUMNS[1:])
        with self._reading() as s:
            rows = s.all(
                f"SELECT {cols} FROM metrics WHERE job_id = :id ORDER BY step", {"id": job_id}
            )
        return [from_row(MetricPoint, r) for r in rows]

    def list(
        self,
        provider: str | None = None,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
        limit: int | None = None,
        *,
        created_before: dt.datetime | None = None,
        updated_before: dt.datetime | None = None,
    ) -> builtins.list[JobRecord]:
        """Jobs, newest first, optionally for one provider, one or several statuses, and made
        (or last changed) before a time.

        >>> store.list(provider="openai", status=["queued", "running"], limit=10)  # doctest: +SKIP
        """
        where: builtins.list[str] = []
        params: dict[str, Any] = {}
        if provider is not None:
            where.append("provider = :provider")
            params["provider"] = provider
        if statuses := _statuses(status):
            where.append(_in("status", statuses, params))
        if created_before is not None:
            where.append("created_at < :created_before")
            params["created_before"] = self._t(created_before)
        if updated_before is not None:
            where.append("updated_at < :updated_before")
            params["updated_before"] = self._t(updated_before)
        sql = JOB_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY created_at DESC, {self.db.row_order} DESC"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = int(limit)
        with self._reading() as s:
            rows = s.all(sql, params)
        return [from_row(JobRecord, r) for r in rows]

    def find_pending(self, provider: str | None = None) -> builtins.list[JobRecord]:
        """Jobs recorded locally whose submission was never confirmed (status PENDING).

        Before submitting again, look these up at the provider by their local id.
        """
        return self.list(provider=provider, status=JobStatus.PENDING)

    def delete_jobs(self, job_ids: Iterable[str]) -> int:
        """Remove jobs with their transitions, events and metrics; returns how many went.
        Deployment records stay (a deployment may outlive its job). See `finetune-hub jobs prune`.

        >>> store.delete_jobs(["ftj_000000000000"])  # doctest: +SKIP
        0
        """
        ids = sorted(set(job_ids))
        if not ids:
            return 0
        params: dict[str, Any] = {}
        children = _in("job_id", ids, params)
        with self._writing() as s:
            for table in ("transitions", "events", "metrics"):
                s.run(f"DELETE FROM {table} WHERE {children}", params)
            jobs: dict[str, Any] = {}
            return s.run(f"DELETE FROM jobs WHERE {_in('id', ids, jobs)}", jobs)

    def import_job(
        self,
        record: JobRecord,
        transitions: Iterable[Transition] = (),
        events: Iterable[JobEvent] = (),
        metrics: Iterable[MetricPoint] = (),
    ) -> bool:
        """Copy a job from another store with its history as it was (not as new changes);
        False, and nothing written, when this store has the id already. Used by
        `finetune-hub store migrate`."""
        check_record_fields(record.model_dump())
        with self._writing() as s:
            if not s.all(JOB_INSERT, to_params(record, JOB_COLUMNS, self._t)):
                return False
            s.run_many(
                TRANSITION_INSERT,
                [
                    {
                        "job_id": record.id,
                        "status": t.status.value,
                        "raw_status": t.raw_status,
                        "at": self._t(t.at),
                        "message": t.message,
                    }
                    for t in transitions
                ],
            )
            for row in self._event_params(record.id, events):
                s.all(EVENT_INSERT, row)
            metric_rows = [
                {**to_params(p, METRIC_COLUMNS[1:], self._t), "job_id": record.id} for p in metrics
            ]
            s.run_many(METRIC_UPSERT, metric_rows)
        return True

    # --- deployments ---

    def save_deployment(self, record: DeploymentRecord) -> DeploymentRecord:
        """Insert or replace a deployment record."""
        check_record_fields(record.model_dump())
        with self._writing() as s:
            s.run(DEPLOYMENT_UPSERT, to_params(record, DEPLOYMENT_COLUMNS, self._t))
        return record

    def import_deployment(self, record: DeploymentRecord) -> bool:
        """Copy a deployment record from another store unless its id is here already."""
        check_record_fields(record.model_dump())
        with self._writing() as s:
            return bool(
                s.run(DEPLOYMENT_INSERT_NEW, to_params(record, DEPLOYMENT_COLUMNS, self._t))
            )

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        """The deployment, or None."""
        with self._reading() as s:
            row = s.one(DEPLOYMENT_SELECT + " WHERE id = :id", {"id": deployment_id})
        return None if row is None else from_row(DeploymentRecord, row)

    def update_deployment(self, deployment_id: str, **fields: Any) -> DeploymentRecord:
        """Change some fields of a deployment, e.g. `deleted_at=` once it is torn down."""
        _checked_update(fields, _DEPLOYMENT_FIELDS, "deployment")
        with self._writing() as s:
            row = s.one(
                DEPLOYMENT_SELECT + " WHERE id = :id" + self.db.lock_rows, {"id": deployment_id}
            )
            if row is None:
                raise DeploymentNotFound(deployment_id, self.location)
            old = from_row(DeploymentRecord, row)
            new = DeploymentRecord.model_validate({**old.model_dump(), **fields})
            s.run(DEPLOYMENT_UPSERT, to_params(new, DEPLOYMENT_COLUMNS, self._t))
        return new

    def list_deployments(
        self, active_only: bool = True, job_id: str | None = None
    ) -> builtins.list[DeploymentRecord]:
        """Deployments, newest first; by default only those not deleted (they may cost money)."""
        where = ["deleted_at IS NULL"] if active_only else []
        params: dict[str, Any] = {}
        if job_id is not None:
            where.append("job_id = :job_id")
            params["job_id"] = job_id
        sql = DEPLOYMENT_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY created_at DESC, {self.db.row_order} DESC"
        with self._reading() as s:
            rows = s.all(sql, params)
        return [from_row(DeploymentRecord, r) for r in rows]
