"""The fault matrix: every provider with a wire fake x every operation x every fault the fakes
offer. Each cell runs the operation through the job layer (`TuningJob`, `TunedModel`,
`Deployment`) on the real SDK, with one fault injected on the operation's main wire call, and
checks that

- the operation completes, or fails with a clear `fh.ProviderError` (provider, operation and a
  message named);
- the fake holds exactly one job for the local job id, and at most one deployment per name;
- the store record is whole: it loads, it is submitted (provider job id, data references), no
  create attempt is left pending, no event is stored twice, a deployment's record follows it.

Faults: `429` (with Retry-After), `500`, `503`, `drop` (the connection drops before the server
acted), `drop-after` and `500-after` (the server acted, the client saw a dropped connection or a
500), `slow` (the answer comes after the client's timeout: `options['timeout']` is made small;
the server still acts). Sleeps go to a virtual clock (no retry or look-up window waits in real
time); only a slow fault's own delay is real. The session prints the matrix at its end
(tests/conftest.py).

Local (the PEFT backend) has no wire, so no fault can be put on one: its worker failures and a
planted exception in every operation are tests/test_local_provider.py's (each reaches the user
as `fh.ProviderError`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"

FAULTS = ("429", "500", "503", "drop", "drop-after", "500-after", "slow")
OPERATIONS = (
    "upload",
    "create",
    "get",
    "events",
    "metrics",
    "cancel",
    "deploy",
    "undeploy",
    "delete",
)
SLOW_TIMEOUT = 0.25  # the client's timeout in a slow cell (seconds)
SLOW_DELAY = 0.6  # how late the slow answer comes (real seconds, on the fake's side)
RETRY_AFTER = 3.0


def fault_kind(fault: str) -> tuple[str, bool]:
    """(the fakes' fault kind, after the work?) for a matrix fault."""
    kind, _, when = fault.partition("-")
    return kind, when == "after"


class Clock:
    """A virtual clock: sleeps advance it; `settle` lets a slow request's server side finish
    first (as the real time a look-up window takes would)."""

    def __init__(self, settle: Callable[[], None]) -> None:
        self.now = 1_000_000.0
        self.settle = settle
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.settle()


# -- one rig per provider: its fake, where each operation goes on the wire, what to count --------
class Rig:
    provider: str
    base_model: str
    deploy_kind: str | None = None
    deploy_options: dict[str, Any] = {}
    not_applicable: dict[str, str] = {}

    def __init__(self, fake: Any, tmp: Path) -> None:
        self.fake = fake
        self.tmp = tmp
        self.store = fh.JobStore(tmp / "store")
        self.shared: fh.TuningJob | None = None
        self._backends: dict[str, Any] = {}

    def options(self) -> dict[str, Any]:
        return {}

    def training_file(self) -> Path:
        return CHAT

    def inject(self, operation: str, fault: str) -> None:
        raise NotImplementedError

    def jobs_for(self, job_id: str) -> int:
        raise NotImplementedError

    def deployments_named(self, name: str) -> int:
        raise NotImplementedError

    def model_exists(self, model_id: str) -> bool:
        raise NotImplementedError

    def busy(self) -> bool:
        return False

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """New jobs do not end while inside (so cancel has something to cancel)."""
        yield

    def tuned_model(self, job: fh.TuningJob) -> fh.TunedModel:
        """The model deploy / undeploy cells serve (the shared job's, by default)."""
        model = job.result
        assert model is not None
        return model

    def backend(self, options: dict[str, Any]) -> Any:
        """One backend (and SDK clients) per set of options for all the rig's jobs: a fresh
        boto3 session or MLClient per cell would cost more than the cell itself."""
        key = repr(sorted(options.items()))
        if key not in self._backends:
            from finetune_hub.providers.base import make_backend

            self._backends[key] = make_backend(self.provider, {**self.options(), **options})
        return self._backends[key]

    def settle(self) -> None:
        deadline = time.monotonic() + 10 * SLOW_DELAY
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.01)


