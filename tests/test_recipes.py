"""The instruction-data recipe and the length limits, on the dolly sample and on small files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune_hub.data.convert import convert, convert_record
from finetune_hub.data.formats import DataFormat as F
from finetune_hub.data.reader import JsonlReader
from finetune_hub.data.recipes import (
    DEFAULT_TEMPLATE,
    LengthLimit,
    check_template,
    instruction_conversation,
    instruction_prompt,
)
from finetune_hub.errors import ConversionError

DOLLY = Path(__file__).resolve().parents[1] / "examples" / "data" / "dolly_ja_sample.jsonl"


def read(path: Path) -> list[dict[str, Any]]:
    return [record for _line, _raw, record in JsonlReader(path)]


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


class HalfCounter:
    """A fake tokenizer: one token per two characters."""

    def __init__(self) -> None:
        self.calls = 0

    def count(self, text: str) -> int:
        self.calls += 1
        return len(text) // 2


def test_dolly_sample_to_prompt_completion(tmp_path):
    source = read(DOLLY)
    assert len(source) == 8 and sum(1 for r in source if r["input"]) == 3
    summary = convert(DOLLY, tmp_path / "pc.jsonl", "prompt_completion")
    assert summary.source_format == F.INSTRUCTION
    assert summary.records_in == summary.records_out == 8 and summary.skipped == {}
    assert summary.dropped_fields == {"index": 8, "category": 8}
    out = read(tmp_path / "pc.jsonl")
    assert out[1] == {
        "prompt": "次の文章を一文で要約してください。\n\nfinetune_hubは、学習データを検証し、ジョブを投入し、状態を追跡し、"
        "モデルをデプロイするためのライブラリである。クラウドとローカルの両方で動く。",
        "completion": "finetune_hubはクラウドとローカルでファインチューニングの全工程を扱うライブラリです。",
    }
    assert out[0] == {
        "prompt": "日本で一番長い川は何ですか?",
        "completion": "日本で一番長い川は信濃川です。",
    }
    for before, after in zip(source, out, strict=True):
        assert after["completion"] == before["output"]
        assert after["prompt"] == (
            before["instruction"] + "\n\n" + before["input"]
            if before["input"]
            else before["instruction"]
        )


def test_dolly_sample_to_chat_with_a_system_prompt(tmp_path):
    summary = convert(
        DOLLY, tmp_path / "chat.jsonl", "chat", system_prompt="丁寧に答えてください。"
    )
    assert summary.records_out == 8
    first = read(tmp_path / "chat.jsonl")[0]
    assert first == {
        "messages": [
            {"role": "system", "content": "丁寧に答えてください。"},
            {"role": "user", "content": "日本で一番長い川は何ですか?"},
            {"role": "assistant", "content": "日本で一番長い川は信濃川です。"},
        ]
    }


def test_a_user_template_fills_only_records_with_input(tmp_path):
    template = "### 指示\n{instruction}\n### 入力\n{input}\n### 応答\n"
    convert(DOLLY, tmp_path / "pc.jsonl", "prompt_completion", template=template)
    out = read(tmp_path / "pc.jsonl")
    assert (
        out[4]["prompt"]
        == "### 指示\nこの文章から会社名を抜き出してください。\n### 入力\n株式会社サンプル商事は、昨年新しい研究所を開設した。\n### 応答\n"
    )
    assert out[3]["prompt"] == "週末にできる趣味を五つ挙げてください。"


def test_max_chars_drops_exactly_the_longer_records(tmp_path):
    summary = convert(DOLLY, tmp_path / "pc.jsonl", "prompt_completion", max_chars=58)
    assert summary.skipped == {"too_long": 2} and summary.skipped_lines == {"too_long": [2, 3]}
    out = read(tmp_path / "pc.jsonl")
    assert all(len(r["prompt"]) + len(r["completion"]) <= 58 for r in out)
    assert [r["completion"] for r in out] == [
        r["output"] for i, r in enumerate(read(DOLLY)) if i not in (1, 2)
    ]
    summary = convert(DOLLY, tmp_path / "pc57.jsonl", "prompt_completion", max_chars=57)
    assert summary.skipped_lines == {"too_long": [2, 3, 5]} and summary.records_out == 5


def test_max_tokens_uses_the_given_counter(tmp_path):
    counter = HalfCounter()
    summary = convert(
        DOLLY, tmp_path / "pc.jsonl", "prompt_completion", max_tokens=30, tokenizer=counter
    )
    assert summary.skipped_lines == {"too_long": [2, 3]} and summary.records_out == 6
    assert counter.calls == 16


def test_max_tokens_needs_a_tokenizer(tmp_path):
    with pytest.raises(ValueError, match="tokenizer"):
        convert(DOLLY, tmp_path / "pc.jsonl", "prompt_completion", max_tokens=30)


def test_limits_apply_to_other_conversions_too(tmp_path):
    src = write(
        tmp_path / "pc.jsonl",
        [{"prompt": "abc", "completion": "def"}, {"prompt": "a", "completion": "b"}],
    )
    summary = convert(src, tmp_path / "chat.jsonl", "chat", max_chars=5)
    assert summary.skipped_lines == {"too_long": [1]} and summary.records_out == 1


def test_missing_and_empty_fields_are_skipped_with_their_lines(tmp_path):
    records = [
        {"instruction": "ok", "input": "", "output": "fine"},  # 1
        {"instruction": "", "input": "x", "output": "y"},  # 2
        {"input": "x", "output": "y"},  # 3
        {"instruction": "q", "input": "", "output": "  "},  # 4
        {"instruction": "q", "input": ""},  # 5
        {"instruction": "q", "response": "r"},  # 6
        {"instruction": "q", "input": None, "output": ""},  # 7
    ]
    src = write(tmp_path / "inst.jsonl", records)
    summary = convert(src, tmp_path / "pc.jsonl", "prompt_completion", source_format="instruction")
    assert summary.skipped_lines == {"missing_field": [2, 3, 5], "empty_output": [4, 7]}
    assert summary.skipped == {"missing_field": 3, "empty_output": 2}
    assert read(tmp_path / "pc.jsonl") == [
        {"prompt": "ok", "completion": "fine"},
        {"prompt": "q", "completion": "r"},
    ]
    assert summary.lossless is False


def test_response_is_a_synonym_of_output():
    result = convert_record(
        {"instruction": "Name a river.", "input": "Japan", "response": "Shinano"},
        F.INSTRUCTION,
        F.PROMPT_COMPLETION,
    )
    assert result.record == {"prompt": "Name a river.\n\nJapan", "completion": "Shinano"}
    assert result.dropped == []


def test_instruction_prompt_and_conversation():
    assert DEFAULT_TEMPLATE == "{instruction}\n\n{input}"
    assert instruction_prompt("Do it.") == "Do it."
    assert instruction_prompt("Do it.", "   ") == "Do it."
    assert instruction_prompt("Do it.", "data") == "Do it.\n\ndata"
    assert instruction_prompt("Do it.", "data", "{input} -> {instruction}") == "data -> Do it."
    conv = instruction_conversation(
        {"instruction": "I", "input": "", "output": "O", "category": "qa"}
    )
    assert [(t.role, t.text) for t in conv.turns] == [("user", "I"), ("assistant", "O")]
    assert conv.dropped == ["category"]


@pytest.mark.parametrize(
    "template", ["{instruction}", "{instruction} {input} {context}", "{instruction {input}"]
)
def test_bad_templates_are_refused(template, tmp_path):
    with pytest.raises(ConversionError, match="template"):
        check_template(template)
    with pytest.raises(ConversionError):
        convert(DOLLY, tmp_path / "pc.jsonl", "prompt_completion", template=template)


def test_length_limit_boundaries():
    assert not LengthLimit(max_chars=6).exceeded(["abc", "def"])
    assert LengthLimit(max_chars=5).exceeded(["abc", "def"])
    assert not LengthLimit().active and not LengthLimit().exceeded(["x" * 10_000])
    assert LengthLimit(max_tokens=2, tokenizer=HalfCounter()).exceeded(["abcd", "ef"])
    with pytest.raises(ValueError):
        LengthLimit(max_chars=0)
