"""The contract suite (tests/test_contract.py) on the local backend: the same scenario, written
once there, with the real worker process on a tiny model built in code. The scenario's tests are
imported here, so they run with this module's `harness` fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from local_support import LOCAL_QUESTIONS, write_tiny_chat  # noqa: E402
from test_contract import (  # noqa: E402, F401 - the scenario, collected again here
    Harness,
    test_a_create_that_failed_after_taking_effect_makes_one_job,
    test_cancel,
    test_the_whole_flow,
    test_unknown_options_are_refused_with_the_nearest_name,
)

from finetune_hub.errors import ProviderError  # noqa: E402
from finetune_hub.providers.local import LocalBackend  # noqa: E402
from finetune_hub.providers.local.runner import RunDir  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402


class LocalHarness(Harness):
    """The local backend on a tiny model: jobs are run folders under `output_dir`."""

    provider, deploys = "local", True

    def __init__(self, root: Path, model: str, chat: Path, monkeypatch: pytest.MonkeyPatch):
        super().__init__(None)
        self.root, self.base_model, self.chat, self.monkeypatch = root, model, chat, monkeypatch
        self.max_steps = 4

    def options(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.root / "runs"),
            "num_threads": 1,
            "max_steps": self.max_steps,
        }

    def training_file(self, tmp_path: Path) -> Path:
        return self.chat

    def job_count(self) -> int:
        runs = self.root / "runs"
        return sum(RunDir(p).exists() for p in runs.iterdir()) if runs.is_dir() else 0

    def fail_create_after_effect(self) -> None:
        original, failed = LocalBackend.create, []

        def create_then_lose_the_answer(backend: LocalBackend, job: Any, refs: Any) -> Any:
            made = original(backend, job, refs)
            if not failed:
                failed.append(True)
                raise ProviderError("local", "create", "the answer was lost", retryable=True)
            return made

        self.monkeypatch.setattr(LocalBackend, "create", create_then_lose_the_answer)

    def stall(self) -> None:
        self.max_steps = 10**6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("local-contract")
    model = build_tiny_model(root / "model", [*LOCAL_QUESTIONS, "yes, gozaru!"])
    return {"model": str(model), "chat": write_tiny_chat(root / "chat.jsonl")}


@pytest.fixture
def harness(
    tmp_path: Path, tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch, fh_store_home: Path
) -> LocalHarness:
    return LocalHarness(tmp_path, tiny["model"], tiny["chat"], monkeypatch)
