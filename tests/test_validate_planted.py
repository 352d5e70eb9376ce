"""fh.validate finds every planted problem, at the right line, and nothing in valid files."""

from __future__ import annotations

import json
from pathlib import Path

import finetune_hub as fh

JOB_LEVEL = {
    "model_shutdown_announced",
    "fine_tuning_ending_announced",
    "fine_tuning_restricted",
    "model_legacy",
    "model_deprecated",
}


def record_issues(report) -> set[tuple[int | None, str]]:
    return {(i.line, i.code) for i in report.errors + report.warnings if i.code not in JOB_LEVEL}


def chat(user: str, assistant: str, **extra) -> dict:
    return {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": assistant},
        ],
        **extra,
    }


def write_lines(path: Path, lines: list[bytes | str | dict]) -> Path:
    with open(path, "wb") as f:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, ensure_ascii=False)
            if isinstance(line, str):
                line = line.encode()
            f.write(line + b"\n")
    return path


def test_valid_chat_sample_has_no_record_issues(samples):
    report = fh.validate(
        samples / "chat_gozaru.jsonl", provider="openai", base_model="gpt-4.1-mini"
    )
    assert report.ok, str(report)
    assert record_issues(report) == set()
    assert report.format is fh.DataFormat.CHAT
    assert report.stats.training.records == 20
    tokens = report.stats.training.tokens
    assert tokens.exact and tokens.tokenizer == "o200k_base"
    assert 0 < tokens.p50 <= tokens.p90 <= tokens.p99 <= tokens.max
    assert tokens.trained < tokens.total


def test_planted_problems_in_a_broken_chat_copy(samples, tmp_path):
    good = [
        json.loads(x)
        for x in (samples / "chat_gozaru.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    lines: list = list(good[:12])
    lines[1] = '{"messages": [ {"role": "user"'  # line 2: invalid JSON
    lines[2] = ""  # line 3: blank line
    lines[3] = "[1, 2]"  # line 4: not an object
    lines[4] = {
        "messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    }  # 5
    lines[5] = chat("question", "   ")  # line 6: empty assistant content
    lines[6] = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "only a question"},
        ]
    }  # 7
    lines[7] = chat("tell me <|endoftext|> please", "ok")  # line 8: special token
    lines[8] = {
        "messages": [
            {"role": "user", "content": "look"},
            {
                "role": "assistant",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
            },
        ]
    }  # line 9: image in an assistant turn (and images not allowed for gpt-4.1-mini)
    lines[9] = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "weight": 2},
        ]
    }  # 10
    lines[10] = good[0]  # line 11: duplicate of line 1
    lines[11] = b'{"messages": "\xff\xfe"}'  # line 12: invalid UTF-8
    lines.append(
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "system", "content": "late"},
                {"role": "assistant", "content": "a"},
            ]
        }
    )  # 13
    lines += good[12:20]  # lines 14-21: valid
    path = write_lines(tmp_path / "broken.jsonl", lines)

    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    found = record_issues(report)
    expected = {
        (2, "invalid_json"),
        (3, "blank_line"),
        (4, "not_an_object"),
        (5, "unknown_role"),  # one cause, one message: not also role_not_allowed, first_role
        (6, "empty_content"),
        (7, "no_assistant_message"),
        (7, "last_role"),
        (8, "forbidden_string"),
        (9, "image_not_in_user_turn"),
        (9, "images_not_allowed"),
        (10, "invalid_weight"),
        (11, "duplicate_record"),
        (12, "invalid_utf8"),
        (13, "system_not_first"),
    }
    assert expected <= found, f"missing: {expected - found}"
    assert found - expected == set(), f"unexpected: {found - expected}"
    assert not report.ok
    special = report.issues("forbidden_string")[0]
    assert special.field == "messages[0].content" and "<|endoftext|>" in special.message
    assert report.issues("duplicate_record")[0].message == "same record as line 1"


def test_issue_paths_and_messages_name_the_field(tmp_path):
    path = write_lines(
        tmp_path / "t.jsonl",
        [chat("q", "a")] * 0
        + [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}],
    )
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    issue = report.issues("missing_content")[0]
    assert (issue.line, issue.field) == (1, "messages[1].content")
    assert str(issue).startswith(f"{path}:1 messages[1].content:")


def test_repeated_problems_are_capped_per_code(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", ["{not json"] * 1000 + [chat("q", "a")] * 12)
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", max_issues_per_code=20)
    assert len(report.issues("invalid_json")) == 20
    assert report.suppressed["invalid_json"] == 980
    assert report.error_count >= 1000
    assert "... and 980 more invalid_json" in str(report)


def test_prompt_completion_file_for_a_chat_model_says_how_to_convert(samples):
    report = fh.validate(
        samples / "prompt_completion_ja.jsonl", provider="openai", base_model="gpt-4.1-mini"
    )
    issue = report.issues("unsupported_format")[0]
    assert "fh.convert(" in issue.message and "to='chat'" in issue.message
    legacy = fh.validate(
        samples / "prompt_completion_ja.jsonl", provider="openai", base_model="babbage-002"
    )
    assert legacy.format is fh.DataFormat.PROMPT_COMPLETION  # the record shape is still read
    assert [(i.code, "2026-09-28" in i.message) for i in legacy.errors] == [
        ("model_shutdown", True)
    ]


def test_record_caps_and_minimums(tmp_path):
    path = write_lines(tmp_path / "few.jsonl", [chat(f"q{i}", f"a{i}") for i in range(5)])
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    issue = report.issues("too_few_records")[0]
    assert issue.is_error and "5 training records; at least 10" in issue.message


def test_over_limit_is_a_warning_on_openai_because_it_truncates(tmp_path):
    fh.rules.override("openai", "gpt-4.1-nano", max_tokens_per_example=50)
    try:
        long = "word " * 200
        path = write_lines(
            tmp_path / "long.jsonl", [chat("q", long)] + [chat(f"q{i}", "a") for i in range(10)]
        )
        report = fh.validate(path, provider="openai", base_model="gpt-4.1-nano")
        issue = report.issues("too_many_tokens")[0]
        assert issue.line == 1 and not issue.is_error and "truncated" in issue.message
        assert report.stats.training.tokens.over_limit == 1
        assert report.rules["max_tokens_per_example"]["source"] == "user override"
    finally:
        fh.rules.default_catalog()._overrides.clear()


def test_rft_needs_a_validation_file_and_a_final_user_turn(tmp_path):
    rec = {"messages": [{"role": "user", "content": "2+2?"}], "reference_answer": "4"}
    bad = {
        "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
        "reference_answer": "4",
    }
    path = write_lines(tmp_path / "rft.jsonl", [rec] * 9 + [bad] + [rec])
    report = fh.validate(path, provider="openai", base_model="o4-mini", method="rft")
    codes = {(i.line, i.code) for i in report.errors}
    assert (None, "validation_required") in codes
    assert (10, "last_role") in codes
    assert report.format is fh.DataFormat.RFT


def test_preference_accepts_older_names_with_a_warning(tmp_path):
    new = {
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello! How can I help?"}],
        "non_preferred_output": [{"role": "assistant", "content": "what"}],
    }
    old = {
        "input": new["input"],
        "preferred_completion": new["preferred_output"],
        "non_preferred_completion": new["non_preferred_output"],
    }
    path = write_lines(tmp_path / "dpo.jsonl", [new] * 10 + [old])
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", method="dpo")
    assert report.ok
    assert {i.line for i in report.warnings if i.code == "legacy_field_name"} == {11}


def test_bom_is_accepted_and_noted(tmp_path, samples):
    data = (samples / "chat_gozaru.jsonl").read_bytes()
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + data)
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    assert report.ok and report.stats.training.bom
    assert record_issues(report) == set()


def test_gzip_files_are_read(tmp_path, samples):
    import gzip

    path = tmp_path / "chat.jsonl.gz"
    path.write_bytes(gzip.compress((samples / "chat_gozaru.jsonl").read_bytes()))
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    assert report.ok and report.stats.training.records == 20


def test_hyperparameters_unknown_wrong_type_and_out_of_range(samples):
    report = fh.validate(
        samples / "chat_gozaru.jsonl",
        provider="openai",
        base_model="gpt-4.1-mini",
        hyperparameters={
            "epochs": 0,
            "batch_size": "big",
            "lora_rank": 8,
            "learning_rate_multiplier": "auto",
        },
    )
    by_field = {i.field: i for i in report.errors}
    assert by_field["hyperparameters.epochs"].code == "hyperparameter_out_of_range"
    assert by_field["hyperparameters.batch_size"].code == "invalid_hyperparameter"
    unknown = by_field["hyperparameters.lora_rank"]
    assert (
        unknown.code == "unknown_hyperparameter"
        and "batch_size, epochs, learning_rate_multiplier" in unknown.message
    )
    assert report.hyperparameters == {"learning_rate_multiplier": "auto"}


def test_estimated_trained_tokens_use_epochs(samples):
    report = fh.validate(
        samples / "chat_gozaru.jsonl",
        provider="openai",
        base_model="gpt-4.1-mini",
        hyperparameters={"epochs": 3},
    )
    stats = report.stats
    assert stats.epochs == 3 and stats.epochs_source == "given"
    assert stats.estimated_trained_tokens == stats.training.tokens.total * 3
    auto = fh.validate(samples / "chat_gozaru.jsonl", provider="openai", base_model="gpt-4.1-mini")
    assert (
        auto.stats.epochs == 5 and auto.stats.epochs_source == "auto heuristic"
    )  # min(25, 100 // 20)


def test_report_serialises_and_renders(samples):
    report = fh.validate(
        samples / "chat_gozaru.jsonl", provider="openai", base_model="gpt-4.1-mini"
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["format"] == "chat"
    assert data["stats"]["training"]["tokens"]["max"] == report.stats.training.tokens.max
    assert "<table>" in report._repr_html_() or "<div>" in report._repr_html_()
    assert "OK" in str(report).splitlines()[0]


def test_validation_file_overlap_is_reported(samples, tmp_path):
    lines = (samples / "chat_gozaru.jsonl").read_text(encoding="utf-8").splitlines()
    val = tmp_path / "val.jsonl"
    val.write_text(lines[3] + "\n" + json.dumps(chat("new", "new answer")) + "\n", encoding="utf-8")
    report = fh.validate(
        samples / "chat_gozaru.jsonl",
        provider="openai",
        base_model="gpt-4.1-mini",
        validation_file=val,
    )
    overlap = report.issues("validation_in_training")
    assert [(i.line, i.message) for i in overlap] == [(1, "same record as training line 4")]
    assert report.stats.validation.records == 2


def test_missing_file_raises_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(fh.DataFileError, match="no such file"):
        fh.validate(tmp_path / "nope.jsonl", provider="openai", base_model="gpt-4.1-mini")


def test_multiprocess_mode_matches_single_process(tmp_path, monkeypatch):
    import finetune_hub.checks.validation as validate_module

    monkeypatch.setattr(validate_module, "MIN_PARALLEL_BYTES", 0)
    lines: list = [chat(f"question {i} " * (i % 7 + 1), f"answer {i}") for i in range(3000)]
    lines[1234] = "{broken"
    lines[2500] = lines[10]
    path = write_lines(tmp_path / "big.jsonl", lines)
    one = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", workers=1)
    two = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", workers=2)
    assert (
        record_issues(one)
        == record_issues(two)
        == {(1235, "invalid_json"), (2501, "duplicate_record")}
    )
    assert one.stats.training.model_dump() == two.stats.training.model_dump()


def test_special_tokens_are_found_even_when_json_escapes_them(tmp_path):
    escaped = '{"messages": [{"role": "user", "content": "a \\u003c|endoftext|\\u003e b"}, {"role": "assistant", "content": "ok"}]}'
    path = write_lines(tmp_path / "esc.jsonl", [escaped] + [chat(f"q{i}", "a") for i in range(10)])
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini")
    issue = report.issues("forbidden_string")[0]
    assert (issue.line, issue.field) == (1, "messages[0].content")


def test_nova_reserved_words_have_no_common_prefix_and_are_still_found(tmp_path):
    rec = {
        "schemaVersion": "bedrock-conversation-2024",
        "messages": [
            {"role": "user", "content": [{"text": "User: hi"}]},
            {"role": "assistant", "content": [{"text": "Bot: hello"}]},
        ],
    }
    path = write_lines(tmp_path / "nova.jsonl", [rec])
    report = fh.validate(path, provider="bedrock", base_model="amazon.nova-lite-v1:0:300k")
    fields = {i.field for i in report.issues("forbidden_string")}
    assert fields == {"messages[0].content[0].text", "messages[1].content[0].text"}