class OpenAIRig(Rig):
    provider, base_model = "openai", "gpt-4.1-mini-2025-04-14"
    not_applicable = {
        "deploy": "OpenAI serves tuned models without a deployment (model.chat)",
        "undeploy": "OpenAI serves tuned models without a deployment (model.chat)",
    }
    WIRE = {
        "upload": ("POST", "/files"),
        "create": ("POST", "/fine_tuning/jobs"),
        "get": ("GET", r"/fine_tuning/jobs/[^/]+"),
        "events": ("GET", r"/fine_tuning/jobs/[^/]+/events"),
        "metrics": ("GET", r"/files/[^/]+/content"),
        "cancel": ("POST", r"/fine_tuning/jobs/[^/]+/cancel"),
        "deploy": ("PUT", r".*/deployments/[^/]+"),
        "undeploy": ("DELETE", r".*/deployments/[^/]+"),
        "delete": ("DELETE", r"/models/.+"),
    }

    def inject(self, operation: str, fault: str) -> None:
        method, path = self.WIRE[operation]
        kind, after = fault_kind(fault)
        self.fake.inject(method, path, kind, after=after, retry_after=RETRY_AFTER, delay=SLOW_DELAY)

    def jobs_for(self, job_id: str) -> int:
        from finetune_hub.providers.openai import JOB_ID_KEY

        return sum((j.metadata or {}).get(JOB_ID_KEY) == job_id for j in self.fake.jobs.values())

    def model_exists(self, model_id: str) -> bool:
        return model_id in self.fake.fine_tuned_models

    def busy(self) -> bool:
        return any(r.status is None for r in list(self.fake.requests))

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        durations = dict(self.fake.durations)
        self.fake.durations.update(queued=10.0**9)
        try:
            yield
        finally:
            self.fake.durations.update(durations)


class AzureOpenAIRig(OpenAIRig):
    provider = "azure-openai"
    deploy_kind = "azure-deployment"
    not_applicable = {}

    def options(self) -> dict[str, Any]:
        fake = self.fake
        return {
            "management_token": fake.management_token,
            "subscription_id": fake.subscription_id,
            "resource_group": fake.resource_group,
            "account_name": fake.account,
        }

    def deployments_named(self, name: str) -> int:
        return sum(key[-1] == name for key in self.fake.deployments)


class BedrockRig(Rig):
    provider, base_model = "bedrock", "amazon.nova-lite-v1:0:300k"
    deploy_kind = "provisioned-throughput"
    WIRE = {
        "upload": "s3:PUT",
        "create": "CreateModelCustomizationJob",
        "get": "GetModelCustomizationJob",
        "events": "GetModelCustomizationJob",
        "metrics": "s3:GET",
        "cancel": "StopModelCustomizationJob",
        "deploy": "CreateProvisionedModelThroughput",
        "undeploy": "DeleteProvisionedModelThroughput",
        "delete": "DeleteCustomModel",
    }

    def __init__(self, fake: Any, tmp: Path) -> None:
        super().__init__(fake, tmp)
        fake.auto_complete_after = 2

    def options(self) -> dict[str, Any]:
        return {"role_arn": self.fake.role_arn, "s3_uri": self.fake.s3_uri}

    def training_file(self) -> Path:
        out = self.tmp / "gozaru_conversation.jsonl"
        if not out.exists():
            fh.convert(CHAT, out, to="bedrock_conversation")
        return out

    def inject(self, operation: str, fault: str) -> None:
        kind, after = fault_kind(fault)
        retry_after = RETRY_AFTER if kind == "429" else None
        self.fake.inject(
            self.WIRE[operation], kind, after=after, retry_after=retry_after, delay=SLOW_DELAY
        )

    def jobs_for(self, job_id: str) -> int:
        from finetune_hub.providers.bedrock import BedrockBackend

        name = BedrockBackend.from_options({}).names(job_id)[0]
        return sum(j.job_name == name for j in self.fake.jobs())

    def deployments_named(self, name: str) -> int:
        return sum(pt["provisionedModelName"] == name for pt in self.fake.provisioned_throughputs())

    def model_exists(self, model_id: str) -> bool:
        from finetune_hub.testing.bedrock_fake_ext import job_name

        return job_name(model_id) in self.fake.backend.custom_models

    def busy(self) -> bool:
        return self.fake.busy

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        self.fake.auto_complete_after = None
        try:
            yield
        finally:
            self.fake.auto_complete_after = 2


