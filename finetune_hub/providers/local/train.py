"""The local training loop: LoRA / QLoRA SFT and DPO in plain PyTorch + peft.

Why not the HF Trainer or TRL here: on CPU a plain loop with length-grouped batches measured 1.66x
the Trainer's non-padding tokens/s and TRL was slower still (shared/perf-findings.md). The loop
also takes the output layer only on trained positions, which saves most of the output-layer work
on chat data whose prompts are long.

Several GPUs: run the worker under `accelerate launch` (see docs/providers/local.md); this loop
stays a one-device loop.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_hub.providers.local.data import (
    IGNORE,
    build_examples,
    collate_preference,
    collate_sft,
    length_grouped_batches,
)
from finetune_hub.providers.local.models import (
    load_model,
    load_tokenizer,
    pick_device,
    resolve_model,
)
from finetune_hub.providers.local.runner import RunDir

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
#: `job.json` fields that describe the job itself, not how it trains
JOB_FIELDS = frozenset({"base_model", "training_file", "method", "validation_file", "format"})
#: The TRL / PEFT names the backend sends (rules/local.toml `provider_name`) -> our fields; the
#: other hyperparameters have the same name on both sides.
WIRE_NAMES = {
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "r": "lora_rank",
    "max_length": "max_seq_length",
}


@dataclass
class TrainConfig:
    """Everything a run needs, from `job.json` (defaults filled in).

    >>> TrainConfig.from_job({"spec": {"base_model": "m", "training_file": "t.jsonl"},
    ...                       "hyperparameters": {"r": 4, "num_train_epochs": 2}}).lora_rank
    4
    """

    base_model: str
    training_file: str
    method: str = "sft"
    validation_file: str | None = None
    format: str | None = None
    epochs: int = 3
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-4
    warmup_steps: int = 0
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_seq_length: int = 1024
    seed: int = 42
    beta: float = 0.1
    max_steps: int | None = None
    save_steps: int | None = None
    log_steps: int | None = None
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    gradient_checkpointing: bool = False
    quantization: str | None = None
    device: str | None = None
    num_threads: int | None = None
    weight_decay: float = 0.0

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> TrainConfig:
        """The config of a `job.json`: `spec` (the job and its training options) and
        `hyperparameters`, in the TRL / PEFT names the backend writes or in ours."""
        spec = job["spec"]
        values: dict[str, Any] = {name: spec.get(name) for name in JOB_FIELDS}
        values["method"] = values["method"] or "sft"
        names = cls.__dataclass_fields__
        hyperparameters = job.get("hyperparameters") or spec.get("hyperparameters") or {}
        for source in (hyperparameters, spec.get("options") or {}):
            for key, value in source.items():
                name = WIRE_NAMES.get(key, key)
                if name in names and name not in JOB_FIELDS and value is not None:
                    values[name] = value
        return cls(**values)


class Cancelled(Exception):
    """The run was asked to stop (cancel flag or SIGTERM)."""


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def build_peft_model(cfg: TrainConfig, folder: Path, device: str) -> Any:
    from peft import LoraConfig, get_peft_model

    model = load_model(folder, quantization=cfg.quantization, device=device)
    if cfg.quantization:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing
        )
    model.config.use_cache = False
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    if cfg.gradient_checkpointing:
        base = model.get_base_model()
        if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5
            base.activation_checkpointing_enable(
                activation_checkpointing_kwargs={"use_reentrant": False}
            )
        else:
            base.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        model.enable_input_require_grads()
    return model


def _parts(model: Any) -> tuple[Any, Any]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def token_logprobs(model: Any, batch: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Log-probabilities of the labelled next tokens only: (logps, row index, targets).

    The output layer (often the biggest matmul for small models) runs on labelled positions only.
    """
    import torch

    decoder, head = _parts(model)
    hidden = decoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    logits = head(hidden[:, :-1][keep]).float()
    picked = targets[keep]
    logps = torch.log_softmax(logits, dim=-1).gather(-1, picked.unsqueeze(-1)).squeeze(-1)
    rows = keep.nonzero()[:, 0]
    return logps, rows, picked


