"""The `finetune-hub` command line, run in-process through `main(argv)` and once as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_hub.cli.main import main, parse_value

SHARED = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SHARED / "chat_gozaru.jsonl"
PROMPT_COMPLETION = SHARED / "prompt_completion_ja.jsonl"
ITO = SHARED / "ito_style_sample.jsonl"  # records {"ID", "text", "output"}
OPENAI = ["--provider", "openai", "--model", "gpt-4.1-mini"]
LOCAL = ["--provider", "local", "--model", "smollm2-135m-instruct"]


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs are checked as piped output would be: no forced colour, default width."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of the chat sample whose line 3 is not JSON."""
    lines = CHAT.read_text(encoding="utf-8").splitlines()
    lines[2] = '{"messages": [oops'
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_plain(text: str) -> None:
    assert "\x1b[" not in text


def bedrock_titan_or_skip() -> None:
    from finetune_hub.rules import default_catalog

    if not any(
        m.startswith("amazon.titan-text-lite") for m in default_catalog().model_ids("bedrock")
    ):
        pytest.skip("bedrock rules with Titan Text Lite are not in the package yet")


# -- validate -----------------------------------------------------------------------------------
def test_validate_valid_file_exits_0_despite_warnings(capsys):
    code, out, _ = run(capsys, "validate", CHAT, *OPENAI)
    assert code == 0
    assert out.startswith("OK")
    assert "20 records" in out
    assert "tokens:" in out
    assert "fine_tuning_ending_announced" in out
    assert_plain(out)


def test_validate_broken_file_exits_1_and_names_line_and_code(capsys, broken):
    code, out, _ = run(capsys, "validate", broken, *OPENAI)
    assert code == 1
    assert "1 error(s)" in out
    row = next(line for line in out.splitlines() if "invalid_json" in line)
    assert row.split()[:2] == ["error", "3"]
    assert_plain(out)


