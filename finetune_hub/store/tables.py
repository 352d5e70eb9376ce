"""The store's tables as both databases see them: columns, schema version, and the SQL that
`JobStore` runs, written once with `:name` parameters (sqlite3 and SQLAlchemy both read them).

Each database module (`sqlite.py`, `postgres.py`) holds its own DDL for every schema version,
under the same version numbers, so a store of either kind at version N has the same tables.

>>> JOB_COLUMNS[:3]
['id', 'provider', 'base_model']
>>> SCHEMA_VERSION
4
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TypeVar

from pydantic import BaseModel

from finetune_hub.status import MetricPoint
from finetune_hub.store.records import DeploymentRecord, JobRecord

#: Bumped with every schema change; each database module has DDL for every version up to it.
SCHEMA_VERSION = 5

# The tables' columns are the records' fields, in order (tests check they agree).
JOB_COLUMNS = list(JobRecord.model_fields)
DEPLOYMENT_COLUMNS = list(DeploymentRecord.model_fields)
METRIC_COLUMNS = ["job_id", *MetricPoint.model_fields]

#: Columns that hold JSON text.
JSON_COLUMNS = frozenset(
    {"hyperparameters", "options", "credentials", "data_refs", "extra", "data", "datasets"}
    | {"quotas", "mapping"}
)


def _params(columns: list[str]) -> str:
    return ", ".join(f":{c}" for c in columns)


JOB_SELECT = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
JOB_INSERT = (
    f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({_params(JOB_COLUMNS)}) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
JOB_UPDATE = f"UPDATE jobs SET {', '.join(f'{c} = :{c}' for c in JOB_COLUMNS[1:])} WHERE id = :id"
DEPLOYMENT_SELECT = f"SELECT {', '.join(DEPLOYMENT_COLUMNS)} FROM deployments"
DEPLOYMENT_UPSERT = (
    f"INSERT INTO deployments ({', '.join(DEPLOYMENT_COLUMNS)}) "
    f"VALUES ({_params(DEPLOYMENT_COLUMNS)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in DEPLOYMENT_COLUMNS[1:])
)
DEPLOYMENT_INSERT_NEW = (
    f"INSERT INTO deployments ({', '.join(DEPLOYMENT_COLUMNS)}) "
    f"VALUES ({_params(DEPLOYMENT_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
TRANSITION_INSERT = (
    "INSERT INTO transitions (job_id, status, raw_status, at, message) "
    "VALUES (:job_id, :status, :raw_status, :at, :message)"
)
EVENT_INSERT = (
    "INSERT INTO events (job_id, event_id, created_at, level, message, type, data) "
    "VALUES (:job_id, :event_id, :created_at, :level, :message, :type, :data) "
    "ON CONFLICT (job_id, event_id) DO NOTHING RETURNING event_id"
)
METRIC_UPSERT = (
    f"INSERT INTO metrics ({', '.join(METRIC_COLUMNS)}) VALUES ({_params(METRIC_COLUMNS)}) "
    "ON CONFLICT (job_id, step) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in METRIC_COLUMNS[2:])
)

_M = TypeVar("_M", bound=BaseModel)


def to_params(record: BaseModel, columns: list[str], time: Any) -> dict[str, Any]:
    """`record`'s values for `columns` as query parameters: dicts as JSON text, datetimes through
    the database's `time` (text for SQLite, a datetime for PostgreSQL)."""
    data = record.model_dump(mode="json")
    params: dict[str, Any] = {}
    for column in columns:
        value = getattr(record, column)
        if isinstance(value, dt.datetime):
            params[column] = time(value)
        elif isinstance(value, dict):
            params[column] = json.dumps(data[column])
        else:
            params[column] = data[column]
    return params


def from_row(model: type[_M], row: dict[str, Any]) -> _M:
    """A `model` from a row (a dict) whose keys are its fields; JSON text is parsed."""
    data = dict(row)
    for key in JSON_COLUMNS.intersection(data):
        if isinstance(data[key], str):
            data[key] = json.loads(data[key])
    return model.model_validate(data)
