"""Three kinds of limit: a hard limit (error), a default account quota (error naming the quota and
how to raise it, accepted above the default once the user declares a raised quota) and an
unconfirmed figure (warning saying so). Plus the hints for names people type."""

from __future__ import annotations

import json

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main
from finetune_hub.rules import Catalog, resolve

TITAN_LITE = "amazon.titan-text-lite-v1"


@pytest.fixture(scope="module")
def many_titan_records(tmp_path_factory):
    """10,001 prompt/completion records: one over Titan Text Lite's default quota."""
    path = tmp_path_factory.mktemp("quota") / "many.jsonl"
    lines = (json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}) for i in range(10_001))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -- default quota ---------------------------------------------------------------------------------
def test_titan_lite_over_the_default_quota_is_an_error_naming_the_quota(many_titan_records):
    report = fh.validate(many_titan_records, "bedrock", TITAN_LITE)
    caps = report.issues("too_many_records")
    assert caps and all(i.is_error for i in caps) and not report.ok
    msg = caps[0].message
    assert "10,001" in msg and "10,000" in msg
    assert "default account quota" in msg and "not a hard limit" in msg
    assert "Sum of training and validation records" in msg
    assert "Service Quotas" in msg  # how to raise it
    assert "quotas={'max_training_records': N}" in msg  # Python here; the CLI shows --quota
    assert "https://docs.aws.amazon.com/general/latest/gr/bedrock.html" in msg
    assert "UNCONFIRMED" not in msg


@pytest.mark.parametrize("key", ["max_training_records", "max_total_records"])
def test_titan_lite_passes_with_a_declared_raised_quota(many_titan_records, key):
    report = fh.validate(many_titan_records, "bedrock", TITAN_LITE, quotas={key: 20_000})
    assert not report.issues("too_many_records")
    assert not [i for i in report.errors]
    assert report.rules["max_training_records"]["value"] == 20_000
    assert "your declared quota" in report.rules["max_training_records"]["source"]


def test_a_declared_quota_is_enforced_at_its_value(tmp_path):
    path = write(tmp_path / "t.jsonl", [{"prompt": f"p{i}", "completion": "c"} for i in range(30)])
    report = fh.validate(path, "bedrock", TITAN_LITE, quotas={"max_training_records": 20})
    (cap,) = report.issues("too_many_records")[:1]
    assert cap.is_error and "at most 20" in cap.message and "your declared quota" in cap.message


def test_declaring_a_quota_for_a_hard_limit_changes_nothing_and_says_so(tmp_path):
    path = write(tmp_path / "t.jsonl", [{"prompt": "p", "completion": "c"}])
    report = fh.validate(path, "bedrock", TITAN_LITE, quotas={"max_tokens_per_example": 9000})
    (note,) = report.issues("quota_not_applicable")
    assert not note.is_error and "hard limit" in note.message
    assert "max_training_records" in note.message  # what can be declared here
    rules, _ = resolve("bedrock", TITAN_LITE, "sft", quotas={"max_tokens_per_example": 9000})
    assert rules.max_tokens_per_example == 4096


def test_a_quota_value_must_be_a_positive_whole_number():
    _, notes = resolve("bedrock", TITAN_LITE, "sft", quotas={"max_training_records": "lots"})
    assert [(n.code, n.is_error) for n in notes if n.code == "invalid_quota"] == [
        ("invalid_quota", True)
    ]


def test_your_own_override_is_a_hard_limit_not_a_quota():
    cat = Catalog()
    cat.override("bedrock", TITAN_LITE, max_training_records=500)
    rules, _ = cat.resolve("bedrock", TITAN_LITE, "sft")
    assert rules.limit_kind("max_training_records") == "hard"
    assert rules.limit_kind("max_total_records") == "quota"


def test_cli_quota_flag(capsys, many_titan_records):
    assert (
        main(["validate", str(many_titan_records), "--provider", "bedrock", "--model", TITAN_LITE])
        == 1
    )
    out = capsys.readouterr().out
    assert "too_many_records" in out and "default account quota" in out
    argv = ["validate", str(many_titan_records), "--provider", "bedrock", "--model", TITAN_LITE]
    assert main([*argv, "--quota", "max_training_records=20000"]) == 0
    capsys.readouterr()
    assert main([*argv, "--quota", "max_training_records=lots"]) == 2


# -- hard limit and unconfirmed figure ---------------------------------------------------------
def test_a_hard_limit_is_an_error(tmp_path):
    good = {
        "system": "s",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    }
    path = write(tmp_path / "c.jsonl", [good] * 10)
    report = fh.validate(path, "bedrock", "anthropic.claude-3-haiku-20240307-v1:0:200k")
    (few,) = report.issues("too_few_records")
    assert few.is_error and "at least 32" in few.message
    assert "default account quota" not in few.message and "UNCONFIRMED" not in few.message


