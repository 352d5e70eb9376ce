"""The local training loop: LoRA / QLoRA SFT and DPO in plain PyTorch + peft.

Why not the HF Trainer or TRL here: on CPU a plain loop with length-grouped batches measured 1.87x
the Trainer's non-padding tokens/s and 1.32x TRL's padding-free packing
(bench/local_train_bench.py; docs/providers/local.md). The loop also takes the output layer only
on trained positions (losses.py), which saves most of the output-layer work on chat data whose
prompts are long.

Several processes (GPUs, or CPU processes on gloo) and machines: the same loop under torchrun
(distributed.py), each rank on its slice of every global batch, gradients averaged by DDP (or
parameters sharded by FSDP). The loss of a step is the sum over every trained token of the
global batch (and of its accumulated micro-batches) divided by their number, so one process with
batch 8 and two with batch 4 take the same step.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_hub.providers.local.data import (
    IGNORE,
    PreferenceExample,
    build_examples,
    collate_preference,
    collate_sft,
    length_grouped_batches,
)
from finetune_hub.providers.local.distributed import Dist, wrap
from finetune_hub.providers.local.losses import (
    dpo_loss,
    loss_module,
    sft_loss,
)
from finetune_hub.providers.local.models import (
    load_model,
    load_tokenizer,
    pick_device,
    resolve_model,
)
from finetune_hub.providers.local.runner import QuietRun, RunDir

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
    "log_steps": "logging_steps",  # the job option's older name
}
SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup")


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
    batch_size: int = 8  # per process, as TRL's per_device_train_batch_size
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-4
    warmup_steps: int = 0
    lr_scheduler_type: str = "linear"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_seq_length: int = 1024
    seed: int = 42
    beta: float = 0.1
    max_steps: int | None = None
    save_steps: int | None = None
    save_total_limit: int | None = None
    logging_steps: int | None = None
    bf16: bool | None = None  # None: on CUDA devices that support it
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    gradient_checkpointing: bool = False
    quantization: str | None = None
    device: str | None = None
    num_threads: int | None = None
    weight_decay: float = 0.0
    download: bool = False
    trust_remote_code: bool = False
    num_processes: int = 1
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    distributed: str = "ddp"

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


def build_peft_model(cfg: TrainConfig, folder: Path, device: str, bf16: bool = False) -> Any:
    """The base model (4-bit / 8-bit with `quantization`) with LoRA layers on `target_modules`."""
    from peft import LoraConfig, get_peft_model

    model = load_model(
        folder,
        quantization=cfg.quantization,
        device=device,
        bf16=bf16,
        trust_remote_code=cfg.trust_remote_code,
    )
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


def lr_schedule(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor at each step, as transformers' schedulers of the same names:
    `warmup` steps of linear warmup (from 1/warmup, so no step is taken at rate 0), then linear
    or cosine decay towards 0, or constant (`constant` has no warmup)."""
    if kind not in SCHEDULES:
        raise ValueError(f"lr_scheduler_type {kind!r}: use one of {', '.join(SCHEDULES)}")

    def factor(step: int) -> float:
        if kind == "constant":
            return 1.0
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant_with_warmup":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    return lr_schedule("linear", warmup, total)


def _to(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device) for k, v in batch.items()}


