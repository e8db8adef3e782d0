"""Tiny panorama VLMs with seeded RANDOM weights, written as ordinary checkpoints and loaded like real ones.

`tiny-internvl` (InternVL, Qwen3 text), `tiny-gemma3` (SigLIP + Gemma3 text, 5 sliding : 1 global layers),
`tiny-qwen2.5-vl` (chunked M-RoPE) and `tiny-qwen3-vl` (interleaved M-RoPE): the real model and image-processor
classes at toy sizes (hidden 64, 4 image tokens per 32-px view for InternVL/Gemma3), a byte-level BPE tokenizer
trained here on a few sentences with the family's special tokens, and the family's chat template from
`assets/panorama/`; the sizes and tokens are the family class's (`families/`). Their output is meaningless; they
exist so that the whole panorama path runs offline.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    BaseImageProcessor,
    GenerationConfig,
    PreTrainedTokenizerFast,
)
from transformers.utils import is_torchvision_available

from spatialvlm_cli.errors import ModelLoadError
from spatialvlm_cli.panorama.families import FAMILIES, PanoramaFamily, TinyTokens
from spatialvlm_cli.panorama.families.base import TINY_TEXT
from spatialvlm_cli.panorama.source import PRESETS

_CORPUS = (
    "Describe this panorama. The room has a wall, a door, two windows, a sofa, a table and a chair. "
    "A bed stands near the left wall; the kitchen is on the right. Light comes from the ceiling. "
    "The floor is wooden and the view wraps around 360 degrees from left to right."
)

def chat_template(file_name: str) -> str:
    return files("spatialvlm_cli").joinpath(f"assets/panorama/{file_name}").read_text(encoding="utf-8")


def build_tokenizer(tokens: TinyTokens) -> PreTrainedTokenizerFast:
    """A ~330-token byte-level BPE tokenizer with a family's special tokens and chat template. Deterministic: the
    same corpus always trains the same merges."""
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=330,
        show_progress=False,
        special_tokens=list(tokens.tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator([_CORPUS] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=tokens.eos,
        pad_token=tokens.pad,
        bos_token=tokens.bos,
        extra_special_tokens=tokens.named,
        chat_template=chat_template(tokens.template),
        padding_side="left",
    )


def tiny_image_processor(family: PanoramaFamily) -> BaseImageProcessor:
    """The family's image processor at the toy size: the torchvision-backed class when torchvision is installed,
    else its Pillow twin (what transformers would fall back to, without its warning)."""
    name, settings = family.tiny_image_processor()
    return getattr(transformers, name if is_torchvision_available() else f"{name}Pil")(**settings)


def save_tiny_checkpoint(name: str, directory: Path, seed: int = 0) -> Path:
    """Write preset `name` as a checkpoint folder (config, safetensors, generation config, tokenizer, image
    processor settings, chat template) and return the folder."""
    if name not in PRESETS:
        raise ModelLoadError(f"unknown panorama preset '{name}'; presets: {', '.join(PRESETS)}")
    family = FAMILIES[PRESETS[name]]
    tok = build_tokenizer(family.tiny_tokens)
    text = {**TINY_TEXT, "vocab_size": len(tok), "num_hidden_layers": 2, "max_position_embeddings": 4096,
            "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id}
    config = AutoConfig.for_model(family.model_type, **family.tiny_config(text, tok.convert_tokens_to_ids))
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    eos = [tok.eos_token_id] + [tok.convert_tokens_to_ids(token) for token in family.tiny_tokens.extra_eos]
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    settings: dict[str, Any] = {"image_processor": tiny_image_processor(family).to_dict(),
                                "processor_class": family.processor_class, **family.tiny_processor_settings(config)}
    (directory / "processor_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (directory / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
    return directory
