"""The ordinal layout loss and the number-embedding initialisation, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spatialvlm_cli.model.tokenizer import load_bundled_tokenizer
from spatialvlm_cli.training.loss import IGNORE_INDEX, NumberVocabulary, init_number_embeddings, layout_loss

NUM_BINS = 1280


@pytest.fixture(scope="module")
def numbers() -> NumberVocabulary:
    tokenizer = load_bundled_tokenizer("qwen")
    return NumberVocabulary.from_tokenizer(tokenizer, NUM_BINS, len(tokenizer))


def test_number_vocabulary_maps_values_both_ways(numbers):
    tokenizer = load_bundled_tokenizer("qwen")
    assert numbers.ids.shape == (NUM_BINS,)
    assert torch.equal(numbers.value_of_id[numbers.ids], torch.arange(NUM_BINS))
    assert tokenizer.convert_ids_to_tokens(int(numbers.ids[217])) == "217"
    assert int(numbers.value_of_id[tokenizer.convert_tokens_to_ids("wall")]) == -1
    assert int((numbers.value_of_id >= 0).sum()) == NUM_BINS


def test_sigma_zero_is_cross_entropy(numbers):
    torch.manual_seed(0)
    logits = torch.randn(6, len(numbers.value_of_id))
    labels = torch.tensor([int(numbers.ids[5]), 3, IGNORE_INDEX, int(numbers.ids[900]), 17, IGNORE_INDEX])
    expected = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    assert torch.allclose(layout_loss(logits, labels, numbers, sigma_bins=0.0), expected, atol=1e-6)


def test_non_number_targets_stay_one_hot(numbers):
    torch.manual_seed(1)
    logits = torch.randn(3, len(numbers.value_of_id))
    labels = torch.tensor([3, 17, 40])  # special / text tokens, no number among them
    assert int((numbers.value_of_id[labels] >= 0).sum()) == 0
    assert torch.allclose(layout_loss(logits, labels, numbers, 2.0), F.cross_entropy(logits, labels), atol=1e-6)


def test_number_target_is_a_gaussian_over_bins(numbers):
    """With logits = log q (q the target itself), the loss is q's entropy; a near miss costs less than a far one,
    where plain cross-entropy charges both the same."""
    vocab, sigma, true_bin = len(numbers.value_of_id), 1.5, 300
    bins = torch.arange(NUM_BINS, dtype=torch.float64)
    q = torch.softmax(-0.5 * ((bins - true_bin) / sigma) ** 2, dim=0)
    logits = torch.full((1, vocab), -1e4, dtype=torch.float64)
    logits[0, numbers.ids] = torch.log(q.clamp_min(1e-300))
    label = torch.tensor([int(numbers.ids[true_bin])])
    entropy = -(q * torch.log(q.clamp_min(1e-300))).sum()
    assert math.isclose(float(layout_loss(logits, label, numbers, sigma)), float(entropy), rel_tol=1e-5)

    def peaked_at(bin_index: int) -> torch.Tensor:
        peaked = torch.zeros(1, vocab)
        peaked[0, numbers.ids[bin_index]] = 8.0
        return peaked

    near, far = layout_loss(peaked_at(301), label, numbers, sigma), layout_loss(peaked_at(330), label, numbers, sigma)
    exact = layout_loss(peaked_at(300), label, numbers, sigma)
    assert exact < near < far
    assert torch.allclose(F.cross_entropy(peaked_at(301), label), F.cross_entropy(peaked_at(330), label))


def test_ordinal_init_scores_bins_by_closeness(numbers):
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(len(numbers.value_of_id), 256)
    torch.nn.init.normal_(embedding.weight, std=0.02)
    before_norm = embedding.weight.detach().norm(dim=1).mean()
    init_number_embeddings(embedding, numbers)
    table = embedding.weight.detach()[numbers.ids]
    assert math.isclose(float(table.norm(dim=1).mean()), float(before_norm), rel_tol=1e-4)
    for target in (0, 20, 250, 640, 1279):
        scores = table @ table[target]  # a tied head whose hidden state is the target's own embedding
        assert int(scores.argmax()) == target
    assert scores[1279] > scores[1278] > scores[1259]
    assert (table @ table[250])[251] > (table @ table[250])[270]
