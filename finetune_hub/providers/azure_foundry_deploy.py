"""Serverless endpoints of Azure AI Foundry: a tuned model (or a catalog model) behind a key.

A fine-tuned model's endpoint bills by the hour while it exists, whether or not it is called,
plus tokens; a catalog model's endpoint bills per token only. One endpoint per tuned model.
Creation and deletion are long-running on Azure's side: `create` and `delete` return once Azure
has accepted them (`Deployment.wait_ready()` follows the creation).

Chat goes to `{scoring_uri}/v1/chat/completions` with the endpoint's primary key, fetched
(`listKeys`) for each call and never stored.

Models tuned through a Foundry resource's OpenAI-compatible API (gpt-oss-20b, Qwen-32B,
Llama-3.3-70B-Instruct) are served from a GlobalStandard deployment on that resource instead:
`FoundryOpenAIDeployer` (kind `globalstandard`), the Azure OpenAI deployer by composition, its
SKU from the rules (`[foundry_surfaces.openai] deployment_sku`) and its hourly price from
`hosting_usd_per_hour.globalstandard` of the model's `[foundry_models]` entry, "unknown" where
no source gives one. Each deployer refuses a model of the other surface, naming the kind to use.
"""

from __future__ import annotations

from typing import Any

from finetune_hub.errors import ProviderError, UnsupportedOperation
from finetune_hub.providers.azure_foundry_models import (
    SURFACE_OPENAI,
    FoundryModel,
    base_of_output,
    registry_model,
)
from finetune_hub.providers.azure_foundry_surfaces import surface_facts, tuned_base
from finetune_hub.providers.azure_openai_deploy import (
    PROVISIONING_STATES,
    AzureOpenAIDeployer,
    AzureOpenAIDeployOptions,
)
from finetune_hub.providers.base import Deployer, DeploymentCost, DeploymentInfo, DeployOptions
from finetune_hub.providers.openai import chat_args
from finetune_hub.status import DeploymentStatus, StateMap

__all__ = ["FoundryOpenAIDeployer", "SERVERLESS_STATES", "ServerlessEndpointDeployer"]

_D = DeploymentStatus
#: `provisioning_state` as azure-ai-ml reports it (snake case) and as ARM sends it
SERVERLESS_STATES = {
    "creating": _D.CREATING,
    "updating": _D.UPDATING,
    "succeeded": _D.READY,
    "failed": _D.FAILED,
    "canceled": _D.FAILED,
    "deleting": _D.DELETING,
    "Creating": _D.CREATING,
    "Updating": _D.UPDATING,
    "Succeeded": _D.READY,
    "Failed": _D.FAILED,
    "Canceled": _D.FAILED,
    "Deleting": _D.DELETING,
}
PER_TOKEN_SOURCE = (
    "Fine-tune models by using serverless API deployments in Microsoft Foundry (classic) "
    "<https://github.com/MicrosoftDocs/azure-ai-docs/blob/main/articles/foundry-classic/how-to/"
    "fine-tune-serverless.md>"
)


class ServerlessOptions(DeployOptions):
    """Nothing to choose: serverless endpoints take sku `Consumption` in the project's region."""


class ServerlessEndpointDeployer(Deployer):
    """A serverless endpoint in the project (`ml.serverless_endpoints`)."""

    kind = "serverless"
    display_name = "Azure AI Foundry serverless endpoint"
    state_map = StateMap("azure-foundry serverless endpoint", SERVERLESS_STATES)
    Options = ServerlessOptions

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self._chat_client: Any = None

    @property
    def ml(self) -> Any:
        return self.backend.connection.ml

    def cost(self, model: str, options: DeployOptions) -> DeploymentCost:
        refuse_other_surface(self, model)
        if registry_model(model) is not None:
            return DeploymentCost(
                hourly_usd=0.0,
                note=f"a serverless endpoint of catalog model {registry_model(model)[1]} bills per "
                "token, with no hourly hosting fee",
                source=PER_TOKEN_SOURCE,
            )
        base = base_of_output(model)
        facts = FoundryModel.of(base) if base else None
        what = f"a fine-tuned {base}" if base else "a fine-tuned model"
        if facts is None or facts.hosting_usd_per_hour is None:
            read = f"; rules read {facts.as_of}" if facts and facts.as_of else ""
            return DeploymentCost(
                hourly_usd=None,
                note=f"a serverless endpoint of {what} bills by the hour while it exists, plus "
                f"tokens, at a rate unknown to finetune_hub (no source it knows states it{read})",
                source=facts.source if facts else None,
                as_of=facts.as_of if facts else None,
            )
        return DeploymentCost(
            hourly_usd=facts.hosting_usd_per_hour, source=facts.source, as_of=facts.as_of
        )

    def create(self, model: str, name: str, options: DeployOptions) -> DeploymentInfo:
        from azure.ai.ml.entities import ServerlessEndpoint

        refuse_other_surface(self, model)
        base = base_of_output(model)
        facts = FoundryModel.of(base) if base else None
        if facts is not None and facts.marketplace:
            found = registry_model(model)
            self.backend.ensure_subscription(facts, found[0] if found else None)
        wanted = ServerlessEndpoint(name=name, model_id=model)
        ops = self.ml.serverless_endpoints
        created = self.call(
            "deploy", lambda: ops.begin_create_or_update(wanted, polling=False).result()
        )
        return self._info(created, name, model)

    def get(self, name: str, options: DeployOptions) -> DeploymentInfo | None:
        try:
            found = self.call("get_deployment", lambda: self.ml.serverless_endpoints.get(name))
        except ProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        return self._info(found, name, found.model_id)

    def delete(self, name: str, options: DeployOptions) -> None:
        try:
            self.call(
                "undeploy", lambda: self.ml.serverless_endpoints.begin_delete(name, polling=False)
            )
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        key = self.call("chat", lambda: self.ml.serverless_endpoints.get_keys(info.name))
        uri = (info.endpoint or "").rstrip("/")
        body = {"messages": messages, **chat_args(kwargs)}
        reply = self.call("chat", lambda: self._post(f"{uri}/v1/chat/completions", body, key))
        return reply["choices"][0]["message"].get("content") or ""

    def _post(self, url: str, body: dict[str, Any], keys: Any) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest("POST", url, json=body, headers={"Authorization": keys.primary_key})
        response = self._client().send_request(request)
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        return response.json()

    def _client(self) -> Any:
        if self._chat_client is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import HeadersPolicy, UserAgentPolicy

            kwargs: dict[str, Any] = {
                "policies": [
                    HeadersPolicy({"Accept": "application/json"}),
                    UserAgentPolicy("finetune-hub"),
                ]
            }
            transport = self.backend.connection.options.transport
            if transport is not None:
                kwargs["transport"] = transport
            self._chat_client = PipelineClient("https://models.ai.azure.com", **kwargs)
        return self._chat_client

    def _info(self, endpoint: Any, name: str, model: str) -> DeploymentInfo:
        return self.info(
            getattr(endpoint, "name", None) or name,
            model,
            getattr(endpoint, "provisioning_state", None),
            endpoint=getattr(endpoint, "scoring_uri", None),
            raw={
                "id": getattr(endpoint, "id", None),
                "location": getattr(endpoint, "location", None),
                "model_id": getattr(endpoint, "model_id", None),
            },
        )