class VertexRig(Rig):
    provider, base_model = "vertex", "gemini-2.5-flash"
    deploy_kind = "endpoint"
    not_applicable = {
        "metrics": "Vertex AI tuning jobs report no metrics through the API: metrics() makes "
        "no call"
    }
    WIRE = {
        "upload": ("POST", "storage.objects.insert"),
        "create": ("POST", "tuningJobs.create"),
        "get": ("GET", "tuningJobs.get"),
        "events": ("GET", "tuningJobs.get"),
        "cancel": ("POST", "tuningJobs.cancel"),
        "deploy": ("POST", "endpoints.deployModel"),
        "undeploy": ("POST", "endpoints.undeployModel"),
        "delete": ("DELETE", "models.delete"),
    }

    def options(self) -> dict[str, Any]:
        return self.fake.options

    def training_file(self) -> Path:
        out = self.tmp / "gozaru_gemini.jsonl"
        if not out.exists():
            fh.convert(CHAT, out, to="gemini")
        return out

    def inject(self, operation: str, fault: str) -> None:
        method, target = self.WIRE[operation]
        kind, after = fault_kind(fault)
        self.fake.inject(
            method, target, kind, after=after, retry_after=RETRY_AFTER, delay=SLOW_DELAY
        )

    def jobs_for(self, job_id: str) -> int:
        from finetune_hub.providers.vertex import LABEL, label_value

        value = label_value(job_id)
        return sum(
            (j.request.get("labels") or {}).get(LABEL) == value
            for j in self.fake.tuning_jobs.values()
        )

    def deployments_named(self, name: str) -> int:
        """Endpoints named `name`, counted once per model deployed on them (at least once)."""
        endpoints = [
            e for e in self.fake.serving.endpoints.values() if e.get("displayName") == name
        ]
        return sum(max(1, len(e["deployedModels"])) for e in endpoints)

    def model_exists(self, model_id: str) -> bool:
        return self.fake.normalise(model_id.split("@")[0]) in self.fake.serving.models

    def busy(self) -> bool:
        return any(r.status is None for r in list(self.fake.requests))

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        durations = dict(self.fake.durations)
        self.fake.durations.update(pending=10.0**9)
        try:
            yield
        finally:
            self.fake.durations.update(durations)

    def tuned_model(self, job: fh.TuningJob) -> fh.TunedModel:
        """A tuned Gemini model needs no deployment (the deployer refuses it): the endpoint
        deployer serves models such as the RLHF pipeline's, so one is registered."""
        if not hasattr(self, "_served"):
            parent = self.fake.parent(self.fake.project, self.fake.location)
            self._served = self.fake.serving.add_model(parent, {"displayName": "rlhf-policy"})
        return fh.TunedModel(job, self._served)


