"""The vocabulary shared by every provider: `JobStatus`, `DeploymentStatus`, `StateMap`, `JobEvent`,
`MetricPoint`, `Checkpoint`."""

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


class DeploymentStatus(StrEnum):
    """A deployment's state, normalised across serving modes (the raw state is kept beside it).

    >>> DeploymentStatus.CREATING.is_settled, DeploymentStatus.READY.is_settled
    (False, True)
    """

    CREATING = "creating"
    UPDATING = "updating"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"
    UNKNOWN = "unknown"

    @property
    def is_settled(self) -> bool:
        """True once waiting for the deployment to become ready makes no sense any more."""
        return self in (DeploymentStatus.READY, DeploymentStatus.FAILED, DeploymentStatus.DELETED)

    @property
    def is_billing(self) -> bool:
        """True while the deployment may bill (everything but deleted and failed)."""
        return self not in (DeploymentStatus.DELETED, DeploymentStatus.FAILED)


class StateMap:
    """One provider's (or serving mode's) explicit table from raw states to `JobStatus` or
    `DeploymentStatus`.

    An unknown raw state maps to `UNKNOWN` (or `unknown_as`) and is logged once, never raised.

    >>> m = StateMap("openai", {"queued": JobStatus.QUEUED})
    >>> m("queued"), m("teleporting")
    (<JobStatus.QUEUED: 'queued'>, <JobStatus.UNKNOWN: 'unknown'>)
    """

    def __init__(self, provider: str, table: Mapping[str, Any], unknown_as: Any = None) -> None:
        self.provider = provider
        self.table = dict(table)
        if unknown_as is None:
            first = next(iter(self.table.values()), JobStatus.UNKNOWN)
            unknown_as = type(first).UNKNOWN
        self.unknown_as = unknown_as
        self._warned: set[str] = set()

    def __call__(self, raw: str | None) -> Any:
        if raw in self.table:
            return self.table[raw]
        if raw not in self._warned:
            self._warned.add(str(raw))
            log.warning(
                "%s reported an unknown state %r; treating it as %s",
                self.provider,
                raw,
                self.unknown_as.value,
            )
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
