"""The README's main job (`make demo`): the style adapter on the embedded default model. Slow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("gguf")


@pytest.mark.slow
def test_the_main_demo_makes_the_tuned_model_clearly_ahead(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    try:
        import local_gozaru_demo

        result = local_gozaru_demo.main(str(tmp_path), quiet=True)
    finally:
        sys.path.pop(0)
    assert result["tuned_rate"] >= 0.8 > result["base_rate"] + 0.5
