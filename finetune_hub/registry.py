"""The one list of providers: name, display name, backend class, extra, rules file, deployers.

Everything that needs to know which providers exist reads it: the rules catalog (which TOML to
load), the command line (help and choices), `TuningJob` (which backend to build) and
`Deployment` (which serving modes there are). Entries hold import paths as strings, so reading
the registry imports no SDK. Third-party providers register an entry through the entry-point
group `finetune_hub.providers` (the entry point names a `ProviderEntry` object):

    # pyproject.toml of a plugin
    [project.entry-points."finetune_hub.providers"]
    acme = "acme_finetune.provider:ENTRY"

>>> entry("bedrock").extra
'aws'
>>> entry("vertex").display_name
'Google Vertex AI'
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from finetune_hub.errors import MissingDependencyError, UnknownProviderError

ENTRY_POINT_GROUP = "finetune_hub.providers"


@dataclass(frozen=True)
class ProviderEntry:
    """What finetune_hub knows about one provider before importing any of its code.

    `backend` is the `TuningBackend` class as `"module:Class"`, or None while the provider's jobs
    are not built (it is then validation-only: `validate()` works, `submit()` says so).
    `rules` is the packaged rules file name in `finetune_hub/rules/`, or a path (plugins).
    `deployers` maps each serving mode (`kind`) to its `Deployer` class; the first is the default.
    """

    name: str
    display_name: str
    extra: str
    rules: str
    backend: str | None = None
    deployers: dict[str, str] = field(default_factory=dict)

    @property
    def validation_only(self) -> bool:
        return self.backend is None

    @property
    def install_hint(self) -> str:
        return f'pip install "finetune-hub[{self.extra}]"'

    def load(self, target: str) -> Any:
        """Import `"module:attribute"`, or raise `MissingDependencyError` naming the extra."""
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or "its SDK"
            raise MissingDependencyError(
                f"provider {self.name!r} needs {missing}: {self.install_hint}"
            ) from None
        return getattr(module, attr)


_P = "finetune_hub.providers"
BUILTIN: tuple[ProviderEntry, ...] = (
    ProviderEntry(
        name="openai",
        display_name="OpenAI",
        extra="openai",
        rules="openai.toml",
        backend=f"{_P}.openai:OpenAIBackend",
    ),
    ProviderEntry(
        name="azure-openai",
        display_name="Azure OpenAI",
        extra="azure-openai",
        rules="azure_openai.toml",
        backend=f"{_P}.azure_openai:AzureOpenAIBackend",
        deployers={"azure-deployment": f"{_P}.azure_openai_deploy:AzureOpenAIDeployer"},
    ),
    ProviderEntry(
        name="azure-foundry",
        display_name="Azure AI Foundry",
        extra="azure",
        rules="azure_foundry.toml",
        backend=f"{_P}.azure_foundry:AzureFoundryBackend",
        deployers={
            "serverless": f"{_P}.azure_foundry_deploy:ServerlessEndpointDeployer",
            # models tuned through a Foundry resource's OpenAI-compatible API
            "globalstandard": f"{_P}.azure_foundry_deploy:FoundryOpenAIDeployer",
        },
    ),
    ProviderEntry(
        name="bedrock",
        display_name="Amazon Bedrock",
        extra="aws",
        rules="bedrock.toml",
        backend=f"{_P}.bedrock:BedrockBackend",
        deployers={
            "provisioned-throughput": f"{_P}.bedrock_deploy:ProvisionedThroughputDeployer",
            "on-demand": f"{_P}.bedrock_deploy:OnDemandDeployer",
        },
    ),
    ProviderEntry(
        name="vertex",
        display_name="Google Vertex AI",
        extra="vertex",
        rules="vertex.toml",
        backend=f"{_P}.vertex:VertexBackend",
        deployers={"endpoint": f"{_P}.vertex_deploy:VertexEndpointDeployer"},
    ),
    ProviderEntry(
        name="local",
        display_name="Local (PEFT)",
        extra="local",
        rules="local.toml",
        backend=f"{_P}.local:LocalBackend",
        deployers={
            "merge": f"{_P}.local.deploy:MergeDeployer",
            "serve": f"{_P}.local.deploy:ServeDeployer",
        },
    ),
)

_extra_entries: dict[str, ProviderEntry] = {}


def register(provider: ProviderEntry) -> None:
    """Add (or replace) a provider in this process, e.g. from a test or a notebook.

    >>> register(ProviderEntry("acme", "Acme", extra="acme", rules="/tmp/acme.toml"))  # doctest: +SKIP
    """
    _extra_entries[provider.name] = provider


@cache
def _plugins() -> dict[str, ProviderEntry]:
    found: dict[str, ProviderEntry] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        value = ep.load()
        found[ep.name] = value() if callable(value) else value
    return found


def entries() -> dict[str, ProviderEntry]:
    """Every known provider, built-in first, then plugins and registered ones."""
    known = {e.name: e for e in BUILTIN}
    known.update(_plugins())
    known.update(_extra_entries)
    return known


def names() -> list[str]:
    """Provider names, in registry order (for help texts and CLI choices)."""
    return list(entries())


def entry(name: str) -> ProviderEntry:
    """The entry for `name`, or `UnknownProviderError` naming the closest known ones."""
    known = entries()
    found = known.get(name)
    if found is None:
        close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownProviderError(
            f"unknown provider {name!r}{hint} (known providers: {', '.join(known)})"
        )
    return found
