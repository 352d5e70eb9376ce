"""The job vocabulary shared by every provider: `JobStatus`, `JobEvent`, `MetricPoint`, `StateMap`."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

log = logging.getLogger("finetune_hub")


class JobStatus(StrEnum):
    """A job's state, normalised across providers (the raw state is kept beside it).

    >>> JobStatus.QUEUED.is_terminal, JobStatus.SUCCEEDED.is_terminal
    (False, True)
    """

    PENDING = "pending"  # recorded locally, not yet accepted by the provider
    VALIDATING = "validating"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class StateMap:
    """One provider's explicit table from raw states to `JobStatus`.

    An unknown raw state maps to `UNKNOWN` (or `unknown_as`) and is logged once, never raised.

    >>> m = StateMap("openai", {"queued": JobStatus.QUEUED})
    >>> m("queued"), m("teleporting")
    (<JobStatus.QUEUED: 'queued'>, <JobStatus.UNKNOWN: 'unknown'>)
    """

    def __init__(self, provider: str, table: Mapping[str, JobStatus], unknown_as: JobStatus = JobStatus.UNKNOWN) -> None:
        self.provider = provider
        self.table = dict(table)
        self.unknown_as = unknown_as
        self._warned: set[str] = set()

    def __call__(self, raw: str | None) -> JobStatus:
        if raw in self.table:
            return self.table[raw]
        if raw not in self._warned:
            self._warned.add(str(raw))
            log.warning("%s reported an unknown job state %r; treating it as %s", self.provider, raw, self.unknown_as.value)
        return self.unknown_as


class JobEvent(BaseModel):
    """One event from a provider's job log (or the local runner)."""

    id: str
    created_at: dt.datetime
    level: str = "info"  # info, warning, error
    message: str
    type: str | None = None
    data: dict[str, Any] | None = None


class MetricPoint(BaseModel):
    """Training metrics at one step; fields a provider does not report stay None."""

    step: int
    epoch: float | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    train_accuracy: float | None = None
    valid_accuracy: float | None = None
    extra: dict[str, float] = Field(default_factory=dict)


class Checkpoint(BaseModel):
    """A model checkpoint a provider kept during training (OpenAI keeps the last epochs)."""

    id: str
    step: int
    model: str  # usable like a tuned model, e.g. "ft:...:ckpt-step-10"
    created_at: dt.datetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
