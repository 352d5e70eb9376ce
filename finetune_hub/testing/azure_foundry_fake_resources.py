"""Resources of the Azure AI Foundry fake other than jobs: catalog models, marketplace
subscriptions, serverless endpoints and registered (fine-tuned) models."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .azure_foundry_fake_wire import iso

if TYPE_CHECKING:
    from .azure_foundry_fake import FakeAzureFoundry

__all__ = [
    "DEFAULT_CATALOG",
    "CatalogModel",
    "Endpoint",
    "ModelRef",
    "RegisteredModel",
    "Subscription",
    "model_ref",
    "parse_workspace_model",
]

#: The registry of Microsoft's own models; models from any other registry are sold through the
#: Azure Marketplace and need a marketplace subscription in the project first.
MICROSOFT_REGISTRY = "azureml"

_REGISTRY_MODEL = re.compile(
    r"azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)"
    r"(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?",
    re.IGNORECASE,
)
_WORKSPACE_MODEL = re.compile(
    r"azureml://locations/(?P<location>[^/]+)/workspaces/(?P<workspace>[^/]+)"
    r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ModelRef:
    """A parsed registry model id."""

    registry: str
    name: str
    version: str | None = None
    label: str | None = None


def model_ref(model_id: str) -> ModelRef | None:
    """Parse `azureml://registries/{r}/models/{n}[/versions/{v} | /labels/{l}]`.

    >>> model_ref("azureml://registries/azureml/models/Phi-4-mini-instruct/versions/7").version
    '7'
    >>> model_ref("not a model") is None
    True
    """
    match = _REGISTRY_MODEL.fullmatch(model_id or "")
    if not match:
        return None
    return ModelRef(match["registry"], match["name"], match["version"], match["label"])


def parse_workspace_model(model_id: str) -> tuple[str, str] | None:
    """(name, version) of `azureml://locations/{loc}/workspaces/{id}/models/{n}/versions/{v}`."""
    match = _WORKSPACE_MODEL.fullmatch(model_id or "")
    return (match["name"], match["version"]) if match else None


@dataclass(frozen=True)
class CatalogModel:
    """A catalog model the fake lets you fine-tune and deploy serverlessly.

    `hyperparameters`: the names a fine-tuning job may set (None: any name).

    >>> CatalogModel("Phi-4-mini-instruct", "azureml").needs_subscription
    False
    """

    name: str
    registry: str
    version: str = "1"
    hyperparameters: frozenset[str] | None = None
    publisher: str = "microsoft"

    @property
    def needs_subscription(self) -> bool:
        return self.registry.lower() != MICROSOFT_REGISTRY

    @property
    def id(self) -> str:
        """The versionless registry id (what marketplace subscriptions and endpoints take)."""
        return f"azureml://registries/{self.registry}/models/{self.name}"

    def plan(self) -> dict[str, str]:
        offer = self.name.lower().replace(".", "-")
        return {"publisherId": self.publisher, "offerId": offer, "planId": f"{offer}-plan"}


_COMMON = frozenset({"num_train_epochs", "per_device_train_batch_size", "learning_rate"})
DEFAULT_CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel("Phi-4-mini-instruct", "azureml", "1", _COMMON),
    CatalogModel("Phi-4", "azureml", "1", _COMMON),
    CatalogModel("Phi-3.5-mini-instruct", "azureml", "1", _COMMON),
    CatalogModel("Phi-3.5-MoE-instruct", "azureml", "1", _COMMON),
    CatalogModel("Ministral-3B", "azureml-mistral", "1", _COMMON, "000-000"),
    CatalogModel("Mistral-Nemo", "azureml-mistral", "1", _COMMON, "000-000"),
    CatalogModel("Mistral-Large-2411", "azureml-mistral", "1", _COMMON, "000-000"),
    CatalogModel("Meta-Llama-3.1-70B-Instruct", "azureml-meta", "1", _COMMON, "metagenai"),
    CatalogModel(
        "tsuzumi2",
        "azureml-nttdata",
        "1",
        frozenset({"num_train_epochs", "per_device_train_batch_size"}),
        "nttdata",
    ),
)


@dataclass
class Subscription:
    """A marketplace subscription of the project to a (non-Microsoft) catalog model."""

    name: str
    model_id: str
    plan: dict[str, str]
    created_at: float
    ready_at: float

    def render(self, fake: FakeAzureFoundry) -> dict[str, Any]:
        ready = fake.clock.now() >= self.ready_at
        return {
            "id": f"{fake.workspace_path}/marketplaceSubscriptions/{self.name}",
            "name": self.name,
            "type": "Microsoft.MachineLearningServices/workspaces/marketplaceSubscriptions",
            "properties": {
                "modelId": self.model_id,
                "marketplacePlan": dict(self.plan),
                "marketplaceSubscriptionStatus": "Subscribed"
                if ready
                else "PendingFulfillmentStart",
                "provisioningState": "Succeeded" if ready else "Creating",
            },
            "systemData": {"createdAt": iso(self.created_at), "createdBy": "fake-user@example.com"},
        }


@dataclass
class Endpoint:
    """A serverless (pay-as-you-go) endpoint serving a catalog or fine-tuned model."""

    name: str
    model_id: str
    location: str
    tags: dict[str, str]
    auth_mode: str
    created_at: float
    ready_at: float
    keys: tuple[str, str]
    deleted: float | None = None  # when the delete completes (set by DELETE)

    def gone(self, now: float) -> bool:
        return self.deleted is not None and now >= self.deleted

    def state(self, now: float) -> tuple[str, str]:
        """(provisioningState, endpointState)."""
        if self.deleted is not None:
            return "Deleting", "Deleting"
        if now < self.ready_at:
            return "Creating", "Creating"
        return "Succeeded", "Online"

    def host(self) -> str:
        return f"{self.name.lower()}.{self.location.lower()}.models.ai.azure.com"

    def render(self, fake: FakeAzureFoundry) -> dict[str, Any]:
        provisioning, endpoint_state = self.state(fake.clock.now())
        properties: dict[str, Any] = {
            "authMode": self.auth_mode,
            "modelSettings": {"modelId": self.model_id},
            "inferenceEndpoint": {"uri": f"https://{self.host()}", "headers": {}},
            "provisioningState": provisioning,
            "endpointState": endpoint_state,
        }
        ref = model_ref(self.model_id)
        if ref is not None:
            sub = next(
                (
                    s
                    for s in fake.subscriptions.values()
                    if s.model_id.lower() == self.model_id.lower()
                ),
                None,
            )
            if sub is not None:
                properties["marketplaceSubscriptionId"] = (
                    f"{fake.workspace_path}/marketplaceSubscriptions/{sub.name}"
                )
        return {
            "id": f"{fake.workspace_path}/serverlessEndpoints/{self.name}",
            "name": self.name,
            "type": "Microsoft.MachineLearningServices/workspaces/serverlessEndpoints",
            "location": self.location,
            "tags": dict(self.tags),
            "sku": {"name": "Consumption"},
            "properties": properties,
            "systemData": {"createdAt": iso(self.created_at), "createdBy": "fake-user@example.com"},
        }


@dataclass
class RegisteredModel:
    """A model registered in the workspace by a completed fine-tuning job."""

    name: str
    version: str
    job_name: str
    base: CatalogModel | None
    created_at: float
    tags: dict[str, str] = field(default_factory=dict)
    archived: bool = False

    def asset_id(self, fake: FakeAzureFoundry) -> str:
        """The id a serverless endpoint takes."""
        return (
            f"azureml://locations/{fake.location}/workspaces/{fake.workspace_id}"
            f"/models/{self.name}/versions/{self.version}"
        )

    def render(self, fake: FakeAzureFoundry) -> dict[str, Any]:
        return {
            "id": f"{fake.workspace_path}/models/{self.name}/versions/{self.version}",
            "name": self.version,
            "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
            "properties": {
                "modelType": "custom_model",
                "modelUri": f"azureml://jobs/{self.job_name}/outputs/registered_model",
                "jobName": self.job_name,
                "flavors": {},
                "isArchived": self.archived,
                "isAnonymous": False,
                "tags": dict(self.tags),
                "properties": {
                    "baseModelId": self.base.id if self.base else "",
                    "finetuneJobName": self.job_name,
                },
            },
            "systemData": {"createdAt": iso(self.created_at), "createdBy": "fake-user@example.com"},
        }


def new_key() -> str:
    """A random endpoint key (what listKeys hands out)."""
    return secrets.token_hex(16)
