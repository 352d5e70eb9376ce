"""Each shared sample file against the providers that accept its shape, and provider-specific rules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import finetune_hub as fh

NOTICES = {
    "model_shutdown_announced",
    "fine_tuning_ending_announced",
    "fine_tuning_restricted",
    "model_legacy",
    "model_deprecated",
    "model_shutdown",
}


def record_problems(report):
    return [i for i in report.errors + report.warnings if i.code not in NOTICES]


@pytest.mark.parametrize(
    ("sample", "provider", "model", "method"),
    [
        ("chat_gozaru.jsonl", "openai", "gpt-4.1-mini", "sft"),
        ("chat_gozaru.jsonl", "openai", "gpt-4o-2024-08-06", "sft"),
        ("chat_gozaru.jsonl", "azure-openai", "gpt-4.1-mini", "sft"),
        ("chat_gozaru.jsonl", "azure-foundry", "Phi-4-mini-instruct", "sft"),
        ("prompt_completion_ja.jsonl", "openai", "davinci-002", "sft"),
        ("prompt_completion_ja.jsonl", "bedrock", "amazon.titan-text-lite-v1", "sft"),
        ("prompt_completion_ja.jsonl", "bedrock", "amazon.titan-text-express-v1", "sft"),
        ("vertex_rlhf_preferences.jsonl", "vertex", "text-bison@002", "rlhf"),
        ("vertex_rlhf_prompts.jsonl", "vertex", "text-bison@002", "rlhf"),
    ],
)
def test_sample_is_valid_where_its_shape_is_accepted(samples, sample, provider, model, method):
    report = fh.validate(samples / sample, provider=provider, base_model=model, method=method)
    problems = [i for i in record_problems(report) if i.code != "validation_required"]
    assert problems == [], str(report)


def test_foundry_takes_jobs_without_a_validation_file(samples):
    """The service takes a job without validation data; the provider builds the job entity
    itself, so azure-ai-ml's UnboundLocalError for validation_data=None is never hit."""
    report = fh.validate(
        samples / "chat_gozaru.jsonl", provider="azure-foundry", base_model="Phi-4-mini-instruct"
    )
    assert report.ok and not report.issues("validation_required")


def titan_record(chars: int) -> dict:
    return {"prompt": "Summarise this.", "completion": "word " * (chars // 5)}


def write(path, records):
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def test_titan_token_budget_narrows_with_batch_size(tmp_path):
    # ~2,700 estimated tokens (6 Latin chars per token): under 4,096 at batch 1, over 2,048 at batch 3
    path = write(tmp_path / "titan.jsonl", [titan_record(16_000)] + [titan_record(100)] * 5)
    at1 = fh.validate(
        path, "bedrock", "amazon.titan-text-lite-v1", hyperparameters={"batch_size": 1}
    )
    assert at1.ok and not at1.issues("too_many_tokens")
    at3 = fh.validate(
        path, "bedrock", "amazon.titan-text-lite-v1", hyperparameters={"batch_size": 3}
    )
    issue = at3.issues("too_many_tokens")[0]
    assert (
        issue.is_error
        and issue.line == 1
        and "2,048" in issue.message
        and "batch size 3" in issue.message
    )
    assert at3.stats.training.tokens.limit == 2048
    assert at3.hyperparameters == {"batchSize": "3"}


def test_titan_batch_size_the_console_accepts_but_the_job_rejects_is_an_error(tmp_path):
    path = write(tmp_path / "titan.jsonl", [titan_record(16_000)] + [titan_record(100)] * 5)
    report = fh.validate(
        path, "bedrock", "amazon.titan-text-lite-v1", hyperparameters={"batch_size": 8, "epochs": 2}
    )
    error = report.issues("batch_size_unsupported")[0]
    assert error.is_error and "1-6" in error.message and "batch_size=8" in error.message
    assert "https://docs.aws.amazon.com/" in error.message
    assert report.issues("too_many_tokens")[0].line == 1
    assert not fh.validate(
        path, "bedrock", "amazon.titan-text-lite-v1", hyperparameters={"batch_size": 6}
    ).issues("batch_size_unsupported")


def test_titan_near_limit_is_a_warning_because_counts_are_estimated(tmp_path):
    path = write(
        tmp_path / "near.jsonl", [titan_record(24_000)]
    )  # ~4,000 estimated tokens vs 4,096
    report = fh.validate(path, "bedrock", "amazon.titan-text-lite-v1")
    near = report.issues("near_token_limit")[0]
    assert not near.is_error and "estimate" in near.message
    assert not report.stats.training.tokens.exact


def test_bedrock_hyperparameters_are_strings_and_checked(tmp_path, samples):
    report = fh.validate(
        samples / "prompt_completion_ja.jsonl",
        "bedrock",
        "amazon.titan-text-lite-v1",
        hyperparameters={"epochs": 11, "learning_rate": 0.00001, "lora_rank": 8},
    )
    codes = {i.field: i.code for i in report.errors}
    assert codes["hyperparameters.epochs"] == "hyperparameter_out_of_range"
    assert codes["hyperparameters.lora_rank"] == "unknown_hyperparameter"
    assert report.hyperparameters == {"learningRate": "1e-05"}


def test_claude_haiku_needs_alternating_turns_and_32_records(tmp_path):
    good = {
        "system": "be brief",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    }
    bad = {
        "system": "be brief",
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "a"},
        ],
    }
    path = write(tmp_path / "claude.jsonl", [good] * 10 + [bad])
    report = fh.validate(path, "bedrock", "anthropic.claude-3-haiku-20240307-v1:0:200k")
    assert report.format is fh.DataFormat.BEDROCK_CLAUDE
    assert (11, "roles_not_alternating") in {(i.line, i.code) for i in report.errors}
    assert report.issues("too_few_records")[0].is_error


