"""The local smoke test: after a run, does a reply stop where the chat template ends a turn?
A tiny model built in code, once right and once with generation stopping on the wrong token."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from local_support import LOCAL_ANSWER, LOCAL_QUESTIONS, write_tiny_chat  # noqa: E402

import finetune_hub as fh  # noqa: E402
from finetune_hub.data.neutral import Conversation  # noqa: E402
from finetune_hub.providers.local.data import read_conversations  # noqa: E402
from finetune_hub.providers.local.smoke import SMOKE_FILE, smoke_test  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    chat = write_tiny_chat(root / "chat.jsonl")
    good = build_tiny_model(root / "good", [*LOCAL_QUESTIONS, LOCAL_ANSWER])
    wrong = build_tiny_model(root / "wrong", [*LOCAL_QUESTIONS, LOCAL_ANSWER])
    for name in (
        "config.json",
        "generation_config.json",
    ):  # generation stops on <pad>, not <|im_end|>
        path = wrong / name
        data = json.loads(path.read_text())
        data["eos_token_id"] = data.get("pad_token_id", 0) or 0
        path.write_text(json.dumps(data))
    return {"chat": chat, "good": good, "wrong": wrong}


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(
        str(folder)
    )


def codes(report) -> set[str]:
    return {i.code for i in report.issues}


def test_a_model_that_stops_on_its_end_of_turn_token_passes_those_checks(tiny):
    model, tok = load(tiny["good"])
    convs: list[Conversation] = read_conversations(str(tiny["chat"]))
    report = smoke_test(model, tok, convs, convs[-3:], max_new_tokens=6)
    eot = report.end_of_turn
    assert eot.marker == "<|im_end|>" and eot.single and eot.stops and eot.trained
    assert not codes(report) & {"end_of_turn_not_a_stop_token", "end_of_turn_not_trained",
                                "template_has_no_end_of_turn", "end_of_turn_not_one_token"}  # fmt: skip
    assert report.held_out and len(report.answers) == 3
    assert all(a.new_tokens <= 6 for a in report.answers)


def test_a_wrong_stop_token_and_a_template_without_an_end_are_flagged(tiny):
    model, tok = load(tiny["wrong"])
    convs = read_conversations(str(tiny["chat"]))
    report = smoke_test(model, tok, convs, max_new_tokens=6)
    assert not report.ok and "end_of_turn_not_a_stop_token" in codes(report)
    text = next(i.message for i in report.issues if i.code == "end_of_turn_not_a_stop_token")
    assert "'<|im_end|>'" in text and "generation_config.eos_token_id" in text
    assert not report.held_out  # no validation file: training prompts, said so

    model, tok = load(tiny["good"])
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% endfor %}"
    report = smoke_test(model, tok, convs, max_new_tokens=4)
    assert "template_has_no_end_of_turn" in codes(report)


def test_a_local_run_with_the_wrong_end_token_is_flagged_in_the_run_and_the_result(tiny, tmp_path):
    job = fh.TuningJob(
        provider="local",
        base_model=str(tiny["wrong"]),
        training_file=tiny["chat"],
        hyperparameters={
            "learning_rate": 5e-3,
            "batch_size": 8,
            "lora_rank": 4,
            "max_seq_length": 64,
        },  # fmt: skip
        options={"output_dir": str(tmp_path / "runs"), "num_threads": 1, "max_steps": 2},
        store=fh.JobStore(tmp_path / "home"),
    )
    job.sleep = lambda s: time.sleep(min(s, 0.2))
    job.submit()
    model = job.wait(poll_interval=0.2, timeout=600, progress=False)
    report = model.smoke_test
    assert report is not None and report["ok"] is False, report
    assert "end_of_turn_not_a_stop_token" in {i["code"] for i in report["issues"]}
    saved = json.loads((Path(job.provider_job_id) / SMOKE_FILE).read_text())
    assert saved == report
    assert any(e.message.startswith("smoke test:") for e in job.events())
