"""Using a local model: greedy chat (models cached in the process) and merging an adapter.

A model id is an adapter folder (what a local job produces), a merged/full HF folder, or a base
model name such as `smollm2-135m-instruct`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from finetune_hub.providers.local.models import (
    load_model,
    load_tokenizer,
    pick_device,
    resolve_model,
)

_CACHE: dict[tuple[str, str], tuple[Any, Any]] = {}


def adapter_base(adapter: Path) -> Path:
    """The base model folder an adapter was trained on."""
    meta = adapter / "finetune_hub.json"
    if meta.is_file():
        info = json.loads(meta.read_text(encoding="utf-8"))
        base = Path(info.get("base_path", ""))
        if (base / "config.json").is_file():
            return base
        return resolve_model(info["base_model"])
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    return resolve_model(config["base_model_name_or_path"])


def is_adapter(path: Path) -> bool:
    return (path / "adapter_config.json").is_file()


def load_for_inference(model_id: str, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for a model id, loaded once per process."""
    device = pick_device(device)
    key = (str(model_id), device)
    if key in _CACHE:
        return _CACHE[key]
    path = Path(model_id).expanduser()
    if is_adapter(path):
        from peft import PeftModel

        base = adapter_base(path)
        tokenizer = load_tokenizer(base)
        model = PeftModel.from_pretrained(load_model(base, device=device), str(path))
    else:
        folder = resolve_model(model_id)
        tokenizer = load_tokenizer(folder)
        model = load_model(folder, device=device)
    model.eval()
    _CACHE[key] = (model, tokenizer)
    return model, tokenizer


def generate(
    model_id: str,
    messages: list[dict[str, Any]],
    *,
    max_new_tokens: int = 128,
    device: str | None = None,
) -> str:
    """One greedy reply to `messages` with the model's chat template."""
    import torch

    model, tokenizer = load_for_inference(model_id, device)
    enc = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    enc = {k: v.to(model.device) for k, v in enc.items()}
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.decode(out[0][enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()


MERGED_MARKER = "finetune_hub_merged.json"


def merged_from(folder: Path) -> str | None:
    """The adapter a merged folder was made from (written by `merge`), or None."""
    try:
        return json.loads((folder / MERGED_MARKER).read_text(encoding="utf-8"))["adapter"]
    except (OSError, ValueError, KeyError):
        return None


def merge(adapter: str, target: Path) -> Path:
    """Write base + adapter merged (`merge_and_unload`) as a full model folder, atomically.

    >>> merge("runs/ftj_1a2b/adapter", Path("merged"))  # doctest: +SKIP
    PosixPath('merged')
    """
    from peft import PeftModel

    path = Path(adapter)
    base = adapter_base(path)
    tokenizer = load_tokenizer(base)
    model = PeftModel.from_pretrained(load_model(base, device="cpu"), str(path)).merge_and_unload()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / MERGED_MARKER).write_text(json.dumps({"adapter": str(adapter)}), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target