def test_validate_counts_suppressed_issues(capsys, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{bad\n" * 4, encoding="utf-8")
    code, out, _ = run(capsys, "validate", path, *OPENAI, "--max-issues", "1")
    assert code == 1
    assert "... and 3 more invalid_json" in out


def test_validate_json_output(capsys, broken):
    code, out, _ = run(capsys, "validate", broken, *OPENAI, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    assert data["error_count"] == 1
    assert data["errors"][0]["code"] == "invalid_json"
    assert data["errors"][0]["line"] == 3


def test_validate_missing_file_exits_2_without_traceback(capsys, tmp_path):
    code, out, err = run(capsys, "validate", tmp_path / "nope.jsonl", *OPENAI)
    assert code == 2
    assert "no such file" in err
    assert "Traceback" not in out + err


def test_validate_unknown_provider_exits_2(capsys):
    code, out, err = run(capsys, "validate", CHAT, "--provider", "openia", "--model", "x")
    assert code == 2
    assert "unknown provider 'openia'" in err
    assert "Traceback" not in out + err


def test_validate_unknown_hyperparameter_lists_accepted_ones(capsys):
    code, out, _ = run(capsys, "validate", CHAT, *OPENAI, "--hp", "n_epochs=3", "--hp", "seed=7")
    assert code == 1
    assert "unknown_hyperparameter" in out
    for name in ("epochs", "batch_size", "learning_rate_multiplier", "seed"):
        assert name in out


def test_validate_hyperparameters_reach_the_report(capsys):
    hps = ["--hp", "epochs=3", "--hp", "batch_size=auto", "--hp", "learning_rate_multiplier=0.5"]
    code, out, _ = run(capsys, "validate", CHAT, *OPENAI, *hps, "--json")
    assert code == 0
    sent = json.loads(out)["hyperparameters"]
    assert sent == {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 0.5}


def test_validate_wrong_format_for_model(capsys):
    code, out, _ = run(capsys, "validate", PROMPT_COMPLETION, *OPENAI)
    assert code == 1
    assert_plain(out)


def test_validate_reads_other_column_names_through_map(capsys):
    argv = ["--format", "instruction", "--map", "instruction=text", "--map", "output=output"]
    code, out, err = run(capsys, "validate", ITO, *LOCAL, *argv)
    assert code == 0, out + err
    assert "mapping_column_missing" not in out


def test_validate_names_a_missing_mapped_column_and_the_flag_that_fixes_it(capsys):
    argv = ["--format", "instruction", "--map", "instruction=txet", "--map", "output=output"]
    code, out, err = run(capsys, "validate", ITO, *LOCAL, *argv)
    assert code == 1, out + err
    flat = " ".join(out.split())  # the report wraps long lines
    assert "mapping_column_missing" in flat and "'txet'" in flat
    assert "--map instruction=COLUMN" in flat
    assert "mapping={" not in flat  # the library's Python spelling, rewritten for the shell


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", str(CHAT), "--provider", "openai"],
        ["validate", str(CHAT), *OPENAI, "--hp", "epochs"],
        ["validate", str(CHAT), *OPENAI, "--workers", "0"],
        ["validate", str(CHAT), *OPENAI, "--format", "nope"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    assert main(argv) == 2
    assert "Traceback" not in "".join(capsys.readouterr())


def test_no_color_env(capsys, monkeypatch, broken):
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, _ = run(capsys, "validate", broken, *OPENAI)
    assert code == 1
    assert_plain(out)


def test_parse_value():
    assert parse_value("3") == 3
    assert parse_value("0.5") == 0.5
    assert parse_value("auto") == "auto"
    assert parse_value("true") is True


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("finetune-hub ")


# -- rules and formats -----------------------------------------------------------------------------
def test_rules_lists_openai_models(capsys):
    code, out, _ = run(capsys, "rules", "--provider", "openai")
    assert code == 0
    assert "gpt-4.1-mini-2025-04-14" in out
    assert "2027-01-14" in out
    assert_plain(out)


def test_rules_for_one_model_shows_sources_and_notices(capsys):
    code, out, _ = run(capsys, "rules", "--provider", "openai", "--model", "gpt-4.1-mini")
    assert code == 0
    assert "65,536" in out
    assert "UNCONFIRMED" in out
    assert "n_epochs" in out
    assert "model_shutdown_announced" in out
    assert_plain(out)


def test_rules_unsupported_method_exits_1(capsys):
    code, out, _ = run(
        capsys, "rules", "--provider", "openai", "--model", "gpt-4o-mini", "--method", "dpo"
    )
    assert code == 1
    assert "unsupported_method" in out


def test_rules_lists_bedrock_models(capsys):
    bedrock_titan_or_skip()
    code, out, _ = run(capsys, "rules", "--provider", "bedrock")
    assert code == 0
    assert "amazon.titan-text-lite" in out


def test_rules_tells_limit_kinds_apart_and_prints_every_source_as_a_link(capsys):
    bedrock_titan_or_skip()
    code, out, _ = run(
        capsys, "rules", "--provider", "bedrock", "--model", "amazon.titan-text-lite-v1"
    )
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("max_training_records"))
    assert "default quota" in row
    row = next(line for line in out.splitlines() if line.startswith("max_tokens_per_example"))
    assert "hard limit" in row
    sources = out.split("\nsources\n", 1)[1].splitlines()
    titles = [s for s in sources if s.lstrip().startswith("[")]
    urls = [s.strip() for s in sources if not s.lstrip().startswith("[")]
    assert titles and len(urls) == len(titles)
    assert all(u.startswith("https://") for u in urls)
    assert "AWS-PREP" not in out and "seed claim" not in out


def test_rules_unknown_provider_exits_2(capsys):
    code, _, err = run(capsys, "rules", "--provider", "nope")
    assert code == 2
    assert "unknown provider" in err


def test_rules_without_provider_is_a_usage_error(capsys):
    code, _, err = run(capsys, "rules")
    assert code == 2 and "--provider" in err


def test_formats(capsys):
    code, out, _ = run(capsys, "formats")
    assert code == 0
    assert "gemini" in out and "prompt_completion" in out


# -- convert and split ----------------------------------------------------------------------------
def test_convert_chat_to_gemini(capsys, tmp_path):
    pytest.importorskip("finetune_hub.data.convert")
    dst = tmp_path / "gemini.jsonl"
    code, out, _ = run(capsys, "convert", CHAT, dst, "--to", "gemini")
    assert code == 0
    records = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 20
    assert all("contents" in r for r in records)
    assert "20" in out
    assert_plain(out)


def test_convert_missing_source_exits_2(capsys, tmp_path):
    pytest.importorskip("finetune_hub.data.convert")
    code, out, err = run(
        capsys, "convert", tmp_path / "nope.jsonl", tmp_path / "out.jsonl", "--to", "gemini"
    )
    assert code == 2
    assert "Traceback" not in out + err


def test_convert_max_tokens_needs_tokenizer(capsys, tmp_path):
    pytest.importorskip("finetune_hub.data.convert")
    code, _, err = run(
        capsys, "convert", CHAT, tmp_path / "o.jsonl", "--to", "gemini", "--max-tokens", "10"
    )
    assert code == 2
    assert "--tokenizer" in err


def test_split(capsys, tmp_path):
    pytest.importorskip("finetune_hub.checks.splitting")
    pytest.importorskip("finetune_hub.data.split")
    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    code, out, _ = run(capsys, "split", CHAT, train, valid, "--validation-size", "5", "--seed", "1")
    assert code == 0
    assert len(train.read_text(encoding="utf-8").splitlines()) == 15
    assert len(valid.read_text(encoding="utf-8").splitlines()) == 5
    assert_plain(out)


def test_split_provider_without_model_exits_2(capsys, tmp_path):
    pytest.importorskip("finetune_hub.checks.splitting")
    code, _, err = run(
        capsys, "split", CHAT, tmp_path / "t", tmp_path / "v", "--provider", "bedrock"
    )
    assert code == 2
    assert "--model" in err


# -- the real command -------------------------------------------------------------------------------
def test_python_m_finetune_hub_exits_1_on_broken_file(broken):
    cmd = [sys.executable, "-m", "finetune_hub", "validate", str(broken), *OPENAI]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "invalid_json" in proc.stdout
    assert_plain(proc.stdout)
    assert "Traceback" not in proc.stderr


def test_cost_reads_through_a_column_mapping_too(capsys):
    """`cost` validates the data to count tokens: `--map` reads them as `validate` does."""
    assert (
        main(["cost", str(ITO), *LOCAL, "--format", "instruction", "--map", "instruction=txet"])
        == 1
    )
    assert "mapping_column_missing" in capsys.readouterr().out
    good = ["--format", "instruction", "--map", "instruction=text", "--map", "output=output"]
    assert main(["cost", str(ITO), *LOCAL, *good, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["validation_ok"] is True
