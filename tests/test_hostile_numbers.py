"""Numbers and job files from issue 15: non-finite and absurd hyperparameters are refused at
validation, naming the hyperparameter (so Bedrock is never sent 'nan'); job files with a wrong
type, a bad `format:` or a non-UTF-8 encoding name the file and the field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.checks.hyperparams import check_hyperparameters
from finetune_hub.errors import FinetuneHubError, JobSpecError
from finetune_hub.jobs.spec import JobSpec
from finetune_hub.rules.catalog import default_catalog

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
HUGE = 10**400  # "1e400" written as an integer: float(HUGE) raises OverflowError
ENORMOUS = 10**5000  # over Python's 4,300-digit limit for int -> str


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(CHAT) + "\n", encoding="utf-8")
    return path


def rules(provider, model):
    resolved, _notes = default_catalog().resolve(provider, model, "sft")
    return resolved


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (HUGE, "an integer of 1329 bits"),
        (-HUGE, "an integer of 1329 bits"),
        (ENORMOUS, "an integer of 16610 bits"),
    ],
    ids=["nan", "inf", "-inf", "1e400", "-1e400", "1e5000"],
)
@pytest.mark.parametrize("name", ["learning_rate_multiplier", "epochs", "batch_size"])
def test_non_finite_and_absurd_numbers_are_refused_naming_the_hyperparameter(
    data, name, value, shown
):
    report = fh.validate(
        data, provider="openai", base_model="gpt-4.1-mini", hyperparameters={name: value}
    )
    [issue] = report.issues("invalid_hyperparameter")
    assert issue.field == f"hyperparameters.{name}" and issue.is_error
    assert issue.message.startswith(name) and shown in issue.message
    assert "finite" in issue.message
    assert not report.ok and report.hyperparameters == {}


@pytest.mark.parametrize("value", [math.nan, math.inf, HUGE], ids=["nan", "inf", "1e400"])
def test_bedrock_is_never_sent_nan_even_where_a_range_is_only_a_warning(value):
    titan = rules("bedrock", "amazon.titan-text-lite-v1")
    for name in titan.hyperparameters:
        check = check_hyperparameters({name: value}, titan)
        assert [i.code for i in check.issues] == ["invalid_hyperparameter"]
        sent = check.provider_values.values()
        assert not any(str(v).lower() in ("nan", "inf", "-inf", "infinity") for v in sent)
        assert name not in check.effective or check.effective[name] != value


def test_finite_numbers_still_pass_and_are_sent(data):
    report = fh.validate(
        data,
        provider="bedrock",
        base_model="amazon.titan-text-lite-v1",
        hyperparameters={"epochs": 2, "learning_rate": 0.00001},
    )
    assert not report.issues("invalid_hyperparameter")
    assert report.hyperparameters["epochCount"] == "2"


def test_nan_from_a_yaml_job_file_is_refused_at_validation(tmp_path, data):
    job = tmp_path / "job.yaml"
    job.write_text(
        f"provider: openai\nbase_model: gpt-4.1-mini\ntraining_file: {data.name}\n"
        "hyperparameters: {learning_rate_multiplier: .nan, epochs: .inf}\n",
        encoding="utf-8",
    )
    spec = JobSpec.from_file(job)
    assert math.isnan(spec.hyperparameters["learning_rate_multiplier"])
    report = fh.validate(
        spec.training_file,
        provider=spec.provider,
        base_model=spec.base_model,
        hyperparameters=spec.hyperparameters,
    )
    fields = {i.field for i in report.issues("invalid_hyperparameter")}
    assert fields == {"hyperparameters.learning_rate_multiplier", "hyperparameters.epochs"}


def test_nan_and_inf_from_a_toml_job_file_are_refused(tmp_path, data):
    job = tmp_path / "job.toml"
    job.write_text(
        f'provider = "openai"\nbase_model = "gpt-4.1-mini"\ntraining_file = "{data.name}"\n'
        "[hyperparameters]\nlearning_rate_multiplier = nan\nbatch_size = -inf\n",
        encoding="utf-8",
    )
    spec = JobSpec.from_file(job)
    report = fh.validate(
        spec.training_file, "openai", "gpt-4.1-mini", hyperparameters=spec.hyperparameters
    )
    assert len(report.issues("invalid_hyperparameter")) == 2


# -- job files ------------------------------------------------------------------------------------
GOOD = "provider: openai\nbase_model: gpt-4.1-mini\ntraining_file: train.jsonl\n"


def job_error(tmp_path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(JobSpecError) as info:
        JobSpec.from_file(path)
    assert isinstance(info.value, FinetuneHubError)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    return message


def test_a_utf16_job_file_names_the_file_and_says_what_to_do(tmp_path):
    message = job_error(tmp_path, "job.yaml", GOOD.encode("utf-16"))
    assert "UTF-16" in message and "UTF-8" in message
    message = job_error(tmp_path, "job.toml", GOOD.encode("utf-16"))
    assert "UTF-16" in message
    message = job_error(tmp_path, "bomless.yaml", GOOD.encode("utf-16-le"))
    assert "UTF-16" in message


def test_a_latin1_job_file_names_the_byte(tmp_path):
    message = job_error(tmp_path, "job.yaml", (GOOD + "suffix: café\n").encode("latin-1"))
    assert "not UTF-8" in message and "0xe9" in message


def test_a_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "job.toml"
    path.write_bytes(
        b'\xef\xbb\xbfprovider = "openai"\nbase_model = "m"\ntraining_file = "t.jsonl"\n'
    )
    assert JobSpec.from_file(path).provider == "openai"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("suffix: 5", "suffix"),
        ("hyperparameters: [1, 2]", "hyperparameters"),
        ("base_model: null", "base_model"),
        ("quotas: 3", "quotas"),
        ("datasets: {prompts: 4}", "datasets.prompts"),
    ],
)
def test_a_wrong_type_names_the_file_and_the_field(tmp_path, extra, field):
    lines = [x for x in GOOD.splitlines() if not x.startswith(extra.split(":")[0] + ":")]
    message = job_error(tmp_path, "job.yaml", ("\n".join([*lines, extra]) + "\n").encode())
    assert f": {field}:" in message


def test_a_bad_format_names_the_file_and_the_allowed_formats(tmp_path):
    message = job_error(tmp_path, "job.yaml", (GOOD + "format: chatml\n").encode())
    assert "format:" in message and "'chatml'" in message
    for fmt in fh.DataFormat:
        assert fmt.value in message
    ok = tmp_path / "ok.yaml"
    ok.write_text(GOOD + "format: chat\n", encoding="utf-8")
    assert JobSpec.from_file(ok).format == "chat"


@pytest.mark.parametrize(
    "content",
    [
        b"1: 2\n",  # a key that is not text
        b"when: 2024-13-45\n",  # a date YAML cannot build
        b"[" * 3000,  # nesting deeper than the parser's recursion
        GOOD.encode() + b'validation_file: "a\\0b"\n',  # a NUL in a path
    ],
)
def test_odd_yaml_gives_a_job_spec_error_not_a_traceback(tmp_path, content):
    job_error(tmp_path, "job.yaml", content)


def test_deep_toml_gives_a_job_spec_error(tmp_path):
    job_error(tmp_path, "job.toml", b"a = " + b"[" * 3000)


def test_the_number_rules_are_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text("utf-8")
    assert "`nan`" in docs and "64 bits" in docs


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("hyperparameters", [("epochs", 3)]),
        ("suffix", 5),
        ("base_model", None),
        ("quotas", 20000),
        ("workers", "2"),
        ("max_issues_per_code", -1),
    ],
)
def test_validate_names_an_argument_of_the_wrong_type(data, argument, value):
    kwargs = {"provider": "openai", "base_model": "gpt-4.1-mini", argument: value}
    with pytest.raises(JobSpecError, match=f"fh.validate: {argument} must be"):
        fh.validate(data, **kwargs)


def test_a_lone_surrogate_escape_in_a_yaml_job_file_names_the_field(tmp_path):
    message = job_error(tmp_path, "job.yaml", (GOOD + 'suffix: "bot\\ud83d"\n').encode())
    assert "suffix holds" in message and "surrogate" in message


# -- submit: refused before anything is recorded or uploaded --------------------------------------
SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_submit_with_a_non_finite_number_records_and_uploads_nothing(fake_openai, tmp_path, value):
    store = fh.JobStore(tmp_path / "home")
    job = fh.TuningJob(
        provider="openai",
        base_model="gpt-4.1-mini",
        training_file=SAMPLES / "chat_gozaru.jsonl",
        hyperparameters={"learning_rate_multiplier": value},
        store=store,
    )
    with pytest.raises(fh.ValidationError) as caught:
        job.submit()
    [issue] = caught.value.report.issues("invalid_hyperparameter")
    assert issue.field == "hyperparameters.learning_rate_multiplier"
    assert fake_openai.requests == [] and store.get(job.id) is None


def test_bedrock_is_sent_no_nan_and_nothing_is_uploaded(fake_bedrock, tmp_path):
    store = fh.JobStore(tmp_path / "home")
    job = fh.TuningJob(
        provider="bedrock",
        base_model="amazon.titan-text-lite-v1",
        training_file=SAMPLES / "prompt_completion_ja.jsonl",
        hyperparameters={"learning_rate": math.nan, "epochs": 2},
        options={"role_arn": fake_bedrock.role_arn, "s3_uri": fake_bedrock.s3_uri},
        store=store,
    )
    with pytest.raises(fh.ValidationError):
        job.submit()
    assert fake_bedrock.s3_writes() == [] and fake_bedrock.jobs() == []
    assert store.get(job.id) is None
