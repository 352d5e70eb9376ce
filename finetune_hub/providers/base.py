"""The provider contract (v2): a connection, a tuning backend and one deployer per serving mode.

- `Connection`: who we talk to. Options (a pydantic model that refuses unknown keys, naming the
  nearest valid one), credentials, the SDK client and its lifetime, what may be stored with a
  job (never a secret), and the translation of the SDK's exceptions into `ProviderError`.
- `TuningBackend`: what we do there. Primitives only (upload, find, create, get, cancel, events,
  metrics, checkpoints, chat, delete_model), each receiving what the job layer prepared once: a
  `PreparedJob` with the rules resolved, hyperparameters in the provider's names and types and
  plain `.jsonl` paths. No waiting, no persistence, no retries: `TuningJob` owns those.
- `Deployer`: one class per serving mode (an Azure OpenAI deployment, Bedrock provisioned
  throughput, a Vertex endpoint, ...), each with its own state map into `DeploymentStatus`, its
  own cost statement and `chat` on the deployment.

The registry (`finetune_hub.registry`) names each provider's backend and deployers; nothing else
switches on a provider or a serving mode. docs/providers/writing-a-provider.md walks through it.
"""

from __future__ import annotations

import difflib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError

from finetune_hub.errors import (  # noqa: F401 - ProviderError and friends re-exported here
    FinetuneHubError,
    MissingDependencyError,
    OptionsError,
    ProviderError,
    UnsupportedOperation,
)
from finetune_hub.issues import Issue
from finetune_hub.rules.schema import ResolvedRules
from finetune_hub.status import (
    Checkpoint,
    DeploymentStatus,
    JobEvent,
    JobStatus,
    MetricPoint,
    StateMap,
)

T = TypeVar("T")


class Capability(StrEnum):
    """Optional operations a backend offers (libcloud-style: asking for another one fails loudly)."""

    UPLOAD = "upload"
    CANCEL = "cancel"
    EVENTS = "events"
    METRICS = "metrics"
    CHECKPOINTS = "checkpoints"
    CHAT = "chat"
    DELETE_MODEL = "delete_model"
    LIST_JOBS = "list_jobs"


# -- options -------------------------------------------------------------------------------------
class ProviderOptions(BaseModel):
    """Base of every provider's option schema. Unknown keys are refused (`extra="forbid"`);
    secrets are `SecretStr` (masked in every repr) or live objects (credentials), never stored.

    >>> class Opts(ProviderOptions):
    ...     region: str | None = None
    >>> parse_options(Opts, {"regoin": "eu-west-1"}, "acme")
    Traceback (most recent call last):
    ...
    finetune_hub.errors.OptionsError: acme does not take option 'regoin'; did you mean 'region'? ...
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    timeout: float = Field(default=60.0, gt=0, description="seconds for one provider call")

    #: fields never written to the job store (besides SecretStr fields and live objects)
    not_stored: ClassVar[frozenset[str]] = frozenset()

    def stored(self) -> dict[str, Any]:
        """The options worth keeping with a job to reconnect later: set by the user, plain JSON
        values, no secrets."""
        kept: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name in self.not_stored or isinstance(value, SecretStr) or value is None:
                continue
            plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            try:
                json.dumps(plain)
            except (TypeError, ValueError):
                continue  # a live object (a credential, a client): never stored
            kept[name] = plain
        return kept


OptionsT = TypeVar("OptionsT", bound=ProviderOptions)


def parse_options(
    schema: type[OptionsT], options: Mapping[str, Any] | BaseModel | None, provider: str
) -> OptionsT:
    """`options` checked against `schema`: an unknown key names the nearest valid one, a wrong
    type names the key and what it takes. Raises `OptionsError`."""
    if isinstance(options, schema):
        return options
    raw = dict(
        options.model_dump(exclude_unset=True) if isinstance(options, BaseModel) else options or {}
    )
    valid = sorted(schema.model_fields)
    unknown = [k for k in raw if k not in schema.model_fields]
    if unknown:
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            parts.append(f"{key!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
        raise OptionsError(
            f"{provider} does not take option {', '.join(parts)} (it takes: {', '.join(valid)})"
        )
    try:
        return schema(**raw)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"option {'.'.join(str(p) for p in e['loc'])!r}: {e['msg']}" for e in exc.errors()
        )
        raise OptionsError(f"{provider}: {problems}") from None


# -- what the job layer hands a backend ----------------------------------------------------------
class DataRef(BaseModel):
    """A training or validation file once it is on the provider's side."""

    purpose: str  # "training", "validation", or a named data set ("prompt", "preference", ...)
    id: str  # provider file id or object URI
    path: str
    bytes: int


class PreparedJob(BaseModel):
    """A job as a backend receives it, built once by the job layer after validation.

    `model_id` is the provider's id for the base model (resolved through the rules, or the tuned
    model's own name for continued training); `hyperparameters` are in the provider's names and
    types; files are plain `.jsonl` paths (a `.gz` input is decompressed first).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    job_id: str  # the local job id: the idempotency key of every create
    provider: str
    base_model: str
    model_id: str
    method: str
    format: str | None = None  # the data format the user named (None: detected from the records)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    suffix: str | None = None
    training_file: str
    validation_file: str | None = None
    datasets: dict[str, str] = Field(default_factory=dict)
    rules: ResolvedRules | None = None


class ProviderJob(BaseModel):
    """A provider's view of one job, normalised, with its raw payload kept."""

    id: str
    status: JobStatus
    raw_status: str | None = None
    fine_tuned_model: str | None = None
    error: str | None = None
    error_code: str | None = None
    trained_tokens: int | None = None
    created_at: Any = None
    finished_at: Any = None
    raw: dict[str, Any] = Field(default_factory=dict)
    # What a listed job says about itself (`list_jobs`, `TuningJob.adopt`), where it says it:
    base_model: str | None = None  # the provider's id of the base model
    method: str | None = None  # in finetune_hub's names: "sft", "dpo", ...
    local_job_id: str | None = None  # the finetune_hub job id a create left on it (metadata)
    smoke_test: dict[str, Any] | None = None  # a post-training check's report (local: smoke.py)


