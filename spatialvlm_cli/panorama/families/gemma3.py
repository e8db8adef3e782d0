"""Gemma3: `<start_of_image>` -> `\\n\\n<start_of_image>` + `<image_soft_token>` x image_seq_length +
`<end_of_image>\\n\\n`, plus `token_type_ids` (1 on image tokens: bidirectional attention inside an image)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spatialvlm_cli.panorama.families.base import RoPE1DFamily, TinyTokens

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor
    from transformers import BaseImageProcessor, PretrainedConfig, PreTrainedTokenizerBase


class Gemma3(RoPE1DFamily):
    name = "gemma3"
    model_type = "gemma3"
    example_checkpoint = "google/gemma-3-4b-it"
    processor_class = "Gemma3Processor"
    tiny_tokens = TinyTokens(
        tokens=("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>",
                "<image_soft_token>"),
        named={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
        eos="<eos>", pad="<pad>", bos="<bos>", template="gemma3.jinja", extra_eos=("<end_of_turn>",))

    def image_seq_length(self, settings: dict[str, Any], model_config: PretrainedConfig) -> int | None:
        return int(settings.get("image_seq_length", model_config.mm_tokens_per_image))

    def placeholder(self, tokenizer: PreTrainedTokenizerBase) -> str:
        return tokenizer.boi_token

    def image_token_id(self, tokenizer: PreTrainedTokenizerBase) -> int:
        return int(tokenizer.image_token_id)

    def expand_images(self, image_processor: BaseImageProcessor, tokenizer: PreTrainedTokenizerBase,
                      images: list[Image.Image], image_seq_length: int | None,
                      image_pixels: int | None = None) -> tuple[dict[str, Tensor], list[str]]:
        # The processor's defaults: no pan-and-scan crops, so every image is one block of image_seq_length tokens.
        vision = image_processor(images, do_pan_and_scan=False, return_tensors="pt")
        vision.pop("num_crops", None)
        piece = f"\n\n{tokenizer.boi_token}{tokenizer.image_token * image_seq_length}{tokenizer.eoi_token}\n\n"
        return dict(vision), [piece] * len(images)

    def extra_inputs(self, is_image: Tensor) -> dict[str, Tensor]:
        return {"token_type_ids": is_image}

    def tiny_processor_settings(self, model_config: PretrainedConfig) -> dict[str, Any]:
        return {"image_seq_length": model_config.mm_tokens_per_image}