class AzureFoundryRig(Rig):
    provider, base_model = "azure-foundry", "Phi-4-mini-instruct"
    WIRE = {
        "upload": ("PUT", r".*/finetune_hub/[^/]+/training\.jsonl"),
        "create": ("PUT", r"/jobs/[^/]+"),
        "get": ("GET", r"/jobs/[^/]+"),
        "events": ("GET", r".*/runs/[^/]+"),
        "metrics": ("*", r".*/metrics.*"),
        "cancel": ("POST", r"/jobs/[^/]+/cancel"),
        "deploy": ("PUT", r"/serverlessEndpoints/[^/]+"),
        "undeploy": ("DELETE", r"/serverlessEndpoints/[^/]+"),
        "delete": ("PUT", r"/models/[^/]+/versions/[^/]+"),
    }

    def __init__(self, fake: Any, tmp: Path) -> None:
        super().__init__(fake, tmp)
        fake.delete_seconds = 0

    def options(self) -> dict[str, Any]:
        return self.fake.options

    def inject(self, operation: str, fault: str) -> None:
        method, path = self.WIRE[operation]
        kind, after = fault_kind(fault)
        self.fake.inject(method, path, kind, after=after, retry_after=RETRY_AFTER, delay=SLOW_DELAY)

    def jobs_for(self, job_id: str) -> int:
        from finetune_hub.providers.azure_foundry_models import job_name

        return sum(name == job_name(job_id).lower() for name in self.fake.jobs)

    def deployments_named(self, name: str) -> int:
        """Endpoints named `name`; one being deleted counts as gone."""
        return sum(
            key.lower() == name.lower() and e.deleted is None
            for key, e in self.fake.endpoints.items()
        )

    def model_exists(self, model_id: str) -> bool:
        name, _, version = model_id.rsplit("/models/", 1)[-1].partition("/versions/")
        model = self.fake.models.get((name.lower(), version))
        return model is not None and not model.archived

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        phases = self.fake.phases
        self.fake.phases = (("Running", 10.0**9),)
        try:
            yield
        finally:
            self.fake.phases = phases


RIGS: dict[str, tuple[type[Rig], str]] = {
    "openai": (OpenAIRig, "openai"),
    "azure-openai": (AzureOpenAIRig, "azure-openai"),
    "bedrock": (BedrockRig, "bedrock"),
    "vertex": (VertexRig, "vertex"),
    "azure-foundry": (AzureFoundryRig, "azure-foundry"),
}


@contextlib.contextmanager
def serve(provider: str, mp: pytest.MonkeyPatch) -> Iterator[Any]:
    """The provider's fake, served with its environment (the plugin's fixtures, module-wide)."""
    from finetune_hub.testing import pytest_plugin as plugin

    if provider in ("openai", "azure-openai"):
        from finetune_hub.testing.openai_fake import (
            FakeAzureOpenAI,
            FakeOpenAI,
            FakeOpenAIServer,
        )

        fake = FakeOpenAI() if provider == "openai" else FakeAzureOpenAI()
        with FakeOpenAIServer(fake) as server:
            if provider == "openai":
                mp.setenv("OPENAI_API_KEY", fake.api_key)
                mp.setenv("OPENAI_BASE_URL", server.openai_base_url)
            else:
                mp.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
                mp.setenv("AZURE_OPENAI_API_KEY", fake.api_key)
                mp.setenv("OPENAI_API_VERSION", fake.api_version)
                mp.setenv("FINETUNE_HUB_AZURE_MANAGEMENT_URL", server.management_url)
            yield fake
    elif provider == "bedrock":
        pytest.importorskip("moto")
        from finetune_hub.testing.bedrock_fake import FakeBedrock

        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        with FakeBedrock() as fake:
            mp.setenv("AWS_ENDPOINT_URL", fake.url)
            fake.reset()
            fake.create_bucket()
            yield fake
    elif provider == "vertex":
        from finetune_hub.testing.vertex_fake import FakeVertex

        for var in plugin._GOOGLE_ENV:
            mp.delenv(var, raising=False)
        mp.setenv("NO_GCE_CHECK", "True")
        with FakeVertex() as fake:
            mp.setenv("STORAGE_EMULATOR_HOST", fake.url)
            fake.storage.create_bucket(fake.bucket)
            yield fake
    else:
        pytest.importorskip("azure.ai.ml")
        from finetune_hub.testing.azure_foundry_fake import FakeAzureFoundry

        mp.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
        fake = FakeAzureFoundry()
        with fake.route_storage_clients():
            yield fake


