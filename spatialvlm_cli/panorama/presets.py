"""Tiny panorama VLMs with seeded RANDOM weights, written as ordinary checkpoints and loaded like real ones.

`tiny-internvl` (InternVL, Qwen3 text), `tiny-gemma3` (SigLIP + Gemma3 text, 5 sliding : 1 global layers),
`tiny-qwen2.5-vl` (chunked M-RoPE) and `tiny-qwen3-vl` (interleaved M-RoPE): the real model and image-processor
classes at toy sizes (hidden 64, 4 image tokens per 32-px view for InternVL/Gemma3), a byte-level BPE tokenizer
trained here on a few sentences with the family's special tokens (`families/`), and the family's chat template from
`assets/panorama/`. Their output is meaningless; they exist so that the whole panorama path runs offline.

The sizes are data: one YAML file per preset in `assets/presets/` (read by the shared `spatialvlm_cli/presets.py`,
like the point-cloud presets), with exactly these keys (unknown keys are errors):
    description: str               one line
    model_type: str                transformers' config.model_type, one of `families.FAMILIES`
    seed: int                      weights are a function of the seed only (built on CPU in float32)
    config: {...}                  fields of the model's transformers config, with a text_config (its vocab_size
                                   and pad / eos / bos ids are the tiny tokenizer's)
    token_ids: {field: token}      config fields that take the id of a special token of the tiny tokenizer
    image_processor: str           transformers image-processor class (its Pillow twin `<class>Pil` without
                                   torchvision)
    image_processor_settings: {...}  its settings
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

from spatialvlm_cli.errors import ConfigError, ModelLoadError
from spatialvlm_cli.panorama.families import TinyTokens, family_for_model_type
from spatialvlm_cli.panorama.source import panorama_presets
from spatialvlm_cli.presets import PANORAMA, read_preset_file
from spatialvlm_cli.typed_config import check_value

_CORPUS = (
    "Describe this panorama. The room has a wall, a door, two windows, a sofa, a table and a chair. "
    "A bed stands near the left wall; the kitchen is on the right. Light comes from the ceiling. "
    "The floor is wooden and the view wraps around 360 degrees from left to right."
)

# Every key a panorama preset file may have, with the type of its value (checked by `typed_config.check_value`).
PRESET_KEYS: dict[str, Any] = {
    "description": str,
    "model_type": str,
    "seed": int,
    "config": dict,
    "token_ids": dict,
    "image_processor": str,
    "image_processor_settings": dict,
}
REQUIRED_KEYS = ("model_type", "seed", "config", "token_ids", "image_processor", "image_processor_settings")


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


def read_preset(name: str) -> dict[str, Any]:
    """Parse and validate the shipped panorama preset `name`."""
    if name not in panorama_presets():
        raise ModelLoadError(f"unknown panorama preset '{name}'; presets: {', '.join(panorama_presets())}")
    return read_preset_file(name, PRESET_KEYS, required=REQUIRED_KEYS, kind=PANORAMA)


def preset_config_fields(preset: dict[str, Any], name: str, tok: PreTrainedTokenizerFast,
                         tokens: TinyTokens) -> dict[str, Any]:
    """The config fields of a preset: its `config`, the tokenizer's vocabulary size and pad / eos / bos ids in the
    text config, and the ids of the special tokens named in `token_ids` (ConfigError for a token the family's tiny
    tokenizer lacks)."""
    owner = f"preset '{name}'"
    fields = dict(preset["config"])
    text = check_value(f"{owner}: config.text_config", fields.get("text_config"), dict)
    fields["text_config"] = {**text, "vocab_size": len(tok), "pad_token_id": tok.pad_token_id,
                             "eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id}
    for field, token in preset["token_ids"].items():
        if token not in tokens.tokens:
            raise ConfigError(f"{owner}: token_ids {field}={token!r} is not a special token of the family's tiny "
                              f"tokenizer ({', '.join(tokens.tokens)})")
        fields[field] = tok.convert_tokens_to_ids(token)
    return fields


def tiny_image_processor(preset: dict[str, Any]) -> BaseImageProcessor:
    """The preset's image processor: the torchvision-backed class when torchvision is installed, else its Pillow
    twin (what transformers would fall back to, without its warning)."""
    name = preset["image_processor"]
    return getattr(transformers, name if is_torchvision_available() else f"{name}Pil")(
        **preset["image_processor_settings"])


def save_tiny_checkpoint(name: str, directory: Path) -> Path:
    """Write preset `name` as a checkpoint folder (config, safetensors, generation config, tokenizer, image
    processor settings, chat template) and return the folder."""
    preset = read_preset(name)
    family = family_for_model_type(preset["model_type"], name)
    tok = build_tokenizer(family.tiny_tokens)
    config = AutoConfig.for_model(family.model_type, **preset_config_fields(preset, name, tok, family.tiny_tokens))
    torch.manual_seed(preset["seed"])
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    eos = [tok.eos_token_id] + [tok.convert_tokens_to_ids(token) for token in family.tiny_tokens.extra_eos]
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    settings: dict[str, Any] = {"image_processor": tiny_image_processor(preset).to_dict(),
                                "processor_class": family.processor_class, **family.tiny_processor_settings(config)}
    (directory / "processor_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (directory / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
    return directory