def test_gemini_roles_and_validation_cap(tmp_path):
    rec = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello"}]},
        ]
    }
    bad = {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}
    path = write(tmp_path / "g.jsonl", [rec] * 20 + [bad])
    report = fh.validate(path, "vertex", "gemini-2.5-flash")
    assert {(i.line, i.code) for i in report.errors} >= {(21, "unknown_role")}


def test_azure_suffix_rules(samples):
    report = fh.validate(
        samples / "chat_gozaru.jsonl",
        "azure-openai",
        "gpt-4.1-mini",
        suffix="a-very-long-suffix-name.v2",
    )
    messages = [i.message for i in report.issues("invalid_suffix")]
    assert len(messages) == 2 and any("at most 18" in m for m in messages)
    assert fh.validate(
        samples / "chat_gozaru.jsonl", "azure-openai", "gpt-4.1-mini", suffix="gozaru-v2"
    ).ok


def test_unknown_model_gets_generic_rules_and_a_warning(samples):
    report = fh.validate(samples / "chat_gozaru.jsonl", "openai", "gpt-9-ultra")
    assert report.ok and report.issues("unknown_model")[0].severity.value == "warning"


def test_unsupported_method_lists_what_is_supported(samples):
    report = fh.validate(samples / "chat_gozaru.jsonl", "openai", "gpt-4o-mini", method="dpo")
    issue = report.issues("unsupported_method")[0]
    assert issue.is_error and "supported: sft" in issue.message


def test_dolly_needs_the_recipe_before_bedrock(samples, tmp_path):
    report = fh.validate(samples / "dolly_ja_sample.jsonl", "bedrock", "amazon.titan-text-lite-v1")
    assert report.format is fh.DataFormat.INSTRUCTION and report.issues("unsupported_format")
    out = tmp_path / "pc.jsonl"
    summary = fh.convert(samples / "dolly_ja_sample.jsonl", out, to="prompt_completion")
    assert summary.records_out == 8
    assert fh.validate(out, "bedrock", "amazon.titan-text-lite-v1").ok


def test_importing_the_package_loads_no_sdk_and_no_torch():
    code = (
        "import sys, finetune_hub as fh\n"
        "fh.validate\n"
        "heavy = [m for m in ('openai','boto3','botocore','google.cloud.aiplatform','google.genai','azure.ai.ml','azure.identity','torch','transformers','tiktoken','toktok','rich') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_the_validation_demo_finds_its_planted_problems(tmp_path):
    """examples/demo.py (`make demo-validate`) exits 0 only when every planted problem is found."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "examples"))
    try:
        import demo

        assert demo.main(tmp_path) == 0
    finally:
        sys.path.pop(0)
