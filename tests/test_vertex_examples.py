"""The Vertex examples, run against FakeVertex with the real SDKs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.testing.vertex_fake_rlhf import rlhf_template

pytest.importorskip("google.genai")
ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gemini_sft_example(fake_vertex, tmp_path, capsys):
    reply = load("vertex_gemini_sft").main(
        tmp_path, fake_vertex.options, fh.JobStore(tmp_path / "store"), 0.01, lambda s: None
    )
    assert reply == "Tuned echo: 空が青いのはなぜ?"
    out = capsys.readouterr().out
    assert "(chat -> gemini, lossless)" in out and "tuning job succeeded" in out
    assert len(fake_vertex.tuning_jobs) == 1
    (name,) = fake_vertex.storage.list(f"gs://{fake_vertex.bucket}/finetune-hub/")
    first = json.loads(fake_vertex.storage.get(name).splitlines()[0])
    assert set(first) == {"systemInstruction", "contents"}  # Gemini records, not chat


def test_rlhf_example_both_ways(fake_vertex, tmp_path, capsys):
    pytest.importorskip("google.cloud.aiplatform_v1")
    template = f"gs://{fake_vertex.bucket}/templates/rlhf-train-template.json"
    fake_vertex.storage.put(template, json.dumps(rlhf_template()))
    fake_vertex.auto_advance = 120
    options = {**fake_vertex.options, "rlhf_template": template}
    replies = load("vertex_rlhf").main(
        tmp_path, options, fh.JobStore(tmp_path / "store"), 0.01, lambda s: None
    )
    assert replies == [
        "Tuned echo: Write a tagline for a bakery.",
        "Tuned echo: A tagline for a tea shop?",
    ]
    out = capsys.readouterr().out
    assert out.index("cost: ") < out.index("reward model phase")  # the cost is stated first
    assert "$45.80 per hour" in out
    assert out.index("reward model phase") < out.index("reinforcement learning phase")
    remaining = [e["displayName"] for e in fake_vertex.serving.endpoints.values()]
    assert remaining == ["taglines-dpo"]  # the Gemini model's own endpoint; the RLHF one is gone
    created = [r.json for r in fake_vertex.requests if r.operation == "pipelineJobs.create"]
    assert (
        created[0]["runtimeConfig"]["parameterValues"]["instruction"] == "Answer in one short line."
    )
