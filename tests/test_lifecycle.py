"""Model lifecycle as behaviour: dead models are refused with their date and replacement, dates
within 90 days warn, and the same rules turn into errors on the day (FINETUNE_HUB_TODAY)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import finetune_hub as fh
from finetune_hub.errors import RulesError
from finetune_hub.rules import Catalog, resolve
from finetune_hub.rules.lifecycle import TODAY_ENV, today


def record(i: int) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"q{i}"},
            {"role": "assistant", "content": f"a{i}"},
        ]
    }


def chat_file(tmp_path, n: int = 12):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(record(i)) + "\n" for i in range(n)), encoding="utf-8")
    return path


def codes(report) -> dict[str, str]:
    return {i.code: i.severity.value for i in report.issues()}


@pytest.fixture(autouse=True)
def _real_today(monkeypatch):
    monkeypatch.delenv(TODAY_ENV, raising=False)


# -- dead models, refused with their date ----------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "model", "method", "date", "replacement"),
    [
        ("azure-foundry", "tsuzumi-7b", "sft", "2026-08-31", "tsuzumi2"),
        ("azure-foundry", "Meta-Llama-3.1-8B-Instruct", "sft", "2026-06-13", None),
        ("azure-foundry", "Phi-3.5-mini-instruct", "sft", "2025-08-30", "Phi-4-mini-instruct"),
        ("openai", "gpt-4.1-nano", "sft", "2026-10-23", None),
        ("openai", "gpt-3.5-turbo", "sft", "2026-10-23", "gpt-4.1-mini"),
        ("openai", "o4-mini", "rft", "2026-10-23", "gpt-5.6-terra"),
        ("openai", "gpt-3.5-turbo-0613", "sft", "2024-09-13", "gpt-3.5-turbo"),
        (
            "vertex",
            "text-bison@002",
            "rlhf",
            "2025-04-09",
            "Gemini preference tuning (method='dpo' on gemini-2.5-flash or gemini-2.5-flash-lite; "
            "the RLHF preferences convert with preference_to_gemini, or are converted on upload)",
        ),
        ("vertex", "gemini-2.0-flash-001", "sft", "2026-02-05", None),
    ],
)
def test_dead_model_is_refused_with_its_date(
    monkeypatch, provider, model, method, date, replacement
):
    monkeypatch.setenv(TODAY_ENV, "2026-11-30")
    _, notes = resolve(provider, model, method)
    dead = [n for n in notes if n.code == "model_shutdown"]
    assert dead and dead[0].is_error, notes
    assert date in dead[0].message and "https://" in dead[0].message
    if replacement:
        assert f"names {replacement} as its replacement" in dead[0].message
    else:  # no named successor: the models these rules still accept are listed, or none
        assert "still accept" in dead[0].message or "still takes" in dead[0].message


def test_tsuzumi_is_refused_by_validate_and_names_tsuzumi2(tmp_path, monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2026-11-30")
    data = chat_file(tmp_path)
    report = fh.validate(data, "azure-foundry", "tsuzumi-7b", validation_file=data)
    (dead,) = report.issues("model_shutdown")
    assert dead.is_error and not report.ok
    assert "retired on 2026-08-31" in dead.message and "tsuzumi2" in dead.message
    assert report.ok is False


def test_no_new_jobs_is_an_error_even_before_shutdown(monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2024-11-01")  # babbage-002: no new jobs since 2024-10-28
    _, notes = resolve("openai", "babbage-002", "sft")
    assert [(n.code, n.is_error) for n in notes] == [("fine_tuning_ending", True)]
    assert "2024-10-28" in notes[0].message


# -- 90 days of warning, then the error on the day -------------------------------------------------
def test_openai_new_jobs_end_warns_today_and_is_an_error_from_the_day(tmp_path, monkeypatch):
    data = chat_file(tmp_path)
    monkeypatch.setenv(TODAY_ENV, "2026-11-30")
    now = fh.validate(data, "openai", "gpt-4.1-mini")
    assert now.ok
    assert codes(now)["fine_tuning_ending_announced"] == "warning"
    ending = now.issues("fine_tuning_ending_announced")[0]
    assert "2027-01-06" in ending.message and "in 37 days" in ending.message
    assert codes(now)["model_shutdown_announced"] == "warning"

    monkeypatch.setenv(TODAY_ENV, "2027-01-07")  # same rules, no release in between
    later = fh.validate(data, "openai", "gpt-4.1-mini")
    assert not later.ok
    ended = later.issues("fine_tuning_ending")[0]
    assert ended.is_error and "since 2027-01-06" in ended.message

    monkeypatch.setenv(TODAY_ENV, "2027-01-06")  # on the day itself
    assert resolve("openai", "gpt-4.1-mini", "sft")[1][-1].code in {
        "fine_tuning_ending",
        "model_shutdown_announced",
    }
    assert any(
        n.code == "fine_tuning_ending" and n.is_error
        for n in resolve("openai", "gpt-4.1-mini", "sft")[1]
    )


def test_no_notice_more_than_90_days_ahead(monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2026-09-01")  # 127 days before 2027-01-06
    _, notes = resolve("openai", "gpt-4.1-mini", "sft")
    assert not {n.code for n in notes} & {
        "fine_tuning_ending_announced",
        "model_shutdown_announced",
    }
    monkeypatch.setenv(TODAY_ENV, "2026-10-08")  # 90 days before
    _, notes = resolve("openai", "gpt-4.1-mini", "sft")
    assert "fine_tuning_ending_announced" in {n.code for n in notes}


def test_every_remaining_openai_model_turns_into_an_error(monkeypatch):
    for model in ("gpt-4.1", "gpt-4.1-mini", "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"):
        monkeypatch.setenv(TODAY_ENV, "2026-11-30")
        assert not [n for n in resolve("openai", model, "sft")[1] if n.is_error], model
        monkeypatch.setenv(TODAY_ENV, "2027-01-07")
        assert [n for n in resolve("openai", model, "sft")[1] if n.is_error], model


def test_explicit_today_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2027-01-07")
    _, notes = resolve("openai", "gpt-4.1-mini", "sft", today=dt.date(2026, 11, 30))
    assert not [n for n in notes if n.is_error]


def test_today_reads_the_environment_on_every_call(monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2030-02-03")
    assert today() == dt.date(2030, 2, 3)
    monkeypatch.delenv(TODAY_ENV)
    assert today() == dt.date.today()
    monkeypatch.setenv(TODAY_ENV, "30/11/2026")
    with pytest.raises(RulesError, match="YYYY-MM-DD"):
        today()


# -- unconfirmed dates warn, confirmed ones are errors --------------------------------------------
def test_a_passed_but_unconfirmed_date_only_warns(monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2026-11-30")
    rules, notes = resolve("vertex", "gemini-2.5-flash", "sft")
    assert not rules.confirmed("shutdown_on")
    (note,) = notes
    assert note.code == "model_shutdown" and not note.is_error and "UNCONFIRMED" in note.message


def test_a_data_file_can_confirm_a_date(monkeypatch, tmp_path):
    """The same date is a warning while unconfirmed and an error once a source confirms it."""
    monkeypatch.setenv(TODAY_ENV, "2026-11-30")
    team = tmp_path / "team.toml"
    team.write_text(
        '[provider]\nname = "vertex"\n\n'
        '[[models]]\nid = "gemini-2.5-flash"\nmethods = { sft = "gemini_25_sft" }\n'
        'retired_on = 2026-10-20\nsource = "our account manager\'s email"\nas_of = 2026-11-29\n',
        encoding="utf-8",
    )
    cat = Catalog()
    cat.load(team)
    _, notes = cat.resolve("vertex", "gemini-2.5-flash", "sft")
    assert [(n.code, n.is_error) for n in notes] == [("model_shutdown", True)]
    assert "our account manager's email" in notes[0].message


def test_azure_training_restricted_to_existing_customers(monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2026-11-30")
    _, notes = resolve("azure-openai", "gpt-4.1", "sft")
    restricted = [n for n in notes if n.code == "fine_tuning_restricted"]
    assert restricted and not restricted[0].is_error
    assert "since 2026-10-14 only existing fine-tuning customers" in restricted[0].message
    monkeypatch.setenv(TODAY_ENV, "2027-04-15")  # "no earlier than" 2027-04-14: unconfirmed
    _, notes = resolve("azure-openai", "gpt-4.1", "sft")
    ending = [n for n in notes if n.code == "fine_tuning_ending"]
    assert ending and not ending[0].is_error and "no earlier than" in ending[0].message


def test_rules_listing_shows_the_lifecycle(capsys):
    from finetune_hub.cli.main import main

    assert main(["rules", "--provider", "azure-foundry"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("tsuzumi-7b"))
    assert "2026-08-31" in row and "tsuzumi2" in row