@pytest.fixture(scope="module", params=sorted(RIGS))
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One served fake per provider for all its cells, with a job that has succeeded."""
    cls, provider = RIGS[request.param]
    tmp = tmp_path_factory.mktemp(f"matrix-{provider}")
    with pytest.MonkeyPatch.context() as mp, serve(provider, mp) as fake:
        mp.setenv("FINETUNE_HUB_HOME", str(tmp / "home"))
        rig = cls(fake, tmp)
        rig.shared = succeeded_job(rig)
        yield rig


def new_job(rig: Rig, clock: Clock, **options: Any) -> fh.TuningJob:
    job = fh.TuningJob(
        provider=rig.provider,
        base_model=rig.base_model,
        training_file=rig.training_file(),
        options={**rig.options(), **options},
        store=rig.store,
    )
    job.sleep, job.clock = clock.sleep, lambda: clock.now
    job._backend = rig.backend(options)
    return job


def attached(rig: Rig, job: fh.TuningJob, clock: Clock, **options: Any) -> fh.TuningJob:
    """`job` as a new process sees it: attached from the store, options given again."""
    again = fh.TuningJob.attach(job.id, store=rig.store, options={**rig.options(), **options})
    again.sleep, again.clock = clock.sleep, lambda: clock.now
    again._backend = rig.backend(options)
    return again


def succeeded_job(rig: Rig) -> fh.TuningJob:
    clock = Clock(rig.settle)
    job = new_job(rig, clock)
    job.submit()
    job.wait(poll_interval=0.01, progress=False)
    assert job.status is fh.JobStatus.SUCCEEDED
    return job


# -- what every cell checks afterwards -------------------------------------------------------------
def assert_submitted_whole(rig: Rig, job_id: str, *, cancelled: bool = False) -> None:
    """The record loads, is submitted, keeps its data references, and no create is pending."""
    rec = fh.JobStore(rig.tmp / "store").require(job_id)  # read back by a fresh store
    assert rec.provider_job_id, "the provider job id is recorded"
    assert "training" in rec.data_refs, "the uploaded file's reference is recorded"
    assert "create_attempted_at" not in rec.extra, "no create attempt is left pending"
    assert rec.submitted_at is not None
    assert cancelled or rec.error is None  # Vertex reports a cancelled job's error: CANCELED
    assert rig.jobs_for(job_id) == 1, "exactly one provider job for the local job"


def assert_events_whole(rig: Rig, job_id: str) -> None:
    events = rig.store.events(job_id)
    assert len({e.id for e in events}) == len(events), "no event stored twice"


def assert_clear(err: fh.ProviderError, rig: Rig) -> None:
    assert err.provider == rig.provider and err.operation and err.message
    assert str(err).startswith(f"{rig.provider} {err.operation} failed")


# -- the operations --------------------------------------------------------------------------------
def run_upload(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    job = new_job(rig, clock, **options)
    job.validate()
    rig.inject("upload", fault)
    job.submit()
    assert_submitted_whole(rig, job.id)


def run_create(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    job = new_job(rig, clock, **options)
    job.validate()
    rig.inject("create", fault)
    job.submit()
    assert_submitted_whole(rig, job.id)


def run_get(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    assert rig.shared is not None
    job = attached(rig, rig.shared, clock, **options)
    rig.inject("get", fault)
    assert job.refresh() is fh.JobStatus.SUCCEEDED
    assert job.result is not None
    assert_submitted_whole(rig, job.id)


def run_events(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    assert rig.shared is not None
    job = attached(rig, rig.shared, clock, **options)
    before = [e.id for e in rig.store.events(job.id)]
    rig.inject("events", fault)
    events = job.events()
    assert events and [e.id for e in events][: len(before)] == before
    assert [e.id for e in job.events()] == [e.id for e in events]  # nothing new, nothing twice
    assert_events_whole(rig, job.id)


def run_metrics(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    assert rig.shared is not None
    job = attached(rig, rig.shared, clock, **options)
    expected = attached(rig, rig.shared, clock).metrics()
    rig.inject("metrics", fault)
    assert job.metrics() == expected and expected


def run_cancel(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    with rig.stalled():
        first = new_job(rig, clock)
        first.submit()
        job = attached(rig, first, clock, **options)
        rig.inject("cancel", fault)
        status = job.cancel()
    assert status in (fh.JobStatus.CANCELLED, fh.JobStatus.CANCELLING)
    assert_submitted_whole(rig, job.id, cancelled=True)
    assert job.store.require(job.id).status is status


def run_deploy(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    assert rig.shared is not None
    job = attached(rig, rig.shared, clock, **options)
    model = rig.tuned_model(job)
    name = f"fm-{fault}"
    rig.inject("deploy", fault)
    deployment = model.deploy(rig.deploy_kind, confirm_cost=True, name=name, **rig.deploy_options)
    assert rig.deployments_named(name) == 1, "exactly one deployment"
    rec = job.store.get_deployment(deployment.record.id)
    assert rec is not None and rec.deleted_at is None and rec.status == deployment.status.value
    assert "create_attempted_at" not in rec.extra, "no create attempt is left pending"
    again = model.deploy(rig.deploy_kind, confirm_cost=True, name=name, **rig.deploy_options)
    assert again.name == name and rig.deployments_named(name) == 1  # found, not made twice
    deployment.delete()
    assert rig.deployments_named(name) == 0


def run_undeploy(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    assert rig.shared is not None
    job = attached(rig, rig.shared, clock, **options)
    model = rig.tuned_model(job)
    name = f"fu-{fault}"
    deployment = model.deploy(rig.deploy_kind, confirm_cost=True, name=name, **rig.deploy_options)
    assert rig.deployments_named(name) == 1
    rig.inject("undeploy", fault)
    deployment.delete()
    assert rig.deployments_named(name) == 0
    rec = job.store.get_deployment(deployment.record.id)
    assert rec is not None and rec.deleted_at is not None
    assert deployment.status is fh.DeploymentStatus.DELETED


def run_delete(rig: Rig, fault: str, clock: Clock, options: dict[str, Any]) -> None:
    first = new_job(rig, clock)
    first.submit()
    first.wait(poll_interval=0.01, progress=False)
    job = attached(rig, first, clock, **options)
    model = job.result
    assert model is not None and rig.model_exists(model.id)
    rig.inject("delete", fault)
    model.delete()
    assert not rig.model_exists(model.id)
    assert_submitted_whole(rig, job.id)  # the job's record stays


RUN = {
    "upload": run_upload,
    "create": run_create,
    "get": run_get,
    "events": run_events,
    "metrics": run_metrics,
    "cancel": run_cancel,
    "deploy": run_deploy,
    "undeploy": run_undeploy,
    "delete": run_delete,
}


@pytest.mark.fault_matrix(row="operation", column="fault", group="rig")
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_fault_cell(rig: Rig, operation: str, fault: str) -> None:
    reason = rig.not_applicable.get(operation)
    if reason:
        pytest.skip(f"n/a: {reason}")
    clock = Clock(rig.settle)
    options = {"timeout": SLOW_TIMEOUT} if fault == "slow" else {}
    try:
        RUN[operation](rig, fault, clock, options)
    except fh.ProviderError as err:  # a clear ProviderError would be allowed; say which
        assert_clear(err, rig)
        raise AssertionError(f"{operation} under {fault} failed: {err}") from err
    finally:
        rig.settle()
        left = [f for f in rig.fake.faults if getattr(f, "remaining", getattr(f, "times", 0))]
        rig.fake.faults.clear()
    assert not left, f"the {fault} fault on {operation} never reached the wire"


def test_the_store_is_whole_after_every_cell(rig: Rig) -> None:
    """After the provider's cells (run before this test): every job the matrix made is
    recorded once, submitted, with exactly one provider job; every deployment record the
    matrix left is marked deleted, as its deployment is gone."""
    store = fh.JobStore(rig.tmp / "store")
    records = store.list()
    assert records and len({r.id for r in records}) == len(records)
    for rec in records:
        assert rec.provider_job_id and "create_attempted_at" not in rec.extra
        assert rig.jobs_for(rec.id) == 1
    for dep in store.list_deployments(active_only=False):
        assert dep.deleted_at is not None and rig.deployments_named(dep.name) == 0