def refuse_other_surface(deployer: Deployer, model: str) -> None:
    """`UnsupportedOperation` naming the serving mode to use when `model` was tuned on a surface
    whose models `deployer` does not serve."""
    surface = deployer.backend.surface_for_model(model)
    if surface.deployer != deployer.kind:
        raise UnsupportedOperation(
            f"{model} was tuned through {surface.what}, which a {deployer.display_name} does "
            f"not serve: deploy it with model.deploy({surface.deployer!r}, confirm_cost=True)"
        )


class FoundryOpenAIDeployOptions(DeployOptions):
    """`sku` (default: the rules' SKU for the surface, GlobalStandard), `capacity`, `version`."""

    sku: str | None = None
    capacity: int = 1
    version: str = "1"


class FoundryOpenAIDeployer(Deployer):
    """A GlobalStandard deployment of a model tuned through a Foundry resource's
    OpenAI-compatible API: `AzureOpenAIDeployer` on that surface's connection (management API
    for the deployment, the data plane for chat)."""

    kind = "globalstandard"
    display_name = "Azure AI Foundry GlobalStandard deployment (OpenAI-compatible)"
    state_map = StateMap("azure-foundry globalstandard deployment", PROVISIONING_STATES)
    Options = FoundryOpenAIDeployOptions

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self._inner: AzureOpenAIDeployer | None = None

    @property
    def inner(self) -> AzureOpenAIDeployer:
        """The Azure OpenAI deployer on the OpenAI-compatible surface's backend."""
        if self._inner is None:
            self._inner = AzureOpenAIDeployer(self.backend.surface(SURFACE_OPENAI).backend)
        return self._inner

    def _options(self, options: DeployOptions) -> AzureOpenAIDeployOptions:
        sku = options.sku or surface_facts(SURFACE_OPENAI).get("deployment_sku", "GlobalStandard")
        return AzureOpenAIDeployOptions(sku=sku, capacity=options.capacity, version=options.version)

    def cost(self, model: str, options: DeployOptions) -> DeploymentCost:
        refuse_other_surface(self, model)
        facts = FoundryModel.of(tuned_base(model))
        sku = self._options(options).sku.lower()
        price = (facts.raw.get("hosting_usd_per_hour") or {}).get(sku)
        if price is None:
            read = f"; rules read {facts.as_of}" if facts.as_of else ""
            return DeploymentCost(
                hourly_usd=None,
                note=f"a {sku} deployment of a fine-tuned {facts.name} bills by the hour while it "
                f"exists, plus tokens, at a rate unknown to finetune_hub (no source it knows "
                f"states it{read})",
                source=facts.source or None,
                as_of=facts.as_of or None,
            )
        return DeploymentCost(hourly_usd=float(price), source=facts.source, as_of=facts.as_of)

    def create(self, model: str, name: str, options: DeployOptions) -> DeploymentInfo:
        refuse_other_surface(self, model)
        return self._mine(self.inner.create(model, name, self._options(options)))

    def get(self, name: str, options: DeployOptions) -> DeploymentInfo | None:
        found = self.inner.get(name, self._options(options))
        return self._mine(found) if found is not None else None

    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return self.inner.chat(info, messages, **kwargs)

    def delete(self, name: str, options: DeployOptions) -> None:
        self.inner.delete(name, self._options(options))

    def _mine(self, info: DeploymentInfo) -> DeploymentInfo:
        return info.model_copy(update={"kind": self.kind})
