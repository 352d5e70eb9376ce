"""Which Azure AI Foundry surface, registry and marketplace offer each catalog model uses, read
from the rules data (`[foundry_models."<model>"]` in rules/azure_foundry.toml), and the names
the azure-foundry provider gives what it creates.

>>> FoundryModel.of("Phi-4-mini-instruct").registry
'azureml'
>>> job_name("ftj_1a2b3c4d5e6f")
'finetune-hub-ftj_1a2b3c4d5e6f'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from finetune_hub.rules import default_catalog

__all__ = [
    "FoundryModel",
    "base_of_output",
    "job_name",
    "output_model_name",
    "subscription_name",
]

PROVIDER = "azure-foundry"
SURFACE_ML = "azure-ai-ml"
SURFACE_OPENAI = "openai"
_REGISTRY_ID = re.compile(r"azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)")


@dataclass(frozen=True)
class FoundryModel:
    """How a catalog model is reached: its surface, registry and marketplace offer.

    `hosting_usd_per_hour` is None when no source gives the hourly price of a deployed
    fine-tuned model; `source` and `as_of` say where the facts come from.
    """

    name: str
    surface: str = SURFACE_ML
    registry: str | None = None
    marketplace: bool = False
    fine_tune_regions: tuple[str, ...] = ()
    hosting_usd_per_hour: float | None = None
    source: str = ""
    as_of: str = ""
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, model_id: str) -> FoundryModel:
        """The facts for `model_id` (a rules id, matched case-insensitively); a bare entry (no
        registry known) for a model the rules do not describe."""
        data = default_catalog().provider_data(PROVIDER)
        table = data.get("foundry_models", {})
        key = next((k for k in table if k.lower() == model_id.lower()), None)
        if key is None:
            return cls(name=model_id)
        entry = table[key]
        catalog = default_catalog()
        sources = catalog.sources(PROVIDER, entry.get("source"))
        hosting = (entry.get("hosting_usd_per_hour") or {}).get("serverless")
        return cls(
            name=key,
            surface=entry.get("surface", SURFACE_ML),
            registry=entry.get("registry"),
            marketplace=bool(entry.get("marketplace", False)),
            fine_tune_regions=tuple(r.lower() for r in entry.get("fine_tune_regions", ())),
            hosting_usd_per_hour=float(hosting) if hosting is not None else None,
            source="; ".join(s.link() for s in sources),
            as_of=str(entry.get("as_of", "")),
            note=entry.get("note", ""),
            raw=dict(entry),
        )

    def registry_id(self, registry: str | None = None) -> str:
        """The versionless registry id (what marketplace subscriptions take)."""
        return f"azureml://registries/{registry or self.registry}/models/{self.name}"


def registry_model(model_id: str) -> tuple[str, str] | None:
    """(registry, name) of an `azureml://registries/...` id, else None."""
    match = _REGISTRY_ID.match(model_id or "")
    return (match["registry"], match["name"]) if match else None


def job_name(job_id: str) -> str:
    """The Azure ML job name of a local job: `find` looks it up by this name, so a retried or
    repeated create never makes a second job (ARM treats a PUT under the same name as an
    upsert)."""
    return f"finetune-hub-{job_id}"


def output_model_name(base_model: str, job_id: str, suffix: str | None = None) -> str:
    """The registered name of the tuned model: `<base>-ft-<job hex>[-<suffix>]`.

    >>> output_model_name("Phi-4-mini-instruct", "ftj_1a2b3c4d5e6f", "gozaru")
    'Phi-4-mini-instruct-ft-1a2b3c4d5e6f-gozaru'
    """
    name = f"{base_model}-ft-{job_id.removeprefix('ftj_')}"
    if suffix:
        name += "-" + suffix
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:250]


def base_of_output(model_id: str) -> str | None:
    """The base model of a tuned model id or name made by `output_model_name`, or the model of a
    registry id; None otherwise."""
    found = registry_model(model_id)
    if found:
        return found[1]
    name = model_id.rsplit("/models/", 1)[-1].split("/versions/", 1)[0]
    return name.split("-ft-", 1)[0] if "-ft-" in name else None


def subscription_name(model: str) -> str:
    """The marketplace subscription name for a model (`<model>-sub`, dots as dashes, as in
    Azure's samples)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", model)[:60] + "-sub"
