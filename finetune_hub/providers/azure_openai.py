"""Azure OpenAI fine-tuning: the OpenAI flow on an `AzureOpenAI` client, plus deployments through
the Cognitive Services management REST API (httpx), which bill by the hour.

Connection: `options` `endpoint`, `api_key` or `credential` (an azure-identity credential;
`DefaultAzureCredential` when neither is given), `api_version`, and for deployments
`subscription_id`, `resource_group`, `account_name` (env `AZURE_OPENAI_ENDPOINT`,
`AZURE_OPENAI_API_KEY`, `OPENAI_API_VERSION`, `AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`,
`AZURE_OPENAI_ACCOUNT`). `management_url` / `FINETUNE_HUB_AZURE_MANAGEMENT_URL` points the
management calls elsewhere (the fakes use it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import openai

from finetune_hub.providers.base import Capability, DeploymentInfo, ProviderError
from finetune_hub.providers.openai import OPENAI_STATES, OpenAIProvider
from finetune_hub.rules import resolve
from finetune_hub.status import StateMap

if TYPE_CHECKING:
    from finetune_hub.jobs.spec import JobSpec

DEFAULT_API_VERSION = "2025-04-01-preview"
DEFAULT_MANAGEMENT_URL = "https://management.azure.com"
MANAGEMENT_API_VERSION = "2024-10-21"
_SCOPE_DATA = "https://cognitiveservices.azure.com/.default"
_SCOPE_MANAGEMENT = "https://management.azure.com/.default"
_ENV = {
    "endpoint": "AZURE_OPENAI_ENDPOINT",
    "api_key": "AZURE_OPENAI_API_KEY",
    "api_version": "OPENAI_API_VERSION",
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "account_name": "AZURE_OPENAI_ACCOUNT",
    "management_url": "FINETUNE_HUB_AZURE_MANAGEMENT_URL",
}


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI: OpenAI's fine-tuning API on an Azure resource, and hourly-billed deployments.

    A tuned model is served through a deployment: `chat(model=<deployment name>)`.
    """

    name = "azure-openai"
    display_name = "Azure OpenAI"
    capabilities = OpenAIProvider.capabilities | {Capability.DEPLOY}
    state_map = StateMap("azure-openai", OPENAI_STATES)
    api_key_env = "AZURE_OPENAI_API_KEY"

    def opt(self, key: str, default: Any = None) -> Any:
        value = self.options.get(key)
        if value is None and key in _ENV:
            value = os.environ.get(_ENV[key])
        return default if value is None else value

    def _make_client(self) -> Any:
        endpoint = self.opt("endpoint")
        if not endpoint:
            raise ProviderError(self.name, "connect", "no endpoint: set AZURE_OPENAI_ENDPOINT or options={'endpoint': ...}", retryable=False)
        args: dict[str, Any] = {
            "azure_endpoint": endpoint,
            "api_version": self.opt("api_version", DEFAULT_API_VERSION),
            "timeout": self.options.get("timeout", 60.0),
            "max_retries": 0,
        }
        key = self.opt("api_key")
        if key:
            args["api_key"] = key
        else:
            args["azure_ad_token_provider"] = self._token_provider(_SCOPE_DATA)
        return openai.AzureOpenAI(**args)

    def _credential(self) -> Any:
        credential = self.options.get("credential")
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return credential

    def _token_provider(self, scope: str) -> Any:
        from azure.identity import get_bearer_token_provider

        return get_bearer_token_provider(self._credential(), scope)

    def credentials_source(self) -> dict[str, str]:
        if "api_key" in self.options:
            data = "explicit"
        elif os.environ.get(_ENV["api_key"]):
            data = f"env:{_ENV['api_key']}"
        else:
            data = "azure-identity:" + type(self.options.get("credential")).__name__ if "credential" in self.options else "default-chain"
        management = "explicit" if "management_token" in self.options else "default-chain"
        return {"api_key": data, "management": management}

    def stored_options(self) -> dict[str, Any]:
        keys = ("endpoint", "api_version", "subscription_id", "resource_group", "account_name", "management_url", "training_type")
        return {k: self.opt(k) for k in keys if self.opt(k) is not None}

    def _extra_create_args(self, spec: JobSpec) -> dict[str, Any]:
        tier = spec.options.get("training_type")
        return {"extra_body": {"trainingType": tier}} if tier else {}

    # -- deployments (management plane) ---------------------------------------------------------------
    def hourly_cost(self, model: str, options: dict[str, Any]) -> float | None:
        rules, _ = resolve(self.name, model, "sft")
        sku = str(options.get("sku", "standard")).lower()
        return rules.hosting_usd_per_hour.get(sku)

    def deploy(self, model: str, name: str, options: dict[str, Any]) -> DeploymentInfo:
        body = {
            "sku": {"name": options.get("sku", "standard"), "capacity": int(options.get("capacity", 1))},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": str(options.get("version", "1"))}},
        }
        data = self._management("PUT", name, "deploy", json=body)
        return self._deployment(data, name, model)

    def get_deployment(self, name: str, options: dict[str, Any]) -> DeploymentInfo | None:
        try:
            data = self._management("GET", name, "get_deployment")
        except ProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        return self._deployment(data, name, data.get("properties", {}).get("model", {}).get("name", ""))

    def undeploy(self, name: str, options: dict[str, Any]) -> None:
        try:
            self._management("DELETE", name, "undeploy")
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    def _deployment(self, data: dict[str, Any], name: str, model: str) -> DeploymentInfo:
        props = data.get("properties", {})
        sku = data.get("sku", {}).get("name", "standard")
        endpoint = self.opt("endpoint")
        return DeploymentInfo(
            name=data.get("name", name),
            model=model,
            status=props.get("provisioningState", "Unknown"),
            endpoint=f"{endpoint.rstrip('/')}/openai/deployments/{name}" if endpoint else None,
            hourly_cost_usd=self.hourly_cost(model, {"sku": sku}) if model else None,
            raw=data,
        )

    def _management(self, method: str, name: str, operation: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        missing = [k for k in ("subscription_id", "resource_group", "account_name") if not self.opt(k)]
        if missing:
            raise ProviderError(self.name, operation, f"deployments need options {', '.join(missing)} (or their AZURE_* variables)", retryable=False)
        base = self.opt("management_url", DEFAULT_MANAGEMENT_URL).rstrip("/")
        url = (
            f"{base}/subscriptions/{self.opt('subscription_id')}/resourceGroups/{self.opt('resource_group')}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.opt('account_name')}/deployments/{name}"
        )
        headers = {"Authorization": f"Bearer {self._management_token()}"}
        params = {"api-version": self.options.get("management_api_version", MANAGEMENT_API_VERSION)}
        try:
            response = httpx.request(method, url, params=params, headers=headers, json=json, timeout=self.options.get("timeout", 60.0))
        except httpx.HTTPError as exc:
            raise ProviderError(self.name, operation, f"connection failed: {exc}") from None
        if response.status_code >= 400:
            raise _management_error(self.name, operation, response)
        return response.json() if response.content else {}

    def _management_token(self) -> str:
        token = self.options.get("management_token")
        if token:
            return str(token)
        return self._credential().get_token(_SCOPE_MANAGEMENT).token


def _management_error(provider: str, operation: str, response: Any) -> ProviderError:
    try:
        err = response.json().get("error", {})
    except ValueError:
        err = {}
    retry_after = response.headers.get("retry-after")
    return ProviderError(
        provider,
        operation,
        err.get("message") or response.text[:200] or response.reason_phrase,
        status_code=response.status_code,
        request_id=response.headers.get("x-ms-request-id"),
        code=err.get("code"),
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )
