"""The losses of the local loop: SFT on trained (assistant) tokens and DPO against the same model
with its adapter switched off, as sums over a batch (the loop divides by the step's global
count, so any split of a global batch over processes gives the same step).

The output layer (often the biggest matmul of a small model) runs on labelled positions only.
"""

from __future__ import annotations

from typing import Any

from finetune_hub.providers.local.data import IGNORE


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


def sft_sums(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Summed cross-entropy over trained (assistant) tokens (divide by their count)."""
    logps, _, _ = token_logprobs(model, batch)
    return -logps.sum(), {}


def sft_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over trained (assistant) tokens."""
    logps, _, _ = token_logprobs(model, batch)
    return -logps.mean()


def sequence_logps(model: Any, batch: dict[str, Any]) -> Any:
    import torch

    logps, rows, _ = token_logprobs(model, batch)
    out = torch.zeros(batch["input_ids"].shape[0], dtype=logps.dtype, device=logps.device)
    return out.index_add(0, rows, logps)


def dpo_sums(model: Any, batch: dict[str, Any], beta: float) -> tuple[Any, dict[str, Any]]:
    """The DPO loss summed over pairs (divide by their count), with the summed reward margin and
    accuracy; the reference is the same model with its adapter disabled."""
    import torch
    import torch.nn.functional as F

    n = batch["input_ids"].shape[0] // 2
    with torch.no_grad(), model.disable_adapter():
        ref = sequence_logps(model, batch)
    pol = sequence_logps(model, batch)
    margin = (pol[:n] - ref[:n]) - (pol[n:] - ref[n:])
    loss = -F.logsigmoid(beta * margin).sum()
    stats = {
        "reward_margin": (beta * margin).detach().sum(),
        "reward_accuracy": (margin > 0).float().sum(),
    }
    return loss, stats


def dpo_loss(model: Any, batch: dict[str, Any], beta: float) -> tuple[Any, dict[str, float]]:
    """The mean DPO loss of a batch, with the mean reward margin and accuracy."""
    n = batch["input_ids"].shape[0] // 2
    loss, stats = dpo_sums(model, batch, beta)
    return loss / n, {k: float(v) / n for k, v in stats.items()}


def loss_module(model: Any, method: str, beta: float) -> Any:
    """The model and its loss as one module (what DDP / FSDP wrap): `forward(batch)` returns the
    summed loss and summed statistics of the batch."""
    import torch

    class LossModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            if method == "dpo":
                return dpo_sums(self.model, batch, beta)
            return sft_sums(self.model, batch)

    return LossModule()
