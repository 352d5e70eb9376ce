"""Publishing a local adapter: its model card (README.md) and `push_to_hub`.

The worker writes the card into `adapter/` when a run succeeds: the base model, the training
data (file hash and record count), the settings, how training went (steps, losses, tokens/s,
peak memory). `add_evaluation` adds an `fh.evaluate` table to it. The folder loads with plain
peft (`PeftModel.from_pretrained(base, folder)`). `push_to_hub` uploads it to the Hugging Face
Hub, only when called: nothing is published by itself.

>>> table = fh.evaluate(model, "tasks.jsonl", scorer=fh.scorers.judge(model=strong))  # doctest: +SKIP
>>> add_evaluation(model, table)  # doctest: +SKIP
>>> push_to_hub(model, "me/llm-jp-3-13b-it-lora", base_model="llm-jp/llm-jp-3-13b")  # doctest: +SKIP
'https://huggingface.co/me/llm-jp-3-13b-it-lora'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from finetune_hub.errors import FinetuneHubError
from finetune_hub.providers.local.runner import RunDir, read_json, read_jsonl, write_json_atomic

CARD = "README.md"
EVALUATION = "evaluation.json"
#: What goes to the Hub: the adapter and its card (finetune_hub.json holds local paths).
PUBLISHED = ("adapter_model.safetensors", "adapter_config.json", CARD, EVALUATION)


def adapter_folder(model: Any) -> Path:
    """The adapter folder of a `TunedModel` (its id) or a path."""
    path = Path(getattr(model, "id", model)).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise FinetuneHubError(f"{path} is not an adapter folder (it has no adapter_config.json)")
    return path


def data_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sha256 and the record count (JSON objects, one a line) of a training file."""
    digest, records = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for line in f:
            digest.update(line)
            if line.lstrip().startswith(b"{"):
                records += 1
    return {"file": Path(path).name, "sha256": digest.hexdigest(), "records": records}


def write_model_card(adapter: str | os.PathLike[str]) -> Path:
    """(Re)write `adapter/README.md` from the run folder around it and any evaluation added."""
    folder = Path(adapter)
    run = RunDir(folder.parent)
    meta = read_json(folder / "finetune_hub.json") or {}
    config = read_json(folder / "adapter_config.json") or {}
    job = read_json(run.job_path) or {}
    spec = job.get("spec") or {}
    base = config.get("base_model_name_or_path") or meta.get("base_model") or "unknown"
    method = spec.get("method") or meta.get("method") or "sft"
    lines = [
        "---",
        f"base_model: {json.dumps(str(base))}",
        "library_name: peft",
        f"tags: [finetune_hub, lora, {method}]",
        "---",
        "",
        f"# LoRA adapter for {base}",
        "",
        f"Trained with finetune_hub's local backend ({method.upper()}, LoRA"
        f"{', 4-bit QLoRA' if (spec.get('options') or {}).get('quantization') == '4bit' else ''}).",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        "",
        f"base = AutoModelForCausalLM.from_pretrained({str(base)!r})",
        'model = PeftModel.from_pretrained(base, "<this folder or repository>")',
        "```",
        "",
        "## Base model",
        "",
        f"- {base}" + (f" (given as {spec['base_model']!r})" if spec.get("base_model") else ""),
        "",
    ]
    files = [("training", spec.get("training_file")), ("validation", spec.get("validation_file"))]
    data = [(kind, p) for kind, p in files if p and Path(p).is_file()]
    if data:
        lines += ["## Data", "", "| file | sha256 | records |", "|---|---|---|"]
        for kind, p in data:
            d = data_summary(p)
            lines.append(f"| {kind}: {d['file']} | `{d['sha256']}` | {d['records']} |")
        source = spec.get("source_file")
        if source and Path(source).name != Path(data[0][1]).name:
            lines += ["", f"The training file as given: {Path(source).name}; the table describes "
                      "the copy trained on (after any column mapping or conversion)."]  # fmt: skip
        lines.append("")
    settings = {**(job.get("hyperparameters") or {}), **(spec.get("options") or {})}
    if settings:
        lines += ["## Settings", "", "| setting | value |", "|---|---|"]
        lines += [f"| {k} | {json.dumps(v)} |" for k, v in sorted(settings.items())]
        lines.append("")
    lines += _training(run)
    evaluation = read_json(folder / EVALUATION)
    if evaluation:
        lines += ["## Evaluation", "", evaluation.get("summary", ""), ""]
        lines += [evaluation.get("markdown", ""), ""]
    tmp = folder / f".{CARD}.tmp"
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, folder / CARD)
    return folder / CARD


