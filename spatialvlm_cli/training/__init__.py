"""Training SpatialLM-style models on synthetic rooms (`scripts/train_rooms.py` is the command line)."""

from __future__ import annotations

from spatialvlm_cli.training.data import (
    ExampleBuilder,
    LayoutExample,
    PromptMix,
    build_examples,
    load_examples,
    save_examples,
)
from spatialvlm_cli.training.loss import NumberVocabulary, init_number_embeddings, layout_loss
from spatialvlm_cli.training.model import load_for_training
from spatialvlm_cli.training.settings import TrainSettings
from spatialvlm_cli.training.trainer import TrainReport, batch_indices, train

__all__ = [
    "ExampleBuilder",
    "LayoutExample",
    "NumberVocabulary",
    "PromptMix",
    "TrainReport",
    "TrainSettings",
    "batch_indices",
    "build_examples",
    "init_number_embeddings",
    "layout_loss",
    "load_examples",
    "load_for_training",
    "save_examples",
    "train",
]
