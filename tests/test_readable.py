"""The everyday surface of issue 12, one test per rough edge: severity in every plain-text
report with errors first, one cause one message, `--json` on every command (valid JSON), a
closed pipe ends quietly, suggestions in the syntax of where they are shown, warnings after a
successful submit, "not needed" on OpenAI, cancelling a finished job, column mapping and
templates, a conversion that converts nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import build_parser, main

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"
PC = SAMPLES / "prompt_completion_ja.jsonl"
MODEL = "gpt-4.1-mini-2025-04-14"
OPENAI = ["--provider", "openai", "--model", "gpt-4.1-mini"]


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("FINETUNE_HUB_HOME", str(tmp_path / "home"))

    def run(*argv: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """The chat sample with a duplicate at line 2 (a warning) and a broken line 5 (an error)."""
    lines = CHAT.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[0]
    lines[4] = '{"messages": [}'
    return write(tmp_path / "mixed.jsonl", lines)


# -- severity, errors first ----------------------------------------------------------------------------
def test_piped_validate_leads_every_issue_with_its_severity_errors_first(cli, mixed):
    code, out, _ = cli("validate", mixed, *OPENAI)
    assert code == 1
    rows = [ln for ln in out.splitlines() if ln.startswith(("error", "warning"))]
    kinds = [r.split()[0] for r in rows]
    assert kinds[0] == "error" and "warning" in kinds
    assert kinds == sorted(kinds)  # every error before the first warning
    assert rows[0].split()[1] == "5" and "invalid_json" in rows[0]


def test_str_of_a_report_prefixes_each_issue_with_its_severity(mixed):
    text = str(fh.validate(mixed, "openai", "gpt-4.1-mini"))
    issue_lines = [ln.strip() for ln in text.splitlines() if "[" in ln and ln.startswith("    ")]
    assert issue_lines and all(ln.startswith(("error:", "warning:")) for ln in issue_lines)
    assert text.index("error:") < text.index("warning:")


# -- one cause, one message ---------------------------------------------------------------------------
def test_a_bot_role_is_one_unknown_role_issue_not_five(tmp_path):
    good = CHAT.read_text(encoding="utf-8").splitlines()
    bot = '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}'
    path = write(tmp_path / "bot.jsonl", [bot, *good[1:]])
    report = fh.validate(path, "openai", "gpt-4.1-mini")
    on_line_1 = [i.code for i in report.issues() if i.line == 1]
    assert on_line_1 == ["unknown_role"]
    assert not report.suppressed


# -- --json everywhere, a closed pipe -----------------------------------------------------------------
def _commands(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


def test_every_command_takes_json():
    missing = [
        " ".join(n)
        for n, sub in _commands(build_parser())
        if "--json" not in sub._option_string_actions
    ]
    assert missing == []


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", str(CHAT), *OPENAI],
        ["cost", str(CHAT), *OPENAI],
        ["rules", "--provider", "openai"],
        ["rules", "--provider", "openai", "--model", "gpt-4.1-mini"],
        ["rules", "--stale", "10000"],
        ["formats"],
        ["jobs"],
        ["status", "ftj_000000000000"],  # an error is JSON too
        ["store", "info"],
    ],
)
def test_json_output_is_valid_json(cli, argv):
    code, out, _ = cli(*argv, "--json")
    json.loads(out)
    assert code in (0, 1, 2)


def test_a_closed_pipe_ends_quietly(tmp_path):
    bad = write(tmp_path / "bad.jsonl", ['{"messages": [}'] * 3000)
    script = (
        "import sys; from finetune_hub.cli.main import main; "
        f"sys.exit(main(['validate', {str(bad)!r}, '--provider', 'openai', '--model', "
        "'gpt-4.1-mini', '--max-issues', '5000', '--json']))"
    )
    done = subprocess.run(
        f'{sys.executable} -c "{script}" | head -c 100',
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr == "" and len(done.stdout) == 100


# -- suggestions where they are shown ------------------------------------------------------------------
def test_suggestions_are_python_in_python_and_flags_in_the_shell(cli):
    issue = fh.validate(PC, "openai", "gpt-4.1-mini").issues("unsupported_format")[0]
    assert "fh.convert(" in issue.message
    code, out, _ = cli("validate", PC, *OPENAI)
    assert code == 1 and f"finetune-hub convert {PC} converted.jsonl --to chat" in out
    assert "fh.convert(" not in out


def test_convert_says_from_not_source_format(cli, tmp_path):
    odd = write(tmp_path / "odd.jsonl", ['{"weird": 1}'])
    code, _, err = cli("convert", odd, tmp_path / "out.jsonl", "--to", "chat")
    assert code == 2 and "--from FORMAT" in err and "source_format" not in err


def test_quota_hint_is_python_in_python_and_a_flag_in_the_shell():
    rules, _ = fh.rules.resolve("bedrock", "amazon.titan-text-lite-v1", "sft")
    text = rules.quota_text("max_training_records")
    assert "quotas={'max_training_records': N}" in text and "--quota" not in text
    from finetune_hub.cli.output import shell_hint

    assert "--quota max_training_records=N" in shell_hint(text)


def test_mapping_hint_is_python_in_python_and_a_flag_in_the_shell():
    from finetune_hub.cli.output import shell_hint

    text = "map instruction to a column the records have: mapping={'instruction': 'COLUMN'}"
    assert (
        shell_hint(text) == "map instruction to a column the records have: --map instruction=COLUMN"
    )
    both = 'e.g. mapping={"instruction": "text", "output": "output"}'
    assert shell_hint(both) == "e.g. --map instruction=text --map output=output"
    assert shell_hint("return_offsets_mapping={}") == "return_offsets_mapping={}"  # a word's tail


# -- submit warnings, not needed, cancel ----------------------------------------------------------------
def test_a_successful_submit_prints_the_reports_warnings(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", "--provider", "openai", "--model", MODEL,
                       "--training-file", CHAT)  # fmt: skip
    assert code == 0
    after = out.split("submitted ftj_", 1)[1]
    assert "warning:" in after and "[fine_tuning_restricted]" in after


def test_deploy_on_openai_says_not_needed_in_the_cli_and_the_api(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", "--provider", "openai", "--model", MODEL,
                       "--training-file", CHAT)  # fmt: skip
    job_id = out.split("submitted ", 1)[1].split()[0]
    assert cli("watch", job_id, "--poll-interval", "0.01")[0] == 0
    code, out, err = cli("deploy", job_id)
    assert code == 0 and "needs no deployment" in out and "failed" not in out + err
    model = fh.TuningJob.attach(job_id).result
    with pytest.raises(fh.UnsupportedOperation, match="needs no deployment"):
        model.deploy(confirm_cost=True)


def test_cancelling_a_finished_job_says_it_already_ended(fake_openai, cli):
    code, out, _ = cli("submit", "--yes", "--provider", "openai", "--model", MODEL,
                       "--training-file", CHAT)  # fmt: skip
    job_id = out.split("submitted ", 1)[1].split()[0]
    assert cli("watch", job_id, "--poll-interval", "0.01")[0] == 0
    code, out, err = cli("cancel", job_id)
    assert code == 0 and "already ended (succeeded)" in out and "400" not in out + err


def test_cancelling_a_job_that_ended_since_the_last_look_is_no_error(fake_openai, tmp_path):
    job = fh.TuningJob(provider="openai", base_model=MODEL, training_file=CHAT)
    job.submit()
    for provider_job in fake_openai.jobs.values():  # it ends at the provider, unseen
        provider_job.status = "succeeded"
        provider_job.fine_tuned_model = f"ft:{MODEL}:org::x"
    assert job.status is not fh.JobStatus.SUCCEEDED
    assert job.cancel() is fh.JobStatus.SUCCEEDED  # the provider's 400 is read as "ended"


# -- column mapping, templates, nothing converted --------------------------------------------------------
@pytest.fixture
def other_columns(tmp_path: Path) -> Path:
    rows = [
        json.dumps({"ID": n, "text": f"Name river {n}.", "output": f"River {n}"}) for n in range(3)
    ]
    return write(tmp_path / "other.jsonl", rows)


def test_convert_with_a_mapping_in_python(other_columns, tmp_path):
    summary = fh.convert(other_columns, tmp_path / "chat.jsonl", to="chat",
                         mapping={"instruction": "text"})  # fmt: skip
    assert summary.records_out == 3 and summary.source_format == fh.DataFormat.INSTRUCTION
    first = json.loads((tmp_path / "chat.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["messages"][0]["content"] == "Name river 0."
    assert summary.dropped_fields == {"ID": 3}


def test_convert_with_map_flags_and_a_template(cli, tmp_path):
    rows = [json.dumps({"q": "Translate.", "ctx": "Hello", "a": "Konnichiwa"})]
    src = write(tmp_path / "qa.jsonl", rows)
    code, out, _ = cli(
        "convert", src, tmp_path / "pc.jsonl", "--to", "prompt_completion", "--from", "instruction",
        "--map", "instruction=q", "--map", "input=ctx", "--map", "output=a",
        "--template", "{instruction}\nText: {input}",
    )  # fmt: skip
    assert code == 0 and "converted 1 of 1" in out
    record = json.loads((tmp_path / "pc.jsonl").read_text(encoding="utf-8"))
    assert record == {"prompt": "Translate.\nText: Hello", "completion": "Konnichiwa"}


def test_a_template_with_other_placeholders_is_refused_naming_the_two(cli, tmp_path):
    code, _, err = cli("convert", CHAT, tmp_path / "x.jsonl", "--to", "chat", "--template", "{q}")
    assert code == 2 and "{instruction}" in err and "{input}" in err


def test_a_conversion_that_converts_nothing_exits_1_and_says_why(cli, tmp_path):
    rows = [json.dumps({"task_id": n, "input": f"task {n}"}) for n in range(30)]
    src = write(tmp_path / "eval.jsonl", rows)
    code, out, _ = cli(
        "convert", src, tmp_path / "out.jsonl", "--to", "chat", "--from", "instruction"
    )
    assert code == 1 and "converted 0 of 30" in out and "nothing was converted" in out
    assert "line 1: missing_field (the record's keys: input, task_id)" in out
    assert "--map FIELD=COLUMN" in out
    code, out, _ = cli("convert", src, tmp_path / "out.jsonl", "--to", "chat", "--from",
                       "instruction", "--map", "instruction=input", "--map", "output=task_id")  # fmt: skip
    assert code == 1  # task_id is a number, not text: still nothing, still said
    code, out, _ = cli("convert", src, tmp_path / "p.jsonl", "--to", "rlhf_prompt", "--map",
                       "input_text=input")  # fmt: skip
    assert code == 0 and "converted 30 of 30" in out


def test_the_cli_reference_describes_every_flag_of_these_commands():
    reference = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    mine = {"validate", "cost", "convert", "split", "rules", "formats", "submit", "status",
            "watch", "events", "cancel", "deploy", "undeploy"}  # fmt: skip
    for name, sub in _commands(build_parser()):
        if name[0] not in mine:
            continue
        assert f"## `{' '.join(name)}`" in reference, name
        section = reference.split(f"## `{' '.join(name)}`", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in section, (name, option)
