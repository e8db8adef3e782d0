"""InternVL (3.5): `<IMG_CONTEXT>` -> `<img>` + `<IMG_CONTEXT>` x image_seq_length x patches + `</img>`.

Each view is sent as one 448-px patch (`crop_to_patches=False`): the panorama is already cut into views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spatialvlm_cli.panorama.families.base import RoPE1DFamily, TinyTokens

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor
    from transformers import BaseImageProcessor, PretrainedConfig, PreTrainedTokenizerBase


class InternVL(RoPE1DFamily):
    name = "internvl"
    model_type = "internvl"
    example_checkpoint = "OpenGVLab/InternVL3_5-1B-HF"
    processor_class = "InternVLProcessor"
    tiny_tokens = TinyTokens(
        tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"),
        named={"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
               "video_token": "<video>"},
        eos="<|im_end|>", pad="<|endoftext|>", bos=None, template="internvl.jinja")

    def image_seq_length(self, settings: dict[str, Any], model_config: PretrainedConfig) -> int | None:
        return int(settings.get("image_seq_length", model_config.image_seq_length))

    def placeholder(self, tokenizer: PreTrainedTokenizerBase) -> str:
        return tokenizer.context_image_token

    def expand_images(self, image_processor: BaseImageProcessor, tokenizer: PreTrainedTokenizerBase,
                      images: list[Image.Image], image_seq_length: int | None,
                      image_pixels: int | None = None) -> tuple[dict[str, Tensor], list[str]]:
        vision = image_processor(images, crop_to_patches=False, return_tensors="pt")
        patches = [int(n) for n in vision.pop("num_patches")]
        pieces = [tokenizer.start_image_token + tokenizer.context_image_token * (image_seq_length * n)
                  + tokenizer.end_image_token for n in patches]
        return dict(vision), pieces

    def tiny_processor_settings(self, model_config: PretrainedConfig) -> dict[str, Any]:
        return {"image_seq_length": model_config.image_seq_length}