def peak_memory_mb(device: str) -> float:
    """The peak memory of this process so far: CUDA memory allocated on a GPU, else the peak
    resident set size."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Trainer:
    """One run: data, model, optimizer, the loop, checkpoints, resume, cancel; one process or one
    rank of several (then rank 0 alone writes the run folder)."""

    def __init__(self, run: RunDir, cfg: TrainConfig) -> None:
        self.dist = Dist.from_env()
        self.run = run if self.dist.main else QuietRun(run.path)
        self.cfg = cfg

    def setup(self) -> None:
        import torch

        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        self.device = self.dist.start(pick_device(cfg.device))
        on_cuda = self.device.startswith("cuda")
        self.bf16 = bool(
            cfg.bf16 if cfg.bf16 is not None else on_cuda and torch.cuda.is_bf16_supported()
        )
        self.run.add_event(f"loading base model {cfg.base_model}")
        self.folder = self._base_folder()
        self.tokenizer = load_tokenizer(self.folder, trust_remote_code=cfg.trust_remote_code)
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
        self.model = build_peft_model(cfg, self.folder, self.device, self.bf16)
        if cfg.download:  # the adapter names the Hub id, as peft writes it for Hub models
            self.model.peft_config["default"].base_model_name_or_path = cfg.base_model
        else:
            self.model.peft_config["default"].base_model_name_or_path = str(self.folder)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.engine = wrap(
            loss_module(self.model, cfg.method, cfg.beta), self.dist, self.device, cfg.distributed
        )
        # after wrapping: FSDP replaces the parameters with their shards
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer, optim_name = self._optimizer(params)
        self.global_batch = cfg.batch_size * self.dist.world
        self.batches_per_epoch = math.ceil(len(self.train) / self.global_batch)
        self.steps_per_epoch = max(
            1, math.ceil(self.batches_per_epoch / cfg.gradient_accumulation_steps)
        )
        self.total_steps = int(cfg.max_steps or cfg.epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_schedule(cfg.lr_scheduler_type, cfg.warmup_steps, self.total_steps)
        )
        self.lengths = [len(e) for e in self.train]
        self.weights = [_loss_weight(e) for e in self.train]
        footprint = self.model.get_base_model().get_memory_footprint() / 2**20
        weights = {"4bit": "4-bit NF4", "8bit": "8-bit"}.get(cfg.quantization or "", "")
        weights = weights or ("bfloat16" if self.bf16 else "float32")
        procs = f" x {self.dist.world} processes ({cfg.distributed})" if self.dist.on else ""
        self.run.add_event(
            f"{len(self.train)} training examples, {self.total_steps} steps of "
            f"{self.global_batch * cfg.gradient_accumulation_steps} examples, LoRA r={cfg.lora_rank} "
            f"({trainable:,} trainable parameters) on {self.device}{procs}; base weights "
            f"{weights}, {footprint:,.1f} MB; optimizer {optim_name}",
            data={
                "examples": len(self.train),
                "total_steps": self.total_steps,
                "trainable_parameters": trainable,
                "world_size": self.dist.world,
                "global_batch_size": self.global_batch,
                "model_memory_mb": round(footprint, 1),
                "peak_memory_mb": round(peak_memory_mb(self.device), 1),
                "weights": weights,
                "optimizer": optim_name,
            },
        )

    def _base_folder(self) -> Path:
        """The base model's folder; with `download`, rank 0 downloads and the others then find
        huggingface_hub's cached copy."""
        cfg = self.cfg
        if cfg.download and resolve_kind(cfg.base_model) == "hub" and self.dist.main:
            self.run.add_event(
                f"downloading {cfg.base_model} from the Hugging Face Hub (huggingface_hub's cache)"
            )
        if not self.dist.main:
            self.dist.barrier()
        folder = resolve_model(
            cfg.base_model, download=cfg.download, trust_remote_code=cfg.trust_remote_code
        )
        if self.dist.main:
            self.dist.barrier()
        return folder

    def _optimizer(self, params: list[Any]) -> tuple[Any, str]:
        """AdamW; on CUDA with quantized base weights, bitsandbytes' paged AdamW (its state can
        page out to CPU memory under pressure, as QLoRA does)."""
        import torch

        cfg = self.cfg
        if cfg.quantization and self.device.startswith("cuda"):
            import bitsandbytes as bnb

            opt = bnb.optim.PagedAdamW32bit(
                params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
            )
            return opt, "paged_adamw_32bit"
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay), (
            "adamw_torch"
        )

    # -- checkpoints --------------------------------------------------------------------------------
    @property
    def sharded(self) -> bool:
        """Whether the parameters (and so the optimizer state) are sharded over the ranks."""
        return self.dist.on and self.cfg.distributed == "fsdp"

    def _adapter_state(self) -> dict[str, Any] | None:
        """The adapter weights in full on rank 0 (gathered from the shards under FSDP: every
        rank takes part); None when the model saves its own state (one process, DDP)."""
        if not self.sharded:
            return None
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.model)
        return {
            k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().cpu()
            for k, v in state.items()
        }

    def save(self, name: str, state: dict[str, Any], *, with_optimizer: bool = True) -> Path | None:
        """Write checkpoint `name` (or the final `adapter`); every rank calls it (under FSDP the
        adapter and the optimizer state are gathered, collectives on every rank), rank 0 writes.

        `optimizer.pt` holds the optimizer, scheduler and RNG states: the optimizer's own
        `state_dict()` (one process, DDP: every rank holds all of it), or under FSDP the full
        state gathered on rank 0 by `torch.distributed.checkpoint`'s `get_optimizer_state_dict`
        (keyed by parameter name, not sharded: `restore` shards it again on every rank)."""
        import torch

        full = self._adapter_state()
        optimizer = self._gathered_optimizer_state() if with_optimizer else None
        if not self.dist.main:
            return None
        tmp = self.run.new_folder(name)
        # LoRA never trains the embeddings: no need for peft to look at the base's vocabulary
        self.model.save_pretrained(str(tmp), state_dict=full, save_embedding_layers=False)
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
                    "optimizer": optimizer,
                    "scheduler": self.scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                },
                tmp / "optimizer.pt",
            )
            (tmp / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
        return self.run.commit_folder(tmp, name)

    def _gathered_optimizer_state(self) -> dict[str, Any]:
        """The whole optimizer state (on rank 0; an empty dict on the other ranks under FSDP,
        where every rank must call this: it gathers the shards)."""
        if not self.sharded:
            return self.optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        return get_optimizer_state_dict(
            self.model,
            self.optimizer,
            options=StateDictOptions(full_state_dict=True, cpu_offload=True),
        )

    def rotate(self) -> None:
        """Keep the `save_total_limit` newest checkpoints (rank 0)."""
        limit = self.cfg.save_total_limit
        if not limit or not self.dist.main:
            return
        import shutil

        found = self.run.checkpoints()
        for _step, folder in found[: max(0, len(found) - limit)]:
            shutil.rmtree(folder, ignore_errors=True)

    def restore(self) -> dict[str, Any]:
        """Load the last checkpoint, if any: adapter, optimizer, scheduler and RNG states;
        returns its trainer state (where to go on from)."""
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if self.sharded:
            return self._restore_sharded()
        found = RunDir(self.run.path).last_checkpoint()
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

    def _restore_sharded(self) -> dict[str, Any]:
        """`restore` under FSDP: rank 0 alone reads the checkpoint (the other ranks need not see
        the run folder); whether there is one, or why it cannot be read, the scheduler and RNG
        states go to every rank in one broadcast, then the adapter and the optimizer state
        through `torch.distributed.checkpoint`'s `set_model_state_dict` /
        `set_optimizer_state_dict` with `broadcast_from_rank0` (rank 0 passes the full state,
        the others an empty dict; each rank keeps its shard). Every rank makes the same
        collective calls in the same order, whatever it found."""
        import torch
        import torch.distributed as dist
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        head: dict[str, Any] | None = None
        adapter: dict[str, Any] = {}
        optimizer: dict[str, Any] = {}
        if self.dist.main:
            try:
                found = RunDir(self.run.path).last_checkpoint()
                if found is not None:
                    head, adapter, optimizer = self._read_sharded_checkpoint(*found)
            except Exception as exc:  # told to every rank below, so that all stop
                head = {"error": f"{type(exc).__name__}: {exc}"}
        box = [head]
        dist.broadcast_object_list(box, src=0)
        head = box[0]
        if head is None:
            return {"step": 0, "epoch": 0, "batch": 0}
        if "error" in head:
            raise RuntimeError(f"cannot resume from the last checkpoint: {head['error']}")
        # strict=False: the checkpoint holds the adapter, not the frozen base weights
        set_model_state_dict(
            self.model,
            adapter,
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False),
        )
        set_optimizer_state_dict(
            self.model,
            self.optimizer,
            optimizer,
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True),
        )
        self.scheduler.load_state_dict(head["scheduler"])
        torch.set_rng_state(head["rng"])
        step = head["state"]["step"]
        self.run.add_event(f"resuming from checkpoint-{step}", type="resume", data={"step": step})
        return head["state"]

    def _read_sharded_checkpoint(
        self, step: int, folder: Path
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Rank 0's part of `_restore_sharded`: (scheduler, RNG and trainer states; the adapter
        under the model's parameter names; the optimizer state by parameter name)."""
        import torch
        from safetensors.torch import load_file

        if not (folder / "optimizer.pt").is_file():
            raise FileNotFoundError(
                f"{folder} has no optimizer.pt (FSDP checkpoints written before resuming FSDP "
                "runs was supported kept only the adapter)"
            )
        saved = torch.load(folder / "optimizer.pt", weights_only=False)
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        # the trainable parameters, in the optimizer's order, under the names
        # torch.distributed.checkpoint uses; peft saves them without the adapter's name
        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        adapter_name = f".{self.model.active_adapter}"
        by_saved_name = {n.replace(adapter_name, ""): n for n in names}
        weights = load_file(str(folder / "adapter_model.safetensors"))
        if set(weights) != set(by_saved_name):
            missing = sorted(set(by_saved_name) - set(weights))
            extra = sorted(set(weights) - set(by_saved_name))
            raise ValueError(
                f"{folder} does not hold this run's adapter (missing {missing[:3]}, "
                f"unexpected {extra[:3]})"
            )
        adapter = {by_saved_name[k]: v for k, v in weights.items()}
        head = {
            "state": state,
            "scheduler": saved["scheduler"],
            "rng": saved["rng"],
        }
        return head, adapter, _by_name(saved["optimizer"], names)

    # -- the loop -----------------------------------------------------------------------------------
    def loss(self, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        """The mean loss of one batch (validation, tests)."""
        if self.cfg.method == "dpo":
            return dpo_loss(self.model, batch, self.cfg.beta)
        return sft_loss(self.model, batch), {}

    def collate(self, idx: list[int], examples: list[Any]) -> dict[str, Any]:
        rows = [examples[i] for i in idx]
        if self.cfg.method == "dpo":
            return _to(collate_preference(rows, self.pad_id), self.device)
        return _to(collate_sft(rows, self.pad_id), self.device)

    def _forward(self, batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        import torch

        if self.bf16:
            kind = "cuda" if self.device.startswith("cuda") else "cpu"
            with torch.autocast(kind, dtype=torch.bfloat16):
                return self.engine(batch)
        return self.engine(batch)

    def validation_loss(self) -> float | None:
        """The mean loss over the validation examples (every rank takes its share)."""
        import torch

        if not self.valid:
            return None
        self.model.eval()
        weights = [_loss_weight(e) for e in self.valid]
        total, count = 0.0, 0.0
        size = self.cfg.batch_size * self.dist.world
        with torch.no_grad():
            for b in range(0, len(self.valid), size):
                mine = list(range(b, min(b + size, len(self.valid))))[
                    self.dist.rank :: self.dist.world
                ]
                if not mine:
                    mine, scale = [b], 0.0  # every rank runs the same number of forwards
                else:
                    scale = 1.0
                loss, _ = self._forward(self.collate(mine, self.valid))
                total += float(loss) * scale
                count += sum(weights[i] for i in mine) * scale
        total, count = self.dist.sum([total, count], self.device)
        self.model.train()
        return total / max(1.0, count)

    def fit(self) -> str:
        """Train to the end (returns "succeeded") or until cancelled (returns "cancelled")."""
        cfg = self.cfg
        state = self.restore()
        step, epoch, start_batch = int(state["step"]), int(state["epoch"]), int(state["batch"])
        save_every = cfg.save_steps or max(1, self.total_steps // 4)
        log_every = cfg.logging_steps or max(1, self.total_steps // 20)
        self.model.train()
        self.run.write_status(state="running", step=step, total_steps=self.total_steps)
        last_state = dict(state, step=step)
        try:
            step = self._loop(step, epoch, start_batch, save_every, log_every, last_state)
        except Cancelled:
            # Keep what was learned: a checkpoint at the last finished step, if newer than the last.
            saved = RunDir(self.run.path).last_checkpoint()
            newer = bool(last_state["step"]) and (saved is None or saved[0] < last_state["step"])
            # rank 0's view of the run folder decides for all: saving takes collectives
            if self.dist.agree(newer, self.device):
                self.save(f"checkpoint-{last_state['step']}", last_state)
                self.rotate()
            return "cancelled"
        self.save("adapter", {"step": step}, with_optimizer=False)
        if self.dist.main:
            from finetune_hub.providers.local.publish import write_model_card

            write_model_card(self.run.adapter_dir)
        return "succeeded"

    def _stop(self) -> bool:
        return self.dist.agree(self.run.cancel_requested(), self.device)

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
        world, rank = self.dist.world, self.dist.rank
        window_tokens, window_start = 0.0, time.perf_counter()
        while step < self.total_steps:
            batches = length_grouped_batches(self.lengths, self.global_batch, cfg.seed + epoch)
            b = start_batch
            while b < len(batches) and step < self.total_steps:
                group = batches[b : b + accum]
                # the step's loss: every trained token (or pair) of the global group counts once
                count = sum(self.weights[i] for idx in group for i in idx)
                sums: dict[str, float] = {}
                for k, idx in enumerate(group):
                    if self._stop():
                        raise Cancelled
                    mine = idx[rank::world]
                    scale = float(world) / max(1, count)
                    if not mine:  # fewer examples than ranks: a forward that adds nothing
                        mine, scale = idx[:1], 0.0
                    batch = self.collate(mine, self.train)
                    sync = self.dist.on and k < len(group) - 1 and hasattr(self.engine, "no_sync")
                    with self.engine.no_sync() if sync else _nothing():
                        loss_sum, stats = self._forward(batch)
                        (loss_sum * scale).backward()
                    if scale:
                        sums["loss"] = sums.get("loss", 0.0) + float(loss_sum.detach())
                        for key, value in stats.items():
                            sums[key] = sums.get(key, 0.0) + float(value)
                        window_tokens += int(batch["attention_mask"].sum())
                names = ["loss", *sorted(k for k in sums if k != "loss")]
                if cfg.method == "dpo":
                    names = ["loss", "reward_accuracy", "reward_margin"]
                values = self.dist.sum(
                    [sums.get(k, 0.0) for k in names] + [window_tokens], self.device
                )
                window_tokens = values.pop()
                totals = dict(zip(names, values, strict=True))
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                b += len(group)
                step += 1
                elapsed = time.perf_counter() - window_start
                point = {
                    "step": step,
                    "epoch": round(epoch + b / len(batches), 4),
                    "train_loss": totals.pop("loss") / max(1, count),
                    "learning_rate": self.scheduler.get_last_lr()[0],
                    "tokens_per_s": window_tokens / elapsed if elapsed > 0 else 0.0,
                    "peak_memory_mb": round(peak_memory_mb(self.device), 1),
                    **{k: v / max(1, count) for k, v in totals.items()},
                }
                window_tokens, window_start = 0.0, time.perf_counter()
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
                    self.rotate()
                self.run.add_metric(point)
                if step % log_every == 0 or step == self.total_steps:
                    self.run.add_event(
                        f"step {step}/{self.total_steps}: loss {point['train_loss']:.4f}, "
                        f"{point['tokens_per_s']:.0f} tokens/s, peak memory "
                        f"{point['peak_memory_mb']:,.0f} MB",
                        type="metrics",
                        data={k: v for k, v in point.items() if isinstance(v, int | float)},
                    )
                self.run.write_status(step=step)
            epoch, start_batch = epoch + 1, 0
        return step


def _by_name(optimizer: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """An optimizer state dict keyed by parameter name, as `torch.distributed.checkpoint` loads
    it: an FSDP checkpoint's already is; one from `optimizer.state_dict()` (a checkpoint of one
    process or DDP, keyed by the position of each parameter in the optimizer) is renamed.

    >>> _by_name({"state": {0: {"step": 1}}, "param_groups": [{"params": [0, 1]}]}, ["a", "b"])
    {'state': {'a': {'step': 1}}, 'param_groups': [{'params': ['a', 'b']}]}
    """
    groups = optimizer["param_groups"]
    if all(isinstance(i, str) for g in groups for i in g["params"]):
        return optimizer
    if sorted(i for g in groups for i in g["params"]) != list(range(len(names))):
        raise ValueError(
            f"the checkpoint's optimizer state has {sum(len(g['params']) for g in groups)} "
            f"parameters, this run trains {len(names)}"
        )
    return {
        "state": {names[i]: v for i, v in optimizer["state"].items()},
        "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in groups],
    }


def _loss_weight(example: Any) -> int:
    """What an example adds to a step's loss denominator: its trained next-token targets (SFT),
    or 1 (a DPO pair)."""
    if isinstance(example, PreferenceExample):
        return 1
    return sum(1 for x in example.labels[1:] if x != IGNORE)


def resolve_kind(name: str) -> str:
    """ "hub" for a name that is neither the embedded default nor an existing folder."""
    from finetune_hub.providers.local.models import canonical_name

    if canonical_name(name) is not None or Path(name).expanduser().exists():
        return "local"
    return "hub"


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield
