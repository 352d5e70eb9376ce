"""A tiny Llama built in code (no download): for fast tests of the local backend, ours and users'.

>>> folder = build_tiny_model(tmp_path / "tiny")  # doctest: +SKIP
>>> fh.TuningJob(provider="local", base_model=str(folder), training_file="train.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from finetune_hub.providers.local.models import CHATML_TEMPLATE, offline

_DEFAULT_TEXTS = (
    "hello world what is the answer to this question? the answer is yes, gozaru! "
    "one two three four five six seven eight nine ten plus minus times capital of france paris"
)


def build_tiny_model(
    folder: str | Path,
    texts: Iterable[str] = (),
    *,
    hidden_size: int = 64,
    layers: int = 2,
    vocab_size: int = 512,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised tiny Llama (hidden 64, 2 layers) and a byte-level BPE tokenizer
    trained on `texts`, with a ChatML chat template, as a Hugging Face folder."""
    offline()
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    corpus = [*texts, _DEFAULT_TEXTS, "user assistant system"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<pad>", "<|im_start|>", "<|im_end|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<|im_start|>", eos_token="<|im_end|>"
    )
    tok.chat_template = CHATML_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder
