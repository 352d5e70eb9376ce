"""A column mapping (`mapping={"instruction": "text"}`) checked by the library itself: a mapped
column that no record of a file has is the error `mapping_column_missing` in `fh.validate`,
`TuningJob.validate()` and `submit()` (nothing uploaded), for training and validation files;
and a suggestion made about a mapped file names the user's file, not the temporary copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune_hub as fh

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
ITO = SAMPLES / "ito_style_sample.jsonl"  # 8 records {"ID", "text", "output"}
CHAT = SAMPLES / "chat_gozaru.jsonl"  # 20 chat records
LOCAL = ("local", "smollm2-135m-instruct")
OPENAI_MODEL = "gpt-4.1-mini-2025-04-14"


def missing(report: fh.ValidationReport) -> list[fh.Issue]:
    return [i for i in report.errors if i.code == "mapping_column_missing"]


def test_a_misspelled_mapped_column_is_an_error_naming_the_file_and_the_column():
    """An instruction record without its instruction still scans: only this check stops it."""
    mapping = {"instruction": "txet", "output": "output"}
    report = fh.validate(ITO, *LOCAL, format="instruction", mapping=mapping)
    assert not report.ok
    (issue,) = missing(report)
    assert issue.file == str(ITO) and issue.field == "mapping.instruction"
    assert "'txet'" in issue.message and "columns: ID, output, text" in issue.message
    assert "mapping={'instruction': 'COLUMN'}" in issue.message  # the fix, in Python
    assert "--map" not in issue.message  # the CLI rewrites it (cli.output.shell_hint)


def test_a_correct_mapping_has_no_such_issue():
    report = fh.validate(ITO, *LOCAL, mapping={"instruction": "text", "output": "output"})
    assert report.ok and not missing(report)
    assert report.stats.training.path == str(ITO)


def test_every_missing_column_is_named_and_at_most_twelve_columns_are_listed(tmp_path):
    record = {f"c{k:02d}": "x" for k in range(15)}
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    report = fh.validate(path, *LOCAL, mapping={"instruction": "question", "output": "answer"})
    issues = {i.field: i.message for i in missing(report)}
    assert set(issues) == {"mapping.instruction", "mapping.output"}
    assert "'question'" in issues["mapping.instruction"] and "'answer'" in issues["mapping.output"]
    assert "c11, ..." in issues["mapping.output"] and "c12" not in issues["mapping.output"]


def test_a_column_one_record_has_is_enough(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"text": "Say hello.", "output": "Hello!"}, {"prompt": "Say hi.", "output": "Hi!"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = fh.validate(path, *LOCAL, mapping={"instruction": "text"})
    assert not missing(report)


def test_a_file_of_no_json_object_gets_its_line_errors_not_this_one(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text("{not json\n", encoding="utf-8")
    report = fh.validate(path, *LOCAL, mapping={"instruction": "text"})
    assert not report.ok and not missing(report)


def test_the_validation_file_is_checked_too(tmp_path):
    val = tmp_path / "val.jsonl"
    val.write_text(json.dumps({"ID": 1, "question": "Q?", "output": "A."}) + "\n", "utf-8")
    report = fh.validate(ITO, *LOCAL, validation_file=val, mapping={"instruction": "text"})
    (issue,) = missing(report)  # the training file has `text`: only the validation file fails
    assert issue.file == str(val) and issue.field == "mapping.instruction"
    assert "'text'" in issue.message and "columns: ID, output, question" in issue.message


def test_a_job_with_a_bad_mapping_is_refused_and_uploads_nothing(fake_openai, tmp_path):
    job = fh.TuningJob(
        provider="openai",
        base_model=OPENAI_MODEL,
        training_file=CHAT,
        mapping={"messages": "conversation"},
        store=fh.JobStore(tmp_path),
    )
    (issue,) = missing(job.validate())
    assert issue.file == str(CHAT) and issue.field == "mapping.messages"
    with pytest.raises(fh.ValidationError) as caught:
        job.submit()
    assert [i.field for i in missing(caught.value.report)] == ["mapping.messages"]
    assert fake_openai.count("POST", "/files") == 0
    assert fake_openai.count("POST", "/fine_tuning/jobs") == 0
    assert fh.JobStore(tmp_path).get(job.id) is None  # a refused job is not recorded


def test_no_mapping_reads_the_file_once_and_makes_no_copy(monkeypatch):
    """Without a mapping nothing is copied or collected: the scan is the only pass."""
    from finetune_hub.checks import validation

    calls = []
    real = validation.mapped_copy
    monkeypatch.setattr(validation, "mapped_copy", lambda *a, **k: calls.append(a) or real(*a, **k))
    report = fh.validate(CHAT, "openai", OPENAI_MODEL)
    assert report.ok and calls == []


def test_the_convert_hint_of_a_mapped_file_names_the_users_file():
    """The format a mapping gives (instruction) is one OpenAI does not take: the suggested
    `fh.convert(...)` must name the file the user has, not the temporary mapped copy."""
    report = fh.validate(ITO, "openai", OPENAI_MODEL, mapping={"instruction": "text"})
    (issue,) = [i for i in report.errors if i.code == "unsupported_format"]
    assert issue.file == str(ITO)
    assert f"fh.convert({str(ITO)!r}, 'converted.jsonl', to='chat')" in issue.message
    assert ".mapped.jsonl" not in issue.message


def test_the_fix_is_python_in_python_and_a_flag_in_the_shell():
    from finetune_hub.cli.output import shell_hint

    report = fh.validate(ITO, *LOCAL, format="instruction", mapping={"instruction": "txet"})
    (issue,) = missing(report)
    assert "mapping={" in issue.message and "--map" not in issue.message
    shown = shell_hint(issue.message)
    assert "--map instruction=COLUMN" in shown and "mapping={" not in shown
    assert "'txet'" in shown  # the rest of the message stays as it was
