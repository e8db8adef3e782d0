"""The training objective for layout text, and an ordinal initialisation of the number-token embeddings.

Layout text is mostly integer bins (`"217"`, one token each for 0..num_bins-1 in the bundled tokenizer). Plain
cross-entropy treats bin 216 as wrong as bin 3; here a number target is a Gaussian over the neighbouring bins
(`sigma_bins`), so near misses cost little and the head learns the bins' order. Its mode stays on the true bin, so
greedy decoding still aims at it. Other tokens keep one-hot targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100


@dataclass(frozen=True)
class NumberVocabulary:
    """Token ids of the integers 0..num_bins-1. ids: (K,) int64; value_of_id: (V,) int64, -1 for other tokens."""

    ids: Tensor
    value_of_id: Tensor

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, num_bins: int, vocab_size: int) -> NumberVocabulary:
        """Raises ValueError unless every integer below num_bins is a single token (true of the bundled BPE)."""
        vocab = tokenizer.get_vocab()
        missing = [value for value in range(num_bins) if str(value) not in vocab]
        if missing:
            raise ValueError(f"the tokenizer lacks single tokens for {len(missing)} bins, e.g. {missing[:3]}")
        ids = torch.tensor([vocab[str(value)] for value in range(num_bins)], dtype=torch.long)
        value_of_id = torch.full((vocab_size,), -1, dtype=torch.long)
        value_of_id[ids] = torch.arange(num_bins)
        return cls(ids=ids, value_of_id=value_of_id)


def layout_loss(logits: Tensor, labels: Tensor, numbers: NumberVocabulary | None, sigma_bins: float) -> Tensor:
    """Mean loss over the labelled positions.

    logits: (N, V) next-token logits; labels: (N,) token ids, IGNORE_INDEX where unscored.
    A number label n is scored against q_k ∝ exp(-(k - n)² / 2σ²) over the number tokens k (σ = sigma_bins;
    0, or numbers None, gives plain cross-entropy). Returns a scalar tensor (nats per scored token)."""
    scored = labels != IGNORE_INDEX
    log_probs = torch.log_softmax(logits[scored].float(), dim=-1)
    labels = labels[scored]
    loss = -log_probs.gather(1, labels.unsqueeze(1)).squeeze(1)
    if numbers is not None and sigma_bins > 0:
        values = numbers.value_of_id.to(labels.device)[labels]
        is_number = values >= 0
        if is_number.any():
            bins = torch.arange(len(numbers.ids), device=labels.device, dtype=torch.float32)
            weights = torch.softmax(-0.5 * ((bins - values[is_number, None]) / sigma_bins) ** 2, dim=-1)
            number_log_probs = log_probs[is_number][:, numbers.ids.to(labels.device)]
            loss = loss.clone()
            loss[is_number] = -(weights * number_log_probs).sum(dim=-1)
    return loss.mean()


def init_number_embeddings(embeddings: nn.Embedding, numbers: NumberVocabulary, period_range: tuple[float, float] = (
        4.0, 4096.0)) -> None:
    """Give the number tokens sinusoidal embeddings of their value (periods geometric over `period_range` bins),
    scaled to the existing embeddings' mean norm. With tied input/output embeddings the head then starts out
    scoring bins by closeness: h = Σ_j (sin, cos)(n* ω_j) peaks at bin n*."""
    weight = embeddings.weight
    dim = weight.shape[1]
    pairs = dim // 2
    periods = torch.logspace(math.log10(period_range[0]), math.log10(period_range[1]), pairs, dtype=torch.float64)
    angles = torch.arange(len(numbers.ids), dtype=torch.float64)[:, None] * (2 * math.pi / periods)[None, :]
    table = torch.zeros(len(numbers.ids), dim, dtype=torch.float64)
    table[:, 0 : 2 * pairs : 2], table[:, 1 : 2 * pairs : 2] = torch.sin(angles), torch.cos(angles)
    with torch.no_grad():
        scale = weight.norm(dim=1).mean() / table.norm(dim=1).mean()
        weight[numbers.ids.to(weight.device)] = (table * scale).to(weight.dtype).to(weight.device)