# -- connection ----------------------------------------------------------------------------------
class Connection:
    """Who we talk to: options, credentials, the SDK client and how its errors read.

    Subclasses set `provider` and `Options`, build their client lazily, and implement
    `translate` for the SDK's exception types; `call` and `errors` use it.
    """

    provider: ClassVar[str]
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions

    def __init__(self, options: Mapping[str, Any] | ProviderOptions | None = None) -> None:
        self.options = parse_options(self.Options, options, self.provider)

    def stored_options(self) -> dict[str, Any]:
        """What may be stored with a job to reconnect later (never a secret)."""
        return self.options.stored()

    def credentials_source(self) -> dict[str, str]:
        """Where credentials come from (`env:NAME`, `profile:NAME`, `explicit`, `default-chain`,
        ...): stored with the job, never the credential itself."""
        return {}

    def translate(self, exc: BaseException, operation: str) -> ProviderError | None:
        """The `ProviderError` for an SDK or transport exception, or None when `exc` is not one
        this connection knows (the job layer still turns it into a `ProviderError`)."""
        return None

    @contextmanager
    def errors(self, operation: str) -> Iterator[None]:
        """Turn any SDK exception raised inside into `ProviderError`."""
        try:
            yield
        except FinetuneHubError:
            raise
        except Exception as exc:
            raise as_provider_error(exc, self.provider, operation, self.translate) from None

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run one SDK call, its errors turned into `ProviderError`."""
        with self.errors(operation):
            return fn()


def as_provider_error(
    exc: BaseException,
    provider: str,
    operation: str,
    translate: Callable[[BaseException, str], ProviderError | None] | None = None,
) -> FinetuneHubError:
    """The library's error for anything raised by provider code: our own errors pass through,
    known SDK errors are translated, anything else becomes a non-retryable `ProviderError` that
    names the exception type (never a raw traceback from deep inside an SDK)."""
    if isinstance(exc, FinetuneHubError):
        return exc
    found = translate(exc, operation) if translate is not None else None
    if found is not None:
        return found
    if isinstance(exc, TimeoutError | ConnectionError):
        return ProviderError(provider, operation, f"{type(exc).__name__}: {exc}", retryable=True)
    text = str(exc) or type(exc).__name__
    return ProviderError(provider, operation, f"{type(exc).__name__}: {text}", retryable=False)


def guarded_call(
    provider: str,
    operation: str,
    fn: Callable[[], T],
    *,
    retries: bool = True,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """The provider boundary of the job layer: `fn` (a backend or deployer call) with retries
    for what may pass, and whatever it raises arriving as one of finetune_hub's errors.

    >>> guarded_call("openai", "get", lambda: 42)
    42
    """

    def guarded() -> T:
        try:
            return fn()
        except FinetuneHubError:
            raise
        except Exception as exc:
            raise as_provider_error(exc, provider, operation) from None

    return call_with_retries(guarded, sleep=sleep) if retries else guarded()


# -- tuning backend ------------------------------------------------------------------------------
class TuningBackend(ABC):
    """What a provider does with a job. Primitives only: no waiting, no persistence, no retries.

    Subclasses set `name`, `display_name`, `capabilities`, `state_map` and `connection_class`.
    `serving_note` says how a tuned model is used when the provider needs no deployment.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    state_map: ClassVar[StateMap]
    connection_class: ClassVar[type[Connection]]
    serving_note: ClassVar[str | None] = None

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> TuningBackend:
        """A backend on a fresh connection built from `options`."""
        return cls(cls.connection_class(options))

    @property
    def options(self) -> Any:
        return self.connection.options

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        return self.connection.call(operation, fn)

    def check(self, job: PreparedJob) -> list[Issue]:
        """Provider checks beyond the data rules (required options, names), before any upload."""
        return []

    def preflight(self, job: PreparedJob) -> list[Issue]:
        """What the provider can answer cheaply before any upload, asked there: the model offered
        in this region and account, access to it, the permissions a job needs (simulated where
        the provider can), the bucket reachable, quota headroom. Each finding is an `Issue`
        whose message says the fix; a check that could not be made is a warning saying why.
        `job.preflight()` and `finetune-hub submit --preflight` call it (default: nothing)."""
        return []

    @abstractmethod
    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        """Put one plain `.jsonl` file where the provider reads it (idempotent per job and purpose)."""

    @abstractmethod
    def find(self, job_id: str) -> ProviderJob | None:
        """The job an earlier `create` for this local job id made, if any (a retry never makes two)."""

    @abstractmethod
    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob: ...

    @abstractmethod
    def get(self, provider_job_id: str) -> ProviderJob: ...

    def cancel(self, provider_job_id: str) -> None:
        raise self.unsupported("cancel")

    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        return []

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        return []

    def checkpoints(self, provider_job_id: str) -> list[Checkpoint]:
        return []

    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One chat turn with a tuned model the provider serves without a deployment."""
        raise self.unsupported("chat")

    def delete_model(self, model: str) -> None:
        raise self.unsupported("delete_model")

    def tunable_models(self) -> list[str] | None:
        """Model ids the provider says it can tune today, or None where it has no API for that."""
        return None

    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        """One page of the provider's jobs, newest first, whoever made them (finetune_hub, the
        SDK, the console): up to `limit` jobs after the cursor `after` (None: the first page),
        and the cursor of the next page (None after the last). Each `ProviderJob` fills in
        `base_model`, `created_at` and, where a create left it, `local_job_id`.
        `fh.remote_jobs` and `TuningJob.adopt` are built on it.

        >>> jobs, cursor = backend.list_jobs(limit=50)  # doctest: +SKIP
        >>> more, cursor = backend.list_jobs(limit=50, after=cursor)  # doctest: +SKIP
        """
        raise self.unsupported("list_jobs")

    def unsupported(self, operation: str) -> UnsupportedOperation:
        offered = ", ".join(sorted(c.value for c in self.capabilities)) or "none"
        return UnsupportedOperation(
            f"{self.display_name} does not support {operation} (it offers: {offered})"
        )


# -- deployers -----------------------------------------------------------------------------------
class DeploymentInfo(BaseModel):
    """A deployment as the provider reports it, its state normalised."""

    name: str
    model: str
    kind: str
    status: DeploymentStatus
    raw_status: str | None = None
    endpoint: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class DeploymentCost(BaseModel):
    """What a deployment costs while it exists, as the rules know it.

    `hourly_usd` is None when no source gives a price ("unknown", never a guess); `note` is a
    full sentence where there is more to say (units x rate, a commitment term).
    """

    hourly_usd: float | None = None
    note: str | None = None
    source: str | None = None
    as_of: str | None = None

    def sentence(self, what: str) -> str:
        if self.note:
            return f"{what}: {self.note}"
        if self.hourly_usd is None:
            return f"{what} bills by the hour at a rate finetune_hub does not know"
        month = self.hourly_usd * 24 * 30
        cited = f" (price from {self.source}, read {self.as_of})" if self.source else ""
        return (
            f"{what} costs ${self.hourly_usd:,.2f} per hour (about ${month:,.0f} a month) "
            f"until it is deleted{cited}"
        )


class DeployOptions(BaseModel):
    """Base of every deployer's options: unknown keys refused like provider options."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class Deployer(ABC):
    """One serving mode of one provider: create / get / chat / delete, its state map and cost.

    `create` must be safe to repeat under the same `name` (find the deployment first, or use
    a create call the provider treats as an upsert): a deployment is created at most once.
    """

    kind: ClassVar[str]
    display_name: ClassVar[str]
    state_map: ClassVar[StateMap]
    Options: ClassVar[type[DeployOptions]] = DeployOptions

    def __init__(self, backend: TuningBackend) -> None:
        self.backend = backend

    @property
    def provider(self) -> str:
        return self.backend.name

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        return self.backend.call(operation, fn)

    def parse(self, options: Mapping[str, Any] | None) -> DeployOptions:
        return parse_options(self.Options, options, f"{self.backend.display_name} {self.kind}")

    def cost(self, model: str, options: DeployOptions) -> DeploymentCost:
        return DeploymentCost()

    @abstractmethod
    def create(self, model: str, name: str, options: DeployOptions) -> DeploymentInfo: ...

    @abstractmethod
    def get(self, name: str, options: DeployOptions) -> DeploymentInfo | None:
        """The deployment, or None when it does not exist (any more)."""

    @abstractmethod
    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str: ...

    @abstractmethod
    def delete(self, name: str, options: DeployOptions) -> None:
        """Delete the deployment; one that is already gone is not an error."""

    def info(self, name: str, model: str, raw_status: str | None, **fields: Any) -> DeploymentInfo:
        """A `DeploymentInfo` of this serving mode, its raw state mapped through `state_map`."""
        return DeploymentInfo(
            name=name,
            model=model,
            kind=self.kind,
            status=self.state_map(raw_status),
            raw_status=raw_status,
            **fields,
        )


# -- registry access -----------------------------------------------------------------------------
def backend_class(provider: str) -> type[TuningBackend]:
    """The backend class of `provider` (imported lazily; a missing SDK names the extra)."""
    from finetune_hub import registry

    entry = registry.entry(provider)
    if entry.backend is None:
        raise UnsupportedOperation(
            f"{entry.display_name} jobs are not available in this version of finetune_hub: "
            "validate() works, submit() does not"
        )
    return entry.load(entry.backend)


def make_backend(provider: str, options: Mapping[str, Any] | None = None) -> TuningBackend:
    """A backend for `provider` on a connection built from `options`.

    >>> make_backend("openai", {"api_key": "sk-..."}).display_name  # doctest: +SKIP
    'OpenAI'
    """
    return backend_class(provider).from_options(options)


def deployer_for(backend: TuningBackend, kind: str | None = None) -> Deployer:
    """The deployer of `kind` (default: the provider's first) for `backend`, or
    `UnsupportedOperation` saying how the provider serves tuned models instead."""
    from finetune_hub import registry

    entry = registry.entry(backend.name)
    if not entry.deployers:
        how = backend.serving_note or "it offers no deployment"
        raise UnsupportedOperation(f"{backend.display_name} needs no deployment: {how}")
    chosen = kind or next(iter(entry.deployers))
    target = entry.deployers.get(chosen)
    if target is None:
        raise UnsupportedOperation(
            f"{backend.display_name} has no serving mode {chosen!r} "
            f"(it has: {', '.join(entry.deployers)})"
        )
    return entry.load(target)(backend)


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
    import random

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
