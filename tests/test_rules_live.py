"""`finetune-hub rules --stale DAYS` and the live check's diff logic (`rules check --live`)."""

from __future__ import annotations

import datetime as dt

import pytest

from finetune_hub.cli.main import main
from finetune_hub.rules import Catalog
from finetune_hub.rules.lifecycle import TODAY_ENV
from finetune_hub.rules.live import diff_tunable

DAY = dt.date(2026, 11, 30)


@pytest.fixture(autouse=True)
def _today(monkeypatch):
    monkeypatch.setenv(TODAY_ENV, "2026-11-30")


# -- the diff ---------------------------------------------------------------------------------------
def test_diff_finds_new_missing_and_ended_models():
    offered = [
        "amazon.nova-lite-v1:0:300k",  # listed by the rules: agrees
        "anthropic.claude-3-haiku-20240307-v1:0:200k",
        "amazon.nova-9-ultra-v1:0:1m",  # new to the rules
    ]
    diff = diff_tunable("bedrock", offered, today=DAY)
    assert diff.unknown_to_rules == ["amazon.nova-9-ultra-v1:0:1m"]
    assert set(diff.matched) == {
        "amazon.nova-lite-v1:0:300k",
        "anthropic.claude-3-haiku-20240307-v1:0:200k",
    }
    assert "amazon.nova-pro-v1:0:300k" in diff.not_offered
    assert not diff.agrees
    assert any("the rules do not list it" in line for line in diff.lines())


def test_diff_matches_aliases_case_insensitively_and_flags_ended_models():
    diff = diff_tunable("openai", ["GPT-4.1", "gpt-4.1-nano-2025-04-14"], today=DAY)
    assert "gpt-4.1-2025-04-14" in diff.matched
    assert diff.ended_but_offered == ["gpt-4.1-nano-2025-04-14"]  # shut down 2026-10-23


def test_diff_compares_methods_when_the_provider_gives_them():
    diff = diff_tunable(
        "bedrock",
        {
            "amazon.titan-text-lite-v1:0:4k": ["sft", "continued-pretraining"],
            "amazon.nova-micro-v1:0:128k": ["sft", "rft"],
        },
        today=DAY,
    )
    assert diff.method_differences == [
        ("amazon.nova-micro-v1:0:128k", ["rft", "sft"], ["distillation", "sft"])
    ]
    assert "amazon.titan-text-lite-v1:0:4k" in diff.matched


def test_a_complete_list_agrees():
    cat = Catalog()
    alive = diff_tunable("azure-foundry", [], catalog=cat, today=DAY).not_offered
    diff = diff_tunable("azure-foundry", alive, catalog=cat, today=DAY)
    assert diff.agrees and set(diff.matched) == {
        "Phi-4",
        "Phi-4-mini-instruct",
        "Ministral-3B",
        "tsuzumi2",
        "gpt-oss-20b",  # the OpenAI-compatible surface of a Foundry resource
        "Qwen-32B",
        "Llama-3.3-70B-Instruct",
    }


# -- stale facts ------------------------------------------------------------------------------------
def test_stale_lists_facts_read_longer_ago():
    cat = Catalog()
    stale = cat.stale(7, ["openai"], today=DAY)
    assert stale and all((DAY - prov.as_of).days > 7 for _, _, prov in stale)
    where = {w for _, w, _ in stale}
    assert "blocks.chat_sft" in where  # read 2026-11-01
    assert "model gpt-4.1-2025-04-14" not in where  # re-read 2026-11-30
    assert cat.stale(10_000, today=DAY) == []


def test_cli_stale(capsys):
    assert main(["rules", "--stale", "7", "--provider", "openai"]) == 0
    out = capsys.readouterr().out
    assert "blocks.chat_sft" in out and "2026-11-01" in out and "https://" in out
    assert main(["rules", "--stale", "100000"]) == 0
    assert "no fact was read more than 100000 days" in capsys.readouterr().out


# -- the live command line --------------------------------------------------------------------------
def test_rules_check_needs_live_and_a_provider(capsys):
    assert main(["rules", "check", "--provider", "bedrock"]) == 2
    assert "--live" in capsys.readouterr().err
    assert main(["rules", "check", "--live"]) == 2
    assert "--provider" in capsys.readouterr().err


def test_rules_check_live_says_when_there_is_no_backend(capsys, monkeypatch):
    from finetune_hub import registry

    entry = registry.ProviderEntry("acme", "Acme AI", extra="acme", rules="/nonexistent.toml")
    monkeypatch.setitem(registry._extra_entries, "acme", entry)
    assert main(["rules", "check", "--live", "--provider", "acme"]) == 2
    assert "no backend" in capsys.readouterr().out


def test_rules_check_live_on_openai_says_there_is_no_such_api(capsys):
    pytest.importorskip("openai")
    assert (
        main(["rules", "check", "--live", "--provider", "openai", "--option", "api_key=sk-test"])
        == 2
    )
    assert "no list of tunable models" in capsys.readouterr().out


def test_rules_check_live_against_the_bedrock_fake(capsys, fake_bedrock):
    """The fake lists Nova, Claude 3 Haiku, Llama 3.1 8B and Titan Text Lite: the rules list more
    models, so the command prints those the provider does not offer and exits 1."""
    code = main(["rules", "check", "--live", "--provider", "bedrock"])
    out = capsys.readouterr().out
    assert code == 1
    assert "Amazon Bedrock: 6 model(s) tunable per its API on 2026-11-30" in out
    assert (
        "meta.llama3-3-70b-instruct-v1:0:128k: the rules accept it; the provider does not list"
        in out
    )
    assert "agreeing:" in out and "amazon.nova-lite-v1:0:300k" in out


def test_rules_check_live_prints_models_new_to_the_rules(capsys, fake_bedrock):
    from finetune_hub.testing.bedrock_fake_ext import FOUNDATION_MODELS

    new = dict(FOUNDATION_MODELS[0], modelId="amazon.nova-9-v1:0:1m", modelName="Nova 9")
    fake_bedrock.foundation_models = [*FOUNDATION_MODELS, new]
    assert main(["rules", "check", "--live", "--provider", "bedrock"]) == 1
    assert (
        "amazon.nova-9-v1:0:1m: the provider can tune it; the rules do not list it"
        in capsys.readouterr().out
    )
