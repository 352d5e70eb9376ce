"""`FakeProvider`: an in-memory provider for testing code built on `TuningJob`, with no SDK and
no network (httpx's `MockTransport` and pydantic-ai's `TestModel` in spirit).

Unlike the wire-level fakes beside it, it implements finetune_hub's own provider contract, so it
imports the contract: it fakes *a provider*, not a wire protocol.

    from finetune_hub.testing import FakeProvider

    with FakeProvider.registered() as fake:           # or the pytest fixture `fake_provider`
        job = fh.TuningJob(provider="fake", base_model="any-model", training_file="train.jsonl")
        job.submit()
        fake.fail_next("get", status_code=503)         # a fault on the next call of an operation
        model = job.wait(poll_interval=0)              # states advance one step per poll
        assert fake.count("create") == 1

Each job walks through `states` (default queued -> running -> succeeded), one step per `get`;
`fail_job(message)` makes the next job fail, `stall()` keeps jobs where they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

from finetune_hub import registry
from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import (
    Capability,
    Connection,
    DataRef,
    Deployer,
    DeploymentCost,
    DeploymentInfo,
    DeployOptions,
    PreparedJob,
    ProviderJob,
    ProviderOptions,
    TuningBackend,
)
from finetune_hub.status import DeploymentStatus, JobEvent, JobStatus, MetricPoint, StateMap

_S, _D = JobStatus, DeploymentStatus
FAKE_STATES = {
    "queued": _S.QUEUED,
    "running": _S.RUNNING,
    "succeeded": _S.SUCCEEDED,
    "failed": _S.FAILED,
    "cancelled": _S.CANCELLED,
}
FAKE_DEPLOYMENT_STATES = {"creating": _D.CREATING, "ready": _D.READY, "failed": _D.FAILED}


@dataclass
class _Fault:
    operation: str
    error: ProviderError
    after: bool  # the operation takes effect, then the error is raised (an ambiguous failure)
    hidden_for: int = 0  # look-ups that do not see what the faulted call made (a slow create)


@dataclass
class FakeJob:
    id: str
    job: PreparedJob
    refs: dict[str, DataRef]
    states: list[str]
    position: int = 0
    error: str | None = None
    events: list[JobEvent] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.states[self.position]


class FakeProvider:
    """The fake provider's world: files, jobs, deployments, faults and a call log."""

    name = "fake"
    current: ClassVar[FakeProvider | None] = None

    def __init__(self, states: tuple[str, ...] = ("queued", "running", "succeeded")) -> None:
        self.states = list(states)
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.deployments_made = 0  # every create that reached the fake
        self.calls: list[str] = []
        self.faults: list[_Fault] = []
        self.reply = lambda messages, model: f"{model} says: {messages[-1]['content']}"
        self._next_failure: str | None = None
        self._stalled = False
        self._ids = itertools.count(1)
        self.hidden: dict[str, int] = {}  # resource id -> look-ups still blind to it

    # -- scripting ----------------------------------------------------------------------------------
    def fail_next(
        self,
        operation: str,
        *,
        status_code: int | None = 500,
        message: str = "fake failure",
        after: bool = False,
        hidden_for: int = 0,
    ) -> None:
        """Make the next call of `operation` fail with a `ProviderError` (retryable for 429, 5xx
        and `status_code=None`, a dropped connection). `after=True`: the call takes effect first
        (an ambiguous failure); `hidden_for=N`: what it made stays invisible to the next N
        look-ups (a create the server finishes after the client gave up)."""
        error = ProviderError(self.name, operation, message, status_code=status_code)
        self.faults.append(_Fault(operation, error, after or hidden_for > 0, hidden_for))

    def fail_job(self, message: str = "the training data was rejected") -> None:
        """The next job created fails after its first state, with `message`."""
        self._next_failure = message

    def stall(self, stalled: bool = True) -> None:
        """Keep every job in its current state (a job that never ends)."""
        self._stalled = stalled

    def create_job_directly(
        self, base_model: str = "fake-base-1", *, states: tuple[str, ...] | None = None
    ) -> str:
        """A job made on the provider's side without finetune_hub (as with the SDK or the
        console): it has no finetune_hub job id. Returns its provider job id, for
        `fh.remote_jobs("fake")` and `TuningJob.adopt("fake", job_id)`.

        >>> job_id = fake.create_job_directly("fake-base-1")  # doctest: +SKIP
        """
        prepared = PreparedJob(
            job_id="", provider="fake", base_model=base_model, model_id=base_model,
            method="sft", training_file="uploaded-in-the-console.jsonl",
        )  # fmt: skip
        fake = FakeJob(self.new_id("fakejob"), prepared, {}, list(states or self.states))
        self.jobs[fake.id] = fake
        self.log(fake, f"job created on {base_model} outside finetune_hub")
        return fake.id

    def count(self, operation: str) -> int:
        """How many calls of `operation` reached the fake (faulted ones included)."""
        return self.calls.count(operation)

    # -- registration -------------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def registered(cls, **kwargs: Any) -> Iterator[FakeProvider]:
        """Register provider `"fake"` for the duration of the block and yield its world."""
        fake = cls(**kwargs)
        rules = resources.files("finetune_hub.testing").joinpath("fake_provider_rules.toml")
        entry = registry.ProviderEntry(
            name="fake",
            display_name="Fake provider",
            extra="dev",
            rules=str(rules),
            backend=f"{__name__}:FakeBackend",
            deployers={"endpoint": f"{__name__}:FakeDeployer"},
        )
        previous, cls.current = cls.current, fake
        registry.register(entry)
        try:
            yield fake
        finally:
            registry._extra_entries.pop("fake", None)
            from finetune_hub.rules import default_catalog

            default_catalog()._data.pop("fake", None)
            cls.current = previous

    # -- the contract's side ------------------------------------------------------------------------
    def enter(self, operation: str) -> _Fault | None:
        """Log a call; raise a scripted fault now, or hand it back to raise after the effect."""
        self.calls.append(operation)
        for fault in self.faults:
            if fault.operation == operation:
                self.faults.remove(fault)
                if not fault.after:
                    raise fault.error
                return fault
        return None

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def new_job(self, job: PreparedJob, refs: dict[str, DataRef]) -> FakeJob:
        states = list(self.states)
        failure, self._next_failure = self._next_failure, None
        if failure is not None:
            states = [states[0], "failed"]
        fake = FakeJob(self.new_id("fakejob"), job, refs, states, error=failure)
        self.jobs[fake.id] = fake
        self.log(fake, f"job created on {job.model_id}")
        return fake

    def advance(self, fake: FakeJob) -> None:
        if not self._stalled and fake.position < len(fake.states) - 1:
            fake.position += 1
            self.log(fake, f"state {fake.state}")

    def log(self, fake: FakeJob, message: str) -> None:
        n = len(fake.events) + 1
        fake.events.append(
            JobEvent(id=f"{fake.id}-ev{n}", created_at=n, level="info", message=message)
        )


