"""What every model source hands back, point-cloud (`model.loaded.LoadedModel`) or panorama
(`panorama.models.LoadedPanoramaModel`): the model, the processor that feeds it, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

ModelT = TypeVar("ModelT")
ProcessorT = TypeVar("ProcessorT")


@dataclass(kw_only=True)
class Loaded(Generic[ModelT, ProcessorT]):
    """A model ready for `generate`, with what is needed to feed it.

    model: in eval mode on its device. processor: turns a scene (point clouds; images and a prompt) into the
    model's inputs and holds its tokenizer. spec: the `--model` it was loaded from. source: 'local', 'shipped',
    'preset' or 'hub'. random_weights: True for presets (their output is meaningless)."""

    model: ModelT
    processor: ProcessorT
    spec: str
    source: str
    random_weights: bool = False
