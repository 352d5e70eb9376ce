"""Base models of the local backend: local folders (safetensors, trust_remote_code), Hub ids only
when the job opts in to downloading (huggingface_hub mocked: nothing is downloaded here), and the
job-level checks that go with them."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from local_support import LOCAL_QUESTIONS, write_tiny_chat  # noqa: E402

import finetune_hub as fh  # noqa: E402
from finetune_hub.errors import ModelNotFoundError  # noqa: E402
from finetune_hub.providers.local import models  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("local-models")
    return {
        "model": build_tiny_model(root / "model", LOCAL_QUESTIONS),
        "chat": str(write_tiny_chat(root / "chat.jsonl")),
    }


def job(tmp_path, base_model, **options) -> fh.TuningJob:
    j = fh.TuningJob(
        provider="local",
        base_model=str(base_model),
        training_file=str(write_tiny_chat(tmp_path / "chat.jsonl")),
        options={"output_dir": str(tmp_path / "runs"), **options},
        store=fh.JobStore(tmp_path / "home"),
    )
    j.sleep = lambda s: time.sleep(min(s, 0.2))
    return j


def test_a_hub_id_without_the_download_option_says_exactly_how_to_opt_in_or_where_to_put_it(
    tmp_path,
):
    report = job(tmp_path, "llm-jp/llm-jp-3-13b").validate()
    (error,) = [i for i in report.errors if i.code == "unknown_model"]
    text = error.message
    assert "options={'download': True}" in text and "huggingface_hub" in text
    assert "HF_TOKEN" in text and "config.json" in text and "safetensors" in text
    assert "never downloads" not in text  # no more contradictory advice
    with pytest.raises(fh.ValidationError):
        job(tmp_path, "llm-jp/llm-jp-3-13b").submit()
    assert not (tmp_path / "runs").exists()


def test_with_download_on_a_hub_id_passes_the_check_without_downloading(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("validate() must not download")

    monkeypatch.setattr("huggingface_hub.snapshot_download", no_network)
    report = job(tmp_path, "llm-jp/llm-jp-3-13b", download=True).validate()
    assert not [i for i in report.errors if i.code == "unknown_model"], report.errors


def test_download_model_fetches_safetensors_config_and_tokenizer_only(tiny, monkeypatch):
    asked = {}

    def snapshot_download(repo_id, **kwargs):
        asked.update(kwargs, repo_id=repo_id)
        return str(tiny["model"])

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    folder = models.resolve_model("org/tiny", download=True)
    assert folder == tiny["model"] and asked["repo_id"] == "org/tiny"
    assert "*.safetensors" in asked["allow_patterns"] and "*.json" in asked["allow_patterns"]
    assert not any(p in asked["allow_patterns"] for p in ("*.bin", "*.pt", "*.py"))
    models.resolve_model("org/tiny", download=True, trust_remote_code=True)
    assert "*.py" in asked["allow_patterns"]
    with pytest.raises(ModelNotFoundError, match="options=\\{'download': True\\}"):
        models.resolve_model("org/tiny")


def test_a_missing_path_is_named_as_a_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match=f"no model folder at {tmp_path}/nope"):
        models.find_model(tmp_path / "nope")


def test_a_folder_without_safetensors_is_refused_with_the_reason(tmp_path, tiny):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((tiny["model"] / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(b"\x80")
    with pytest.raises(ModelNotFoundError, match="has no \\*.safetensors weights") as info:
        models.find_model(folder)
    assert "pytorch_model.bin" in str(info.value) and "run code" in str(info.value)


def test_model_code_in_a_folder_runs_only_with_trust_remote_code(tmp_path, tiny):
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny["model"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match="options=\\{'trust_remote_code': True\\}"):
        models.find_model(folder)
    assert models.find_model(folder, trust_remote_code=True) == folder.resolve()
    report = job(tmp_path, folder).validate()
    assert [i.code for i in report.errors] == ["unknown_model"]
    assert job(tmp_path, folder, trust_remote_code=True).validate().ok


def test_trl_settings_as_hyperparameters_and_the_step_options_must_agree(tmp_path, tiny):
    j = job(tmp_path, tiny["model"], max_steps=5)
    j.spec = j.spec.model_copy(
        update={"hyperparameters": {"max_steps": 6, "per_device_train_batch_size": 2}}
    )
    report = j.validate()
    assert [i.code for i in report.errors] == ["invalid_option"]
    assert "max_steps=5" in report.errors[0].message and "max_steps=6" in report.errors[0].message
    assert [i.code for i in report.warnings if i.code == "hyperparameter_renamed"] == [
        "hyperparameter_renamed"
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"quantisation": "4bit"}, "did you mean 'quantization'?"),
        ({"devcie": "cpu"}, "did you mean 'device'?"),
        ({"downlaod": True}, "did you mean 'download'?"),
        ({"trust_remote": True}, "did you mean 'trust_remote_code'?"),
        ({"logging_steps": 10}, "hyperparameters={'logging_steps': ...}"),
        ({"save_total_limit": 2}, "hyperparameters={'save_total_limit': ...}"),
    ],
)
def test_misspelled_or_misplaced_options_are_refused_with_the_nearest_name(
    tmp_path, tiny, options, expected
):
    report = job(tmp_path, tiny["model"], **options).validate()
    assert [i.field for i in report.errors] == ["options"]
    assert expected in report.errors[0].message


def test_fsdp_over_4bit_weights_is_refused_before_anything_runs(tmp_path, tiny):
    report = job(tmp_path, tiny["model"], quantization="4bit", distributed="fsdp",
                 num_processes=2).validate()  # fmt: skip
    assert any(i.field == "options.distributed" for i in report.errors)
