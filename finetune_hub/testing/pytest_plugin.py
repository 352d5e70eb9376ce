"""pytest fixtures that serve the fakes and point the environment at them.

Active through the `pytest11` entry point of finetune-hub, or explicitly with
`pytest_plugins = ["finetune_hub.testing.pytest_plugin"]` in a root conftest.py.

    def test_my_training_code(fake_openai):
        client = fake_openai.client()           # openai.OpenAI on the fake
        my_code_that_fine_tunes()                # reads OPENAI_API_KEY / OPENAI_BASE_URL
        assert fake_openai.count("POST", "/fine_tuning/jobs") == 1
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .openai_fake import FakeAzureOpenAI, FakeOpenAI, FakeOpenAIServer


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A served `FakeOpenAI`; sets `OPENAI_API_KEY` and `OPENAI_BASE_URL` for the test.

    The fake has `.server` (urls) and `.client(**kwargs)` (an `openai.OpenAI` on it).
    """
    fake = FakeOpenAI()
    with FakeOpenAIServer(fake) as server:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        yield fake


@pytest.fixture
def fake_azure_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzureOpenAI]:
    """A served `FakeAzureOpenAI` (data plane and ARM deployments on one server).

    Sets `AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_API_KEY`, `OPENAI_API_VERSION` and
    `FINETUNE_HUB_AZURE_MANAGEMENT_URL`. `.client()` returns an `openai.AzureOpenAI`;
    `.management_token` is a Bearer token the ARM routes accept.
    """
    fake = FakeAzureOpenAI()
    with FakeOpenAIServer(fake) as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_API_VERSION", fake.api_version)
        monkeypatch.setenv("FINETUNE_HUB_AZURE_MANAGEMENT_URL", server.management_url)
        yield fake
