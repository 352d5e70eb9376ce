"""Fakes of the providers' wire protocols, for testing code that fine-tunes (yours and ours).

They speak the real HTTP protocol on 127.0.0.1, so the real SDK runs its real code path:

    from finetune_hub.testing import FakeOpenAI, FakeOpenAIServer

    fake = FakeOpenAI()
    with FakeOpenAIServer(fake) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test")
        ...

With pytest, the fixtures `fake_openai`, `fake_azure_openai`, `fake_azure_foundry`,
`fake_bedrock` and `fake_vertex` (plugin `finetune_hub.testing.pytest_plugin`) do this for
you. Importing this package imports no SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .azure_foundry_fake import FakeAzureCredential, FakeAzureFoundry
    from .bedrock_fake import FakeBedrock
    from .fake_clock import FakeClock
    from .openai_fake import FakeAzureOpenAI, FakeOpenAI, FakeOpenAIServer
    from .vertex_fake import FakeVertex

__all__ = [
    "FakeProvider",
    "FakeAzureCredential",
    "FakeAzureFoundry",
    "FakeAzureOpenAI",
    "FakeBedrock",
    "FakeClock",
    "FakeOpenAI",
    "FakeOpenAIServer",
    "FakeVertex",
]

_EXPORTS = {
    "FakeClock": "fake_clock",
    "FakeOpenAI": "openai_fake",
    "FakeAzureOpenAI": "openai_fake",
    "FakeOpenAIServer": "openai_fake",
    "FakeBedrock": "bedrock_fake",
    "FakeAzureFoundry": "azure_foundry_fake",
    "FakeAzureCredential": "azure_foundry_fake",
    "FakeVertex": "vertex_fake",
    "FakeProvider": "fake_provider",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'finetune_hub.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
