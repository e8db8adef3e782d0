"""A KV cache that does not reallocate at every token: `growing_cache()`.

transformers' default cache layer appends each step's keys and values with `torch.cat`, so every decode step
allocates the layer's whole cache anew and copies it: O(length) bytes per token per layer, and on a CPU a parallel
region per copy. Here each layer keeps its keys and values in a buffer with room to spare; a step writes its tokens
in place and hands attention views of the filled part. The buffer doubles when full, so the copies amortise to O(1)
per token. Attention sees the same values in the same order as with the default layer, so results are identical
(tests/generation/test_kv_cache.py).

Unlike transformers' static cache, nothing is sized ahead (a static cache sized for --max_new_tokens would make
every decode step attend over the whole empty buffer) and the length stays dynamic, so no `torch.compile` is needed.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from spatialvlm_cli.transformers_seam import Cache, DynamicLayer

# Tokens of room a buffer starts with beyond what its first update needs (then it doubles).
MIN_SPARE_TOKENS = 256


def _reserve(buffer: Tensor | None, current: Tensor, length: int, needed: int, like: Tensor) -> Tensor:
    """A buffer (B, H, capacity >= needed, D) whose first `length` tokens are `current`'s: `buffer` itself when
    `current` is still its prefix and it has room, else a new one (batch, heads, head size, dtype, device of
    `like`, the step's new states) with the current tokens copied in."""
    if (buffer is not None and buffer.shape[-2] >= needed and current.data_ptr() == buffer.data_ptr()
            and current.shape[:2] == buffer.shape[:2] and current.stride() == buffer.stride()):
        return buffer
    fresh = like.new_empty((*like.shape[:2], max(2 * needed, needed + MIN_SPARE_TOKENS), like.shape[-1]))
    if length:
        fresh[..., :length, :].copy_(current)
    return fresh


class GrowingLayer(DynamicLayer):
    """One layer's cache: keys and values in (B, H, capacity, D) buffers; `keys` / `values` are views of their
    first `length` tokens, as transformers' layers expose them. Anything that replaces `keys` with another tensor
    (beam reordering, batch selection) is taken into a fresh buffer at the next update; cropping keeps a view."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key_buffer: Tensor | None = None
        self._value_buffer: Tensor | None = None

    def update(self, key_states: Tensor, value_states: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """Write key_states / value_states (B, H, S, D) after the cached tokens; returns all keys and values so far
        (B, H, length + S, D), views of the buffers."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        end = length + key_states.shape[-2]
        self._key_buffer = _reserve(self._key_buffer, self.keys, length, end, key_states)
        self._value_buffer = _reserve(self._value_buffer, self.values, length, end, value_states)
        self._key_buffer[..., length:end, :].copy_(key_states)
        self._value_buffer[..., length:end, :].copy_(value_states)
        self.keys = self._key_buffer[..., :end, :]
        self.values = self._value_buffer[..., :end, :]
        return self.keys, self.values


def growing_cache() -> Cache:
    """An empty cache for `generate(cache=...)` whose layers are `GrowingLayer`s, added as the model reaches them."""
    return Cache(layer_class_to_replicate=GrowingLayer)
