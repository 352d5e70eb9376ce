"""Who the local backend "talks to": this machine. Its options, and how errors of the worker,
torch and the file system read.

There are no credentials. The options are every setting of a local job that is not a
hyperparameter (those go in `hyperparameters=`, checked against `rules/local.toml`):

>>> LocalConnection({"quantisation": "4bit"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
finetune_hub.errors.OptionsError: local does not take option 'quantisation'; did you mean 'quantization'? ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from finetune_hub.errors import OptionsError, ProviderError
from finetune_hub.providers.base import Connection, ProviderOptions
from finetune_hub.providers.local.train import DEFAULT_TARGETS, JOB_FIELDS, TrainConfig


class LocalOptions(ProviderOptions):
    """Options of the `local` provider (unknown keys are refused, naming the nearest valid one).

    >>> LocalOptions(device="cuda:1", max_steps=60).max_steps
    60
    """

    output_dir: str | None = Field(
        default=None,
        description="where run folders go (default $FINETUNE_HUB_HOME/local-runs, "
        "else ~/.finetune_hub/local-runs)",
    )
    device: str | None = Field(
        default=None, description='"cpu", "cuda", "cuda:1"; default: a GPU when one is visible'
    )
    quantization: Literal["4bit", "8bit", "none"] | None = Field(
        default=None, description='"4bit" (QLoRA, NF4) or "8bit" base weights; needs bitsandbytes'
    )
    num_threads: int | None = Field(default=None, ge=1, description="CPU threads of the worker")
    max_steps: int | None = Field(default=None, ge=1, description="stop after N optimizer steps")
    save_steps: int | None = Field(default=None, ge=1, description="checkpoint every N steps")
    log_steps: int | None = Field(default=None, ge=1, description="a loss event every N steps")
    gradient_checkpointing: bool = Field(default=False, description="trade compute for memory")
    target_modules: list[str] | None = Field(
        default=None, description=f"LoRA target modules (default {list(DEFAULT_TARGETS)})"
    )
    weight_decay: float | None = Field(default=None, ge=0, description="AdamW weight decay")
    download: bool = Field(
        default=False,
        description="a base_model that is a Hugging Face Hub id is downloaded through "
        "huggingface_hub (its cache, its token); off: local folders only",
    )
    trust_remote_code: bool = Field(
        default=False, description="run model code that a model folder brings (auto_map)"
    )
    num_processes: int = Field(
        default=1, ge=1, description="training processes on this machine (one per GPU), torchrun"
    )
    num_machines: int = Field(default=1, ge=1, description="machines training together")
    machine_rank: int = Field(default=0, ge=0, description="this machine's rank, 0 .. n-1")
    main_process_ip: str | None = Field(
        default=None, description="address of the machine of rank 0 (several machines)"
    )
    main_process_port: int | None = Field(
        default=None, ge=1, le=65535, description="port of rank 0 (default 29500)"
    )
    distributed: Literal["ddp", "fsdp"] = Field(
        default="ddp",
        description='"ddp": a copy of the model per process; "fsdp": parameters sharded over '
        "the processes, for a model that does not fit one device",
    )

    #: options that describe where the run goes, not how it trains
    placement: ClassVar[frozenset[str]] = frozenset({"output_dir", "timeout"})

    def training(self) -> dict[str, Any]:
        """The options the worker trains with (`job.json`), unset and default ones left out."""
        keep = set(type(self).model_fields) - self.placement
        return self.model_dump(include=keep, exclude_none=True, exclude_defaults=True)


def _hyperparameter_names() -> set[str]:
    """What the trainer reads that is neither an option nor the job itself: the hyperparameters
    (before contract v2 the worker took them from options too)."""
    return set(TrainConfig.__dataclass_fields__) - set(LocalOptions.model_fields) - JOB_FIELDS


def default_output_dir() -> Path:
    """`$FINETUNE_HUB_HOME/local-runs`, else `~/.finetune_hub/local-runs`."""
    home = os.environ.get("FINETUNE_HUB_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".finetune_hub") / "local-runs"


class LocalConnection(Connection):
    """This machine: no credentials, a folder for runs, and the errors of a local training stack.

    >>> LocalConnection({"output_dir": "runs"}).output_dir
    PosixPath('runs')
    """

    provider = "local"
    Options = LocalOptions

    def __init__(self, options: Mapping[str, Any] | ProviderOptions | None = None) -> None:
        if isinstance(options, Mapping):
            misplaced = sorted(set(options) & _hyperparameter_names())
            if misplaced:
                given = ", ".join(f"{k!r}: ..." for k in misplaced)
                raise OptionsError(
                    f"local takes {', '.join(misplaced)} in hyperparameters, not in options: "
                    f"hyperparameters={{{given}}}"
                )
        super().__init__(options)
        opts = self.options
        if opts.num_machines > 1 and not opts.main_process_ip:
            raise OptionsError(
                f"local option num_machines={opts.num_machines} needs main_process_ip (the address "
                "of the machine of rank 0); every machine runs the same job with its own "
                "machine_rank"
            )
        if opts.machine_rank >= opts.num_machines:
            raise OptionsError(
                f"local option machine_rank={opts.machine_rank} must be below "
                f"num_machines={opts.num_machines}"
            )

    @property
    def output_dir(self) -> Path:
        out = self.options.output_dir
        return Path(out).expanduser() if out else default_output_dir()

    def translate(self, exc: BaseException, operation: str) -> ProviderError | None:
        import urllib.error

        if isinstance(exc, urllib.error.HTTPError):  # the local endpoint answered with an error
            return ProviderError(
                self.provider,
                operation,
                f"the local endpoint answered {exc.code}: {exc.reason}",
                status_code=exc.code,
                retryable=exc.code >= 500,
            )
        if isinstance(exc, urllib.error.URLError):
            return ProviderError(
                self.provider,
                operation,
                f"the local endpoint did not answer ({exc.reason}); it lives in the process that "
                "deployed it: deploy again there",
                retryable=False,
            )
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            return ProviderError(
                self.provider,
                operation,
                f"out of memory ({type(exc).__name__}): lower batch_size or max_seq_length, or "
                "use options={'quantization': '4bit', 'gradient_checkpointing': True}",
                retryable=False,
            )
        if isinstance(exc, TimeoutError | ConnectionError):
            return None  # the general rule: retryable
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if exc.filename else ""
            return ProviderError(
                self.provider,
                operation,
                f"{type(exc).__name__}: {exc.strerror or exc}{where}",
                retryable=False,
            )
        return None
