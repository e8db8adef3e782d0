"""Record what every attention layer of a SpatialLM-style model computes: the tensors the nine checkpoints judge.

Hooks only (nothing in the model changes): a forward pre-hook on each `self_attn` notes the layer input and the cache
length, a forward hook on its `v_proj` keeps V, and `pe.observe_rotary` hands over q, k before and after the rotation
with the (cos, sin) tables. Module hooks run in whatever thread runs the forward (generate() in a worker thread
included); the rotary observer is a ContextVar, so it is entered in the pre-hook and left in the forward hook, in
that same thread. `install_apply` is idempotent and sends plain tables to the model's own function, so installing
it for variants that do not need it (None, 3D_Sinusoidal) leaves results bit-identical.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.pe import PointPositions, QKTable, install_apply, observe_rotary


@dataclass
class LayerCapture:
    """One attention call. hidden_states (B, S, C) layer input; q (B, Hq, S, D), k and v (B, Hkv, S, D) after the
    head split; cos, sin the tables given to the rotation ((B, S, D) tensors, or QKTable of per-head half tables);
    q_rot, k_rot the rotated q, k; positions the point positions active in the forward (None at decode steps and
    text-only forwards); past_length the cache length of this layer before the call; cached_keys (B, Hkv, S, D) the
    newest S keys the cache holds after the call (None without a cache)."""

    layer: int
    hidden_states: Tensor
    q: Tensor
    k: Tensor
    v: Tensor | None
    cos: Tensor | QKTable
    sin: Tensor | QKTable
    q_rot: Tensor
    k_rot: Tensor
    positions: PointPositions | None
    past_length: int
    cached_keys: Tensor | None

    @property
    def is_prefill(self) -> bool:
        """A forward that starts an empty cache with the point positions active (not a decode step)."""
        return self.past_length == 0 and self.positions is not None


class AttentionRecorder:
    """`with AttentionRecorder(model, on_capture, layers):` calls `on_capture(LayerCapture)` after every attention
    call of the chosen layers (None: all). model: a SpatialLM{Qwen,Llama}ForCausalLM (`model.model.layers`,
    `model.position_encoding`). Tensors are detached references, not copies: `on_capture` judges them right away."""

    def __init__(self, model: Any, on_capture: Callable[[LayerCapture], None], layers: Iterable[int] | None = None):
        decoder = getattr(model, "model", None)
        attention_layers = getattr(decoder, "layers", None)
        if attention_layers is None or not all(hasattr(layer, "self_attn") for layer in attention_layers):
            raise ConfigError(f"'{type(model).__name__}' has no model.layers[i].self_attn to check")
        self.model = model
        self.on_capture = on_capture
        count = len(attention_layers)
        chosen = range(count) if layers is None else sorted(set(layers))
        bad = [index for index in chosen if not 0 <= index < count]
        if bad:
            raise ConfigError(f"layer(s) {bad} do not exist: the model has {count} attention layers (0-{count - 1})")
        self.layers = list(chosen)
        self._handles: list[RemovableHandle] = []
        self._local = threading.local()

    def __enter__(self) -> AttentionRecorder:
        attention_layers = self.model.model.layers
        for module in {sys.modules[type(layer.self_attn).__module__] for layer in attention_layers}:
            install_apply(module)
        for index in self.layers:
            attention = attention_layers[index].self_attn
            self._handles.append(attention.register_forward_pre_hook(self._before(index), with_kwargs=True))
            self._handles.append(attention.register_forward_hook(self._after(index), with_kwargs=True))
            self._handles.append(attention.v_proj.register_forward_hook(self._value))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        observing: AbstractContextManager | None = getattr(self._local, "observing", None)
        if observing is not None:  # a forward that raised never reached its forward hook
            observing.__exit__(None, None, None)
            self._local.observing = None

    def _state(self) -> dict[str, Any]:
        if not hasattr(self._local, "state"):
            self._local.state = {}
        return self._local.state

    def _before(self, index: int) -> Callable[[nn.Module, tuple, dict], None]:
        def note_input(module: nn.Module, args: tuple, kwargs: dict) -> None:
            hidden = args[0] if args else kwargs["hidden_states"]
            cache = kwargs.get("past_key_values")
            past = int(cache.get_seq_length(index)) if cache is not None else 0
            state = self._state()
            state.clear()
            state.update(layer=index, hidden_states=hidden.detach(), past_length=past, cache=cache)
            observing = observe_rotary(self)
            observing.__enter__()
            self._local.observing = observing

        return note_input

    def _value(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        state = self._state()
        if "layer" in state:
            head_dim = self.model.position_encoding.lm_shape.head_dim
            batch, length, _ = output.shape
            state["v"] = output.detach().view(batch, length, -1, head_dim).transpose(1, 2)

    def on_tables(self, positions: Any, stock: tuple[Tensor, Tensor], tables: Any) -> None:
        """RotaryObserver: the tables reach every layer as its (cos, sin); `on_rotation` records them there."""

    def on_rotation(self, q: Tensor, k: Tensor, cos: Any, sin: Any, q_rotated: Tensor, k_rotated: Tensor) -> None:
        """RotaryObserver: one layer's q, k before and after the rotation, with its tables."""
        state = self._state()
        if "layer" in state and "q" not in state:
            state.update(q=q.detach(), k=k.detach(), cos=cos, sin=sin, q_rot=q_rotated.detach(),
                         k_rot=k_rotated.detach(), positions=self.model.position_encoding.active_positions())

    def _after(self, index: int) -> Callable[[nn.Module, tuple, dict, Any], None]:
        def emit(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            observing = getattr(self._local, "observing", None)
            if observing is not None:
                observing.__exit__(None, None, None)
                self._local.observing = None
            state = self._state()
            if state.get("layer") != index or "q" not in state:
                state.clear()
                return
            cache = state["cache"]
            cached = None
            if cache is not None and hasattr(cache, "layers") and index < len(cache.layers):
                keys = getattr(cache.layers[index], "keys", None)
                if isinstance(keys, Tensor):
                    cached = keys[..., -state["q"].shape[2]:, :].detach()
            capture = LayerCapture(
                layer=index, hidden_states=state["hidden_states"], q=state["q"], k=state["k"], v=state.get("v"),
                cos=state["cos"], sin=state["sin"], q_rot=state["q_rot"], k_rot=state["k_rot"],
                positions=state["positions"], past_length=state["past_length"], cached_keys=cached)
            state.clear()
            self.on_capture(capture)

        return emit
