"""`convert`: every conversion pair, round trips, skip reasons with line numbers, dropped fields."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_hub.data.convert import (
    ConversionSummary,
    convert,
    convert_record,
    normalise,
    reachable,
)
from finetune_hub.data.formats import DataFormat as F
from finetune_hub.data.formats import candidate_formats
from finetune_hub.data.reader import JsonlReader
from finetune_hub.errors import ConversionError, DataFileError

SHARED = Path(__file__).resolve().parents[1] / "examples" / "data"


def write(path: Path, lines: list[Any]) -> Path:
    """One line per item: dicts as JSON, str/bytes as they are."""
    out = []
    for item in lines:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            out.append(item.encode())
        else:
            out.append(json.dumps(item, ensure_ascii=False).encode())
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [record for _line, _raw, record in JsonlReader(path)]


def msg(role: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


SINGLE = chat(msg("user", "空が青いのはなぜ?"), msg("assistant", "光が散らばるからでござる。"))
SINGLE_SYSTEM = chat(
    msg("system", "侍の口調で"), msg("user", "一週間は?"), msg("assistant", "七日でござる。")
)
MULTI = chat(msg("user", "a"), msg("assistant", "b"), msg("user", "c"), msg("assistant", "d"))
MULTI_SYSTEM = chat(msg("system", "s"), *MULTI["messages"])
CHAT_SEEDS = [SINGLE, SINGLE_SYSTEM, MULTI, MULTI_SYSTEM]

PREF = {
    "input": {"messages": [msg("user", "Describe a cabin.")]},
    "preferred_output": [msg("assistant", "A timber cabin in the pines.")],
    "non_preferred_output": [msg("assistant", "A cabin.")],
}
PREF_SYSTEM = {
    **PREF,
    "input": {"messages": [msg("system", "Be vivid."), msg("user", "Describe a cabin.")]},
}
PREF_MULTI = {
    **PREF,
    "input": {
        "messages": [msg("user", "Hi"), msg("assistant", "Hello"), msg("user", "Describe a cabin.")]
    },
}
PREF_SEEDS = [PREF, PREF_SYSTEM, PREF_MULTI]

CONVERSATIONAL = [F.CHAT, F.PROMPT_COMPLETION, F.GEMINI, F.BEDROCK_CONVERSATION, F.BEDROCK_CLAUDE]
PREFERENCE = [F.PREFERENCE, F.GEMINI_PREFERENCE, F.RLHF_PREFERENCE]


def holds(fmt: F, seed: dict[str, Any]) -> bool:
    """Whether `fmt` holds the seed without loss (the lossless subset for that format)."""
    messages = seed["messages"] if "messages" in seed else seed["input"]["messages"]
    system = messages[0]["role"] == "system"
    turns = len(messages) - system
    if fmt == F.PROMPT_COMPLETION:
        return not system and turns == 2
    if fmt == F.RLHF_PREFERENCE:
        return not system and turns == 1
    return True


def in_format(seed: dict[str, Any], fmt: F, source: F = F.CHAT) -> dict[str, Any]:
    result = convert_record(seed, source, fmt)
    assert result.record is not None and not result.dropped, (fmt, result)
    return result.record


# -- the exact shapes written ---------------------------------------------------------------------
def test_chat_to_each_conversational_shape():
    rec = MULTI_SYSTEM
    assert convert_record(rec, F.CHAT, F.GEMINI).record == {
        "systemInstruction": {"parts": [{"text": "s"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"text": "b"}]},
            {"role": "user", "parts": [{"text": "c"}]},
            {"role": "model", "parts": [{"text": "d"}]},
        ],
    }
    assert convert_record(rec, F.CHAT, F.BEDROCK_CONVERSATION).record == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "s"}],
        "messages": [
            {"role": m["role"], "content": [{"text": m["content"]}]} for m in MULTI["messages"]
        ],
    }
    assert convert_record(rec, F.CHAT, F.BEDROCK_CLAUDE).record == {
        "system": "s",
        "messages": MULTI["messages"],
    }
    assert convert_record(SINGLE, F.CHAT, F.PROMPT_COMPLETION).record == {
        "prompt": "空が青いのはなぜ?",
        "completion": "光が散らばるからでござる。",
    }


def test_written_records_are_detected_as_their_target_format():
    for fmt in CONVERSATIONAL:
        record = convert_record(
            SINGLE_SYSTEM if fmt != F.PROMPT_COMPLETION else SINGLE, F.CHAT, fmt
        ).record
        assert candidate_formats(record)[0] == fmt
    for fmt in PREFERENCE:
        assert candidate_formats(convert_record(PREF, F.PREFERENCE, fmt).record)[0] == fmt


def test_preference_shapes():
    assert convert_record(PREF_SYSTEM, F.PREFERENCE, F.GEMINI_PREFERENCE).record == {
        "system_instruction": {"parts": [{"text": "Be vivid."}]},
        "contents": [{"role": "user", "parts": [{"text": "Describe a cabin."}]}],
        "completions": [
            {
                "score": 1,
                "completion": {
                    "role": "model",
                    "parts": [{"text": "A timber cabin in the pines."}],
                },
            },
            {"score": 0, "completion": {"role": "model", "parts": [{"text": "A cabin."}]}},
        ],
    }
    assert convert_record(PREF, F.PREFERENCE, F.RLHF_PREFERENCE).record == {
        "input_text": "Describe a cabin.",
        "candidate_0": "A timber cabin in the pines.",
        "candidate_1": "A cabin.",
        "choice": 0,
    }


def test_rlhf_choice_1_and_gemini_score_order_pick_the_preferred_answer():
    rlhf = {"input_text": "q", "candidate_0": "bad", "candidate_1": "good", "choice": 1}
    out = convert_record(rlhf, F.RLHF_PREFERENCE, F.PREFERENCE).record
    assert out["preferred_output"] == [msg("assistant", "good")]
    assert out["non_preferred_output"] == [msg("assistant", "bad")]
    gem = convert_record(PREF, F.PREFERENCE, F.GEMINI_PREFERENCE).record
    gem["completions"].reverse()
    assert convert_record(gem, F.GEMINI_PREFERENCE, F.PREFERENCE).record == PREF


def test_older_dpo_names_are_accepted_and_current_names_written():
    old = {
        "input": PREF["input"],
        "preferred_completion": PREF["preferred_output"],
        "non_preferred_completion": PREF["non_preferred_output"],
    }
    assert (
        convert_record(old, F.PREFERENCE, F.RLHF_PREFERENCE).record
        == convert_record(PREF, F.PREFERENCE, F.RLHF_PREFERENCE).record
    )
    gem = convert_record(old, F.PREFERENCE, F.GEMINI_PREFERENCE)
    assert gem.dropped == []
    assert convert_record(gem.record, F.GEMINI_PREFERENCE, F.PREFERENCE).record == PREF
    assert convert_record(old, F.PREFERENCE, F.PREFERENCE).record == PREF
    assert normalise(old, F.PREFERENCE) == PREF


def test_older_dpo_names_in_a_file_copy(tmp_path):
    old = {
        "input": PREF["input"],
        "preferred_completion": PREF["preferred_output"],
        "non_preferred_completion": PREF["non_preferred_output"],
    }
    src = write(tmp_path / "old.jsonl", [old, PREF])
    summary = convert(src, tmp_path / "new.jsonl", "preference")
    assert summary.records_in == summary.records_out == 2 and summary.lossless
    assert read(tmp_path / "new.jsonl") == [PREF, PREF]


def test_prompt_completion_to_rlhf_prompt_and_continued_pretraining():
    pc = {"prompt": "Q", "completion": "A"}
    result = convert_record(pc, F.PROMPT_COMPLETION, F.RLHF_PROMPT)
    assert result.record == {"input_text": "Q"} and result.dropped == ["completion"]
    result = convert_record(pc, F.PROMPT_COMPLETION, F.CONTINUED_PRETRAINING)
    assert result.record == {"input": "Q\nA"} and result.dropped == ["completion_boundary"]


def test_rlhf_preference_to_rlhf_prompt_drops_the_candidates():
    rlhf = {"input_text": "q", "candidate_0": "a", "candidate_1": "b", "choice": 1}
    result = convert_record(rlhf, F.RLHF_PREFERENCE, F.RLHF_PROMPT)
    assert result.record == {"input_text": "q"}
    assert result.dropped == ["candidate_0", "candidate_1", "choice"]


def test_text_parts_are_joined_and_bedrock_blocks_read():
    rec = chat(
        msg("user", [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]),
        msg("assistant", "Hi"),
    )
    assert convert_record(rec, F.CHAT, F.PROMPT_COMPLETION).record == {
        "prompt": "Hello, world",
        "completion": "Hi",
    }
    bedrock = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"text": "x"}, {"text": "y"}]},
            {"role": "assistant", "content": [{"text": "z"}]},
        ],
    }
    assert convert_record(bedrock, F.BEDROCK_CONVERSATION, F.CHAT).record == chat(
        msg("user", "xy"), msg("assistant", "z")
    )


# -- round trips ----------------------------------------------------------------------------------
CONVERSATIONAL_PAIRS = list(itertools.permutations(CONVERSATIONAL, 2))
PREFERENCE_PAIRS = list(itertools.permutations(PREFERENCE, 2))


@pytest.mark.parametrize(("a", "b"), CONVERSATIONAL_PAIRS, ids=lambda f: f.value)
def test_conversational_round_trip(a, b):
    seeds = [in_format(s, a) for s in CHAT_SEEDS if holds(a, s) and holds(b, s)]
    assert seeds
    for record in seeds:
        there = convert_record(record, a, b)
        assert there.skip_reason is None and there.dropped == []
        back = convert_record(there.record, b, a)
        assert back.dropped == [] and back.record == record


@pytest.mark.parametrize(("a", "b"), PREFERENCE_PAIRS, ids=lambda f: f.value)
def test_preference_round_trip(a, b):
    seeds = [in_format(s, a, F.PREFERENCE) for s in PREF_SEEDS if holds(a, s) and holds(b, s)]
    assert seeds
    for record in seeds:
        there = convert_record(record, a, b)
        assert there.skip_reason is None and there.dropped == []
        assert convert_record(there.record, b, a).record == record


@pytest.mark.parametrize(("a", "b"), CONVERSATIONAL_PAIRS + PREFERENCE_PAIRS, ids=lambda f: f.value)
def test_file_round_trip_is_lossless(tmp_path, a, b):
    source = F.CHAT if a in CONVERSATIONAL else F.PREFERENCE
    seeds = CHAT_SEEDS if source == F.CHAT else PREF_SEEDS
    records = [in_format(s, a, source) for s in seeds if holds(a, s) and holds(b, s)]
    src = write(tmp_path / "a.jsonl", records)
    there = convert(src, tmp_path / "b.jsonl", b, source_format=a)
    back = convert(tmp_path / "b.jsonl", tmp_path / "back.jsonl", a, source_format=b)
    assert there.lossless and back.lossless
    assert there.records_out == back.records_out == len(records)
    assert read(tmp_path / "back.jsonl") == records


def test_system_prompt_makes_chat_prompt_completion_round_trip_lossless(tmp_path):
    system = SINGLE_SYSTEM["messages"][0]["content"]
    src = write(tmp_path / "chat.jsonl", [SINGLE_SYSTEM])
    there = convert(src, tmp_path / "pc.jsonl", "prompt_completion", system_prompt=system)
    assert there.lossless
    back = convert(tmp_path / "pc.jsonl", tmp_path / "back.jsonl", "chat", system_prompt=system)
    assert back.lossless and read(tmp_path / "back.jsonl") == [SINGLE_SYSTEM]


def test_shared_chat_sample_round_trips_through_gemini_and_bedrock(tmp_path):
    original = read(SHARED / "chat_gozaru.jsonl")
    for fmt in (F.GEMINI, F.BEDROCK_CONVERSATION, F.BEDROCK_CLAUDE):
        mid, back = tmp_path / f"{fmt.value}.jsonl", tmp_path / f"{fmt.value}_back.jsonl"
        assert convert(SHARED / "chat_gozaru.jsonl", mid, fmt).lossless
        summary = convert(mid, back, "chat", source_format=fmt)
        assert summary.records_out == len(original) == 20
        assert read(back) == original


def test_shared_rlhf_preferences_round_trip_up_to_candidate_order(tmp_path):
    original = read(SHARED / "vertex_rlhf_preferences.jsonl")
    convert(SHARED / "vertex_rlhf_preferences.jsonl", tmp_path / "dpo.jsonl", "preference")
    convert(tmp_path / "dpo.jsonl", tmp_path / "back.jsonl", "rlhf_preference")
    for before, after in zip(original, read(tmp_path / "back.jsonl"), strict=True):
        preferred = before[f"candidate_{before['choice']}"]
        rejected = before[f"candidate_{1 - before['choice']}"]
        assert after == {
            "input_text": before["input_text"],
            "candidate_0": preferred,
            "candidate_1": rejected,
            "choice": 0,
        }


texts = st.text(min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(system=st.none() | texts, pairs=st.lists(st.tuples(texts, texts), min_size=1, max_size=4))
def test_random_conversations_round_trip(system, pairs):
    messages = [msg("system", system)] if system is not None else []
    for user, assistant in pairs:
        messages += [msg("user", user), msg("assistant", assistant)]
    record = chat(*messages)
    for fmt in (F.GEMINI, F.BEDROCK_CONVERSATION, F.BEDROCK_CLAUDE):
        there = convert_record(record, F.CHAT, fmt)
        assert convert_record(there.record, fmt, F.CHAT).record == record


# -- skips ----------------------------------------------------------------------------------------
def test_every_chat_skip_reason_with_its_line_numbers(tmp_path):
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    lines = [
        SINGLE,  # 1
        MULTI,  # 2
        chat(
            msg("user", [{"type": "text", "text": "what is this?"}, image]),
            msg("assistant", "a cat"),
        ),  # 3
        chat(
            msg("user", "weather?"),
            msg("assistant", None, tool_calls=[call]),
            msg("tool", "sunny", tool_call_id="c1"),
            msg("assistant", "sunny"),
        ),  # 4
        chat(msg("user", "only a question")),  # 5
        '{"messages": [oops',  # 6
        chat(msg("user", "q"), msg("assistant", "a", weight=0)),  # 7
        "[1, 2]",  # 8
        chat(msg("narrator", "q"), msg("assistant", "a")),  # 9
        MULTI,  # 10
        SINGLE_SYSTEM,  # 11
    ]
    summary = convert(
        write(tmp_path / "chat.jsonl", lines), tmp_path / "pc.jsonl", "prompt_completion"
    )
    assert summary.source_format == F.CHAT and summary.target_format == F.PROMPT_COMPLETION
    assert summary.records_in == 11 and summary.records_out == 2
    assert summary.skipped_lines == {
        "multi_turn": [2, 10],
        "has_images": [3],
        "has_tool_calls": [4],
        "no_assistant_turn": [5],
        "unreadable_line": [6, 8],
        "untrained_completion": [7],
        "unsupported_shape": [9],
    }
    assert summary.skipped == {k: len(v) for k, v in summary.skipped_lines.items()}
    assert summary.dropped_fields == {"system": 1}
    assert not summary.lossless
    assert read(tmp_path / "pc.jsonl") == [
        {"prompt": "空が青いのはなぜ?", "completion": "光が散らばるからでござる。"},
        {"prompt": "一週間は?", "completion": "七日でござる。"},
    ]
    text = str(summary)
    assert "converted 2 of 11 records: chat -> prompt_completion" in text
    assert "multi_turn 2 (lines 2, 10)" in text and "has_images 1 (line 3)" in text
    assert "dropped: system (1 record)" in text


def test_claude_skips_non_alternating_roles(tmp_path):
    lines = [
        SINGLE_SYSTEM,
        chat(msg("user", "a"), msg("user", "b"), msg("assistant", "c")),
        chat(msg("assistant", "x"), msg("user", "y"), msg("assistant", "z")),
    ]
    summary = convert(
        write(tmp_path / "c.jsonl", lines),
        tmp_path / "claude.jsonl",
        "bedrock_claude",
        source_format="chat",
    )
    assert summary.skipped_lines == {"non_alternating_roles": [2, 3]} and summary.records_out == 1
    assert convert_record(lines[1], F.CHAT, F.GEMINI).skip_reason is None


def test_gemini_and_bedrock_media_and_tools_are_skipped():
    gemini_image = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "x"},
                    {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/a.png"}},
                ],
            },
            {"role": "model", "parts": [{"text": "y"}]},
        ]
    }
    gemini_call = {
        "contents": [
            {"role": "user", "parts": [{"text": "x"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        ]
    }
    bedrock_image = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"image": {"format": "png"}}, {"text": "x"}]},
            {"role": "assistant", "content": [{"text": "y"}]},
        ],
    }
    assert convert_record(gemini_image, F.GEMINI, F.CHAT).skip_reason == "has_images"
    assert convert_record(gemini_call, F.GEMINI, F.CHAT).skip_reason == "has_tool_calls"
    assert (
        convert_record(bedrock_image, F.BEDROCK_CONVERSATION, F.GEMINI).skip_reason == "has_images"
    )


def test_images_are_kept_in_a_chat_to_chat_copy(tmp_path):
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    rec = chat(msg("user", [{"type": "text", "text": "what?"}, image]), msg("assistant", "a cat"))
    summary = convert(write(tmp_path / "c.jsonl", [rec]), tmp_path / "out.jsonl", "chat")
    assert summary.records_out == 1 and read(tmp_path / "out.jsonl") == [rec]


def test_preference_to_rlhf_skips_multi_turn_and_drops_system(tmp_path):
    src = write(tmp_path / "dpo.jsonl", [PREF, PREF_MULTI, PREF_SYSTEM, PREF_MULTI])
    summary = convert(src, tmp_path / "rlhf.jsonl", "rlhf_preference")
    assert summary.records_out == 2
    assert summary.skipped_lines == {"multi_turn": [2, 4]}
    assert summary.dropped_fields == {"system": 1}
    assert convert_record(PREF_MULTI, F.PREFERENCE, F.GEMINI_PREFERENCE).skip_reason is None


def test_preference_outputs_with_tool_calls_are_skipped():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    rec = {**PREF, "preferred_output": [msg("assistant", None, tool_calls=[call])]}
    assert convert_record(rec, F.PREFERENCE, F.GEMINI_PREFERENCE).skip_reason == "has_tool_calls"


def test_skipped_lines_keep_the_first_20(tmp_path):
    src = write(tmp_path / "multi.jsonl", [SINGLE] + [MULTI] * 25)
    summary = convert(src, tmp_path / "pc.jsonl", "prompt_completion")
    assert summary.skipped == {"multi_turn": 25}
    assert summary.skipped_lines == {"multi_turn": list(range(2, 22))}
    assert "(lines 2, 3," in str(summary) and "21, ...)" in str(summary)


# -- dropped fields -------------------------------------------------------------------------------
def test_dropped_fields_are_counted_per_record(tmp_path):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    lines = [
        chat(msg("user", "q", name="alice"), msg("assistant", "a")),
        chat(
            msg("user", "q"),
            msg("assistant", "draft", weight=0),
            msg("user", "again"),
            msg("assistant", "a", weight=1),
        ),
        chat(msg("user", "q"), msg("assistant", "a"), tools=tools, metadata={"id": 3}),
        chat(msg("user", "q", name="bob"), msg("assistant", "a"), tools=tools),
        SINGLE,
    ]
    summary = convert(write(tmp_path / "c.jsonl", lines), tmp_path / "g.jsonl", "gemini")
    assert summary.records_out == 5 and not summary.skipped
    assert summary.dropped_fields == {"name": 2, "weight": 1, "tools": 2, "metadata": 1}
    assert not summary.lossless
    assert (
        "dropped: name (2 records), weight (1 record), tools (2 records), metadata (1 record)"
        in str(summary)
    )


def test_weight_0_turn_before_the_last_is_kept_as_context():
    rec = chat(
        msg("user", "q"),
        msg("assistant", "draft", weight=0),
        msg("user", "again"),
        msg("assistant", "a"),
    )
    result = convert_record(rec, F.CHAT, F.BEDROCK_CONVERSATION)
    assert result.dropped == ["weight"]
    assert [m["content"][0]["text"] for m in result.record["messages"]] == [
        "q",
        "draft",
        "again",
        "a",
    ]


def test_system_prompt_is_added_only_where_missing():
    pc = {"prompt": "Q", "completion": "A"}
    assert convert_record(pc, F.PROMPT_COMPLETION, F.CHAT, system_prompt="S").record == chat(
        msg("system", "S"), msg("user", "Q"), msg("assistant", "A")
    )
    assert convert_record(SINGLE_SYSTEM, F.CHAT, F.GEMINI, system_prompt="S").record[
        "systemInstruction"
    ] == {"parts": [{"text": "侍の口調で"}]}
    assert convert_record(SINGLE, F.CHAT, F.CHAT, system_prompt="S").record == chat(
        msg("system", "S"), *SINGLE["messages"]
    )
    assert SINGLE["messages"][0]["role"] == "user"


def test_system_is_dropped_unless_it_is_the_system_prompt():
    assert convert_record(SINGLE_SYSTEM, F.CHAT, F.PROMPT_COMPLETION).dropped == ["system"]
    assert (
        convert_record(
            SINGLE_SYSTEM, F.CHAT, F.PROMPT_COMPLETION, system_prompt="侍の口調で"
        ).dropped
        == []
    )
    assert convert_record(
        SINGLE_SYSTEM, F.CHAT, F.PROMPT_COMPLETION, system_prompt="other"
    ).dropped == ["system"]


# -- files, detection, errors ---------------------------------------------------------------------
def test_gzip_output_is_readable_back_and_not_ascii_escaped(tmp_path):
    dst = tmp_path / "gemini.jsonl.gz"
    summary = convert(SHARED / "chat_gozaru.jsonl", dst, "gemini")
    assert summary.records_out == 20 and summary.lossless
    raw = gzip.decompress(dst.read_bytes())
    assert "でござる".encode() in raw and b"\\u" not in raw
    assert raw.splitlines()[0] == orjson.dumps(read(dst)[0])
    assert len(read(dst)) == 20 and all("contents" in r for r in read(dst))


def test_detection_uses_the_first_readable_record(tmp_path):
    src = write(tmp_path / "pc.jsonl", ["not json", {"prompt": "Q", "completion": "A"}])
    summary = convert(src, tmp_path / "chat.jsonl", "chat")
    assert summary.source_format == F.PROMPT_COMPLETION
    assert summary.skipped_lines == {"unreadable_line": [1]} and summary.records_out == 1


def test_same_format_is_a_copy(tmp_path):
    src = write(tmp_path / "c.jsonl", [SINGLE, MULTI, SINGLE_SYSTEM])
    summary = convert(src, tmp_path / "copy.jsonl", "chat")
    assert summary.records_in == summary.records_out == 3 and summary.lossless
    assert read(tmp_path / "copy.jsonl") == [SINGLE, MULTI, SINGLE_SYSTEM]


def test_blank_lines_are_not_records(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_bytes(json.dumps(SINGLE).encode() + b"\n\n" + json.dumps(SINGLE).encode() + b"\n")
    summary = convert(src, tmp_path / "g.jsonl", "gemini")
    assert summary.records_in == summary.records_out == 2 and summary.lossless


def test_pairs_without_a_conversion_name_both_formats_and_the_reachable_targets(tmp_path):
    src = write(tmp_path / "c.jsonl", [SINGLE])
    with pytest.raises(ConversionError) as err:
        convert(src, tmp_path / "x.jsonl", "preference")
    message = str(err.value)
    assert "chat" in message and "preference" in message
    for fmt in reachable(F.CHAT):
        assert fmt.value in message
    with pytest.raises(ConversionError, match="rlhf_prompt converts to no other format"):
        convert_record({"input_text": "q"}, F.RLHF_PROMPT, F.CHAT)
    with pytest.raises(ConversionError, match="unknown data format 'jsonl'"):
        convert(src, tmp_path / "x.jsonl", "jsonl")


def test_reachable_matrix():
    conversational = {
        F.CHAT,
        F.PROMPT_COMPLETION,
        F.GEMINI,
        F.BEDROCK_CONVERSATION,
        F.BEDROCK_CLAUDE,
    }
    for fmt in conversational:
        assert set(reachable(fmt)) == conversational - {fmt} | {
            F.CONTINUED_PRETRAINING,
            F.RLHF_PROMPT,
        }
    for fmt in PREFERENCE:
        assert set(reachable(fmt)) == set(PREFERENCE) - {fmt} | {F.RLHF_PROMPT}
    for fmt in (F.RFT, F.RLHF_PROMPT, F.CONTINUED_PRETRAINING):
        assert reachable(fmt) == ()


def test_missing_source_and_overwriting_the_source_are_refused(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        convert(tmp_path / "nope.jsonl", tmp_path / "out.jsonl", "gemini")
    src = write(tmp_path / "c.jsonl", [SINGLE])
    with pytest.raises(DataFileError, match="input file"):
        convert(src, src, "gemini")


def test_empty_file_cannot_be_detected(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_bytes(b"")
    with pytest.raises(ConversionError, match="source_format"):
        convert(src, tmp_path / "out.jsonl", "gemini")
    assert convert(src, tmp_path / "out.jsonl", "gemini", source_format="chat").records_in == 0


def test_summary_serialises_with_lossless(tmp_path):
    summary = convert(SHARED / "prompt_completion_ja.jsonl", tmp_path / "c.jsonl", "chat")
    data = summary.model_dump()
    assert data["lossless"] is True and data["records_in"] == data["records_out"] == 10
    assert isinstance(summary, ConversionSummary)
