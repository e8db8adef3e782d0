"""Turning (images, prompt) into model inputs the way each family's transformers processor does.

Why not `AutoProcessor`: in transformers 5.23 the InternVL and Qwen-VL processor classes take a video processor,
and video processors need torchvision; without it they cannot even be constructed. The pieces they combine load
without it (`AutoTokenizer`, `AutoImageProcessor` and the processor's saved settings and chat template), so this
module loads those from the checkpoint and expands the image placeholders with each processor's own rule, which
the family class states (`families/`: `placeholder`, `expand_images`, `extra_inputs`).
Tests check the result token for token against the official processor classes where they can be built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer
from transformers.processing_utils import ProcessorMixin

from spatialvlm_cli.errors import InputError, ModelLoadError
from spatialvlm_cli.panorama.families import PanoramaFamily

if TYPE_CHECKING:
    from torch import Tensor
    from transformers import BaseImageProcessor, PretrainedConfig, PreTrainedTokenizerBase


@dataclass
class PanoramaProcessor:
    """tokenizer / image_processor: transformers objects from the checkpoint. chat_template: the processor's
    Jinja template. image_seq_length: tokens per image patch (InternVL, Gemma3; unused for Qwen-VL)."""

    family: PanoramaFamily
    tokenizer: PreTrainedTokenizerBase
    image_processor: BaseImageProcessor
    chat_template: str
    image_seq_length: int | None = None

    @classmethod
    def from_pretrained(cls, location: str, family: PanoramaFamily,
                        model_config: PretrainedConfig) -> PanoramaProcessor:
        """Load the tokenizer, image processor, chat template and processor settings saved with a checkpoint."""
        tokenizer = AutoTokenizer.from_pretrained(location)
        image_processor = AutoImageProcessor.from_pretrained(location)
        settings = ProcessorMixin.get_processor_dict(location)[0]
        template = settings.get("chat_template") or tokenizer.chat_template
        if isinstance(template, dict):
            template = template.get("default")
        if not template:
            raise ModelLoadError(f"checkpoint '{location}' has no chat template")
        return cls(family, tokenizer, image_processor, template, family.image_seq_length(settings, model_config))

    @property
    def view_height_px(self) -> int:
        """The height views are best rendered at: the size the image processor resizes to (448 px InternVL,
        896 px Gemma3), or for Qwen-VL the side of a square at its pixel budget, at most 448 px."""
        size = self.image_processor.size
        if getattr(size, "height", None):
            return int(size.height)
        return min(448, math.isqrt(int(size.longest_edge)))

    @property
    def placeholder(self) -> str:
        """The text the chat template writes for one image."""
        return self.family.placeholder(self.tokenizer)

    @property
    def image_token_id(self) -> int:
        """The id of the tokens that receive image features."""
        return self.family.image_token_id(self.tokenizer)

    def prompt_text(self, num_images: int, prompt: str) -> str:
        """The chat-formatted prompt with one placeholder per image, before expansion."""
        reserved = [t for t in self.tokenizer.all_special_tokens if t and t in prompt]
        if reserved:
            raise InputError(f"--prompt must not contain special tokens such as '{reserved[0]}'")
        content = [{"type": "image"} for _ in range(num_images)] + [{"type": "text", "text": prompt}]
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}],
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=True,
        )
        if text.count(self.placeholder) != num_images:
            raise ModelLoadError(
                f"the chat template wrote {text.count(self.placeholder)} '{self.placeholder}' placeholders for "
                f"{num_images} images"
            )
        return text

    def __call__(self, images: list[np.ndarray], prompt: str, image_pixels: int | None = None) -> dict[str, Tensor]:
        """images: (h, w, 3) uint8 RGB arrays in prompt order. image_pixels: the area (pixels) every image is resized
        to where the family takes one (Qwen-VL), None: the processor's settings. Returns the model inputs for one
        sequence as torch tensors: input_ids (1, L) int64, attention_mask (1, L), pixel_values and the family's
        extras."""
        pil_images = [Image.fromarray(image) for image in images]
        text = self.prompt_text(len(images), prompt)
        vision, pieces = self.family.expand_images(self.image_processor, self.tokenizer, pil_images,
                                                   self.image_seq_length, image_pixels)
        expanded = _replace_in_order(text, self.placeholder, pieces)
        bos = self.tokenizer.bos_token
        encoded = self.tokenizer(
            expanded,
            add_special_tokens=not (bos and expanded.startswith(bos)),
            return_token_type_ids=False,
            return_tensors="pt",
        )
        inputs: dict[str, Tensor] = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        inputs.update(vision)
        inputs.update(self.family.extra_inputs((inputs["input_ids"] == self.image_token_id).long()))
        return inputs


def _replace_in_order(text: str, placeholder: str, pieces: list[str]) -> str:
    """Replace the i-th occurrence of `placeholder` in `text` by pieces[i] (no re-scanning of inserted text)."""
    parts = text.split(placeholder)
    assert len(parts) == len(pieces) + 1, "placeholder count checked by prompt_text"
    out = [parts[0]]
    for piece, rest in zip(pieces, parts[1:], strict=True):
        out += [piece, rest]
    return "".join(out)
