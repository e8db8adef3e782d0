"""What a panorama VLM family is: `PanoramaFamily` and its two position-id rules (1-D RoPE, Qwen-VL's M-RoPE).

A family is one small class: the transformers model type it covers, the PanoRoPE variant that fits it, how its
processor expands an image placeholder into tokens (and which extra inputs it adds), how position ids are laid out,
and the special tokens of its tiny preset's tokenizer. The tiny preset's sizes are data, a YAML file in
`assets/presets/` (see `panorama/presets.py`). Adding a family is one module in this folder, a line in
`families/__init__.py` and a preset file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from spatialvlm_cli.panorama.positions import (
    PANO_ROPE_1D,
    PANO_ROPE_MROPE,
    PositionScheme,
    batch_positions_1d,
    batch_positions_mrope,
)

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor
    from transformers import BaseImageProcessor, PretrainedConfig, PreTrainedTokenizerBase


@dataclass(frozen=True)
class TinyTokens:
    """The special tokens of a family's tiny tokenizer, as the real tokenizer defines them.

    tokens: every special token; named: `extra_special_tokens` roles (e.g. image_token); eos / pad / bos tokens;
    template: the chat template file in `assets/panorama/`; extra_eos: tokens that also end a turn."""

    tokens: tuple[str, ...]
    named: dict[str, str]
    eos: str
    pad: str
    bos: str | None
    template: str
    extra_eos: tuple[str, ...] = ()


class PanoramaFamily:
    """One transformers VLM family. Subclasses set the class attributes and implement the methods marked so."""

    name: ClassVar[str]  # our name, e.g. "qwen2.5-vl"
    model_type: ClassVar[str]  # transformers' config.model_type
    rope: ClassVar[str]  # "1d" (position ids (B, L)) or "mrope" ((4, B, L): text row, then t, h, w)
    text_row: ClassVar[bool] = False  # position ids start with a plain text row (masks and attention kernels)
    pano_pe: ClassVar[str]  # the --VLM_PE name of the PanoRoPE variant that fits it
    example_checkpoint: ClassVar[str]
    processor_class: ClassVar[str]  # the transformers processor the checkpoint names
    tiny_tokens: ClassVar[TinyTokens]
    # True when the image processor takes a pixel area per call (Qwen-VL: min_pixels = max_pixels = image_pixels);
    # the other families resize every image to the checkpoint's fixed size.
    takes_image_pixels: ClassVar[bool] = False

    # -- processing ------------------------------------------------------------------------------------------------

    def image_seq_length(self, settings: dict[str, Any], model_config: PretrainedConfig) -> int | None:
        """Tokens per image patch from the processor settings or model config (None: computed per image)."""
        return None

    def placeholder(self, tokenizer: PreTrainedTokenizerBase) -> str:
        """The text the chat template writes for one image. Implemented by each family."""
        raise NotImplementedError

    def image_token_id(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """The id of the tokens that receive image features."""
        return int(tokenizer.convert_tokens_to_ids(self.placeholder(tokenizer)))

    def expand_images(self, image_processor: BaseImageProcessor, tokenizer: PreTrainedTokenizerBase,
                      images: list[Image.Image], image_seq_length: int | None,
                      image_pixels: int | None = None) -> tuple[dict[str, Tensor], list[str]]:
        """Run the image processor on PIL `images`; returns its tensors (the model's vision inputs) and, per image,
        the text that replaces its placeholder. image_pixels: the area every image is resized to (only where
        `takes_image_pixels`); None: the processor's own settings. Implemented by each family."""
        raise NotImplementedError

    def extra_inputs(self, is_image: Tensor) -> dict[str, Tensor]:
        """Inputs derived from the (1, L) int64 image-token mask (token type ids); none by default."""
        return {}

    # -- position ids ----------------------------------------------------------------------------------------------

    def rotary_ids(self, ids: np.ndarray, mask: np.ndarray | None, image_grid_thw: np.ndarray | None,
                   spatial_merge_size: int | None, image_token_id: int, scheme: PositionScheme) -> np.ndarray:
        """(B, L) int64 token ids -> the scheme's ids the rotary embedding reads, (B, L) or (3, B, L) (t, h, w).
        With `text_row`, `PanoramaPositions` puts the plain text row before them. Implemented by the two rope
        bases."""
        raise NotImplementedError

    def rotary_rows(self, position_ids: Tensor) -> Tensor:
        """The rows of the model's `position_ids` the rotary embedding reads: all of (B, L); t, h, w of (4, B, L)."""
        return position_ids[1:] if self.text_row else position_ids

    # -- tiny preset -----------------------------------------------------------------------------------------------

    def tiny_processor_settings(self, model_config: PretrainedConfig) -> dict[str, Any]:
        """Processor settings saved beside the image processor's (e.g. image_seq_length)."""
        return {}


class RoPE1DFamily(PanoramaFamily):
    """Families whose text decoder uses 1-D RoPE (InternVL, Gemma3): PanoRoPE-1D ids."""

    rope = "1d"
    pano_pe = PANO_ROPE_1D

    def rotary_ids(self, ids: np.ndarray, mask: np.ndarray | None, image_grid_thw: np.ndarray | None,
                   spatial_merge_size: int | None, image_token_id: int, scheme: PositionScheme) -> np.ndarray:
        return batch_positions_1d(ids == image_token_id, mask, scheme)


class MRoPEFamily(PanoramaFamily):
    """Qwen-VL families: 3-D M-RoPE ids (t, h, w) after a plain text row, as transformers feeds them."""

    rope = "mrope"
    pano_pe = PANO_ROPE_MROPE
    text_row = True

    def rotary_ids(self, ids: np.ndarray, mask: np.ndarray | None, image_grid_thw: np.ndarray | None,
                   spatial_merge_size: int | None, image_token_id: int, scheme: PositionScheme) -> np.ndarray:
        if image_grid_thw is None or spatial_merge_size is None:
            raise ValueError("Qwen-VL position ids need image_grid_thw and the spatial merge size")
        return batch_positions_mrope(ids == image_token_id, mask, image_grid_thw, spatial_merge_size, scheme)
