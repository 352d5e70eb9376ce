"""What the job store holds: job, transition and deployment records, and fresh ids.

>>> JobRecord(provider="openai", base_model="gpt-4.1-mini", training_file="t.jsonl").status.value
'pending'
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finetune_hub.status import JobStatus


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


def utc(value: dt.datetime) -> dt.datetime:
    """`value` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


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
    error_code: str | None = None  # the provider's error code, or the failed operation
    datasets: dict[str, str] = Field(default_factory=dict)  # named data sets beside the files
    quotas: dict[str, Any] = Field(default_factory=dict)  # raised account quotas declared
    checked_at: dt.datetime | None = None  # when the provider was last asked (schema 3)
    format: str | None = None  # the data format the user named (schema 5)
    mapping: dict[str, str] = Field(
        default_factory=dict
    )  # columns read as format fields (schema 5)

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
    kind: str | None = None  # the serving mode (registry deployer name)
    raw_status: str | None = None
    expires_at: dt.datetime | None = None  # deploy(ttl=...): `reap` deletes it after (schema 4)
