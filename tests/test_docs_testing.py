"""The examples of docs/testing.md run: each block marked `<!-- tested: NAME -->` is executed and
its test function called with the real fixtures (fh_store_home, fake_provider, fake_vertex,
fake_azure_foundry)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
_BLOCK = re.compile(r"<!-- tested: (?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)```", re.S)


def example(name: str) -> Any:
    """The one test function the doc's block `name` defines."""
    blocks = {m["name"]: m["code"] for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))}
    namespace: dict[str, Any] = {}
    exec(compile(blocks[name], f"{DOC}:{name}", "exec"), namespace)  # noqa: S102 - our own docs
    (test,) = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    return test


def test_every_marked_block_is_run_here():
    names = {m["name"] for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))}
    assert names == {"fh_store_home", "fake_provider", "fake_vertex", "fake_azure_foundry"}


def test_fh_store_home_example(fh_store_home):
    example("fh_store_home")(fh_store_home)


def test_fake_provider_example(fake_provider, tmp_path):
    example("fake_provider")(fake_provider, tmp_path)


def test_fake_vertex_example(fake_vertex, tmp_path):
    pytest.importorskip("google.genai")
    example("fake_vertex")(fake_vertex, tmp_path)


def test_fake_azure_foundry_example(fake_azure_foundry, tmp_path):
    pytest.importorskip("azure.ai.ml")
    example("fake_azure_foundry")(fake_azure_foundry, tmp_path)