def test_an_unconfirmed_figure_warns_and_says_it_is_unconfirmed(tmp_path):
    rec = {"schemaVersion": "bedrock-conversation-2024", "messages": [
        {"role": "user", "content": [{"text": "q"}]}, {"role": "assistant", "content": [{"text": "a"}]}]}  # fmt: skip
    path = write(tmp_path / "n.jsonl", [rec] * 5)  # Nova: 8 is a commonly cited minimum, not AWS's
    report = fh.validate(path, "bedrock", "amazon.nova-lite-v1:0:300k")
    (few,) = report.issues("too_few_records")
    assert not few.is_error and "unconfirmed" in few.message and "UNCONFIRMED" in few.message


def test_report_lists_limit_kinds():
    rules, _ = resolve("bedrock", TITAN_LITE, "sft")
    assert rules.limit_kind("max_tokens_per_example") == "hard"
    assert rules.limit_kind("max_total_records") == "quota"
    nova, _ = resolve("bedrock", "amazon.nova-lite-v1:0:300k", "sft")
    assert nova.limit_kind("max_training_records") == "unconfirmed"


# -- hints for what people type ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4.1-mini"),
        ("azure-openai", "gpt-4.1-mini"),
        ("vertex", "gemini-3.5-flash"),
        ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0:200k"),
    ],
)
def test_absolute_learning_rate_where_a_multiplier_is_taken(tmp_path, provider, model):
    rules, _ = resolve(provider, model, "sft")
    from finetune_hub.checks.hyperparams import check_hyperparameters

    (issue,) = check_hyperparameters({"learning_rate": 2e-5}, rules).issues
    assert issue.code == "unknown_hyperparameter" and issue.is_error
    assert "use 'learning_rate_multiplier'" in issue.message
    assert "multiplier" in issue.message and "absolute" in issue.message
    assert "https://" in issue.message


@pytest.mark.parametrize(
    ("name", "use"),
    [
        ("per_device_train_batch_size", "batch_size"),
        ("micro_batch_size", "batch_size"),
        ("num_train_epochs", "epochs"),
        ("num_epochs", "epochs"),
        ("lora_r", "lora_rank"),
        ("sequence_len", "max_seq_length"),
    ],
)
def test_trl_and_axolotl_names_are_mapped_on_the_local_backend_with_a_note(name, use):
    from finetune_hub.checks.hyperparams import check_hyperparameters

    rules, _ = resolve("local", "smollm2-135m-instruct", "sft")
    check = check_hyperparameters({name: 16}, rules)
    (issue,) = check.issues
    assert issue.code == "hyperparameter_renamed" and not issue.is_error
    assert f"{name!r} is taken as {use!r}" in issue.message and "source:" in issue.message
    assert check.effective[use] == 16
    assert check.provider_values[rules.hyperparameters[use].provider_name] == 16
    both = check_hyperparameters({name: 16, use: 32}, rules).issues
    assert [i.code for i in both] == ["unknown_hyperparameter"]  # given twice: refused


@pytest.mark.parametrize(
    "name",
    ["max_steps", "save_steps", "logging_steps", "save_total_limit", "warmup_steps"],
)
def test_trl_step_settings_are_local_hyperparameters_under_their_own_names(name):
    from finetune_hub.checks.hyperparams import check_hyperparameters

    rules, _ = resolve("local", "smollm2-135m-instruct", "sft")
    check = check_hyperparameters({name: 10}, rules)
    assert not check.issues and check.provider_values[name] == 10


def test_gradient_accumulation_steps_is_taken_by_the_local_backend():
    from finetune_hub.checks.hyperparams import check_hyperparameters

    rules, _ = resolve("local", "smollm2-135m-instruct", "sft")
    check = check_hyperparameters({"gradient_accumulation_steps": 4}, rules)
    assert not check.issues and check.provider_values == {"gradient_accumulation_steps": 4}


def test_submit_quota_flag_reaches_the_job(capsys, tmp_path, many_titan_records, fake_bedrock):
    argv = [
        "submit",
        "--provider", "bedrock",
        "--model", TITAN_LITE,
        "--training-file", str(many_titan_records),
        "--option", f"role_arn={fake_bedrock.role_arn}",
        "--option", f"s3_uri={fake_bedrock.s3_uri}",
        "--home", str(tmp_path / "home"),
    ]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "default account quota" in out and "nothing was uploaded or submitted" in out
    assert fake_bedrock.s3_writes() == []
    assert main([*argv, "--quota", "max_training_records=20000", "--yes"]) == 0, (
        capsys.readouterr().out
    )
    assert len(fake_bedrock.jobs()) == 1
