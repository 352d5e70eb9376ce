"""Azure AI Foundry fine-tuning of catalog models, on the surface the rules name per model
(`surface` in `[foundry_models."<model>"]`, azure_foundry_surfaces.py):

- Phi, Ministral, tsuzumi, ... in a hub-based project, through azure-ai-ml (`HubProjectBackend`):
  upload to the project's datastore, a marketplace subscription for non-Microsoft models, a
  fine-tuning job, and a serverless endpoint per tuned model (azure_foundry_deploy.py), billed by
  the hour while it exists.
- gpt-oss-20b, Qwen-32B, Llama-3.3-70B-Instruct on a Foundry resource, through its
  OpenAI-compatible fine-tuning API (an `AzureOpenAIBackend`, by composition) with Global
  training, served from a GlobalStandard deployment.

`AzureFoundryBackend` picks the surface of each job from its model, and of each provider job id
and tuned model id from the surface that owns it.

Connection: options `subscription_id`, `resource_group`, `workspace` (the project), `credential`
(an azure-identity credential; `DefaultAzureCredential` when not given) and `transport` (an
azure-core transport handed to every client: how the fakes are reached), else the environment
variables `AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`, `AZURE_ML_WORKSPACE`. Job options:
`model_version` (default: the registry's latest), `registry` (for a model the rules do not
place), `experiment_name`. SDK retries are off (`retry_total=0`): the job layer retries.

OpenAI-compatible surface: options `endpoint` (the resource's, `AZURE_OPENAI_ENDPOINT`),
`api_key` or `credential`, `api_version`, `training_type` (default from the rules:
GlobalStandard), and for deployments `subscription_id`, `resource_group`, `account_name` (the
Foundry resource), `management_url`, `management_token`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from finetune_hub.errors import ProviderError
from finetune_hub.issues import Issue
from finetune_hub.providers.azure_foundry_history import (
    RunHistory,
    error_code,
    error_message,
    metric_points,
    run_events,
)
from finetune_hub.providers.azure_foundry_models import (
    SURFACE_ML,
    SURFACE_OPENAI,
    FoundryModel,
    job_name,
    output_model_name,
    subscription_name,
)
from finetune_hub.providers.azure_foundry_surfaces import OpenAICompatible, Surface
from finetune_hub.providers.azure_foundry_upload import upload_file
from finetune_hub.providers.base import (
    Capability,
    Connection,
    DataRef,
    PreparedJob,
    ProviderJob,
    ProviderOptions,
    TuningBackend,
)
from finetune_hub.providers.openai import OPENAI_STATES  # the "azure" extra includes openai
from finetune_hub.status import JobEvent, JobStatus, MetricPoint, StateMap

__all__ = [
    "AZURE_ML_STATES",
    "AzureFoundryBackend",
    "AzureFoundryConnection",
    "AzureFoundryOptions",
    "HubProjectBackend",
]

JOB_ID_TAG = "finetune_hub_job_id"
_ENV = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "workspace": "AZURE_ML_WORKSPACE",
}
_TASKS = {"chat": "ChatCompletion", "prompt_completion": "TextCompletion"}
_S = JobStatus
#: azure-ai-ml's JobStatus values (ARM `properties.status`) -> JobStatus
AZURE_ML_STATES = {
    "NotStarted": _S.QUEUED,
    "Starting": _S.QUEUED,
    "Provisioning": _S.QUEUED,
    "Queued": _S.QUEUED,
    "Preparing": _S.VALIDATING,
    "Running": _S.RUNNING,
    "Finalizing": _S.RUNNING,
    "Paused": _S.PAUSED,
    "CancelRequested": _S.CANCELLING,
    "Completed": _S.SUCCEEDED,
    "Failed": _S.FAILED,
    "NotResponding": _S.FAILED,
    "Canceled": _S.CANCELLED,
    "Unknown": _S.UNKNOWN,
}


class AzureFoundryOptions(ProviderOptions):
    """Options of the `azure-foundry` provider (unknown keys are refused)."""

    subscription_id: str | None = None
    resource_group: str | None = None
    workspace: str | None = None
    credential: Any = None  # an azure-identity credential: never stored
    transport: Any = None  # an azure-core HttpTransport: never stored
    model_version: str | None = None
    registry: str | None = None
    experiment_name: str = "finetune-hub"
    # the OpenAI-compatible surface of a Foundry resource (models with surface "openai")
    endpoint: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    account_name: str | None = None
    management_url: str | None = None
    management_token: SecretStr | None = None
    training_type: str | None = None


@dataclass(frozen=True)
class WorkspaceInfo:
    """What the provider needs to know about the project workspace (read once)."""

    location: str
    workspace_id: str
    discovery_url: str
    mlflow_tracking_uri: str


class AzureFoundryConnection(Connection):
    """The `MLClient` of the project (and of catalog registries), made on first use."""

    provider = "azure-foundry"
    Options = AzureFoundryOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._ml: Any = None
        self._registries: dict[str, Any] = {}
        self._workspace: WorkspaceInfo | None = None
        self._credential: Any = None
        self.history = RunHistory(self)

    def opt(self, key: str) -> Any:
        """An option, else its environment variable."""
        value = getattr(self.options, key, None)
        if value is None and key in _ENV:
            value = os.environ.get(_ENV[key])
        return value

    def missing(self) -> list[str]:
        """The connection options that are set neither in options nor in the environment."""
        return [k for k in _ENV if not self.opt(k)]

    def credential(self) -> Any:
        if self._credential is None:
            if self.options.credential is not None:
                self._credential = self.options.credential
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
        return self._credential

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "retry_total": 0,
            "show_progress": False,
            "per_call_policies": [call_timeout_policy(self.options.timeout)],
        }
        if self.options.transport is not None:
            kwargs["transport"] = self.options.transport
        return kwargs

    @property
    def ml(self) -> Any:
        if self._ml is None:
            self._ml = self.call("connect", self._make_client)
        return self._ml

    def _make_client(self) -> Any:
        missing = self.missing()
        if missing:
            names = ", ".join(f"{k} ({_ENV[k]})" for k in missing)
            raise ProviderError(self.provider, "connect", f"set options {names}", retryable=False)
        from azure.ai.ml import MLClient

        return MLClient(
            self.credential(),
            self.opt("subscription_id"),
            self.opt("resource_group"),
            self.opt("workspace"),
            **self.client_kwargs(),
        )

    def registry(self, name: str) -> Any:
        """An `MLClient` on the catalog registry `name` (`azureml`, `azureml-meta`, ...)."""
        if name not in self._registries:
            from azure.ai.ml import MLClient

            self._registries[name] = self.call(
                "connect",
                lambda: MLClient(self.credential(), registry_name=name, **self.client_kwargs()),
            )
        return self._registries[name]

    @property
    def workspace_path(self) -> str:
        return (
            f"/subscriptions/{self.opt('subscription_id')}/resourceGroups/"
            f"{self.opt('resource_group')}/providers/Microsoft.MachineLearningServices/"
            f"workspaces/{self.opt('workspace')}"
        )

    def workspace(self) -> WorkspaceInfo:
        if self._workspace is None:
            ws = self.call("workspace", lambda: self.ml.workspaces.get(self.opt("workspace")))
            self._workspace = WorkspaceInfo(
                location=str(ws.location),
                workspace_id=str(ws._workspace_id),  # the id serverless model ids are built on
                discovery_url=str(ws.discovery_url),
                mlflow_tracking_uri=str(ws.mlflow_tracking_uri),
            )
        return self._workspace

    def credentials_source(self) -> dict[str, str]:
        cred = self.options.credential
        found = {"azure": f"azure-identity:{type(cred).__name__}" if cred else "default-chain"}
        if self.options.api_key is not None:  # the OpenAI-compatible surface's resource key
            found["api_key"] = "explicit"
        elif os.environ.get("AZURE_OPENAI_API_KEY") and self.options.endpoint:
            found["api_key"] = "env:AZURE_OPENAI_API_KEY"
        return found

    def stored_options(self) -> dict[str, Any]:
        keys = ("subscription_id", "resource_group", "workspace", "model_version", "registry")
        kept = {k: self.opt(k) for k in keys if self.opt(k) is not None}
        for key in ("endpoint", "api_version", "account_name", "management_url", "training_type"):
            if getattr(self.options, key) is not None:
                kept[key] = getattr(self.options, key)
        if "experiment_name" in self.options.model_fields_set:
            kept["experiment_name"] = self.options.experiment_name
        return kept

    def translate(self, exc: BaseException, operation: str) -> ProviderError | None:
        return translate_azure_error(self.provider, exc, operation)


def call_timeout_policy(seconds: float) -> Any:
    """An azure-core policy giving every request `options['timeout']` as its connection and read
    timeout (azure-core's own default is 300 s, and a transport passed in keeps its own
    settings unless a request names them)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class CallTimeout(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            request.context.options.setdefault("connection_timeout", seconds)
            request.context.options.setdefault("read_timeout", seconds)

    return CallTimeout()


def translate_azure_error(
    provider: str, exc: BaseException, operation: str
) -> ProviderError | None:
    """azure-core and azure-ai-ml exceptions as `ProviderError` (status, code, request id,
    Retry-After); None for anything else."""
    try:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )
    except ImportError:  # pragma: no cover - azure-core comes with the extra
        return None
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:
        return ProviderError(
            provider,
            operation,
            f"Azure sign-in failed ({exc.message}): run `az login`, or pass options="
            "{'credential': ...}",
            status_code=401,
            retryable=False,
        )
    if isinstance(exc, HttpResponseError):
        response = exc.response
        headers = response.headers if response is not None else {}
        error = getattr(exc, "error", None)
        retry_after = headers.get("retry-after")
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        return ProviderError(
            provider,
            operation,
            (getattr(error, "message", None) or exc.message or str(exc)).split("\n")[0],
            status_code=exc.status_code,
            request_id=headers.get("x-ms-request-id"),
            code=getattr(error, "code", None) or headers.get("x-ms-error-code"),
            retry_after=seconds,
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return ProviderError(provider, operation, f"connection failed: {exc.message}")
    module = type(exc).__module__
    if module.startswith("azure.ai.ml"):
        return ProviderError(provider, operation, str(exc), retryable=False)
    return None


class HubProjectBackend(TuningBackend):
    """Azure AI Foundry (hub-based project): azure-ai-ml fine-tuning jobs of catalog models, the
    `azure-ai-ml` surface of `AzureFoundryBackend`.

    A tuned model is served through a serverless endpoint: `model.deploy(confirm_cost=True)`.
    """

    name = "azure-foundry"
    display_name = "Azure AI Foundry"
    capabilities = frozenset(
        {
            Capability.UPLOAD,
            Capability.CANCEL,
            Capability.EVENTS,
            Capability.METRICS,
            Capability.DELETE_MODEL,
            Capability.LIST_JOBS,
        }
    )
    state_map = StateMap("azure-foundry", AZURE_ML_STATES)
    connection_class = AzureFoundryConnection

    @property
    def ml(self) -> Any:
        return self.connection.ml

    # -- before anything leaves the machine ---------------------------------------------------
    def check(self, job: PreparedJob) -> list[Issue]:
        issues = []
        missing = self.connection.missing()
        if missing:
            names = ", ".join(f"{k} (or {_ENV[k]})" for k in missing)
            issues.append(
                Issue(
                    code="missing_option", field="options", message=f"azure-foundry needs {names}"
                )
            )
        model = FoundryModel.of(job.model_id)
        if not (self.options.registry or model.registry):
            issues.append(
                Issue(
                    code="unknown_registry",
                    field="options.registry",
                    message=f"finetune_hub does not know which catalog registry holds "
                    f"{job.model_id}: pass options={{'registry': 'azureml'}} (or azureml-meta, "
                    "azureml-mistral, ...)",
                )
            )
        return issues

    # -- files and jobs -----------------------------------------------------------------------
    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        return upload_file(self.connection, path, purpose, job_id)

    def find(self, job_id: str) -> ProviderJob | None:
        """The job named after `job_id`, if an earlier create made it."""
        try:
            job = self.call("find", lambda: self.ml.jobs.get(job_name(job_id)))
        except ProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        return self._to_job(job)

    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        from azure.ai.ml import Input, Output
        from azure.ai.ml.entities import CustomModelFineTuningJob

        model = FoundryModel.of(job.model_id)
        registry = self.options.registry or model.registry
        self._check_region(model)
        if model.marketplace:
            self.ensure_subscription(model, registry)
        version = self.options.model_version or self._latest_version(registry, model.name)
        fmt = job.rules.formats[0].value if job.rules and job.rules.formats else "chat"
        validation = refs.get("validation")
        # Built directly: create_finetuning_job(validation_data=None) raises UnboundLocalError
        # in azure-ai-ml 1.35.2, and validation data is optional for the service.
        entity = CustomModelFineTuningJob(
            task=_TASKS.get(fmt, "ChatCompletion"),
            model=Input(
                type="mlflow_model", path=f"{model.registry_id(registry)}/versions/{version}"
            ),
            training_data=Input(type="uri_file", path=refs["training"].id),
            validation_data=Input(type="uri_file", path=validation.id) if validation else None,
            hyperparameters={k: str(v) for k, v in job.hyperparameters.items()},
            outputs={
                "registered_model": Output(
                    type="mlflow_model", name=output_model_name(model.name, job.job_id, job.suffix)
                )
            },
            name=job_name(job.job_id),
            display_name=f"{model.name} {job.suffix or job.job_id}",
            experiment_name=self.options.experiment_name,
            tags={JOB_ID_TAG: job.job_id},
        )
        created = self.call("create", lambda: self.ml.jobs.create_or_update(entity))
        return self._to_job(created)

    def _check_region(self, model: FoundryModel) -> None:
        location = self.connection.workspace().location.lower().replace(" ", "")
        if model.fine_tune_regions and location not in model.fine_tune_regions:
            raise ProviderError(
                self.name,
                "create",
                f"{model.name} can be fine-tuned in projects in {', '.join(model.fine_tune_regions)}; "
                f"this project is in {location} ({model.source}, read {model.as_of})",
                retryable=False,
            )

    def _latest_version(self, registry: str | None, name: str) -> str:
        client = self.connection.registry(registry or "azureml")
        found = self.call("create", lambda: client.models.get(name, label="latest"))
        return str(found.version)

    def ensure_subscription(self, model: FoundryModel, registry: str | None = None) -> None:
        """Subscribe the project to the model's marketplace offer unless it already is."""
        from azure.ai.ml.entities import MarketplaceSubscription

        ops = self.ml.marketplace_subscriptions
        name = subscription_name(model.name)
        try:
            self.call("subscribe", lambda: ops.get(name))
            return
        except ProviderError as exc:
            if exc.status_code != 404:
                raise
        wanted = MarketplaceSubscription(model_id=model.registry_id(registry), name=name)
        self.call("subscribe", lambda: ops.begin_create_or_update(wanted, polling=False).result())

    def get(self, provider_job_id: str) -> ProviderJob:
        job = self.call("get", lambda: self.ml.jobs.get(provider_job_id))
        return self._to_job(job)

    def cancel(self, provider_job_id: str) -> None:
        self.call("cancel", lambda: self.ml.jobs.begin_cancel(provider_job_id, polling=False))

    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        """One page of the project's fine-tuning jobs (`ml_client.jobs.list()`, newest first;
        the workspace's other jobs are skipped). The cursor is `<continuation token>#<skip>`: the
        Azure page it stopped in and how many fine-tuning jobs of that page were returned. A
        listed job carries no tuned model id or error message (one request per job each):
        `get` (and so `TuningJob.adopt`) reads them."""
        from azure.ai.ml.entities._job.finetuning.finetuning_job import FineTuningJob

        token, skipped = _split_cursor(after)

        def page() -> tuple[list[ProviderJob], str | None]:
            found: list[ProviderJob] = []
            pages = self.ml.jobs.list().by_page(continuation_token=token)
            current, skip = token, skipped
            for items in pages:
                tuning = [j for j in items if isinstance(j, FineTuningJob)][skip:]
                room = limit - len(found)
                found += [self._to_job(j, detail=False) for j in tuning[:room]]
                if len(tuning) > room:
                    return found, f"{current or ''}#{skip + room}"
                current, skip = pages.continuation_token, 0
                if current is None:
                    return found, None
                if len(found) == limit:
                    return found, f"{current}#0"
            return found, None

        return self.call("list_jobs", page)

    def _to_job(self, job: Any, detail: bool = True) -> ProviderJob:
        raw_status = getattr(job.status, "value", job.status)
        status = self.state_map(raw_status)
        tuned = error = code = None
        if detail and status is JobStatus.SUCCEEDED:
            tuned = self._tuned_model_id(job)
        elif detail and status is JobStatus.FAILED:
            run = self.call("get", lambda: self.connection.history.run(job.name))
            error, code = error_message(run), error_code(run)
        created = getattr(getattr(job, "creation_context", None), "created_at", None)
        return ProviderJob(
            id=job.name,
            status=status,
            raw_status=raw_status,
            fine_tuned_model=tuned,
            error=error,
            error_code=code,
            created_at=created,
            raw=_raw(job, raw_status),
            base_model=_base_model(job),
            method="sft",  # the project's fine-tuning jobs are supervised (chat or completion)
            local_job_id=(getattr(job, "tags", None) or {}).get(JOB_ID_TAG),
        )

    def _tuned_model_id(self, job: Any) -> str:
        """The registered output model as a serverless endpoint takes it:
        `azureml://locations/<loc>/workspaces/<id>/models/<name>/versions/<v>`."""
        output = (job.outputs or {}).get("registered_model")
        name = getattr(output, "name", None) or (output or {}).get("name")
        versions = self.call("get", lambda: list(self.ml.models.list(name=name)))
        mine = [m for m in versions if getattr(m, "job_name", None) == job.name] or versions
        version = max((str(m.version) for m in mine), key=_version_key, default="1")
        ws = self.connection.workspace()
        return (
            f"azureml://locations/{ws.location}/workspaces/{ws.workspace_id}"
            f"/models/{name}/versions/{version}"
        )

    def delete_model(self, model: str) -> None:
        """Archive the registered tuned model (azure-ai-ml has no delete for models; an archived
        model is hidden from lists and can be restored). Azure refuses while an endpoint serves
        it: delete the deployment first."""
        name, _, version = model.rsplit("/models/", 1)[-1].partition("/versions/")
        self.call(
            "delete_model", lambda: self.ml.models.archive(name=name, version=version or None)
        )

    # -- what happened --------------------------------------------------------------------------
    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        run = self.call("events", lambda: self.connection.history.run(provider_job_id))
        return run_events(run, after)

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        raw = self.call("metrics", lambda: self.connection.history.metrics(provider_job_id))
        return metric_points(raw)


def _raw(job: Any, raw_status: str) -> dict[str, Any]:
    """The job's main fields as plain data (the entity's own dump is slow and noisy)."""
    model = getattr(getattr(job, "model", None), "path", None)
    return {
        "name": job.name,
        "status": raw_status,
        "display_name": getattr(job, "display_name", None),
        "experiment_name": getattr(job, "experiment_name", None),
        "studio_url": getattr(job, "studio_url", None),
        "model": model,
        "hyperparameters": dict(getattr(job, "hyperparameters", None) or {}),
        "tags": dict(getattr(job, "tags", None) or {}),
    }


def _base_model(job: Any) -> str | None:
    """The catalog model's name from the job's model input
    (`azureml://registries/azureml/models/Phi-4-mini-instruct/versions/1` -> `Phi-4-mini-instruct`)."""
    path = getattr(getattr(job, "model", None), "path", None)
    if not path:
        return None
    return str(path).split("/models/", 1)[-1].split("/versions/", 1)[0] or None


def _split_cursor(after: str | None) -> tuple[str | None, int]:
    """`<continuation token>#<skip>` -> (token or None, skip)."""
    if not after:
        return None, 0
    token, _, skip = after.rpartition("#")
    return token or None, int(skip) if skip.isdigit() else 0


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


# -- the surfaces and the backend that picks one --------------------------------------------------
class HubProject(Surface):
    """A hub-based project's fine-tuning jobs through azure-ai-ml (`HubProjectBackend`); it owns
    every job id and model id no other surface claims."""

    name = SURFACE_ML
    deployer = "serverless"
    what = "a hub-based project (azure-ai-ml)"

    @classmethod
    def owns_job(cls, provider_job_id: str) -> bool:
        return True

    def make_backend(self) -> TuningBackend:
        return HubProjectBackend(self.connection)

    def check(self, job: PreparedJob) -> list[Issue]:
        return self.backend.check(job)  # names its own missing options

    def missing(self) -> list[str]:
        return [f"{k} (or {_ENV[k]})" for k in self.connection.missing()]


#: surface name (the rules' `surface` value) -> its class; the first that owns an id wins
SURFACES: dict[str, type[Surface]] = {SURFACE_OPENAI: OpenAICompatible, SURFACE_ML: HubProject}


class AzureFoundryBackend(TuningBackend):
    """Azure AI Foundry: each job runs on the surface the rules name for its model (a hub
    project through azure-ai-ml, or a Foundry resource's OpenAI-compatible API); the backend
    hands each call to that surface's backend.

    >>> from finetune_hub.providers.azure_foundry_models import FoundryModel
    >>> FoundryModel.of("gpt-oss-20b").surface, FoundryModel.of("Phi-4").surface
    ('openai', 'azure-ai-ml')
    """

    name = "azure-foundry"
    display_name = "Azure AI Foundry"
    capabilities = HubProjectBackend.capabilities | {Capability.CHECKPOINTS}
    state_map = StateMap("azure-foundry", {**AZURE_ML_STATES, **OPENAI_STATES})
    connection_class = AzureFoundryConnection

    def __init__(self, connection: AzureFoundryConnection) -> None:
        super().__init__(connection)
        self._surfaces: dict[str, Surface] = {}
        self._job_surface: dict[str, str] = {}  # local job id -> surface, learnt from its model

    # -- which surface ---------------------------------------------------------------------------
    def surface(self, name: str) -> Surface:
        if name not in self._surfaces:
            self._surfaces[name] = SURFACES[name](self.connection)
        return self._surfaces[name]

    def surface_for_model(self, model_id: str) -> Surface:
        """The surface of a base model (from the rules) or of a tuned model (from its base)."""
        for name, cls in SURFACES.items():
            if cls.owns_model(model_id):
                return self.surface(name)
        return self.surface(SURFACE_ML)

    def surface_for_job(self, provider_job_id: str) -> Surface:
        name = next(n for n, cls in SURFACES.items() if cls.owns_job(provider_job_id))
        return self.surface(name)

    @property
    def hub(self) -> HubProjectBackend:
        """The hub project's backend (marketplace subscriptions, workspace facts)."""
        return self.surface(SURFACE_ML).backend  # type: ignore[return-value]

    def ensure_subscription(self, model: FoundryModel, registry: str | None = None) -> None:
        self.hub.ensure_subscription(model, registry)

    # -- the contract, handed on -----------------------------------------------------------------
    def check(self, job: PreparedJob) -> list[Issue]:
        surface = self.surface_for_model(job.model_id)
        self._job_surface[job.job_id] = surface.name
        return surface.check(job)

    def _for_local(self, job_id: str) -> list[Surface]:
        known = self._job_surface.get(job_id)
        if known is not None:
            return [self.surface(known)]
        return [self.surface(n) for n in SURFACES if self.surface(n).configured()] or [
            self.surface(SURFACE_ML)
        ]

    def upload(self, path: str, purpose: str, job_id: str) -> DataRef:
        return self._for_local(job_id)[0].backend.upload(path, purpose, job_id)

    def find(self, job_id: str) -> ProviderJob | None:
        for surface in self._for_local(job_id):
            found = surface.backend.find(job_id)
            if found is not None:
                return found
        return None

    def create(self, job: PreparedJob, refs: dict[str, DataRef]) -> ProviderJob:
        surface = self.surface_for_model(job.model_id)
        self._job_surface[job.job_id] = surface.name
        return surface.backend.create(job, refs)

    def get(self, provider_job_id: str) -> ProviderJob:
        return self.surface_for_job(provider_job_id).backend.get(provider_job_id)

    def cancel(self, provider_job_id: str) -> None:
        self.surface_for_job(provider_job_id).backend.cancel(provider_job_id)

    def list_jobs(
        self, limit: int = 20, after: str | None = None
    ) -> tuple[list[ProviderJob], str | None]:
        """The jobs of every configured surface, one surface after the other (the
        OpenAI-compatible API of the resource `endpoint` names, then the hub project), each
        newest first; a page that ends one surface goes on with the next. The cursor is
        `<surface>:<that surface's cursor>`."""
        names = [n for n in SURFACES if self.surface(n).configured()] or [SURFACE_ML]
        name, inner = names[0], None
        if after:
            name, _, rest = after.partition(":")
            if name not in names:
                raise ProviderError(
                    self.name,
                    "list_jobs",
                    f"the cursor {after!r} is for the {name} surface, which these options do "
                    f"not configure (configured: {', '.join(names)})",
                    retryable=False,
                )
            inner = rest or None
        found: list[ProviderJob] = []
        while True:
            page, inner = self.surface(name).backend.list_jobs(limit - len(found), inner)
            found += page
            if inner is None:
                later = names[names.index(name) + 1 :]
                if not later:
                    return found, None
                name = later[0]
            if len(found) >= limit:
                return found, f"{name}:{inner or ''}"

    def events(self, provider_job_id: str, after: str | None = None) -> list[JobEvent]:
        return self.surface_for_job(provider_job_id).backend.events(provider_job_id, after)

    def metrics(self, provider_job_id: str) -> list[MetricPoint]:
        return self.surface_for_job(provider_job_id).backend.metrics(provider_job_id)

    def checkpoints(self, provider_job_id: str) -> list[Any]:
        return self.surface_for_job(provider_job_id).backend.checkpoints(provider_job_id)

    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        surface = self.surface_for_model(model)
        raise self.unsupported(
            f"chat without a deployment: {model} is served from a {surface.deployer} "
            f"deployment (model.deploy({surface.deployer!r}, confirm_cost=True), then chat "
            "with it)"
        )

    def delete_model(self, model: str) -> None:
        self.surface_for_model(model).backend.delete_model(model)

    def tunable_models(self) -> list[str] | None:
        """Catalog models the rules say Foundry can fine-tune today, on either surface."""
        from finetune_hub.rules import default_catalog

        return list(default_catalog().provider_data(self.name).get("foundry_models", {}))
