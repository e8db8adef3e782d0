"""Qwen2.5-VL and Qwen3-VL: `<|image_pad|>` -> `<|image_pad|>` x (t*h*w / merge^2), plus `image_grid_thw` and
`mm_token_type_ids` (1 on image tokens); 3-D M-RoPE (chunked sections in Qwen2.5-VL, interleaved in Qwen3-VL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from spatialvlm_cli.panorama.families.base import MRoPEFamily, TinyTokens

QWEN_VL_TOKENS = TinyTokens(
    tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>"),
    named={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "vision_start_token": "<|vision_start|>",
           "vision_end_token": "<|vision_end|>"},
    eos="<|im_end|>", pad="<|endoftext|>", bos=None, template="qwen_vl.jinja")

# Patch 4, merge 2: tiny images are resized to multiples of 8 px with at most 24x48 px (3x6 merged tokens).
TINY_VISION: dict[str, Any] = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                               "patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2,
                               "out_hidden_size": 64}


class QwenVL(MRoPEFamily):
    """What the two Qwen-VL generations share; subclasses give the rope and vision settings of the tiny preset."""

    tiny_tokens = QWEN_VL_TOKENS
    tiny_rope: ClassVar[dict[str, Any]]
    tiny_vision: ClassVar[dict[str, Any]]

    def placeholder(self, tokenizer: Any) -> str:
        return getattr(tokenizer, "image_token", None) or "<|image_pad|>"

    def expand_images(self, image_processor: Any, tokenizer: Any, images: list[Any],
                      image_seq_length: int | None) -> tuple[dict[str, Any], list[str]]:
        vision = image_processor(images, return_tensors="pt")
        merge = int(image_processor.merge_size) ** 2
        placeholder = self.placeholder(tokenizer)
        return dict(vision), [placeholder * (int(grid.prod()) // merge) for grid in vision["image_grid_thw"]]

    def extra_inputs(self, is_image: Any) -> dict[str, Any]:
        return {"mm_token_type_ids": is_image}

    def tiny_config(self, text: dict[str, Any], token_id: Callable[[str], int]) -> dict[str, Any]:
        return dict(
            text_config={**text, "rope_parameters": self.tiny_rope},
            vision_config={**TINY_VISION, **self.tiny_vision},
            image_token_id=token_id("<|image_pad|>"),
            video_token_id=token_id("<|video_pad|>"),
            vision_start_token_id=token_id("<|vision_start|>"),
            vision_end_token_id=token_id("<|vision_end|>"),
        )

    def tiny_image_processor(self) -> tuple[str, dict[str, Any]]:
        return "Qwen2VLImageProcessor", {"size": {"shortest_edge": 8 * 8, "longest_edge": 24 * 48}, "patch_size": 4,
                                         "merge_size": 2, "temporal_patch_size": 2}


class Qwen25VL(QwenVL):
    name = "qwen2.5-vl"
    model_type = "qwen2_5_vl"
    example_checkpoint = "Qwen/Qwen2.5-VL-3B-Instruct"
    processor_class = "Qwen2_5_VLProcessor"
    tiny_rope: ClassVar[dict[str, Any]] = {"rope_type": "default", "rope_theta": 1e6,
                                           "mrope_section": [2, 3, 3]}  # chunked TT HHH WWW
    tiny_vision: ClassVar[dict[str, Any]] = {"fullatt_block_indexes": [1], "window_size": 16, "tokens_per_second": 2}


class Qwen3VL(QwenVL):
    name = "qwen3-vl"
    model_type = "qwen3_vl"
    example_checkpoint = "Qwen/Qwen3-VL-2B-Instruct"
    processor_class = "Qwen3VLProcessor"
    tiny_rope: ClassVar[dict[str, Any]] = {"rope_type": "default", "rope_theta": 5e5, "mrope_section": [4, 2, 2],
                                           "mrope_interleaved": True}
    tiny_vision: ClassVar[dict[str, Any]] = {"num_position_embeddings": 16, "deepstack_visual_indexes": [0]}
