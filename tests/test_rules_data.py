"""The packaged rules data: every model resolves, every fact cites a source a user can open (a
URL and a title) with the date it was read, and key facts are right."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from finetune_hub.issues import Severity
from finetune_hub.rules import Catalog, providers, resolve
from finetune_hub.rules.schema import BLOCK_FIELDS

PROVIDERS = providers()
METHODS = {"sft", "dpo", "rft", "rlhf", "continued-pretraining", "distillation"}
META = {"extends", "source", "as_of", "unconfirmed", "note"}
MODEL_KEYS = {
    "id", "aliases", "status", "status_note", "deprecated_on", "shutdown_on", "retired_on",
    "new_jobs_end", "restricted_on", "restriction", "replacement", "lifecycle_note", "methods",
    "overrides", "source", "as_of", "unconfirmed", "note",
}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]


def raw(provider: str) -> dict[str, Any]:
    name = provider.replace("-", "_") + ".toml"
    text = resources.files("finetune_hub.rules").joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def model_method_pairs() -> list[tuple[str, str, str]]:
    cat = Catalog()
    return [
        (p, m["id"], method) for p in PROVIDERS for m in cat.models(p) for method in m["methods"]
    ]


def hyperparameter_entries(data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [
        (set_name, param, spec)
        for set_name, entries in data.get("hyperparameters", {}).items()
        for param, spec in entries.items()
        if param != "extends"
    ]


def openable(url: str | None) -> bool:
    """An https URL, or a file of this repository (finetune_hub's own docs)."""
    return bool(url) and (url.startswith("https://") or (ROOT / url).is_file())


def assert_provenance(table: dict[str, Any], where: str, sources: dict[str, Any]) -> None:
    """`source` names source keys that resolve to a title and an openable URL; `as_of` is a date;
    `unconfirmed` names keys the table sets; an unconfirmed table says why in `note`."""
    ref = table.get("source")
    refs = [ref] if isinstance(ref, str) else ref
    assert refs and all(isinstance(r, str) for r in refs), f"{where}: no source"
    for r in refs:
        assert r in sources, f"{where}: source {r!r} is not a [sources] key"
        assert sources[r].get("title"), f"{where}: source {r!r} has no title"
        assert openable(sources[r].get("url")), f"{where}: source {r!r} has no URL a user can open"
    assert isinstance(table.get("as_of"), dt.date), f"{where}: as_of must be a TOML date"
    unconfirmed = table.get("unconfirmed", False)
    if isinstance(unconfirmed, list):
        missing = [k for k in unconfirmed if k not in table]
        assert not missing, f"{where}: unconfirmed names keys the table does not set: {missing}"
    else:
        assert isinstance(unconfirmed, bool), f"{where}: unconfirmed must be true/false or a list"
    if unconfirmed:
        assert table.get("note", "").strip(), (
            f"{where}: an unconfirmed fact needs a note saying why"
        )


# -- every model, every method ----------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_has_a_rules_file_with_models(provider):
    data = raw(provider)
    assert data["provider"]["name"] == provider
    assert data["provider"]["display_name"]
    assert data.get("generic"), f"{provider}: no [generic] rules"
    assert Catalog().models(provider), f"{provider}: no models"


@pytest.mark.parametrize(("provider", "model_id", "method"), model_method_pairs())
def test_every_model_resolves_for_each_of_its_methods(provider, model_id, method):
    rules, notes = resolve(provider, model_id, method)
    assert rules.model_id == model_id
    assert rules.method == method
    assert method in METHODS
    codes = {n.code for n in notes}
    assert "unknown_model" not in codes and "unsupported_method" not in codes
    assert rules.formats or rules.status_note, (
        f"{model_id} ({method}): no formats and no note saying why"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_block_and_hyperparameter_set_is_well_formed(provider):
    cat = Catalog()
    data = raw(provider)
    for name, block in data.get("blocks", {}).items():
        unknown = set(block) - BLOCK_FIELDS - META
        assert not unknown, f"{provider} block {name}: unknown fields {sorted(unknown)}"
        cat._flatten_block(provider, name)  # extends chain exists, no cycles
    for set_name in data.get("hyperparameters", {}):
        specs = cat._hyperparameters(provider, set_name)
        assert specs, f"{provider}: hyperparameter set {set_name} is empty"
    for method, block in data.get("generic", {}).items():
        assert method in METHODS, f"{provider}: generic method {method!r}"
        assert block in data["blocks"], f"{provider}: generic {method} -> missing block {block!r}"
    for model in data.get("models", []):
        unknown = set(model) - MODEL_KEYS
        assert not unknown, f"{provider} model {model['id']}: unknown keys {sorted(unknown)}"
        for method, block in model["methods"].items():
            assert method in METHODS, f"{provider} {model['id']}: method {method!r}"
            assert block in data["blocks"], f"{provider} {model['id']}: missing block {block!r}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_rules_entry_lacks_a_source_url_and_a_date(provider):
    data = raw(provider)
    sources = data.get("sources", {})
    assert_provenance(data["provider"], f"{provider} [provider]", sources)
    for name, block in data.get("blocks", {}).items():
        assert_provenance(block, f"{provider} blocks.{name}", sources)
    for set_name, param, spec in hyperparameter_entries(data):
        if spec is False:
            continue
        assert_provenance(spec, f"{provider} hyperparameters.{set_name}.{param}", sources)
    for name, hint in data.get("hyperparameter_hints", {}).items():
        assert_provenance(hint, f"{provider} hyperparameter_hints.{name}", sources)
    for model in data.get("models", []):
        assert_provenance(model, f"{provider} model {model['id']}", sources)
    for n, entry in enumerate(data.get("pricing", [])):  # prices: docs/costs.md
        assert_provenance(entry, f"{provider} pricing[{n}]", sources)
    known = {
        "pricing",
        "provider",
        "generic",
        "blocks",
        "hyperparameters",
        "hyperparameter_hints",
        "models",
        "sources",
    }
    for section, tables in data.items():  # provider-specific tables: prices, surfaces, ...
        if section in known:
            continue
        for name, entry in tables.items():
            where = f"{provider} {section}.{name}"
            ref = entry.get("source")
            refs = [ref] if isinstance(ref, str) else ref
            if refs and all(r in sources for r in refs):
                assert_provenance(entry, where, sources)
            else:  # free text printed as it is (Bedrock's prices): it must hold the URL
                assert "https://" in str(ref) and isinstance(entry.get("as_of"), dt.date), where


@pytest.mark.parametrize("provider", PROVIDERS)
def test_user_facing_text_holds_no_internal_notes(provider):
    """Messages quote sources, notes and status notes: no internal source codes or section refs."""
    data = raw(provider)
    texts = [s.get("title", "") for s in data.get("sources", {}).values()]
    tables = list(data.get("blocks", {}).values()) + list(data.get("models", []))
    tables += [spec for _, _, spec in hyperparameter_entries(data) if spec is not False]
    tables += list(data.get("hyperparameter_hints", {}).values())
    for table in tables:
        texts += [
            str(table.get(k, "")) for k in ("note", "status_note", "description", "restriction")
        ]
    internal = re.compile(r"§|\(A\d\)|\bA\d\b|seed claim|[A-Z]{2,}-[A-Z]{2,}(-[A-Z0-9]+)*\b")
    leaks = [t for t in texts if internal.search(t)]
    assert not leaks, f"{provider}: internal notes in user-facing text: {leaks}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_ids_and_aliases_are_unique(provider):
    names: list[str] = []
    for model in Catalog().models(provider):
        names += [model["id"].lower()] + [a.lower() for a in model.get("aliases", [])]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"{provider}: names used twice: {dupes}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_model_gets_generic_rules_and_a_warning(provider):
    rules, notes = resolve(provider, "no-such-model-xyz", "sft")
    assert rules.model_id is None
    assert rules.model_status == "generic"
    assert rules.formats
    unknown = [n for n in notes if n.code == "unknown_model"]
    assert len(unknown) == 1 and unknown[0].severity is Severity.WARNING
    assert not any(n.code == "unsupported_method" for n in notes)


# -- Bedrock ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["amazon.titan-text-lite-v1:0:4k", "amazon.titan-text-lite-v1"])
def test_titan_text_lite(name):
    rules, notes = resolve("bedrock", name, "sft")
    assert rules.model_id == "amazon.titan-text-lite-v1:0:4k"
    # a default account quota over training + validation records, not a guess
    assert (rules.max_training_records, rules.max_total_records) == (10_000, 10_000)
    assert rules.max_validation_records is None
    assert rules.limit_kind("max_training_records") == "quota"
    assert rules.limit_kind("max_total_records") == "quota"
    assert "Sum of training and validation records" in rules.quotas["max_training_records"]
    assert "Service Quotas" in rules.quota_help
    assert rules.max_tokens_per_example == 4096
    assert rules.token_limit() == 4096
    assert rules.token_limit(batch_size=1) == 4096
    assert rules.token_limit(batch_size=2) == 4096
    assert rules.token_limit(batch_size=3) == 2048
    assert rules.token_limit(batch_size=6) == 2048
    assert [f.value for f in rules.formats] == ["prompt_completion"]
    assert rules.model_status == "legacy"
    assert any(n.code == "model_legacy" for n in notes)
    bs = rules.hyperparameters["batch_size"]
    assert (bs.provider_name, bs.wire, bs.max) == ("batchSize", "string", 64)
    assert all(spec.wire == "string" for spec in rules.hyperparameters.values())
    assert rules.max_file_bytes == 1 << 30


def test_titan_text_express_and_continued_pretraining():
    rules, _ = resolve("bedrock", "amazon.titan-text-express-v1", "sft")
    assert rules.token_limit(batch_size=1) == 4096
    assert rules.token_limit(batch_size=2) == 2048
    cpt, notes = resolve("bedrock", "amazon.titan-text-express-v1", "continued-pretraining")
    assert [f.value for f in cpt.formats] == ["continued_pretraining"]
    assert cpt.validation == "optional"
    assert not any(n.code == "unsupported_method" for n in notes)


def test_claude_3_haiku():
    rules, _ = resolve("bedrock", "anthropic.claude-3-haiku-20240307-v1:0:200k", "sft")
    assert rules.min_training_records == 32
    assert rules.max_tokens_per_example == 32_000
    assert rules.max_total_records == 10_000
    assert (
        rules.roles.alternate
        and rules.roles.first == ["user"]
        and rules.roles.last == ["assistant"]
    )
    assert [f.value for f in rules.formats] == ["bedrock_claude"]
    assert (
        rules.hyperparameters["learning_rate_multiplier"].provider_name == "learningRateMultiplier"
    )


def test_llama_token_caps():
    big, _ = resolve("bedrock", "meta.llama3-2-90b-instruct-v1:0:128k", "sft")
    assert big.max_tokens_per_example == 10_000
    small, _ = resolve("bedrock", "meta.llama3-2-1b-instruct-v1", "sft")
    assert small.max_tokens_per_example == 16_000
    assert (small.min_training_records, small.max_total_records) == (100, 10_000)
    llama31, _ = resolve("bedrock", "meta.llama3-1-8b-instruct-v1", "sft")
    assert [f.value for f in llama31.formats] == ["prompt_completion"]


def test_nova_reserved_tokens_and_unconfirmed_record_caps():
    rules, _ = resolve("bedrock", "amazon.nova-lite-v1:0:300k", "sft")
    assert "Bot:" in rules.forbidden_strings and "[EOS]" in rules.forbidden_strings
    assert rules.confirmed("forbidden_strings")
    assert (rules.min_training_records, rules.max_training_records) == (8, 20_000)
    assert not rules.confirmed("min_training_records") and not rules.confirmed(
        "max_training_records"
    )
    distill, notes = resolve("bedrock", "amazon.nova-micro-v1", "distillation")
    assert not any(n.code == "unsupported_method" for n in notes)
    assert distill.roles.first == ["user"] and not distill.roles.last


def test_titan_mm_embeddings_take_auto_epochs():
    rules, _ = resolve("bedrock", "amazon.titan-embed-image-v1:0", "sft")
    epochs = rules.hyperparameters["epochs"]
    assert epochs.auto and epochs.auto_value == "Auto" and epochs.required


# -- Vertex -----------------------------------------------------------------------------------
def test_gemini_25_flash():
    rules, notes = resolve("vertex", "gemini-2.5-flash", "sft")
    assert rules.max_tokens_per_example == 131_072
    assert rules.confirmed("max_tokens_per_example")
    assert rules.max_validation_records == 5_000
    assert rules.max_training_records == 10_000_000  # 10M text-only examples, not 1M
    assert rules.max_images_per_example == 30
    assert rules.roles.last == ["model"]
    assert rules.hyperparameters["adapter_size"].choices == [1, 2, 4, 8, 16]
    assert rules.hyperparameters["epochs"].provider_name == "epoch_count"
    # its retirement date has passed on Google's page, but the versions of the page disagree
    assert [(n.code, n.severity) for n in notes] == [("model_shutdown", Severity.WARNING)]
    dpo, _ = resolve("vertex", "gemini-2.5-flash", "dpo")
    assert [f.value for f in dpo.formats] == ["gemini_preference"]
    assert dpo.max_tokens_per_example == 131_072
    assert "beta" in dpo.hyperparameters


def test_gemini_preference_tuning_only_on_25_flash_and_flash_lite():
    assert set(
        next(m for m in Catalog().models("vertex") if m["id"] == "gemini-2.5-pro")["methods"]
    ) == {"sft"}
    for model in ("gemini-2.5-flash", "gemini-2.5-flash-lite"):
        _, notes = resolve("vertex", model, "dpo")
        assert not any(n.code == "unsupported_method" for n in notes)
    _, notes = resolve("vertex", "gemini-2.5-pro", "dpo")
    assert any(n.code == "unsupported_method" for n in notes)


def test_gemini_25_pro_and_3x():
    pro25, _ = resolve("vertex", "gemini-2.5-pro", "sft")
    assert pro25.max_tokens_per_example == 131_072 and pro25.confirmed("max_tokens_per_example")
    assert pro25.hyperparameters["adapter_size"].choices == [1, 2, 4, 8]
    for model in ("gemini-3.5-flash", "gemini-3.1-flash-lite"):
        rules, notes = resolve("vertex", model, "sft")
        assert rules.max_tokens_per_example == 131_072
        assert rules.hyperparameters["adapter_size"].choices == [1, 2, 4, 8, 16]
        assert not notes


@pytest.mark.parametrize(
    ("model", "retired"),
    [
        ("gemini-2.0-flash-001", dt.date(2026, 2, 5)),
        ("gemini-2.0-flash-lite-001", dt.date(2026, 2, 25)),
        ("gemini-1.5-pro", dt.date(2025, 9, 24)),
        ("gemini-1.5-flash", dt.date(2025, 9, 24)),
    ],
)
def test_retired_gemini_models_are_refused(model, retired):
    rules, notes = resolve("vertex", model, "sft")
    assert rules.shutdown_on == retired
    (shutdown,) = [n for n in notes if n.code == "model_shutdown"]
    assert shutdown.is_error and str(retired) in shutdown.message


def test_palm_rlhf():
    rules, notes = resolve("vertex", "text-bison@002", "rlhf")
    assert {f.value for f in rules.formats} == {"rlhf_preference", "rlhf_prompt"}
    hp = rules.hyperparameters
    assert (hp["prompt_sequence_length"].max, hp["prompt_sequence_length"].default) == (8192, 512)
    assert (hp["target_sequence_length"].max, hp["target_sequence_length"].default) == (1024, 64)
    assert hp["kl_coeff"].default == 0.1
    # PaLM: no new tuning from 2024-10-09, unreachable from 2025-04-09
    assert (rules.new_jobs_end, rules.shutdown_on) == (dt.date(2024, 10, 9), dt.date(2025, 4, 9))
    (shutdown,) = [n for n in notes if n.code == "model_shutdown"]
    assert shutdown.is_error and "2025-04-09" in shutdown.message
    _, notes = resolve("vertex", "chat-bison@001", "rlhf")
    assert any(n.code == "unsupported_method" and n.is_error for n in notes)


# -- Azure ------------------------------------------------------------------------------------
def test_azure_openai_suffix_rules():
    rules, _ = resolve("azure-openai", "gpt-4.1-mini", "sft")
    assert rules.suffix_max_chars == 18
    assert rules.suffix_pattern is not None
    assert re.fullmatch(rules.suffix_pattern, "gozaru-v1")
    assert not re.fullmatch(rules.suffix_pattern, "gozaru.v1")
    assert rules.max_tokens_per_example == 65_536 and rules.confirmed("max_tokens_per_example")
    assert rules.tokenizer == "o200k_base"


def test_azure_openai_models_and_fine_tuned_names():
    nano, notes = resolve("azure-openai", "gpt-4.1-nano", "sft")
    assert nano.max_tokens_per_example == 32_768
    # training: no earlier than 2027-04-14 for existing customers only; deployments: 2027-10-14
    assert nano.new_jobs_end == dt.date(2027, 4, 14) and not nano.confirmed("new_jobs_end")
    assert nano.shutdown_on == dt.date(2027, 10, 14) and nano.confirmed("shutdown_on")
    assert nano.restricted_on == dt.date(2026, 10, 14) and "existing" in nano.restriction
    assert [n.code for n in notes if n.code == "fine_tuning_restricted"]
    for model, train_end, retire in (
        ("gpt-4o", dt.date(2027, 4, 1), dt.date(2027, 10, 1)),
        ("gpt-4o-mini", dt.date(2027, 4, 1), dt.date(2027, 10, 1)),
        ("o4-mini", dt.date(2027, 4, 16), dt.date(2027, 10, 16)),
    ):
        method = "rft" if model == "o4-mini" else "sft"
        rules, _ = resolve("azure-openai", model, method)
        assert (rules.new_jobs_end, rules.shutdown_on) == (train_end, retire), model
    vision, _ = resolve("azure-openai", "gpt-4o", "sft")
    assert vision.max_images_per_example == 64 and vision.confirmed("max_images_per_example")
    qwen, notes = resolve("azure-openai", "Qwen-32B", "sft")
    assert qwen.max_tokens_per_example == 8192 and not notes
    tuned, _ = resolve("azure-openai", "gpt-4o-mini-2024-07-18.ft-0123abcd", "sft")
    assert tuned.model_id == "gpt-4o-mini-2024-07-18"
    rft, _ = resolve("azure-openai", "o4-mini", "rft")
    assert rft.validation == "required"


def test_azure_foundry():
    tsuzumi, notes = resolve("azure-foundry", "tsuzumi-7b", "sft")
    assert tsuzumi.max_tokens_per_example == 8192
    assert tsuzumi.tools is False
    assert tsuzumi.roles.allowed == ["system", "user", "assistant"]
    assert tsuzumi.shutdown_on == dt.date(2026, 8, 31) and tsuzumi.confirmed("shutdown_on")
    assert tsuzumi.replacement == "tsuzumi2"
    (retired,) = notes
    assert retired.code == "model_shutdown" and retired.is_error
    assert "2026-08-31" in retired.message and "tsuzumi2" in retired.message
    surfaces = Catalog().provider_data("azure-foundry")["foundry_models"]
    for model in Catalog().models("azure-foundry"):
        for method in model["methods"]:
            rules, _ = resolve("azure-foundry", model["id"], method)
            assert rules.validation == "optional"  # the service takes jobs without one
            # a hub project's job takes strings; the OpenAI-compatible API takes numbers
            surface = surfaces.get(model["id"], {}).get("surface", "azure-ai-ml")
            wire = "native" if surface == "openai" else "string"
            assert all(spec.wire == wire for spec in rules.hyperparameters.values()), model
    llama, notes = resolve("azure-foundry", "Meta-Llama-3.1-8B-Instruct", "sft")
    assert llama.hyperparameters["epochs"].provider_name == "num_train_epochs"
    assert llama.hyperparameters["batch_size"].provider_name == "per_device_train_batch_size"
    assert [(n.code, n.is_error) for n in notes] == [("model_shutdown", True)]
    assert "2026-06-13" in notes[0].message
    for model in ("Phi-4", "Phi-4-mini-instruct", "Ministral-3B", "tsuzumi2"):
        _, notes = resolve("azure-foundry", model, "sft")
        assert not [n for n in notes if n.is_error], model


# -- local ------------------------------------------------------------------------------------
def test_local_backend():
    rules, notes = resolve("local", "smollm2-135m-instruct", "dpo")
    assert {f.value for f in rules.formats} == {
        "preference",
        "gemini_preference",
        "rlhf_preference",
    }
    assert rules.max_training_records is None and rules.max_file_bytes is None
    assert (
        "beta" in rules.hyperparameters and "gradient_accumulation_steps" in rules.hyperparameters
    )
    assert not notes


def test_no_fact_is_dated_after_today(fake_provider):
    """A fact's `as_of` is the day it was read: never a day still to come (several once said
    2026-12-01 on 2026-11-30). The fake provider's rules are registered by its fixture."""
    from finetune_hub import registry
    from finetune_hub.rules import default_catalog

    catalog = default_catalog()
    found = [(p, w, prov.as_of) for p in registry.names() for w, prov in catalog.facts(p)]
    assert len(found) > 20 and any(p == "fake" for p, _, _ in found)
    assert [f for f in found if f[2] > dt.date.today()] == []
