"""Feeding panorama position ids to a stock transformers VLM, in a plain forward and through `generate()`.

Two hook points (transformers-notes §2, §4), both removable:
- `generate()` asks `model._prepare_position_ids_for_generation(inputs, model_kwargs)` for the prompt's ids when
  none are passed; an instance-level override returns ours. generate then extends them by +1 per decoded token
  on every row, so decode steps need nothing more.
- A forward pre-hook on the model fills `position_ids` when a caller runs `model(**inputs)` without them: the
  prompt's ids at prefill, and `real index + delta` for tokens appended to a cache (delta = last prompt id + 1 -
  prompt length, per row, like Qwen-VL's `rope_deltas`). It also supplies an all-ones attention mask when there
  is none and no cache, because transformers reads jumps in 1-D ids without a mask as packed sequences.

Ids: (B, L) int64 for 1-D RoPE families; (4, B, L) for Qwen-VL: a plain text row (masks and attention kernels)
then the t, h, w rows the rotary embedding reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from spatialvlm_cli.panorama.families import ModelFamily
from spatialvlm_cli.panorama.positions import PositionScheme, batch_positions_1d, batch_positions_mrope


class PanoramaPositions:
    """Computes a scheme's ids for token sequences of a model and installs them on it.

    model: a loaded `*ForConditionalGeneration`. image_token_id: the id of image-feature tokens."""

    def __init__(self, model: Any, family: ModelFamily, scheme: PositionScheme, image_token_id: int) -> None:
        self.model = model
        self.family = family
        self.scheme = scheme
        self.image_token_id = image_token_id
        self.spatial_merge_size = int(model.config.vision_config.spatial_merge_size) if family.rope == "mrope" else None
        self._delta: Any = None  # (B,) or (3, B) int64 tensor: pano id - real index for appended tokens
        self._handle: Any = None

    def compute(self, input_ids: Any, attention_mask: Any = None, image_grid_thw: Any = None) -> Any:
        """input_ids: (B, L) int64 tensor; attention_mask: (B, L) 0/1 or None; image_grid_thw: (n_images, 3) for
        Qwen-VL. Returns (B, L) or (4, B, L) int64 ids on the device of input_ids."""
        import torch

        ids = input_ids.detach().cpu().numpy()
        mask = None if attention_mask is None else attention_mask.detach().cpu().numpy()
        is_image = ids == self.image_token_id
        if self.family.rope == "1d":
            positions = batch_positions_1d(is_image, mask, self.scheme)
        else:
            if image_grid_thw is None:
                raise ValueError("Qwen-VL position ids need image_grid_thw")
            grids = image_grid_thw.detach().cpu().numpy()
            rows = batch_positions_mrope(is_image, mask, grids, self.spatial_merge_size, self.scheme)
            positions = np.concatenate([_real_index(ids.shape, mask)[None], rows])
        return torch.from_numpy(positions).to(input_ids.device)

    def install(self) -> PanoramaPositions:
        """Make `model(...)` and `model.generate(...)` use this scheme until `remove()`."""
        if self._handle is not None:
            return self
        self.model._prepare_position_ids_for_generation = self._prepare_for_generation
        self._handle = self.model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)
        return self

    def remove(self) -> None:
        """Restore the model's own position ids."""
        if self._handle is None:
            return
        self._handle.remove()
        self._handle = None
        del self.model._prepare_position_ids_for_generation

    def __enter__(self) -> PanoramaPositions:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _prepare_for_generation(self, inputs_tensor: Any, model_kwargs: dict[str, Any]) -> Any:
        import torch

        ids = model_kwargs.get("input_ids")
        if ids is None or ids.shape[1] == 0:
            ids = inputs_tensor
        if ids.ndim != 2 or ids.dtype not in (torch.int32, torch.int64):
            # Embeddings only: nothing to find images in; keep transformers' ids.
            return type(self.model)._prepare_position_ids_for_generation(self.model, inputs_tensor, model_kwargs)
        return self.compute(ids, model_kwargs.get("attention_mask"), model_kwargs.get("image_grid_thw"))

    def _pre_forward(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        import torch

        if args:
            names = list(inspect.signature(module.forward).parameters)[: len(args)]
            kwargs = {**dict(zip(names, args, strict=True)), **kwargs}
        input_ids = kwargs.get("input_ids")
        cache = kwargs.get("past_key_values")
        past = cache.get_seq_length() if cache is not None else 0
        if kwargs.get("position_ids") is None and input_ids is not None:
            mask = kwargs.get("attention_mask")
            if past == 0:
                positions = self.compute(input_ids, mask, kwargs.get("image_grid_thw"))
                last = positions[..., -1] if self.family.rope == "1d" else positions[1:, :, -1]
                count = _real_count(input_ids, mask)
                self._delta = last + 1 - count
                kwargs["position_ids"] = positions
            elif self._delta is not None:
                kwargs["position_ids"] = self._appended_positions(input_ids, mask, past)
        if kwargs.get("attention_mask") is None and cache is None:
            batch, length = kwargs["input_ids"].shape if input_ids is not None else kwargs["inputs_embeds"].shape[:2]
            device = (input_ids if input_ids is not None else kwargs["inputs_embeds"]).device
            kwargs["attention_mask"] = torch.ones(batch, length, dtype=torch.long, device=device)
        return (), kwargs

    def _appended_positions(self, input_ids: Any, mask: Any, past: int) -> Any:
        """Ids of tokens appended after a prefill this hook saw: real index + delta."""
        import torch

        length = input_ids.shape[1]
        if mask is not None:
            real = (mask.long().cumsum(-1) - 1)[:, -length:]
        else:
            real = torch.arange(past, past + length, device=input_ids.device).expand(input_ids.shape[0], -1)
        if self.family.rope == "1d":
            return real + self._delta[:, None]
        return torch.cat([real[None], real[None] + self._delta[:, :, None]])


def _real_index(shape: tuple[int, int], mask: np.ndarray | None) -> np.ndarray:
    """(B, L) index among unpadded tokens (transformers' text row), 0 on padding."""
    if mask is None:
        return np.broadcast_to(np.arange(shape[1]), shape).astype(np.int64)
    index = np.cumsum(mask, axis=-1) - 1
    return np.where(mask > 0, index, 0).astype(np.int64)


def _real_count(input_ids: Any, mask: Any) -> Any:
    """(B,) number of unpadded tokens."""
    import torch

    if mask is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1], device=input_ids.device)
    return mask.long().sum(-1)


def language_model(model: Any) -> Any:
    """The text decoder of a `*ForConditionalGeneration` (InternVL, Gemma3, Qwen2.5-VL, Qwen3-VL)."""
    return model.model.language_model


@contextmanager
def record_rotary_positions(model: Any) -> Iterator[list[dict[str, Any]]]:
    """Record the position ids every call of the text decoder's rotary embedding receives.

    Yields a list that fills with {'position_ids': tensor (B, S) or (3, B, S), 'layer_type': str | None}."""
    calls: list[dict[str, Any]] = []
    rotary = language_model(model).rotary_emb

    def hook(module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        positions = args[1] if len(args) > 1 else kwargs["position_ids"]
        layer_type = args[2] if len(args) > 2 else kwargs.get("layer_type")
        calls.append({"position_ids": positions.detach().clone(), "layer_type": layer_type})

    handle = rotary.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()