def sft_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over trained (assistant) tokens."""
    logps, _, _ = token_logprobs(model, batch)
    return -logps.mean()


def sequence_logps(model: Any, batch: dict[str, Any]) -> Any:
    import torch

    logps, rows, _ = token_logprobs(model, batch)
    out = torch.zeros(batch["input_ids"].shape[0], dtype=logps.dtype, device=logps.device)
    return out.index_add(0, rows, logps)


def dpo_loss(model: Any, batch: dict[str, Any], beta: float) -> tuple[Any, dict[str, float]]:
    """The DPO loss; the reference is the same model with its adapter disabled."""
    import torch
    import torch.nn.functional as F

    n = batch["input_ids"].shape[0] // 2
    with torch.no_grad(), model.disable_adapter():
        ref = sequence_logps(model, batch)
    pol = sequence_logps(model, batch)
    margin = (pol[:n] - ref[:n]) - (pol[n:] - ref[n:])
    loss = -F.logsigmoid(beta * margin).mean()
    stats = {
        "reward_margin": float(beta * margin.mean().detach()),
        "reward_accuracy": float((margin > 0).float().mean()),
    }
    return loss, stats


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _to(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device) for k, v in batch.items()}


class Trainer:
    """One run: data, model, optimizer, the loop, checkpoints, resume, cancel."""

    def __init__(self, run: RunDir, cfg: TrainConfig) -> None:
        self.run = run
        self.cfg = cfg

    def setup(self) -> None:
        import torch

        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        self.device = pick_device(cfg.device)
        self.run.add_event(f"loading base model {cfg.base_model}")
        folder = resolve_model(cfg.base_model)
        self.folder = folder
        self.tokenizer = load_tokenizer(folder)
        self.pad_id = self.tokenizer.pad_token_id
        self.train = build_examples(
            self.tokenizer, cfg.training_file, cfg.method, cfg.max_seq_length, cfg.format
        )
        self.valid = (
            build_examples(
                self.tokenizer, cfg.validation_file, cfg.method, cfg.max_seq_length, cfg.format
            )[:64]
            if cfg.validation_file
            else []
        )
        self.model = build_peft_model(cfg, folder, self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.batches_per_epoch = math.ceil(len(self.train) / cfg.batch_size)
        self.steps_per_epoch = max(
            1, math.ceil(self.batches_per_epoch / cfg.gradient_accumulation_steps)
        )
        self.total_steps = int(cfg.max_steps or cfg.epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_schedule(cfg.warmup_steps, self.total_steps)
        )
        self.lengths = [len(e) for e in self.train]
        trainable = sum(p.numel() for p in params)
        self.run.add_event(
            f"{len(self.train)} training examples, {self.total_steps} steps, LoRA r={cfg.lora_rank} "
            f"({trainable:,} trainable parameters) on {self.device}",
            data={
                "examples": len(self.train),
                "total_steps": self.total_steps,
                "trainable_parameters": trainable,
            },
        )

    # -- checkpoints --------------------------------------------------------------------------------
    def save(self, name: str, state: dict[str, Any], *, with_optimizer: bool = True) -> Path:
        import torch

        tmp = self.run.new_folder(name)
        self.model.save_pretrained(str(tmp))
        (tmp / "finetune_hub.json").write_text(
            json.dumps(
                {
                    "base_model": self.cfg.base_model,
                    "base_path": str(self.folder),
                    "method": self.cfg.method,
                    **state,
                }
            ),
            encoding="utf-8",
        )
        if with_optimizer:
            torch.save(
                {
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                },
                tmp / "optimizer.pt",
            )
            (tmp / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
        return self.run.commit_folder(tmp, name)

    def restore(self) -> dict[str, Any]:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        found = self.run.last_checkpoint()
        if found is None:
            return {"step": 0, "epoch": 0, "batch": 0}
        step, folder = found
        set_peft_model_state_dict(self.model, load_file(str(folder / "adapter_model.safetensors")))
        saved = torch.load(folder / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        self.run.add_event(f"resuming from checkpoint-{step}", type="resume", data={"step": step})
        return state

    # -- the loop -----------------------------------------------------------------------------------
    def loss(self, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        if self.cfg.method == "dpo":
            return dpo_loss(self.model, batch, self.cfg.beta)
        return sft_loss(self.model, batch), {}

    def collate(self, idx: list[int], examples: list[Any]) -> dict[str, Any]:
        rows = [examples[i] for i in idx]
        if self.cfg.method == "dpo":
            return _to(collate_preference(rows, self.pad_id), self.device)
        return _to(collate_sft(rows, self.pad_id), self.device)

    def validation_loss(self) -> float | None:
        import torch

        if not self.valid:
            return None
        self.model.eval()
        total, n = 0.0, 0
        with torch.no_grad():
            for b in range(0, len(self.valid), self.cfg.batch_size):
                idx = list(range(b, min(b + self.cfg.batch_size, len(self.valid))))
                loss, _ = self.loss(self.collate(idx, self.valid))
                total += float(loss) * len(idx)
                n += len(idx)
        self.model.train()
        return total / max(1, n)

    def fit(self) -> str:
        """Train to the end (returns "succeeded") or until cancelled (returns "cancelled")."""
        cfg = self.cfg
        state = self.restore()
        step, epoch, start_batch = int(state["step"]), int(state["epoch"]), int(state["batch"])
        save_every = cfg.save_steps or max(1, self.total_steps // 4)
        log_every = cfg.log_steps or max(1, self.total_steps // 20)
        self.model.train()
        self.run.write_status(state="running", step=step, total_steps=self.total_steps)
        last_state = dict(state, step=step)
        try:
            step = self._loop(step, epoch, start_batch, save_every, log_every, last_state)
        except Cancelled:
            # Keep what was learned: a checkpoint at the last finished step, if newer than the last.
            saved = self.run.last_checkpoint()
            if last_state["step"] and (saved is None or saved[0] < last_state["step"]):
                self.save(f"checkpoint-{last_state['step']}", last_state)
            return "cancelled"
        self.save("adapter", {"step": step}, with_optimizer=False)
        return "succeeded"

    def _loop(
        self,
        step: int,
        epoch: int,
        start_batch: int,
        save_every: int,
        log_every: int,
        last_state: dict[str, Any],
    ) -> int:
        cfg = self.cfg
        accum = cfg.gradient_accumulation_steps
        window_tokens, window_start = 0, time.perf_counter()
        while step < self.total_steps:
            batches = length_grouped_batches(self.lengths, cfg.batch_size, cfg.seed + epoch)
            b = start_batch
            while b < len(batches) and step < self.total_steps:
                group = batches[b : b + accum]
                losses, extras = [], {}
                for idx in group:
                    if self.run.cancel_requested():
                        raise Cancelled
                    batch = self.collate(idx, self.train)
                    loss, extras = self.loss(batch)
                    (loss / len(group)).backward()
                    losses.append(float(loss.detach()))
                    window_tokens += int(batch["attention_mask"].sum())
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                b += len(group)
                step += 1
                elapsed = time.perf_counter() - window_start
                point = {
                    "step": step,
                    "epoch": round(epoch + b / len(batches), 4),
                    "train_loss": sum(losses) / len(losses),
                    "learning_rate": self.scheduler.get_last_lr()[0],
                    "tokens_per_s": window_tokens / elapsed if elapsed > 0 else 0.0,
                    **extras,
                }
                window_tokens, window_start = 0, time.perf_counter()
                next_state = {
                    "step": step,
                    "epoch": epoch if b < len(batches) else epoch + 1,
                    "batch": b if b < len(batches) else 0,
                }
                last_state.clear()
                last_state.update(next_state)
                if step % save_every == 0 or step == self.total_steps:
                    valid = self.validation_loss()
                    if valid is not None:
                        point["valid_loss"] = valid
                    self.save(f"checkpoint-{step}", next_state)
                self.run.add_metric(point)
                if step % log_every == 0 or step == self.total_steps:
                    self.run.add_event(
                        f"step {step}/{self.total_steps}: loss {point['train_loss']:.4f}, {point['tokens_per_s']:.0f} tokens/s",
                        type="metrics",
                        data={k: v for k, v in point.items() if isinstance(v, int | float)},
                    )
                self.run.write_status(step=step)
            epoch, start_batch = epoch + 1, 0
        return step