def _training(run: RunDir) -> list[str]:
    points = read_jsonl(run.metrics_path)
    if not points:
        return []
    last = points[-1]
    rates = [p["tokens_per_s"] for p in points if p.get("tokens_per_s")]
    peak = max((p.get("peak_memory_mb") or 0) for p in points)
    setup = next(
        (e.get("data") for e in run.events() if "total_steps" in (e.get("data") or {})), {}
    )
    rows = [
        ("optimizer steps", last.get("step")),
        ("examples", setup.get("examples")),
        ("processes", setup.get("world_size")),
        ("base weights", setup.get("weights")),
        ("first / last training loss",
         f"{points[0].get('train_loss', 0):.4f} / {last.get('train_loss', 0):.4f}"),
        ("last validation loss", next(
            (f"{p['valid_loss']:.4f}" for p in reversed(points) if "valid_loss" in p), None)),
        ("tokens/s (median)", f"{sorted(rates)[len(rates) // 2]:,.0f}" if rates else None),
        ("peak memory (MB, rank 0)", f"{peak:,.0f}" if peak else None),
    ]  # fmt: skip
    out = ["## Training", "", "| | |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in rows if value is not None]
    return [*out, ""]


def add_evaluation(model: Any, table: Any) -> Path:
    """Add an `fh.evaluate` table (per task, mean score) to the adapter's model card.

    >>> add_evaluation(model, fh.evaluate(model, prompts, scorer=...))  # doctest: +SKIP
    """
    folder = adapter_folder(model)
    write_json_atomic(
        folder / EVALUATION,
        {"summary": table.summary(), "markdown": table.to_markdown(), "table": table.to_dict()},
    )
    return write_model_card(folder)


def push_to_hub(
    model: Any,
    repo_id: str,
    *,
    base_model: str | None = None,
    private: bool = True,
    token: str | None = None,
    commit_message: str = "Upload LoRA adapter (finetune_hub)",
) -> str:
    """Upload the adapter folder (weights, adapter_config.json, the model card) to the Hugging
    Face Hub repository `repo_id` (made if missing, private unless `private=False`), through
    huggingface_hub and its token (`token=`, else `HF_TOKEN` or `hf auth login`). Returns the
    repository URL.

    An adapter trained on a local folder names its base by that path; give `base_model=` (the
    base's Hub id) so that others can load it: the uploaded adapter_config.json and card name it.
    """
    from huggingface_hub import HfApi

    folder = adapter_folder(model)
    config = read_json(folder / "adapter_config.json") or {}
    named = str(config.get("base_model_name_or_path") or "")
    base = base_model or named
    if not base or Path(base).expanduser().is_absolute() or Path(base).exists():
        raise FinetuneHubError(
            f"the adapter names its base model by a local path ({named or 'none'}), which "
            "nobody else can load: push_to_hub(..., base_model='org/name') with the base "
            "model's Hugging Face Hub id"
        )
    if not (folder / CARD).is_file():
        write_model_card(folder)
    stage = Path(tempfile.mkdtemp(prefix="fh-push-"))
    try:
        for name in PUBLISHED:
            if (folder / name).is_file():
                shutil.copyfile(folder / name, stage / name)
        (stage / "adapter_config.json").write_text(
            json.dumps({**config, "base_model_name_or_path": base}, indent=2), encoding="utf-8"
        )
        card = (stage / CARD).read_text(encoding="utf-8")
        if named and named != base:
            card = card.replace(named, base)
        (stage / CARD).write_text(card, encoding="utf-8")
        api = HfApi(token=token)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(
                folder_path=str(stage),
                repo_id=repo_id,
                repo_type="model",
                commit_message=commit_message,
            )
        except Exception as exc:
            if type(exc).__name__ == "OfflineModeIsEnabled":
                raise FinetuneHubError(
                    "huggingface_hub is in offline mode in this process (HF_HUB_OFFLINE or "
                    "TRANSFORMERS_OFFLINE was set when it was imported): push from a process "
                    "without them"
                ) from exc
            raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return str(url)
