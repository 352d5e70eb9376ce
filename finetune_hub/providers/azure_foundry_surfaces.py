"""The ways Azure AI Foundry tunes a catalog model, as objects the azure-foundry backend picks per
model from the rules data (`surface` in `[foundry_models."<model>"]` of rules/azure_foundry.toml).

- `HubProject` (`surface = "azure-ai-ml"`): a hub-based project's fine-tuning job through
  azure-ai-ml, served from a serverless endpoint (`HubProjectBackend` in azure_foundry.py).
- `OpenAICompatible` (`surface = "openai"`): a Foundry resource's OpenAI-compatible fine-tuning
  API (gpt-oss-20b, Qwen-32B, Llama-3.3-70B-Instruct), served from a GlobalStandard deployment.
  It reuses the Azure OpenAI classes by composition: an `AzureOpenAIBackend` on an
  `AzureOpenAIConnection` built from the azure-foundry options, and the `AzureOpenAIDeployer`
  (azure_foundry_deploy.py). The training tier and the deployment SKU come from the rules
  (`[foundry_surfaces.openai]`).

A surface says which provider job ids and tuned-model ids are its own, so a job re-attached
after a restart, or a tuned model, reaches the API that made it.

>>> OpenAICompatible.owns_job("ftjob-0a1b2c"), OpenAICompatible.owns_job("finetune-hub-ftj_1")
(True, False)
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from finetune_hub.issues import Issue
from finetune_hub.providers.azure_foundry_models import PROVIDER, SURFACE_OPENAI, FoundryModel
from finetune_hub.providers.base import Connection, TuningBackend

__all__ = ["OPENAI_OPTION_KEYS", "OpenAICompatible", "Surface", "surface_facts", "tuned_base"]

#: azure-foundry options handed to the Azure OpenAI connection of the OpenAI-compatible surface
OPENAI_OPTION_KEYS = (
    "endpoint",
    "api_key",
    "api_version",
    "credential",
    "subscription_id",
    "resource_group",
    "account_name",
    "management_url",
    "management_token",
    "training_type",
    "timeout",
)


def surface_facts(surface: str) -> dict[str, Any]:
    """`[foundry_surfaces.<surface>]` of the rules (training tier, deployment SKU, sources)."""
    from finetune_hub.rules import default_catalog

    return dict(
        default_catalog().provider_data(PROVIDER).get("foundry_surfaces", {}).get(surface, {})
    )


def tuned_base(model_id: str) -> str:
    """The base model of a tuned model's id where the rules' `fine_tuned_pattern` recognises it
    (`gpt-oss-20b.ft-0a1b2c` -> `gpt-oss-20b`), else the id itself.

    >>> tuned_base("gpt-oss-20b.ft-0a1b2c-gozaru")
    'gpt-oss-20b'
    """
    from finetune_hub.rules import default_catalog

    info = default_catalog().provider_data(PROVIDER).get("provider", {})
    pattern = info.get("fine_tuned_pattern")
    match = re.match(pattern, model_id) if pattern else None
    return match.group("base") if match else model_id


class Surface:
    """One fine-tuning API of Foundry: its backend (built on first use), the serving mode of the
    models it tunes, and the provider ids it owns."""

    name: ClassVar[str]
    deployer: ClassVar[str]  # the serving mode (registry deployer kind) of its tuned models
    what: ClassVar[str]  # a phrase for messages

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._backend: TuningBackend | None = None

    @classmethod
    def owns_job(cls, provider_job_id: str) -> bool:
        """Whether `provider_job_id` is a job of this surface."""
        return False

    @classmethod
    def owns_model(cls, model_id: str) -> bool:
        """Whether `model_id` (a tuned model, or a base model) is served through this surface."""
        return FoundryModel.of(tuned_base(model_id)).surface == cls.name

    @property
    def backend(self) -> TuningBackend:
        if self._backend is None:
            self._backend = self.make_backend()
        return self._backend

    def make_backend(self) -> TuningBackend:
        raise NotImplementedError

    def missing(self) -> list[str]:
        """Options this surface needs that are set neither in options nor in the environment,
        as `name (or ENV)`."""
        return []

    def check(self, job: Any) -> list[Issue]:
        missing = self.missing()
        issues = []
        if missing:
            issues.append(
                Issue(
                    code="missing_option",
                    field="options",
                    message=f"{job.model_id} is tuned through {self.what}: azure-foundry needs "
                    f"{', '.join(missing)}",
                )
            )
        return issues + self.backend.check(job)

    def configured(self) -> bool:
        return not self.missing()


class OpenAICompatible(Surface):
    """A Foundry resource's OpenAI-compatible fine-tuning API (Global training), by composition
    of the Azure OpenAI backend."""

    name = SURFACE_OPENAI
    deployer = "globalstandard"
    what = "the OpenAI-compatible fine-tuning API of a Foundry resource"

    @classmethod
    def owns_job(cls, provider_job_id: str) -> bool:
        return provider_job_id.startswith("ftjob-")  # the fine-tuning API's job ids

    def make_backend(self) -> TuningBackend:
        from finetune_hub.providers.azure_openai import AzureOpenAIBackend

        return AzureOpenAIBackend(self.make_connection())

    def make_connection(self) -> Connection:
        """An `AzureOpenAIConnection` on the azure-foundry options (the resource's endpoint,
        key or credential, and for deployments subscription, resource group and account), with
        the rules' training tier unless options set one; its errors name azure-foundry."""
        from finetune_hub.providers.azure_openai import AzureOpenAIConnection

        given = self.connection.options
        options = {
            k: getattr(given, k) for k in OPENAI_OPTION_KEYS if getattr(given, k) is not None
        }
        options.setdefault("training_type", surface_facts(self.name).get("training_type"))
        connection = AzureOpenAIConnection({k: v for k, v in options.items() if v is not None})
        connection.provider = PROVIDER  # type: ignore[misc]  # errors name the user's provider
        return connection

    def missing(self) -> list[str]:
        from finetune_hub.providers.azure_openai import _ENV

        has = self.connection.options.endpoint or _env(_ENV["endpoint"])
        return [] if has else [f"endpoint (or {_ENV['endpoint']})"]

    @property
    def openai_connection(self) -> Any:
        return self.backend.connection


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)
