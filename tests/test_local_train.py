"""The local training loop on a tiny model built in code (one torch thread; in-process)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from local_support import LOCAL_QUESTIONS, write_tiny_chat  # noqa: E402

from finetune_hub.providers.local.runner import RunDir, write_json_atomic  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402
from finetune_hub.providers.local.train import TrainConfig, Trainer, dpo_loss  # noqa: E402

QUESTIONS = LOCAL_QUESTIONS


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    chat = write_tiny_chat(root / "chat.jsonl")
    pref = root / "pref.jsonl"
    with open(pref, "w") as f:
        for q in QUESTIONS:
            f.write(
                json.dumps(
                    {
                        "input_text": q,
                        "candidate_0": "no",
                        "candidate_1": "yes, gozaru!",
                        "choice": 1,
                    }
                )
                + "\n"
            )
    model = build_tiny_model(root / "model", QUESTIONS + ["yes, gozaru! no"])
    return {"model": str(model), "chat": str(chat), "pref": str(pref)}


def make_run(path, tiny, method="sft", **over) -> tuple[RunDir, TrainConfig]:
    path.mkdir(parents=True, exist_ok=True)
    spec = {
        "base_model": tiny["model"],
        "training_file": tiny["chat" if method == "sft" else "pref"],
        "method": method,
        "options": {"max_steps": 12, "save_steps": 4},
    }
    hp = {
        "learning_rate": 5e-3,
        "batch_size": 8,
        "lora_rank": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "seed": 1,
        "max_seq_length": 64,
        **over,
    }
    write_json_atomic(path / "job.json", {"key": "k", "spec": spec, "hyperparameters": hp})
    run = RunDir(path)
    return run, TrainConfig.from_job(run.job())


def train(run, cfg) -> tuple[Trainer, str]:
    trainer = Trainer(run, cfg)
    trainer.setup()
    return trainer, trainer.fit()


def test_sft_steps_make_the_loss_fall_and_save_an_adapter(tmp_path, tiny):
    run, cfg = make_run(tmp_path / "run", tiny)
    trainer, outcome = train(run, cfg)
    assert outcome == "succeeded"
    losses = [m["train_loss"] for m in run.metrics()]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.2
    assert all(m["tokens_per_s"] > 0 for m in run.metrics())
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    assert (run.adapter_dir / "adapter_config.json").is_file()
    assert [s for s, _ in run.checkpoints()] == [4, 8, 12]


def test_gradient_accumulation_counts_optimizer_steps(tmp_path, tiny):
    run, cfg = make_run(
        tmp_path / "run", tiny, batch_size=4, gradient_accumulation_steps=2, epochs=1
    )
    cfg.max_steps = None
    trainer, outcome = train(run, cfg)
    assert outcome == "succeeded"
    assert trainer.total_steps == math.ceil(len(QUESTIONS) / 4 / 2) == len(run.metrics())


def test_dpo_runs_uses_beta_and_prefers_the_chosen_answer(tmp_path, tiny):
    run, cfg = make_run(tmp_path / "run", tiny, method="dpo", learning_rate=5e-3, beta=0.5)
    trainer = Trainer(run, cfg)
    trainer.setup()
    batch = trainer.collate(list(range(8)), trainer.train)
    with torch.no_grad():
        loss0, _ = dpo_loss(trainer.model, batch, 0.5)
    assert float(loss0) == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the start
    assert trainer.fit() == "succeeded"
    trainer.model.eval()
    with torch.no_grad():
        small, _ = dpo_loss(trainer.model, batch, 0.1)
        large, stats = dpo_loss(trainer.model, batch, 0.5)
    assert float(large) < math.log(2) and stats["reward_accuracy"] > 0.5
    assert float(small) != pytest.approx(float(large))  # beta is used


class CancelAfter:
    """Stands in for the cancel flag: asks to stop after `n` batches."""

    def __init__(self, run: RunDir, n: int) -> None:
        self.calls, self.n = 0, n

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.n


def test_cancel_stops_gracefully_and_keeps_the_last_checkpoint(tmp_path, tiny):
    run, cfg = make_run(tmp_path / "run", tiny)
    run.cancel_requested = CancelAfter(run, 6)
    _, outcome = train(run, cfg)
    assert outcome == "cancelled"
    assert [s for s, _ in run.checkpoints()] == [4, 6]  # the periodic one and one at the stop
    assert not run.adapter_dir.exists()


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path, tiny):
    from safetensors.torch import load_file

    full, cfg = make_run(tmp_path / "full", tiny)
    train(full, cfg)
    cut, cfg2 = make_run(tmp_path / "cut", tiny)
    cut.cancel_requested = CancelAfter(cut, 5)  # like a kill: stops after step 5
    assert train(cut, cfg2)[1] == "cancelled"
    for step, folder in cut.checkpoints():  # a kill leaves only the periodic checkpoint
        if step != 4:
            import shutil

            shutil.rmtree(folder)
    resumed = RunDir(cut.path)
    trainer, outcome = train(resumed, TrainConfig.from_job(resumed.job()))
    assert outcome == "succeeded"
    assert any(e["type"] == "resume" and e["data"]["step"] == 4 for e in resumed.events())
    a = load_file(str(full.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_losses(tmp_path, tiny):
    plain, cfg = make_run(tmp_path / "plain", tiny)
    cfg.max_steps = 3
    train(plain, cfg)
    ckpt, cfg2 = make_run(tmp_path / "ckpt", tiny)
    cfg2.max_steps, cfg2.gradient_checkpointing = 3, True
    train(ckpt, cfg2)
    a = [m["train_loss"] for m in plain.metrics()]
    b = [m["train_loss"] for m in ckpt.metrics()]
    assert b == pytest.approx(a, rel=1e-4)


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_the_trainer_reads_every_hyperparameter_the_rules_send(method):
    """The backend sends hyperparameters in the rules' TRL / PEFT names; each one must land on its
    own TrainConfig field (a renamed `provider_name` in rules/local.toml fails here, not silently
    in a run)."""
    from finetune_hub.rules import resolve

    rules, _ = resolve("local", "smollm2-135m-instruct", method)
    sent = {spec.provider_name: _not_default(spec) for spec in rules.hyperparameters.values()}
    cfg = TrainConfig.from_job(
        {"spec": {"base_model": "m", "training_file": "t.jsonl"}, "hyperparameters": sent}
    )
    for spec in rules.hyperparameters.values():
        assert getattr(cfg, spec.name) == sent[spec.provider_name], spec.name


def _not_default(spec):
    """A valid value of `spec` that is not its default (so a field left at its default fails)."""
    if spec.choices:
        return next(c for c in spec.choices if c != spec.default)
    if spec.type == "bool":
        return not spec.default
    start = spec.default if spec.default is not None else (spec.min or 1)
    return start + 1 if spec.type == "int" else start * 2


# -- TRL-style settings, QLoRA, downloads, the model card --------------------------------------------
def test_save_total_limit_keeps_the_newest_checkpoints_and_logging_steps_sets_the_events(
    tmp_path, tiny
):
    run, cfg = make_run(tmp_path / "run", tiny, save_total_limit=2, logging_steps=3)
    cfg.save_steps = 2  # as the hyperparameter save_steps sends it
    _, outcome = train(run, cfg)
    assert outcome == "succeeded"
    assert [s for s, _ in run.checkpoints()] == [10, 12]  # 2, 4, ..., 8 rotated away
    logged = [e["data"]["step"] for e in run.events() if e["type"] == "metrics"]
    assert logged == [3, 6, 9, 12]
    assert len(run.metrics()) == 12  # metrics.jsonl still has every step
    assert all(m["peak_memory_mb"] > 0 for m in run.metrics())


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("linear", [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]),
        ("cosine", [0.5, 1.0, 1.0, 0.8536, 0.5, 0.1464]),
        ("constant_with_warmup", [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
        ("constant", [1.0] * 6),
    ],
)
def test_lr_scheduler_type_follows_transformers(kind, expected):
    """transformers' schedules, except that warmup starts at 1/warmup_steps, not at 0 (a first
    step with learning rate 0 would be wasted)."""
    from finetune_hub.providers.local.train import lr_schedule

    factor = lr_schedule(kind, warmup=2, total=6)
    assert [round(factor(s), 4) for s in range(6)] == expected


def test_the_trainer_uses_the_scheduler_it_is_given(tmp_path, tiny):
    run, cfg = make_run(tmp_path / "run", tiny, lr_scheduler_type="constant")
    cfg.max_steps = 3
    train(run, cfg)
    assert {m["learning_rate"] for m in run.metrics()} == {5e-3}


def test_bf16_trains_on_cpu_when_asked(tmp_path, tiny):
    run, cfg = make_run(tmp_path / "run", tiny, bf16=True)
    cfg.max_steps, cfg.save_steps = 2, 2
    trainer, outcome = train(run, cfg)
    assert outcome == "succeeded" and trainer.bf16
    assert next(trainer.model.get_base_model().parameters()).dtype == torch.bfloat16
    setup = next(e for e in run.events() if "total_steps" in (e.get("data") or {}))
    assert setup["data"]["weights"] == "bfloat16"


HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


@pytest.mark.skipif(
    not HAS_BNB, reason='QLoRA needs bitsandbytes: pip install "finetune-hub[qlora]"'
)
def test_qlora_4bit_nf4_trains_for_real_on_cpu(tmp_path, tiny):
    """bitsandbytes' CPU backend: the base loads as Linear4bit (NF4, double quantisation,
    float32 compute), LoRA trains on top, and the memory is reported."""
    import bitsandbytes as bnb

    run, cfg = make_run(tmp_path / "run", tiny)
    cfg.quantization, cfg.max_steps, cfg.save_steps = "4bit", 6, 6
    trainer, outcome = train(run, cfg)
    assert outcome == "succeeded"
    q_proj = trainer.model.get_base_model().model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
    assert q_proj.base_layer.weight.quant_state.quant_type == "nf4"
    losses = [m["train_loss"] for m in run.metrics()]
    assert losses[-1] < losses[0]
    setup = next(e for e in run.events() if "total_steps" in (e.get("data") or {}))
    assert setup["data"]["weights"] == "4-bit NF4" and setup["data"]["model_memory_mb"] > 0
    assert "4-bit NF4" in setup["message"] and run.metrics()[-1]["peak_memory_mb"] > 0
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()


def test_a_hub_id_is_downloaded_through_huggingface_hub_when_the_job_opts_in(
    tmp_path, tiny, monkeypatch
):
    asked = []

    def snapshot_download(repo_id, **kwargs):  # the Hub, as a folder built in code
        asked.append((repo_id, kwargs))
        return tiny["model"]

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    run, cfg = make_run(tmp_path / "run", tiny)
    cfg.base_model, cfg.download, cfg.max_steps, cfg.save_steps = "org/tiny-llama", True, 2, 2
    _, outcome = train(run, cfg)
    assert outcome == "succeeded"
    assert [r for r, _ in asked] == ["org/tiny-llama"]
    patterns = asked[0][1]["allow_patterns"]
    assert "*.safetensors" in patterns and not any(p.endswith((".bin", ".py")) for p in patterns)
    config = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/tiny-llama"
    assert any("downloading org/tiny-llama" in e["message"] for e in run.events())


def test_the_adapter_carries_a_model_card_and_loads_with_plain_peft(tmp_path, tiny):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run, cfg = make_run(tmp_path / "run", tiny)
    cfg.max_steps = 2
    train(run, cfg)
    card = (run.adapter_dir / "README.md").read_text()
    assert card.startswith("---\nbase_model: ") and "library_name: peft" in card
    digest = hashlib.sha256(Path(tiny["chat"]).read_bytes()).hexdigest()
    assert f"`{digest}` | {len(QUESTIONS)} |" in card
    assert "| learning_rate | 0.005 |" in card and "| lora_rank | 4 |" in card
    assert "optimizer steps | 2 |" in card and "peak memory" in card
    base = AutoModelForCausalLM.from_pretrained(tiny["model"])
    model = PeftModel.from_pretrained(base, str(run.adapter_dir))
    assert model.peft_config["default"].r == 4
    assert model.peft_config["default"].base_model_name_or_path == tiny["model"]


def test_push_to_hub_uploads_the_adapter_and_its_card_when_asked(tmp_path, tiny, monkeypatch):
    from finetune_hub.errors import FinetuneHubError
    from finetune_hub.jobs.evaluation import evaluate
    from finetune_hub.jobs.scorers import judge
    from finetune_hub.providers.local import publish

    run, cfg = make_run(tmp_path / "run", tiny)
    cfg.max_steps = 1
    train(run, cfg)
    table = evaluate(
        lambda m: "fine", [{"task_id": 7, "input": "Say hi."}],
        scorer=judge(model=lambda m: '{"score": 3}'), base=lambda m: "hi",
    )  # fmt: skip
    publish.add_evaluation(str(run.adapter_dir), table)
    card = (run.adapter_dir / "README.md").read_text()
    assert "## Evaluation" in card and "| 7 | Say hi. | 3 | 3 |" in card

    calls = []

    class FakeApi:  # huggingface_hub.HfApi, as far as push_to_hub uses it
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, folder_path, repo_id, **kwargs):
            files = {
                p.name: p.read_text()
                for p in Path(folder_path).iterdir()
                if p.suffix != ".safetensors"
            }
            names = sorted(p.name for p in Path(folder_path).iterdir())
            calls.append(("upload_folder", repo_id, names, files))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    with pytest.raises(FinetuneHubError, match="base_model='org/name'"):
        publish.push_to_hub(str(run.adapter_dir), "me/tiny-lora")  # base named by a local path
    url = publish.push_to_hub(
        str(run.adapter_dir), "me/tiny-lora", base_model="org/tiny", token="hf_x"
    )
    assert url == "https://huggingface.co/me/tiny-lora"
    assert calls[0] == ("token", "hf_x")
    assert calls[1] == ("create_repo", "me/tiny-lora", {"private": True, "exist_ok": True,
                                                         "repo_type": "model"})  # fmt: skip
    _, repo, names, files = calls[2]
    assert names == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                     "evaluation.json"]  # fmt: skip
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == "org/tiny"
    assert (
        'base_model: "org/tiny"' in files["README.md"] and tiny["model"] not in files["README.md"]
    )
