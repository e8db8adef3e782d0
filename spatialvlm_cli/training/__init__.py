"""Training SpatialLM-style models on synthetic rooms (`scripts/train_rooms.py` is the command line)."""

from __future__ import annotations

from spatialvlm_cli.training.data import (
    ExampleBuilder,
    LayoutExample,
    PromptMix,
    PromptTemplate,
    Request,
    build_examples,
    load_examples,
    save_examples,
)
from spatialvlm_cli.training.loss import NumberVocabulary, init_number_embeddings, layout_loss
from spatialvlm_cli.training.model import build_processor, build_untrained_model
from spatialvlm_cli.training.trainer import TrainReport, TrainSettings, batch_indices, train

__all__ = [
    "ExampleBuilder",
    "LayoutExample",
    "NumberVocabulary",
    "PromptMix",
    "PromptTemplate",
    "Request",
    "TrainReport",
    "TrainSettings",
    "batch_indices",
    "build_examples",
    "build_processor",
    "build_untrained_model",
    "init_number_embeddings",
    "layout_loss",
    "load_examples",
    "save_examples",
    "train",
]
