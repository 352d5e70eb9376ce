"""The resources of the Azure AI Foundry fake and the service's rules about them.

`FoundryState` holds the workspace's jobs, registered models, marketplace subscriptions,
serverless endpoints, data assets, long-running operations and blob storage, and answers the
questions the routes ask (is this model in the catalog, does it need a subscription, does this
input exist). `FakeAzureFoundry` adds the wire entry point, faults and test controls on top.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from .azure_foundry_fake_blob import BlobStore
from .azure_foundry_fake_inference import default_reply
from .azure_foundry_fake_jobs import DEFAULT_PHASES, FineTuningJob
from .azure_foundry_fake_resources import (
    DEFAULT_CATALOG,
    CatalogModel,
    Endpoint,
    RegisteredModel,
    Subscription,
    model_ref,
)
from .azure_foundry_fake_transport import FakeAzureCredential
from .azure_foundry_fake_wire import AzureError, iso
from .fake_clock import FakeClock

__all__ = ["FoundryState"]

DATASTORE_URI = re.compile(
    r"azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?"
    r"datastores/(?P<datastore>[^/]+)/paths/(?P<path>.+)",
    re.IGNORECASE,
)
_DATA_ASSET = re.compile(
    r"(?:azureml:)?/?(?:subscriptions/.+/workspaces/[^/]+/)?data/(?P<name>[^/]+)/versions/(?P<version>[^/]+)"
    r"|azureml:(?P<short_name>[^:/]+):(?P<short_version>[^:/]+)",
    re.IGNORECASE,
)


class FoundryState:
    """One project workspace's resources, on a fake clock (see `FakeAzureFoundry`)."""

    subscription_id = "00000000-0000-0000-0000-000000000000"
    resource_group = "rg-fake"
    workspace = "proj-fake"
    location = "eastus2"
    workspace_id = "5f0c7a3e-0000-4000-8000-00000000f00d"
    storage_account = "fakefoundrystore"
    datastore_name = "workspaceblobstore"
    registry_subscription_id = "00000000-0000-0000-0000-0000000000ee"

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        phases: Iterable[tuple[str, float]] = DEFAULT_PHASES,
        auto_advance: float = 10.0,
        deploy_seconds: float = 120.0,
        delete_seconds: float = 30.0,
        cancel_seconds: float = 10.0,
        subscribe_seconds: float = 0.0,
        metric_step_seconds: float = 10.0,
        catalog: Iterable[CatalogModel] | None = None,
        reply: Callable[[str, list[dict[str, Any]]], str] | None = None,
        string_hyperparameters: bool = True,
        page_size: int = 50,
    ) -> None:
        self.clock = clock or FakeClock()
        self.phases = tuple((str(s), float(d)) for s, d in phases)
        self.auto_advance = auto_advance
        self.deploy_seconds = deploy_seconds
        self.delete_seconds = delete_seconds
        self.cancel_seconds = cancel_seconds
        self.subscribe_seconds = subscribe_seconds
        self.metric_step_seconds = metric_step_seconds
        self.catalog: dict[tuple[str, str], CatalogModel] = {
            (m.registry.lower(), m.name.lower()): m
            for m in (DEFAULT_CATALOG if catalog is None else catalog)
        }
        self.reply = reply or default_reply
        #: refuse hyperParameters values that are not JSON strings (the schema's Dict[str, str])
        self.string_hyperparameters = string_hyperparameters
        self.page_size = page_size
        self.created_at = self.clock.now()
        self.container = f"azureml-blobstore-{self.workspace_id}"
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.credential = FakeAzureCredential()
        self.reset()

    def reset(self) -> None:
        """Forget every resource (the clock keeps its time)."""
        with self._lock:
            self.jobs: dict[str, FineTuningJob] = {}
            self.models: dict[tuple[str, str], RegisteredModel] = {}
            self.subscriptions: dict[str, Subscription] = {}
            self.endpoints: dict[str, Endpoint] = {}
            self.data_assets: dict[tuple[str, str], dict[str, Any]] = {}
            self.operations: dict[str, float] = {}
            self.blobs = BlobStore(self.storage_account, self.clock.now)
            self.blobs.containers[self.container] = {}
            #: per endpoint name: requests, prompt_tokens, completion_tokens
            self.usage: dict[str, dict[str, int]] = {}

    # --- where things are --------------------------------------------------------------------

    @property
    def workspace_path(self) -> str:
        """The workspace's ARM id (`/subscriptions/.../workspaces/{workspace}`)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )

    @property
    def api_host(self) -> str:
        return f"{self.location}.api.azureml.ms"

    @property
    def tracking_uri(self) -> str:
        """The workspace's MLflow tracking URI (`azureml://...`)."""
        return f"azureml://{self.api_host}/mlflow/v1.0{self.workspace_path}"

    def workspace_resource(self) -> dict[str, Any]:
        """The workspace as ARM returns it (a project of an AI hub)."""
        hub = self.workspace_path.rsplit("/", 1)[0] + "/hub-fake"
        return {
            "id": self.workspace_path,
            "name": self.workspace,
            "type": "Microsoft.MachineLearningServices/workspaces",
            "location": self.location,
            "kind": "Project",
            "identity": {
                "type": "SystemAssigned",
                "principalId": "00000000-0000-0000-0000-0000000000cc",
                "tenantId": self.credential.tenant_id,
            },
            "sku": {"name": "Basic", "tier": "Basic"},
            "tags": {},
            "properties": {
                "workspaceId": self.workspace_id,
                "friendlyName": self.workspace,
                "discoveryUrl": f"https://{self.api_host}/discovery",
                "mlFlowTrackingUri": self.tracking_uri,
                "hubResourceId": hub,
                "provisioningState": "Succeeded",
                "publicNetworkAccess": "Enabled",
                "storageAccount": (
                    f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                    f"/providers/Microsoft.Storage/storageAccounts/{self.storage_account}"
                ),
            },
            "systemData": {"createdAt": iso(self.created_at), "createdBy": "fake-user@example.com"},
        }

    # --- state helpers used by the routes --------------------------------------------------

    def sync(self) -> None:
        """Register the output model of every job that has completed by now."""
        now = self.clock.now()
        for job in self.jobs.values():
            if job.registered_model is None and job.status(now) == "Completed":
                self._register_output(job, now)
        for op_id, done_at in list(self.operations.items()):
            if done_at + 3600 < now:
                del self.operations[op_id]

    def _register_output(self, job: FineTuningJob, now: float) -> None:
        name = job.output_model_name or job.name
        versions = [int(v) for (n, v) in self.models if n == name.lower() and v.isdigit()]
        version = str(max(versions, default=0) + 1)
        uri = ((job.properties.get("fineTuningDetails") or {}).get("model") or {}).get("uri", "")
        ref = model_ref(uri)
        base = self.catalog_model(ref.registry, ref.name) if ref else None
        self.models[(name.lower(), version)] = RegisteredModel(name, version, job.name, base, now)
        job.registered_model = (name, version)

    def catalog_model(self, registry: str, name: str) -> CatalogModel | None:
        return self.catalog.get((registry.lower(), name.lower()))

    def require_subscription(self, model: CatalogModel) -> None:
        """400, as for a non-Microsoft model with no marketplace subscription in the project."""
        if not model.needs_subscription:
            return
        now = self.clock.now()
        for subscription in self.subscriptions.values():
            if subscription.model_id.lower() == model.id.lower() and now >= subscription.ready_at:
                return
        raise AzureError(
            400,
            "MarketplaceSubscriptionNotFound",
            f"Model '{model.name}' is sold through the Azure Marketplace: create a marketplace "
            f"subscription for '{model.id}' in this project first.",
        )

    def data_exists(self, uri: str) -> bool:
        """Whether a job input or data asset uri points at something in the workspace."""
        uri = unquote(uri)
        if match := DATASTORE_URI.fullmatch(uri):
            if match["datastore"].lower() != self.datastore_name.lower():
                return False
            path = match["path"].rstrip("/")
            blobs = self.blobs.containers.get(self.container, {})
            return path in blobs or any(n.startswith(path + "/") for n in blobs)
        if match := _DATA_ASSET.fullmatch(uri):
            name = match["name"] or match["short_name"]
            version = match["version"] or match["short_version"]
            return (name.lower(), version) in self.data_assets
        prefix = f"https://{self.storage_account}.blob.core.windows.net/"
        if uri.startswith(prefix):
            container, _, name = uri[len(prefix) :].partition("/")
            return self.blobs.get(container, name.split("?", 1)[0]) is not None
        return False

    def new_job(self, name: str, properties: dict[str, Any]) -> FineTuningJob:
        now = self.clock.now()
        timeline, at = [], now
        for status, seconds in self.phases:
            timeline.append((status, at))
            at += seconds
        timeline.append(("Completed", at))
        job = FineTuningJob(
            name=name,
            resource_id=f"{self.workspace_path}/jobs/{name}",
            properties=properties,
            created_at=now,
            timeline=timeline,
            step_seconds=self.metric_step_seconds,
        )
        self.jobs[name.lower()] = job
        return job

    def render_job(self, job: FineTuningJob) -> dict[str, Any]:
        studio = f"https://ai.azure.com/resource/build/fine-tune/{self.workspace}"
        return job.render(self.clock.now(), studio, self.tracking_uri)

    def operation_url(self, *, done_at: float | None = None, op_id: str | None = None) -> str:
        """The `Location` of a long-running operation that completes at `done_at`."""
        if op_id is None:
            op_id = f"op-{next(self._ids):08d}"
            self.operations[op_id] = self.clock.now() if done_at is None else done_at
        return (
            f"https://management.azure.com/subscriptions/{self.subscription_id}/providers/"
            f"Microsoft.MachineLearningServices/locations/{self.location}/mfeOperationResults/"
            f"{op_id}?api-version=2024-01-01-preview"
        )

    def next_id(self) -> str:
        return f"{next(self._ids):012d}"

    def _job(self, name: str) -> FineTuningJob:
        try:
            return self.jobs[name.lower()]
        except KeyError:
            raise KeyError(f"no job named {name!r}; jobs: {sorted(self.jobs)}") from None
