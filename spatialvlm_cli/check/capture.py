"""Record what every attention layer of a SpatialLM-style model computes: the tensors the nine checkpoints judge.

Nothing in the model changes: `AttentionRecorder` is an observer of the model's own attention layers
(`spatialvlm_cli.model.attention.observe_attention`), which report q, k, v before and after the rotation with the
tables they used and the cache length, from whatever thread runs the forward (generate() in a worker included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.attention import AttentionCall, observe_attention, point_attention_layers

if TYPE_CHECKING:
    from torch import nn


class AttentionRecorder:
    """`with AttentionRecorder(model, on_capture, layers):` calls `on_capture(AttentionCall)` after every attention
    call of the chosen layers (None: all). model: a SpatialLM{Qwen,Llama}ForCausalLM. Tensors are detached
    references, not copies: `on_capture` judges them right away."""

    def __init__(self, model: nn.Module, on_capture: Callable[[AttentionCall], None],
                 layers: Iterable[int] | None = None) -> None:
        count = len(point_attention_layers(model))
        if count == 0:
            raise ConfigError(f"'{type(model).__name__}' has no point-aware attention layers to check")
        chosen = range(count) if layers is None else sorted(set(layers))
        bad = [index for index in chosen if not 0 <= index < count]
        if bad:
            raise ConfigError(f"layer(s) {bad} do not exist: the model has {count} attention layers (0-{count - 1})")
        self.model = model
        self.on_capture = on_capture
        self.layers = frozenset(chosen)
        self._observing: AbstractContextManager | None = None

    def __enter__(self) -> AttentionRecorder:
        self._observing = observe_attention(self.model, self)
        self._observing.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._observing is not None:
            self._observing.__exit__(None, None, None)
            self._observing = None

    def on_attention(self, call: AttentionCall) -> None:
        """AttentionObserver: pass the calls of the chosen layers on."""
        if call.layer in self.layers:
            self.on_capture(call)
