"""The local training loop on a tiny model built in code (one torch thread; in-process)."""

from __future__ import annotations

import json
import math

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
    sent = {spec.provider_name: spec.default for spec in rules.hyperparameters.values()}
    sent = {
        name: value + 1 if isinstance(value, int) else value * 2 for name, value in sent.items()
    }
    cfg = TrainConfig.from_job(
        {"spec": {"base_model": "m", "training_file": "t.jsonl"}, "hyperparameters": sent}
    )
    for spec in rules.hyperparameters.values():
        assert getattr(cfg, spec.name) == sent[spec.provider_name], spec.name
