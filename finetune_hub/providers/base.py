"""The provider contract, the lazy registry, `ProviderError` and the shared retry policy.

A provider implements primitives only (upload, create, find, get, cancel, events, metrics, chat,
deploy, undeploy, delete_model); waiting, persistence, idempotency and progress live in
`TuningJob`, written once for all of them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, Field

from finetune_hub.errors import FinetuneHubError, UnknownProviderError
from finetune_hub.status import Checkpoint, JobEvent, JobStatus, MetricPoint, StateMap

if TYPE_CHECKING:
    from finetune_hub.jobs.spec import JobSpec

T = TypeVar("T")
ENTRY_POINT_GROUP = "finetune_hub.providers"


class Capability(StrEnum):
    UPLOAD = "upload"
    CANCEL = "cancel"
    EVENTS = "events"
    METRICS = "metrics"
    CHAT = "chat"
    DEPLOY = "deploy"
    DELETE_MODEL = "delete_model"


class ProviderError(FinetuneHubError):
    """A provider call failed. Carries the provider, operation, HTTP status, request id and message."""

    def __init__(
        self,
        provider: str,
        operation: str,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after
        self.retryable = retryable if retryable is not None else (status_code is None or status_code == 429 or status_code >= 500)
        where = f"{provider} {operation}"
        status = f" (HTTP {status_code})" if status_code else ""
        req = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{where} failed{status}: {message}{req}")


class MissingDependencyError(FinetuneHubError):
    """A provider's SDK is not installed; the message names the pip command."""


class DataRef(BaseModel):
    """A training or validation file once it is on the provider's side."""

    purpose: str  # "training" or "validation"
    id: str  # provider file id or object URI
    path: str
    bytes: int


class ProviderJob(BaseModel):
    """A provider's view of one job, normalised, with its raw payload kept."""

    id: str
    status: JobStatus
    raw_status: str | None = None
    fine_tuned_model: str | None = None
    error: str | None = None
    error_code: str | None = None
    trained_tokens: int | None = None
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class DeploymentInfo(BaseModel):
    """A deployment as the provider reports it."""

    name: str
    model: str
    status: str
    endpoint: str | None = None
    hourly_cost_usd: float | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class Provider(ABC):
    """The contract every backend implements. Only primitives: no waiting, no persistence.

    Subclasses set `name`, `display_name`, `capabilities` and `state_map`, and build their SDK
    client from `options` (falling back to the SDK's usual environment variables).
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    state_map: ClassVar[StateMap]

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})

    def credentials_source(self) -> dict[str, str]:
        """Where credentials come from (stored with the job; never the secret itself)."""
        return {}

    def stored_options(self) -> dict[str, Any]:
        """The options worth keeping with the job to reconnect later (no secrets)."""
        return {}

    def check(self, spec: JobSpec) -> list[Any]:
        """Provider checks beyond the data rules (returns `Issue`s)."""
        return []

    @abstractmethod
    def upload(self, path: str, purpose: str) -> DataRef: ...

    @abstractmethod
    def create(self, spec: JobSpec, refs: dict[str, DataRef], idempotency_key: str) -> ProviderJob: ...

    @abstractmethod
    def find(self, idempotency_key: str) -> ProviderJob | None:
        """The job an earlier `create` with this key made, if any (so a retry never makes two)."""

    @abstractmethod
    def get(self, provider_job_id: str) -> ProviderJob: ...

    def cancel(self, provider_job_id: str) -> None:
        raise self._unsupported("cancel")

    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        return []

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        return []

    def checkpoints(self, provider_job_id: str) -> list[Checkpoint]:
        return []

    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        raise self._unsupported("chat")

    def hourly_cost(self, model: str, options: dict[str, Any]) -> float | None:
        return None

    def cost_note(self, model: str, options: dict[str, Any]) -> str | None:
        """A full sentence on what a deployment costs (units, rate, commitment), where the
        provider has more to say than one hourly figure."""
        return None

    def deploy(self, model: str, name: str, options: dict[str, Any]) -> DeploymentInfo:
        raise self._unsupported("deploy")

    def get_deployment(self, name: str, options: dict[str, Any]) -> DeploymentInfo | None:
        raise self._unsupported("get_deployment")

    def undeploy(self, name: str, options: dict[str, Any]) -> None:
        raise self._unsupported("undeploy")

    def delete_model(self, model: str) -> None:
        raise self._unsupported("delete_model")

    def _unsupported(self, operation: str) -> ProviderError:
        offered = ", ".join(sorted(c.value for c in self.capabilities)) or "none"
        return ProviderError(self.name, operation, f"not supported by {self.display_name} (it offers: {offered})", retryable=False)


# -- registry ------------------------------------------------------------------------------------
#: name -> ("module:Class", extra to install)
REGISTRY: dict[str, tuple[str, str]] = {
    "openai": ("finetune_hub.providers.openai:OpenAIProvider", "openai"),
    "azure-openai": ("finetune_hub.providers.azure_openai:AzureOpenAIProvider", "azure-openai"),
    "bedrock": ("finetune_hub.providers.bedrock:BedrockProvider", "aws"),
    "local": ("finetune_hub.providers.local:LocalProvider", "local"),
}


def provider_class(name: str) -> type[Provider]:
    """Import a provider class by name (lazily), or raise with what to install or which names exist.

    >>> provider_class("openai").display_name  # doctest: +SKIP
    'OpenAI'
    """
    target, extra = REGISTRY.get(name, (None, None))
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                return ep.load()
        known = sorted(set(REGISTRY) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
        raise UnknownProviderError(f"no provider named {name!r}; available: {', '.join(known)}")
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"provider {name!r} needs {exc.name or 'its SDK'}: pip install \"finetune-hub[{extra}]\""
        ) from None
    return getattr(module, cls_name)


def make_provider(name: str, options: dict[str, Any] | None = None) -> Provider:
    return provider_class(name)(options)


# -- retries -------------------------------------------------------------------------------------
def call_with_retries(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base: float = 0.5,
    cap: float = 30.0,
    sleep: Callable[[float], None] | None = None,
    before_retry: Callable[[ProviderError], None] | None = None,
) -> T:
    """Call `fn`, retrying `ProviderError`s that are retryable (429, 5xx, timeouts, dropped
    connections) with exponential backoff and full jitter, honouring `Retry-After`.

    >>> call_with_retries(lambda: 42)
    42
    """
    from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            return min(cap, max(0.0, exc.retry_after))
        return random.uniform(0, min(cap, base * 2 ** (state.attempt_number - 1)))

    def hook(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if before_retry is not None and isinstance(exc, ProviderError):
            before_retry(exc)

    kwargs: dict[str, Any] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    retrying = Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
        stop=stop_after_attempt(attempts),
        wait=wait,
        before_sleep=hook,
        reraise=True,
        **kwargs,
    )
    return retrying(fn)
