"""What the local backend can tell before a run starts (`LocalBackend.preflight`): whether the
machine has the memory the base model needs. That the model folder is there is `check()`'s
(nothing is downloaded unless the job says so), and the preflight report includes it.

The need is a rough rule, said as such: LoRA keeps the base weights (about their size on disk,
twice that when 16-bit weights are loaded as 32-bit on a CPU), a small adapter and its optimizer
state, and the activations of a batch; `2 x weights + 0.5 GiB` covers the usual cases.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from finetune_hub.errors import FinetuneHubError
from finetune_hub.issues import Issue, Severity

if TYPE_CHECKING:
    from finetune_hub.providers.base import PreparedJob
    from finetune_hub.providers.local.backend import LocalBackend

GIB = 1024**3
_WEIGHTS = (".safetensors", ".bin", ".gguf", ".pt")


def weights_bytes(path: Path) -> int:
    """The size of a model's weight files (a folder's, or one file's)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.suffix in _WEIGHTS and p.is_file())


def memory_bytes() -> tuple[int | None, int | None]:
    """(available, total) RAM in bytes from /proc/meminfo, or (None, None) where it is unknown."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        kib = {k: int(v.strip().split()[0]) * 1024 for k, v in fields.items() if v.strip()}
        return kib.get("MemAvailable"), kib.get("MemTotal")
    except (OSError, ValueError, IndexError):
        pages = getattr(os, "sysconf", None)
        try:
            total = pages("SC_PHYS_PAGES") * pages("SC_PAGE_SIZE") if pages else None
        except (ValueError, OSError):
            total = None
        return None, total


def preflight(backend: LocalBackend, job: PreparedJob) -> list[Issue]:
    from finetune_hub.providers.local.models import find_model

    try:
        where = find_model(job.model_id)
    except FinetuneHubError:
        return []  # check() says where the model is missing and how to get it
    weights = weights_bytes(Path(where))
    if not weights:
        return []
    need = 2 * weights + GIB // 2
    available, total = memory_bytes()
    gib = lambda n: f"{n / GIB:.1f} GiB"  # noqa: E731
    if total is not None and need > total:
        return [
            Issue(
                code="not_enough_memory",
                field="base_model",
                message=f"{job.model_id} ({gib(weights)} of weights) needs about {gib(need)} to "
                f"train with LoRA; this machine has {gib(total)} in all. Fix: a smaller model, "
                "options quantization='4bit' on a GPU, or a bigger machine",
            )
        ]
    if available is not None and need > available:
        return [
            Issue(
                code="memory_tight",
                field="base_model",
                severity=Severity.WARNING,
                message=f"{job.model_id} needs about {gib(need)} to train with LoRA; "
                f"{gib(available)} is free now (of {gib(total or 0)}). Close what holds memory, "
                "or expect swapping",
            )
        ]
    return []