class FakeOptions(ProviderOptions):
    """Options of the fake provider (unknown keys are refused, as for real providers)."""

    region: str | None = None


class FakeConnection(Connection):
    provider = "fake"
    Options = FakeOptions

    def credentials_source(self) -> dict[str, str]:
        return {"fake": "explicit"}


def _world() -> FakeProvider:
    if FakeProvider.current is None:
        raise ProviderError("fake", "connect", "no FakeProvider is registered", retryable=False)
    return FakeProvider.current


def _faulted(operation: str):  # noqa: ANN202 - a decorator
    def wrap(fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            fault = _world().enter(operation)
            result = fn(*args, **kwargs)
            if fault is not None:
                raise fault.error
            return result

        return run

    return wrap


class FakeBackend(TuningBackend):
    """The tuning backend of provider `"fake"`, on the registered `FakeProvider`."""

    name = "fake"
    display_name = "Fake provider"
    capabilities = frozenset(Capability)
    state_map = StateMap("fake", FAKE_STATES)
    connection_class = FakeConnection

    @_faulted("upload")
    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        with open(path, "rb") as f:
            data = f.read()
        file_id = f"file-{job_id}-{purpose}"
        _world().files[file_id] = data
        return DataRef(purpose=purpose, id=file_id, path=path, bytes=len(data))

    @_faulted("find")
    def find(self, job_id: str) -> ProviderJob | None:
        world = _world()
        for fake in world.jobs.values():
            if fake.job.job_id == job_id:
                if world.hidden.get(fake.id, 0) > 0:
                    world.hidden[fake.id] -= 1
                    return None
                return self._view(fake)
        return None

    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        world = _world()
        fault = world.enter("create")
        made = world.new_job(job, refs)
        if fault is not None:
            world.hidden[made.id] = fault.hidden_for
            raise fault.error
        return self._view(made)

    @_faulted("get")
    def get(self, provider_job_id: str) -> ProviderJob:
        fake = self._job(provider_job_id)
        _world().advance(fake)
        return self._view(fake)

    @_faulted("cancel")
    def cancel(self, provider_job_id: str) -> None:
        fake = self._job(provider_job_id)
        if not self.state_map(fake.state).is_terminal:
            fake.states = fake.states[: fake.position + 1] + ["cancelled"]
            fake.position += 1
            _world().log(fake, "cancelled")

    @_faulted("events")
    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        events = self._job(provider_job_id).events
        ids = [e.id for e in events]
        return events[ids.index(after) + 1 :] if after in ids else list(events)

    @_faulted("metrics")
    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        fake = self._job(provider_job_id)
        return [MetricPoint(step=s, train_loss=2.0 / s) for s in range(1, fake.position + 2)]

    @_faulted("chat")
    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return _world().reply(messages, model)

    @_faulted("delete_model")
    def delete_model(self, model: str) -> None:
        for fake in _world().jobs.values():
            if self._model(fake) == model:
                fake.states[fake.position] = "succeeded"

    def tunable_models(self) -> list[str] | None:
        return ["fake-base-1"]

    @_faulted("list_jobs")
    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        newest_first = list(reversed(_world().jobs.values()))
        ids = [fake.id for fake in newest_first]
        if after is not None:
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        more = len(newest_first) > limit
        return [self._view(fake) for fake in page], (page[-1].id if more else None)

    def _job(self, provider_job_id: str) -> FakeJob:
        fake = _world().jobs.get(provider_job_id)
        if fake is None:
            raise ProviderError("fake", "get", f"no job {provider_job_id}", status_code=404)
        return fake

    def _model(self, fake: FakeJob) -> str:
        return f"fake:{fake.job.model_id}:{fake.id}"

    def _view(self, fake: FakeJob) -> ProviderJob:
        status = self.state_map(fake.state)
        return ProviderJob(
            id=fake.id,
            status=status,
            raw_status=fake.state,
            fine_tuned_model=self._model(fake) if status is JobStatus.SUCCEEDED else None,
            error=fake.error if status is JobStatus.FAILED else None,
            error_code="fake_error" if status is JobStatus.FAILED else None,
            base_model=fake.job.base_model,
            method=fake.job.method,
            local_job_id=fake.job.job_id or None,
        )


class FakeDeployOptions(DeployOptions):
    hourly_usd: float | None = 1.25


class FakeDeployer(Deployer):
    """Serving mode `"endpoint"` of the fake provider: ready on the first look after creation."""

    kind = "endpoint"
    display_name = "fake endpoint"
    state_map = StateMap("fake endpoint", FAKE_DEPLOYMENT_STATES)
    Options = FakeDeployOptions

    def cost(self, model: str, options: FakeDeployOptions) -> DeploymentCost:
        return DeploymentCost(
            hourly_usd=options.hourly_usd, source="the fake's price", as_of="2026-11-30"
        )

    def create(self, model: str, name: str, options: FakeDeployOptions) -> DeploymentInfo:
        world = _world()
        fault = world.enter("deploy")
        world.deployments[name] = {"model": model, "state": "creating"}
        world.deployments_made += 1
        if fault is not None:
            world.hidden[name] = fault.hidden_for
            raise fault.error
        return self.info(name, model, "creating", endpoint=f"fake://{name}")

    @_faulted("get_deployment")
    def get(self, name: str, options: FakeDeployOptions) -> DeploymentInfo | None:
        world = _world()
        found = world.deployments.get(name)
        if found is None or world.hidden.get(name, 0) > 0:
            if found is not None:
                world.hidden[name] -= 1
            return None
        raw = found["state"]
        found["state"] = "ready"
        return self.info(name, found["model"], raw, endpoint=f"fake://{name}")

    @_faulted("chat")
    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return _world().reply(messages, info.model)

    @_faulted("undeploy")
    def delete(self, name: str, options: FakeDeployOptions) -> None:
        _world().deployments.pop(name, None)
