"""Cost before commitment (issue 12): for each backend and a sample file, `estimate_cost()`
equals the formula of docs/costs.md worked out by hand here, with the prices read straight from
the rules files, and carries each price's source link and read date; "unknown" where no source
gives a price; `submit(max_cost=)` and `deploy(max_hourly_cost=)` refuse when over or unknown;
the command line shows the estimate and asks before `submit` and `deploy`, and `cost` works
before any job exists."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
CHAT = SAMPLES / "chat_gozaru.jsonl"  # 20 chat records
PC = SAMPLES / "prompt_completion_ja.jsonl"  # 10 prompt/completion records
PREFS = SAMPLES / "vertex_rlhf_preferences.jsonl"
AZ_COST = "https://github.com/MicrosoftDocs/azure-ai-docs/blob/main/articles/ai-foundry/openai/how-to/fine-tuning-cost-management.md"  # noqa: E501


def toml(provider: str) -> dict:
    name = provider.replace("-", "_") + ".toml"
    text = resources.files("finetune_hub.rules").joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def pricing(provider: str, model: str | None = None, method: str = "sft") -> dict:
    """The [[pricing]] fields that apply, merged in file order (docs/costs.md), by hand."""
    out: dict = {}
    for entry in toml(provider).get("pricing", []):
        if "models" in entry and model not in entry["models"]:
            continue
        if "methods" in entry and method not in entry["methods"]:
            continue
        out.update(entry)
    return out


def tokens_per_epoch(path: Path, provider: str, model: str, method: str = "sft") -> int:
    """Σ min(cap, tokens) of the file: every sample example is under its cap, so the total."""
    tokens = fh.validate(path, provider, model, method).stats.training.tokens
    assert tokens.over_limit == 0
    return tokens.total


def openai_auto_epochs(n: int) -> int:
    """The cookbook's "auto" rule: 3, raised to reach 100 examples, lowered under 25,000."""
    if n * 3 < 100:
        return min(25, 100 // n)
    if n * 3 > 25_000:
        return max(1, 25_000 // n)
    return 3


# -- the estimate equals the formula, per backend ----------------------------------------------------
def test_openai_trained_tokens_follow_the_auto_epochs_rule_and_the_price_is_unknown():
    est = fh.estimate_cost(CHAT, "openai", "gpt-4.1-mini")
    epochs = openai_auto_epochs(20)
    assert epochs == 5 and est.epochs == 5 and est.epochs_source == "auto heuristic"
    assert est.trained_tokens == tokens_per_epoch(CHAT, "openai", "gpt-4.1-mini") * epochs
    assert est.training.usd is None and "no source" in est.training.formula  # never a guess
    assert est.serving == [] and "no deployment" in est.serving_note
    assert "unknown" in str(est)


def test_azure_openai_global_training_and_hosting_per_hour_day_month():
    est = fh.estimate_cost(
        CHAT, "azure-openai", "gpt-4.1", options={"training_type": "GlobalStandard"}
    )
    price = pricing("azure-openai", "gpt-4.1-2025-04-14")["training_usd_per_1m_tokens"][
        "globalstandard"
    ]
    trained = tokens_per_epoch(CHAT, "azure-openai", "gpt-4.1") * openai_auto_epochs(20)
    assert est.trained_tokens == trained
    assert est.training.usd == pytest.approx(trained * price / 1_000_000)
    assert est.tier == "globalstandard"
    src = est.training.source
    assert src.as_of == "2026-11-30" and AZ_COST in src.urls and not src.confirmed
    hosting = toml("azure-openai")["blocks"]["hosting"]["hosting_usd_per_hour"]
    by_label = {s.label: s for s in est.serving}
    standard = by_label["Standard deployment"]
    assert standard.hourly_usd == hosting["standard"]
    assert standard.daily_usd == pytest.approx(hosting["standard"] * 24)
    assert standard.monthly_usd == pytest.approx(hosting["standard"] * 720)  # $1,224 a month
    assert standard.source.as_of == "2026-11-30" and AZ_COST in standard.source.urls
    assert by_label["Developer deployment (removed after 24 hours)"].hourly_usd == 0.0
    ptu = next(s for s in est.serving if "Provisioned" in s.label)
    assert ptu.hourly_usd is None  # PTU-hours at a rate only your agreement states


def test_azure_openai_regional_training_price_is_unknown_not_guessed():
    est = fh.estimate_cost(CHAT, "azure-openai", "gpt-4.1")  # default tier: standard
    assert est.tier == "standard" and est.training.usd is None
    assert "standard tier" in est.training.formula


def test_azure_openai_rft_bills_by_the_hour_and_cannot_be_totalled_in_advance(tmp_path):
    est = fh.estimate_cost(CHAT, "azure-openai", "o4-mini", "rft")
    rate = pricing("azure-openai", "o4-mini-2025-04-16", "rft")["training_usd_per_hour"]["any"]
    assert est.training.unit_usd == rate == 100.0 and est.training.usd is None
    assert "x the run's hours" in est.training.formula


def test_bedrock_titan_storage_and_provisioned_throughput_commitments():
    est = fh.estimate_cost(
        PC, "bedrock", "amazon.titan-text-lite-v1", hyperparameters={"epochs": 2}
    )
    assert est.trained_tokens == tokens_per_epoch(PC, "bedrock", "amazon.titan-text-lite-v1") * 2
    assert est.training.usd is None  # per-model training prices: not in the sources read
    storage = pricing("bedrock", "amazon.titan-text-lite-v1:0:4k")["storage_usd_per_month"]
    assert est.storage.usd == storage == 1.95
    assert est.storage.source.urls == ["https://aws.amazon.com/bedrock/pricing/"]
    assert est.storage.source.as_of == "2026-11-01" and not est.storage.source.confirmed
    rates = toml("bedrock")["provisioned_throughput"]["amazon.titan-text-lite-v1:0:4k"]
    rates = rates["hosting_usd_per_hour"]
    none, month, six = est.serving
    assert none.hourly_usd == rates["no-commitment"] and none.commitment_usd is None
    assert none.monthly_usd == pytest.approx(rates["no-commitment"] * 720)
    assert month.commitment_usd == pytest.approx(rates["onemonth"] * 720)
    assert six.commitment_usd == pytest.approx(rates["sixmonths"] * 4320)
    assert all(s.source.as_of == "2026-11-01" for s in est.serving)
    assert all("https://aws.amazon.com/bedrock/pricing/" in s.source.urls for s in est.serving)


def test_bedrock_nova_offers_on_demand_serving_without_an_hourly_fee():
    est = fh.estimate_cost(CHAT, "bedrock", "amazon.nova-lite-v1:0:300k", format="chat")
    on_demand = est.serving[0]
    assert on_demand.kind == "on-demand" and on_demand.hourly_usd == 0.0


def test_vertex_gemini_needs_no_deployment_and_its_tuning_price_is_unknown():
    est = fh.estimate_cost(CHAT, "vertex", "gemini-2.5-flash", hyperparameters={"epochs": 3})
    assert est.trained_tokens == est.tokens_per_epoch * 3
    assert est.training.usd is None and est.serving == []
    assert "no deployment" in est.serving_note


def test_vertex_rlhf_pipeline_rate_comes_from_the_rules_with_its_source():
    est = fh.estimate_cost(PREFS, "vertex", "t5-small", "rlhf")
    entry = pricing("vertex", "t5-small", "rlhf")
    assert est.training.unit_usd == entry["training_usd_per_hour"]["gpu"] == 45.80
    assert est.training.usd is None  # the pipeline's hours are not known before it runs
    src = est.training.source
    assert "https://researchguy.in/rlhf-using-llama-2-7b-and-vertex-ai" in src.urls
    assert src.as_of == "2026-11-30" and not src.confirmed
    default, a2 = est.serving
    assert default.hourly_usd is None  # g2-standard-12: no source gives its rate
    assert a2.hourly_usd == entry["machine_usd_per_hour"]["a2-ultragpu-8g"]
    assert a2.monthly_usd == pytest.approx(45.80 * 720)
    assert "https://researchguy.in/rlhf-using-llama-2-7b-and-vertex-ai" in a2.source.urls
    assert est.serving_note == ""


def test_the_vertex_pipeline_cost_statement_reads_the_same_rules_entry():
    from finetune_hub.providers.vertex_rlhf import cost_issue, pipeline_price

    assert pipeline_price("GPU")[0] == 45.80 and pipeline_price("TPU") == (None, "")
    issue = cost_issue("GPU", confirmed=False)
    assert "$45.80 per hour" in issue.message and "researchguy.in" in issue.message


def test_azure_foundry_prices_are_unknown_with_the_reason():
    est = fh.estimate_cost(CHAT, "azure-foundry", "Phi-4", hyperparameters={"epochs": 2})
    assert est.training.usd is None and est.serving[0].hourly_usd is None
    assert "Marketplace" in " ".join(est.notes)


def test_local_training_and_serving_cost_nothing():
    est = fh.estimate_cost(CHAT, "local", "smollm2-135m-instruct")
    assert est.training.usd == 0.0
    assert [s.hourly_usd for s in est.serving] == [0.0, 0.0]


def test_fake_provider_estimate_with_every_part_known(fake_provider, tmp_path):
    job = fh.TuningJob(
        provider="fake", base_model="any", training_file=CHAT, hyperparameters={"epochs": 4}
    )
    est = job.estimate_cost()
    assert est.trained_tokens == est.tokens_per_epoch * 4
    assert est.training.usd == pytest.approx(est.trained_tokens * 2.0 / 1_000_000)
    assert est.storage.usd == 0.5
    assert est.serving[0].hourly_usd == 1.25  # the fake deployer's own cost()
    data = est.to_dict()
    json.dumps(data)
    assert data["serving"][0]["monthly_usd"] == pytest.approx(1.25 * 720)


def test_an_override_in_code_gives_a_price_cited_as_yours():
    cat_price = {"default": 3.0}
    fh.rules.override("openai", "gpt-4.1-mini", training_usd_per_1m_tokens=cat_price)
    try:
        est = fh.estimate_cost(CHAT, "openai", "gpt-4.1-mini")
        assert est.training.usd == pytest.approx(est.trained_tokens * 3.0 / 1_000_000)
        assert est.training.source.text == "user override"
    finally:
        fh.rules.default_catalog()._overrides.clear()


# -- refusing when over ------------------------------------------------------------------------------
def test_submit_max_cost_refuses_over_and_unknown_before_anything_is_uploaded(fake_provider):
    job = fh.TuningJob(
        provider="fake", base_model="any", training_file=CHAT, hyperparameters={"epochs": 2}
    )
    with pytest.raises(fh.CostLimitExceeded, match="over max_cost") as caught:
        job.submit(max_cost=0.000001)
    assert isinstance(caught.value.estimate, fh.CostEstimate)
    assert fake_provider.count("upload") == 0 and fake_provider.count("create") == 0
    job.submit(max_cost=100.0)
    assert fake_provider.count("create") == 1


def test_submit_max_cost_refuses_an_unknown_price_saying_so(fake_openai):
    job = fh.TuningJob(provider="openai", base_model="gpt-4.1-mini", training_file=CHAT,
                       )  # fmt: skip
    with pytest.raises(fh.CostLimitExceeded, match="unknown"):
        job.submit(max_cost=100.0)
    assert fake_openai.count("POST", "/files") == 0


def test_deploy_max_hourly_cost_refuses_over_and_goes_ahead_within(fake_provider):
    job = fh.TuningJob(provider="fake", base_model="any", training_file=CHAT)
    job.submit()
    model = job.wait(poll_interval=0, progress=False)
    with pytest.raises(fh.CostLimitExceeded, match="over max_hourly_cost"):
        model.deploy(max_hourly_cost=1.0)  # the fake endpoint costs $1.25/hour
    with pytest.raises(fh.CostLimitExceeded, match="unknown"):
        model.deploy(max_hourly_cost=1.0, hourly_usd=None)
    assert fake_provider.deployments_made == 0
    deployment = model.deploy(max_hourly_cost=2.0)  # within the cap: that is the yes
    assert deployment.record.hourly_cost_usd == 1.25
    deployment.delete()


# -- the command line ---------------------------------------------------------------------------------
@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")

    def run(*argv: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cost_command_before_any_job_exists(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_HUB_HOME", str(tmp_path / "home"))
    code, out, _ = cli(
        "cost", CHAT, "--provider", "azure-openai", "--model", "gpt-4.1",
        "--option", "training_type=GlobalStandard",
    )  # fmt: skip
    assert code == 0
    assert "trained tokens: 6,280" in out and "$1,224.00/month" in out and AZ_COST in out
    assert "read 2026-11-30" in out
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").iterdir())
    code, out, _ = cli("cost", CHAT, "--provider", "openai", "--model", "gpt-4.1-mini", "--json")
    data = json.loads(out)
    assert code == 0 and data["training"]["usd"] is None and data["trained_tokens"] == 6280


def test_submit_shows_the_estimate_and_no_stdin_means_no(fake_openai, cli, tmp_path):
    argv = ["submit", "--provider", "openai", "--model", "gpt-4.1-mini",
            "--training-file", CHAT, "--home", tmp_path / "h"]  # fmt: skip
    code, out, err = cli(*argv)
    assert code == 1 and "cost estimate" in out and "trained tokens" in out
    assert "not submitted" in out and "--yes" in out and "[y/N]" in err
    assert fake_openai.count("POST", "/files") == 0
    code, out, _ = cli(*argv, "--yes")
    assert code == 0 and "submitted ftj_" in out


def test_submit_reads_yes_from_stdin(fake_openai, cli, tmp_path, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, _ = cli("submit", "--provider", "openai", "--model", "gpt-4.1-mini",
                       "--training-file", CHAT, "--home", tmp_path / "h")  # fmt: skip
    assert code == 0 and "submitted ftj_" in out


def test_submit_max_cost_flag_refuses_an_unknown_price(fake_openai, cli, tmp_path):
    code, out, _ = cli("submit", "--provider", "openai", "--model", "gpt-4.1-mini",
                       "--training-file", CHAT, "--yes", "--max-cost", "5",
                       "--home", tmp_path / "h")  # fmt: skip
    assert code == 1 and "unknown" in out and "--max-cost 5" in out
    assert fake_openai.count("POST", "/files") == 0
