"""Panorama position ids for a stock transformers VLM, passed explicitly: nothing is installed on the model.

`PanoramaPositions.compute` gives a prompt's ids under a scheme; callers hand them to `model(position_ids=...)` or
`model.generate(position_ids=...)` (public arguments of every supported family). generate() extends them by +1 per
decoded token on every row, which `continue_ids` reproduces for hand-written decode loops.

Ids: (B, L) int64 for 1-D RoPE families; (4, B, L) for Qwen-VL: a plain text row (masks and attention kernels)
then the t, h, w rows the rotary embedding reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from spatialvlm_cli.panorama.families import PanoramaFamily
from spatialvlm_cli.panorama.positions import PositionScheme
from spatialvlm_cli.pe.positions import sequential_position_ids
from spatialvlm_cli.transformers_seam import text_decoder

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class PanoramaPositions:
    """Computes a scheme's ids for token sequences of a model.

    model: a loaded `*ForConditionalGeneration` (read for Qwen-VL's spatial merge size). image_token_id: the id of
    image-feature tokens."""

    def __init__(self, model: PreTrainedModel, family: PanoramaFamily, scheme: PositionScheme,
                 image_token_id: int) -> None:
        self.family = family
        self.scheme = scheme
        self.image_token_id = image_token_id
        vision = getattr(model.config, "vision_config", None)
        merge = getattr(vision, "spatial_merge_size", None)
        self.spatial_merge_size = None if merge is None else int(merge)

    def compute(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                image_grid_thw: Tensor | None = None) -> Tensor:
        """input_ids: (B, L) int64 tensor; attention_mask: (B, L) 0/1 or None; image_grid_thw: (n_images, 3) for
        Qwen-VL. Returns (B, L) or (4, B, L) int64 ids on the device of input_ids."""
        ids = input_ids.detach().cpu().numpy()
        mask = None if attention_mask is None else attention_mask.detach().cpu().numpy()
        grids = None if image_grid_thw is None else image_grid_thw.detach().cpu().numpy()
        rotary = self.family.rotary_ids(ids, mask, grids, self.spatial_merge_size, self.image_token_id, self.scheme)
        positions = torch.from_numpy(rotary).to(input_ids.device)
        if not self.family.text_row:
            return positions
        text = sequential_position_ids(input_ids.shape, attention_mask, input_ids.device)
        return torch.cat([text.to(positions.device)[None], positions])

    def for_inputs(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """The ids of a processor output (input_ids, attention_mask, image_grid_thw for Qwen-VL)."""
        return self.compute(inputs["input_ids"], inputs.get("attention_mask"), inputs.get("image_grid_thw"))


def continue_ids(position_ids: Tensor, count: int) -> Tensor:
    """(..., L) ids -> (..., count) ids of `count` tokens appended after them: last + 1, last + 2, ... on every row,
    the rule generate() follows (a decoded token is text)."""
    steps = torch.arange(1, count + 1, dtype=position_ids.dtype, device=position_ids.device)
    return position_ids[..., -1:] + steps


@contextmanager
def record_rotary_positions(model: PreTrainedModel) -> Iterator[list[dict[str, Any]]]:
    """Record the position ids every call of the text decoder's rotary embedding receives.

    Yields a list that fills with {'position_ids': tensor (B, S) or (3, B, S), 'layer_type': str | None}. The
    rotary module's forward is `(x, position_ids, layer_type=None)` in every supported family."""
    calls: list[dict[str, Any]] = []
    rotary = text_decoder(model).rotary_emb

    def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        positions = args[1] if len(args) > 1 else kwargs["position_ids"]
        layer_type = args[2] if len(args) > 2 else kwargs.get("layer_type")
        calls.append({"position_ids": positions.detach().clone(), "layer_type": layer_type})

    handle = rotary.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()
