"""Azure OpenAI fine-tuning: the OpenAI flow (openai.py) over an `AzureOpenAI` client, plus
hourly-billed deployments (azure_openai_deploy.py) through the Cognitive Services management
REST API.

Connection: options `endpoint`, `api_key` or `credential` (an azure-identity credential;
`DefaultAzureCredential` when neither is given), `api_version`, and for deployments
`subscription_id`, `resource_group`, `account_name` (env `AZURE_OPENAI_ENDPOINT`,
`AZURE_OPENAI_API_KEY`, `OPENAI_API_VERSION`, `AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`,
`AZURE_OPENAI_ACCOUNT`). `management_url` / `FINETUNE_HUB_AZURE_MANAGEMENT_URL` points the
management calls elsewhere (the fakes use it). Job option: `training_type` (Standard, Global,
Developer).
"""

from __future__ import annotations

import os
from typing import Any

import openai
from pydantic import SecretStr

from finetune_hub.errors import ProviderError
from finetune_hub.providers.base import PreparedJob, ProviderOptions
from finetune_hub.providers.openai import OPENAI_STATES, OpenAIBackend, OpenAIConnection
from finetune_hub.status import StateMap

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


class AzureOpenAIOptions(ProviderOptions):
    """Options of the `azure-openai` provider (unknown keys are refused)."""

    endpoint: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    credential: Any = None  # an azure-identity credential object: never stored
    subscription_id: str | None = None
    resource_group: str | None = None
    account_name: str | None = None
    management_url: str | None = None
    management_token: SecretStr | None = None
    management_api_version: str = MANAGEMENT_API_VERSION
    training_type: str | None = None
    file_poll_interval: float = 1.0
    grader: dict[str, Any] | None = None


class AzureOpenAIConnection(OpenAIConnection):
    """An `openai.AzureOpenAI` client (key or Entra ID token) and the management-plane token."""

    provider = "azure-openai"
    Options = AzureOpenAIOptions
    api_key_env = "AZURE_OPENAI_API_KEY"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._management_tokens: Any = None

    def opt(self, key: str, default: Any = None) -> Any:
        """An option, else its environment variable, else `default` (secrets unwrapped)."""
        value = getattr(self.options, key, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None and key in _ENV:
            value = os.environ.get(_ENV[key])
        return default if value is None else value

    def make_client(self) -> Any:
        endpoint = self.opt("endpoint")
        if not endpoint:
            raise ProviderError(
                self.provider,
                "connect",
                "no endpoint: set AZURE_OPENAI_ENDPOINT or options={'endpoint': ...}",
                retryable=False,
            )
        args: dict[str, Any] = {
            "azure_endpoint": endpoint,
            "api_version": self.opt("api_version", DEFAULT_API_VERSION),
            "timeout": self.options.timeout,
            "max_retries": 0,
        }
        key = self.data_key()
        if key:
            args["api_key"] = key
        else:
            args["azure_ad_token_provider"] = self.token_provider(_SCOPE_DATA)
        return openai.AzureOpenAI(**args)

    def data_key(self) -> str | None:
        """The data plane's API key: options['api_key'], else AZURE_OPENAI_API_KEY unless a
        `credential` was passed in options (what is passed in is used, never shadowed by the
        environment); None: Entra ID tokens from the credential."""
        if self.options.api_key is not None:
            return self.options.api_key.get_secret_value()
        if self.options.credential is not None:
            return None
        return os.environ.get(_ENV["api_key"]) or None

    def credential(self) -> Any:
        if self.options.credential is None:
            from azure.identity import DefaultAzureCredential

            return DefaultAzureCredential()
        return self.options.credential

    def token_provider(self, scope: str) -> Any:
        from azure.identity import get_bearer_token_provider

        return get_bearer_token_provider(self.credential(), scope)

    def management_token(self) -> str:
        token = self.opt("management_token")
        if token:
            return str(token)
        if self._management_tokens is None:  # caches the token and refreshes it near expiry
            self._management_tokens = self.token_provider(_SCOPE_MANAGEMENT)
        return self._management_tokens()

    def credentials_source(self) -> dict[str, str]:
        credential = self.options.credential
        identity = (
            f"azure-identity:{type(credential).__name__}"
            if credential is not None
            else "default-chain"  # DefaultAzureCredential
        )
        if self.options.api_key:
            data = "explicit"
        elif credential is not None:
            data = identity
        elif os.environ.get(_ENV["api_key"]):
            data = f"env:{_ENV['api_key']}"
        else:
            data = identity
        management = "explicit" if self.options.management_token else identity
        return {"api_key": data, "management": management}

    def stored_options(self) -> dict[str, Any]:
        keys = (
            "endpoint",
            "api_version",
            "subscription_id",
            "resource_group",
            "account_name",
            "management_url",
            "training_type",
        )
        return {k: self.opt(k) for k in keys if self.opt(k) is not None}

    def translate(self, exc: BaseException, operation: str) -> ProviderError | None:
        found = super().translate(exc, operation)
        if found is not None:
            return found
        try:
            from azure.core.exceptions import AzureError, ClientAuthenticationError
        except ImportError:
            return None
        if isinstance(exc, ClientAuthenticationError):
            return ProviderError(
                self.provider,
                operation,
                f"Azure sign-in failed ({exc.message}): run `az login`, or pass "
                "options={'api_key': ...} or a `credential`",
                status_code=401,
                retryable=False,
            )
        if isinstance(exc, AzureError):
            return ProviderError(self.provider, operation, str(exc.message or exc))
        return None

    def management(
        self, method: str, name: str, operation: str, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One call to the deployments management API; its errors as `ProviderError`."""
        import httpx

        missing = [
            k for k in ("subscription_id", "resource_group", "account_name") if not self.opt(k)
        ]
        if missing:
            raise ProviderError(
                self.provider,
                operation,
                f"deployments need options {', '.join(missing)} (or their AZURE_* variables)",
                retryable=False,
            )
        base = self.opt("management_url", DEFAULT_MANAGEMENT_URL).rstrip("/")
        url = (
            f"{base}/subscriptions/{self.opt('subscription_id')}/resourceGroups/"
            f"{self.opt('resource_group')}/providers/Microsoft.CognitiveServices/accounts/"
            f"{self.opt('account_name')}/deployments/{name}"
        )
        headers = {"Authorization": f"Bearer {self.call(operation, self.management_token)}"}
        params = {"api-version": self.options.management_api_version}
        try:
            response = httpx.request(
                method, url, params=params, headers=headers, json=json, timeout=self.options.timeout
            )
        except httpx.HTTPError as exc:
            raise ProviderError(self.provider, operation, f"connection failed: {exc}") from None
        if response.status_code >= 400:
            raise _management_error(self.provider, operation, response)
        return response.json() if response.content else {}


class AzureOpenAIBackend(OpenAIBackend):
    """Azure OpenAI: OpenAI's fine-tuning API on an Azure resource. A tuned model is served
    through a deployment (`model.deploy(confirm_cost=True)`)."""

    name = "azure-openai"
    display_name = "Azure OpenAI"
    state_map = StateMap("azure-openai", OPENAI_STATES)
    connection_class = AzureOpenAIConnection
    serving_note = None

    def extra_create_args(self, job: PreparedJob) -> dict[str, Any]:
        tier = self.options.training_type
        return {"extra_body": {"trainingType": tier}} if tier else {}

    def chat(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        raise self.unsupported("chat without a deployment (deploy the model, then chat with it)")


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
