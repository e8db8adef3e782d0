"""Tiny panorama VLMs with seeded RANDOM weights, written as ordinary checkpoints and loaded like real ones.

`tiny-internvl` (InternVL, Qwen3 text), `tiny-gemma3` (SigLIP + Gemma3 text, 5 sliding : 1 global layers),
`tiny-qwen2.5-vl` (chunked M-RoPE) and `tiny-qwen3-vl` (interleaved M-RoPE): the real model and image-processor
classes at toy sizes (hidden 64, 4 image tokens per 32-px view for InternVL/Gemma3), a byte-level BPE tokenizer
trained here on a few sentences with the family's special tokens, and the family's chat template from
`assets/panorama/`. Their output is meaningless; they exist so that the whole panorama path runs offline.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from spatialvlm_cli.errors import ModelLoadError

PRESETS: dict[str, str] = {
    "tiny-internvl": "internvl",
    "tiny-gemma3": "gemma3",
    "tiny-qwen2.5-vl": "qwen2_5_vl",
    "tiny-qwen3-vl": "qwen3_vl",
}

_CORPUS = (
    "Describe this panorama. The room has a wall, a door, two windows, a sofa, a table and a chair. "
    "A bed stands near the left wall; the kitchen is on the right. Light comes from the ceiling. "
    "The floor is wooden and the view wraps around 360 degrees from left to right."
)

# Special tokens and their named roles (`extra_special_tokens`), as the real tokenizers define them.
_SPECIALS: dict[str, dict[str, Any]] = {
    "internvl": {
        "tokens": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
        "named": {
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
        "bos": None,
        "template": "internvl.jinja",
    },
    "gemma3": {
        "tokens": [
            "<pad>",
            "<eos>",
            "<bos>",
            "<start_of_turn>",
            "<end_of_turn>",
            "<start_of_image>",
            "<end_of_image>",
            "<image_soft_token>",
        ],
        "named": {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
        "eos": "<eos>",
        "pad": "<pad>",
        "bos": "<bos>",
        "template": "gemma3.jinja",
    },
    "qwen_vl": {
        "tokens": [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|vision_start|>",
            "<|vision_end|>",
            "<|image_pad|>",
            "<|video_pad|>",
        ],
        "named": {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_start_token": "<|vision_start|>",
            "vision_end_token": "<|vision_end|>",
        },
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
        "bos": None,
        "template": "qwen_vl.jinja",
    },
}

_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
}


def chat_template(file_name: str) -> str:
    return files("spatialvlm_cli").joinpath(f"assets/panorama/{file_name}").read_text(encoding="utf-8")


def build_tokenizer(kind: str) -> Any:
    """A ~330-token byte-level BPE tokenizer with the special tokens and chat template of `kind`
    ('internvl' | 'gemma3' | 'qwen_vl'). Deterministic: the same corpus always trains the same merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = _SPECIALS[kind]
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=330,
        show_progress=False,
        special_tokens=spec["tokens"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator([_CORPUS] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=spec["eos"],
        pad_token=spec["pad"],
        bos_token=spec["bos"],
        extra_special_tokens=spec["named"],
        chat_template=chat_template(spec["template"]),
        padding_side="left",
    )


def _model_config(model_type: str, tok: Any) -> Any:
    """A toy config of the real class; token ids point into the tiny tokenizer."""
    from transformers import AutoConfig

    vocab = len(tok)
    ids = tok.convert_tokens_to_ids
    text = {**_TEXT, "vocab_size": vocab, "num_hidden_layers": 2, "max_position_embeddings": 4096}
    text.update(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    if model_type == "internvl":
        return AutoConfig.for_model(
            "internvl",
            text_config={**text, "model_type": "qwen3", "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}},
            vision_config={
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "image_size": 32,
                "patch_size": 8,
            },
            image_token_id=ids("<IMG_CONTEXT>"),
            image_seq_length=4,
            downsample_ratio=0.5,
        )
    if model_type == "gemma3":
        text_config = {**text, "num_hidden_layers": 6, "sliding_window": 8, "query_pre_attn_scalar": 16}
        return AutoConfig.for_model(
            "gemma3",
            text_config=text_config,
            vision_config={
                "model_type": "siglip_vision_model",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 8,
            },
            mm_tokens_per_image=4,
            boi_token_index=ids("<start_of_image>"),
            eoi_token_index=ids("<end_of_image>"),
            image_token_index=ids("<image_soft_token>"),
        )
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 4,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 64,
    }
    if model_type == "qwen2_5_vl":
        rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}  # chunked TT HHH WWW
        vision.update(fullatt_block_indexes=[1], window_size=16, tokens_per_second=2)
    else:
        rope = {"rope_type": "default", "rope_theta": 5e5, "mrope_section": [4, 2, 2], "mrope_interleaved": True}
        vision.update(num_position_embeddings=16, deepstack_visual_indexes=[0])
    return AutoConfig.for_model(
        model_type,
        text_config={**text, "rope_parameters": rope},
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def _image_processor(model_type: str) -> Any:
    if model_type == "internvl":
        kwargs = {"size": {"height": 32, "width": 32}, "crop_to_patches": False}
        kwargs.update(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
        return _image_processor_class("GotOcr2ImageProcessor")(**kwargs)
    if model_type == "gemma3":
        return _image_processor_class("Gemma3ImageProcessor")(size={"height": 32, "width": 32})
    # Patch 4, merge 2: images are resized to multiples of 8 px with at most 24×48 px (3×6 merged tokens).
    size = {"shortest_edge": 8 * 8, "longest_edge": 24 * 48}
    return _image_processor_class("Qwen2VLImageProcessor")(size=size, patch_size=4, merge_size=2, temporal_patch_size=2)


def _image_processor_class(name: str) -> Any:
    """The torchvision-backed class when torchvision is installed, else its Pillow twin (what transformers would
    fall back to, without its warning)."""
    import transformers
    from transformers.utils import is_torchvision_available

    return getattr(transformers, name if is_torchvision_available() else f"{name}Pil")


def save_tiny_checkpoint(name: str, directory: Path, seed: int = 0) -> Path:
    """Write preset `name` as a checkpoint folder (config, safetensors, generation config, tokenizer, image
    processor settings, chat template) and return the folder."""
    import json

    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    if name not in PRESETS:
        raise ModelLoadError(f"unknown panorama preset '{name}'; presets: {', '.join(PRESETS)}")
    model_type = PRESETS[name]
    kind = "qwen_vl" if model_type.startswith("qwen") else model_type
    tok = build_tokenizer(kind)
    config = _model_config(model_type, tok)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    eos = [tok.eos_token_id] + ([tok.convert_tokens_to_ids("<end_of_turn>")] if kind == "gemma3" else [])
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    image_processor = _image_processor(model_type)
    processor_class = {"internvl": "InternVLProcessor", "gemma3": "Gemma3Processor"}.get(
        model_type, "Qwen2_5_VLProcessor" if model_type == "qwen2_5_vl" else "Qwen3VLProcessor"
    )
    settings: dict[str, Any] = {"image_processor": image_processor.to_dict(), "processor_class": processor_class}
    if model_type == "internvl":
        settings["image_seq_length"] = config.image_seq_length
    elif model_type == "gemma3":
        settings["image_seq_length"] = config.mm_tokens_per_image
    (directory / "processor_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (directory / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
    return directory
