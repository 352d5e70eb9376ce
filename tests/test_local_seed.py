"""The seed scenario of issue 14, end to end on a tiny model built in code: a local model folder,
the `{"ID", "text", "output"}` file read through a mapping, TRL-style settings, QLoRA (4-bit NF4
where bitsandbytes runs: on this CPU it does), 2 training processes, a judge-scored
`{"task_id", "input"}` evaluation with a scripted judge reached through a provider, and the
adapter with its model card reloaded with plain peft (examples/local_qlora_seed.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

import finetune_hub as fh  # noqa: E402
from finetune_hub.providers.local.runner import RunDir  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import local_qlora_seed  # noqa: E402

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None
TINY_SETTINGS = {  # the seed's TRL names, sized for a tiny model and two steps
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 2,
    "max_steps": 2,
    "logging_steps": 1,
    "warmup_steps": 1,
    "save_steps": 1,
    "save_total_limit": 1,
    "learning_rate": 2e-3,
    "lora_rank": 4,
    "lora_alpha": 8,
    "max_seq_length": 128,
}


def scripted_judge(messages, model):
    """The judge: 4 when the answer has any text, 1 for an empty one."""
    answer = messages[-1]["content"].split("ANSWER:\n", 1)[1].split("\n\nReply with", 1)[0]
    return json.dumps({"score": 4 if answer.strip() else 1, "reason": "scripted"})


def test_the_seed_flow_on_a_tiny_model(tmp_path, fake_provider):
    texts = [json.loads(line)["text"] for line in local_qlora_seed.SAMPLE.open(encoding="utf-8")]
    folder = build_tiny_model(tmp_path / "llm-jp-tiny", texts)
    fake_provider.reply = scripted_judge
    job, table = local_qlora_seed.main(
        str(folder),
        local_qlora_seed.SAMPLE,
        local_qlora_seed.TASKS,
        judge=("judge-large", "fake"),
        quantization="4bit" if HAS_BNB else None,
        num_processes=2,
        settings=TINY_SETTINGS,
        options={"num_threads": 1},
        workdir=tmp_path,
        progress=False,
        say=lambda *a: None,
    )
    assert job.status is fh.JobStatus.SUCCEEDED
    run = RunDir(job.provider_job_id)
    sent = run.job()["hyperparameters"]
    assert sent["per_device_train_batch_size"] == 2 and sent["save_total_limit"] == 1
    assert [m.step for m in job.metrics()] == [1, 2]
    assert [c.step for c in job.checkpoints()] == [2]  # save_total_limit=1 kept the newest
    messages = [e.message for e in job.events()]
    assert any("x 2 processes (ddp)" in m for m in messages)
    assert sum(m.startswith("step ") for m in messages) == 2  # logging_steps=1
    if HAS_BNB:
        assert any("base weights 4-bit NF4" in m for m in messages)
    first = json.loads(Path(run.job()["spec"]["training_file"]).read_text().splitlines()[0])
    assert first["instruction"] == texts[0]  # trained on the mapped records

    assert [r.task_id for r in table.rows] == [0, 1, 2, 3, 4]
    assert table.scale == (1.0, 5.0) and table.base_mean is not None
    assert table.tuned_mean is not None and 1.0 <= table.tuned_mean <= 5.0
    assert fake_provider.count("chat") == 10  # 5 tasks x (base, tuned), each judged once

    adapter = Path(job.result.id)
    card = (adapter / "README.md").read_text(encoding="utf-8")
    assert f"base_model: {json.dumps(str(folder))}" in card
    assert "| per_device_train_batch_size | 2 |" in card and "| num_processes | 2 |" in card
    assert "ito_style_sample.jsonl" in card and "| processes | 2 |" in card
    assert "## Evaluation" in card and "mean score judge(judge-large, 1-5)" in card

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder), adapter)
    assert model.peft_config["default"].r == 4


@pytest.mark.skipif(HAS_BNB, reason="bitsandbytes is installed")
def test_4bit_without_bitsandbytes_is_refused_naming_the_extra(tmp_path):
    with pytest.raises(fh.ValidationError) as info:
        local_qlora_seed.main(workdir=tmp_path, progress=False, say=lambda *a: None)
    assert 'pip install "finetune-hub[qlora]"' in str(info.value.report.errors)


@pytest.mark.slow
def test_seed_recipe_runs_a_few_steps_on_the_default_model(tmp_path):
    job, _ = local_qlora_seed.main(
        quantization="4bit" if HAS_BNB else None,
        settings={"max_steps": 2},
        workdir=tmp_path,
        progress=False,
        say=lambda *a: None,
    )
    assert job.status is fh.JobStatus.SUCCEEDED
    assert [m.step for m in job.metrics()] == [1, 2]
    assert Path(job.result.id, "adapter_model.safetensors").is_file()
