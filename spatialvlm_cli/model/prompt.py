"""SpatialLM's prompt text: task prompt per detect type, category substitution, the code template, conversation.

The user message is SpatialLM's `inference.py` format verbatim:
`<|point_start|><|point_pad|><|point_end|>{task prompt} The reference code is as followed: {code template}`.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.layout import CATEGORIES  # SpatialLM's 59 object classes, underscores kept

POINT_START_TOKEN = "<|point_start|>"
POINT_PAD_TOKEN = "<|point_pad|>"
POINT_END_TOKEN = "<|point_end|>"

DETECT_TYPE_PROMPTS: dict[str, str] = {
    "all": "Detect walls, doors, windows, boxes.",
    "arch": "Detect walls, doors, windows.",
    "object": "Detect boxes.",
}

# SpatialLM's system message for its Qwen checkpoints; its Llama checkpoints get none.
QWEN_SYSTEM_MESSAGE = "You are a helpful assistant."


@cache
def code_template() -> str:
    """SpatialLM's `code_template.txt` (562 bytes, no trailing newline), shipped as a package asset."""
    return files("spatialvlm_cli").joinpath("assets/prompts/code_template.txt").read_text(encoding="utf-8")


def task_prompt(detect_type: str = "all", categories: list[str] | tuple[str, ...] = ()) -> str:
    """The task sentence: 'Detect walls, doors, windows, boxes.' with 'boxes' replaced by the categories.

    As upstream, categories are ignored for detect_type 'arch' (it asks for no boxes). Raises ConfigError for an
    unknown detect type or class name."""
    if detect_type not in DETECT_TYPE_PROMPTS:
        raise ConfigError(f"detect_type must be one of {', '.join(DETECT_TYPE_PROMPTS)}, got '{detect_type}'")
    unknown = [name for name in categories if name not in CATEGORIES]
    if unknown:
        raise ConfigError(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(repr(n) for n in unknown)}; "
            f"valid names are SpatialLM's 59 classes, e.g. bed, sofa, dining_table"
        )
    prompt = DETECT_TYPE_PROMPTS[detect_type]
    if detect_type != "arch" and categories:
        prompt = prompt.replace("boxes", ", ".join(categories))
    return prompt


def user_message(detect_type: str = "all", categories: list[str] | tuple[str, ...] = ()) -> str:
    """The full user turn with one point placeholder (expanded to the encoder's token count by the processor)."""
    return (
        f"{POINT_START_TOKEN}{POINT_PAD_TOKEN}{POINT_END_TOKEN}{task_prompt(detect_type, categories)}"
        f" The reference code is as followed: {code_template()}"
    )


def conversation(
    model_type: str, detect_type: str = "all", categories: list[str] | tuple[str, ...] = ()
) -> list[dict[str, str]]:
    """SpatialLM's messages: a system turn for 'spatiallm_qwen', none for 'spatiallm_llama'."""
    messages = [{"role": "user", "content": user_message(detect_type, categories)}]
    if model_type == "spatiallm_qwen":
        messages.insert(0, {"role": "system", "content": QWEN_SYSTEM_MESSAGE})
    return messages
