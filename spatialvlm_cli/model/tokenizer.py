"""The bundled tokenizer of the presets, and SpatialLM's two chat formats (Qwen ChatML, Llama-3 headers).

The tokenizer in `assets/tokenizer/` (built by `scripts/build_tokenizer.py`) is saved chat-neutral; a preset picks a
chat format, which sets the chat template and the bos/eos/pad tokens. `save_pretrained` then stores both with the
checkpoint, so a saved preset reloads as an ordinary checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import as_file, files

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.prompt import POINT_END_TOKEN, POINT_PAD_TOKEN, POINT_START_TOKEN

# The bundled tokenizer's pad token in both chat formats, and its end-of-text token while saved chat-neutral.
NEUTRAL_EOS_TOKEN = "<|endoftext|>"

# Every special token of the bundled tokenizer, ids 0..11 in this order (scripts/build_tokenizer.py trains it with
# them). Qwen's and Llama's chat tokens both exist so one tokenizer serves both chat formats.
SPECIAL_TOKENS: tuple[str, ...] = (
    NEUTRAL_EOS_TOKEN,
    "<|im_start|>",
    "<|im_end|>",
    POINT_START_TOKEN,
    POINT_PAD_TOKEN,
    POINT_END_TOKEN,
    "<|layout_s|>",
    "<|layout_e|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)


@dataclass(frozen=True)
class ChatFormat:
    """template: file in assets/chat_templates/; bos is prepended by the template itself (Llama) or absent."""

    template: str
    eos_token: str
    bos_token: str | None
    pad_token: str = NEUTRAL_EOS_TOKEN


CHAT_FORMATS: dict[str, ChatFormat] = {
    "qwen": ChatFormat(template="qwen.jinja", eos_token="<|im_end|>", bos_token=None),
    "llama": ChatFormat(template="llama.jinja", eos_token="<|eot_id|>", bos_token="<|begin_of_text|>"),
}


def chat_template(name: str) -> str:
    """The Jinja text of a chat format ('qwen' or 'llama')."""
    if name not in CHAT_FORMATS:
        raise ConfigError(f"chat format must be one of {', '.join(CHAT_FORMATS)}, got '{name}'")
    path = files("spatialvlm_cli").joinpath(f"assets/chat_templates/{CHAT_FORMATS[name].template}")
    return path.read_text(encoding="utf-8")


def apply_chat_format(tokenizer: PreTrainedTokenizerBase, name: str) -> PreTrainedTokenizerBase:
    """Give `tokenizer` the chat template and special tokens of format `name`; returns the same tokenizer."""
    tokenizer.chat_template = chat_template(name)
    fmt = CHAT_FORMATS[name]
    tokenizer.eos_token = fmt.eos_token
    tokenizer.pad_token = fmt.pad_token
    tokenizer.bos_token = fmt.bos_token
    return tokenizer


def load_bundled_tokenizer(chat_format: str) -> PreTrainedTokenizerBase:
    """The package's small byte-level BPE tokenizer (~1.9k tokens) set up for `chat_format` ('qwen' | 'llama')."""
    with as_file(files("spatialvlm_cli").joinpath("assets/tokenizer")) as directory:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    return apply_chat_format(tokenizer, chat_format)
