"""Qwen2.5-VL and Qwen3-VL: `<|image_pad|>` -> `<|image_pad|>` x (t*h*w / merge^2), plus `image_grid_thw` and
`mm_token_type_ids` (1 on image tokens); 3-D M-RoPE (chunked sections in Qwen2.5-VL, interleaved in Qwen3-VL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spatialvlm_cli.panorama.families.base import MRoPEFamily, TinyTokens

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor
    from transformers import BaseImageProcessor, PreTrainedTokenizerBase

QWEN_VL_TOKENS = TinyTokens(
    tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>"),
    named={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "vision_start_token": "<|vision_start|>",
           "vision_end_token": "<|vision_end|>"},
    eos="<|im_end|>", pad="<|endoftext|>", bos=None, template="qwen_vl.jinja")


class QwenVL(MRoPEFamily):
    """What the two Qwen-VL generations share (placeholder, image expansion, extra inputs, tiny tokenizer); the
    subclasses name their model type, processor and example checkpoint."""

    tiny_tokens = QWEN_VL_TOKENS
    takes_image_pixels = True

    def placeholder(self, tokenizer: PreTrainedTokenizerBase) -> str:
        return getattr(tokenizer, "image_token", None) or "<|image_pad|>"

    def expand_images(self, image_processor: BaseImageProcessor, tokenizer: PreTrainedTokenizerBase,
                      images: list[Image.Image], image_seq_length: int | None,
                      image_pixels: int | None = None) -> tuple[dict[str, Tensor], list[str]]:
        # image_pixels locks the processor's pixel range (min_pixels = max_pixels), as panollava does for Qwen.
        size = None if image_pixels is None else {"shortest_edge": image_pixels, "longest_edge": image_pixels}
        vision = image_processor(images, return_tensors="pt", **({} if size is None else {"size": size}))
        merge = int(image_processor.merge_size) ** 2
        placeholder = self.placeholder(tokenizer)
        return dict(vision), [placeholder * (int(grid.prod()) // merge) for grid in vision["image_grid_thw"]]

    def extra_inputs(self, is_image: Tensor) -> dict[str, Tensor]:
        return {"mm_token_type_ids": is_image}


class Qwen25VL(QwenVL):
    name = "qwen2.5-vl"
    model_type = "qwen2_5_vl"
    example_checkpoint = "Qwen/Qwen2.5-VL-3B-Instruct"
    processor_class = "Qwen2_5_VLProcessor"


class Qwen3VL(QwenVL):
    name = "qwen3-vl"
    model_type = "qwen3_vl"
    example_checkpoint = "Qwen/Qwen3-VL-2B-Instruct"
    processor_class = "Qwen3VLProcessor"
