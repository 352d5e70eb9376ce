"""Azure OpenAI deployments of tuned models (Cognitive Services management API), billed by the
hour while they exist.

Deploy options: `sku` (standard, globalstandard, developer, ...), `capacity`, `version`.
"""

from __future__ import annotations

from typing import Any

from finetune_hub.providers.base import Deployer, DeploymentCost, DeploymentInfo, DeployOptions
from finetune_hub.providers.openai import chat_args
from finetune_hub.status import DeploymentStatus, StateMap

_D = DeploymentStatus
PROVISIONING_STATES = {
    "Accepted": _D.CREATING,
    "Creating": _D.CREATING,
    "Updating": _D.UPDATING,
    "Moving": _D.UPDATING,
    "Succeeded": _D.READY,
    "Failed": _D.FAILED,
    "Canceled": _D.FAILED,
    "Deleting": _D.DELETING,
    "Deleted": _D.DELETED,
}


class AzureOpenAIDeployOptions(DeployOptions):
    sku: str = "standard"
    capacity: int = 1
    version: str = "1"


class AzureOpenAIDeployer(Deployer):
    """A deployment of a tuned model on the Azure OpenAI resource; chat goes to its name."""

    kind = "azure-deployment"
    display_name = "Azure OpenAI deployment"
    state_map = StateMap("azure-openai deployment", PROVISIONING_STATES)
    Options = AzureOpenAIDeployOptions

    @property
    def connection(self) -> Any:
        return self.backend.connection

    def cost(self, model: str, options: AzureOpenAIDeployOptions) -> DeploymentCost:
        from finetune_hub.rules import resolve

        rules, _ = resolve(self.provider, model, "sft")
        prov = rules.provenance.get("hosting_usd_per_hour")
        return DeploymentCost(
            hourly_usd=rules.hosting_usd_per_hour.get(options.sku.lower()),
            source=(prov.source + ("" if prov.confirmed else f"; UNCONFIRMED: {prov.note}"))
            if prov
            else None,
            as_of=str(prov.as_of) if prov else None,
        )

    def create(self, model: str, name: str, options: AzureOpenAIDeployOptions) -> DeploymentInfo:
        body = {
            "sku": {"name": options.sku, "capacity": options.capacity},
            "properties": {
                "model": {"format": "OpenAI", "name": model, "version": options.version}
            },
        }
        return self._info(self.connection.management("PUT", name, "deploy", json=body), name, model)

    def get(self, name: str, options: AzureOpenAIDeployOptions) -> DeploymentInfo | None:
        from finetune_hub.errors import ProviderError

        try:
            data = self.connection.management("GET", name, "get_deployment")
        except ProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        model = data.get("properties", {}).get("model", {}).get("name", "")
        return self._info(data, name, model)

    def delete(self, name: str, options: AzureOpenAIDeployOptions) -> None:
        from finetune_hub.errors import ProviderError

        try:
            self.connection.management("DELETE", name, "undeploy")
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    def chat(self, info: DeploymentInfo, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        client = self.connection.client
        reply = self.call(
            "chat",
            lambda: client.chat.completions.create(
                model=info.name, messages=messages, **chat_args(kwargs)
            ),
        )
        return reply.choices[0].message.content or ""

    def _info(self, data: dict[str, Any], name: str, model: str) -> DeploymentInfo:
        endpoint = self.connection.opt("endpoint")
        return self.info(
            data.get("name", name),
            model,
            data.get("properties", {}).get("provisioningState"),
            endpoint=f"{endpoint.rstrip('/')}/openai/deployments/{name}" if endpoint else None,
            raw=data,
        )
