"""SpatialLM's prompt text and the bundled tokenizer."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.model.prompt import CATEGORIES, code_template, conversation, task_prompt
from spatialvlm_cli.model.tokenizer import SPECIAL_TOKENS, load_bundled_tokenizer


def test_code_template_is_spatiallm_file():
    text = code_template()
    assert len(text.encode()) == 562
    assert text.startswith("@dataclass\nclass Wall:\n    ax: int\n")
    assert text.endswith("    scale_z: int")


def test_task_prompts():
    assert task_prompt("all") == "Detect walls, doors, windows, boxes."
    assert task_prompt("arch") == "Detect walls, doors, windows."
    assert task_prompt("object", ["bed", "nightstand"]) == "Detect bed, nightstand."
    assert task_prompt("all", ["dining_table"]) == "Detect walls, doors, windows, dining_table."
    assert task_prompt("arch", ["bed"]) == "Detect walls, doors, windows."
    with pytest.raises(ConfigError, match="detect_type"):
        task_prompt("everything")


def test_categories_are_spatiallm_59():
    assert len(CATEGORIES) == len(set(CATEGORIES)) == 59
    assert {"micro-wave_oven", "floor-standing_lamp", "multifunctional_combination_bed"} <= set(CATEGORIES)


def test_system_turn_only_for_qwen():
    assert [m["role"] for m in conversation("spatiallm_qwen")] == ["system", "user"]
    assert [m["role"] for m in conversation("spatiallm_llama")] == ["user"]
    assert conversation("spatiallm_qwen")[0]["content"] == "You are a helpful assistant."


@pytest.fixture(scope="module")
def tokenizer():
    return load_bundled_tokenizer("qwen")


def test_special_tokens_are_atomic_with_fixed_ids(tokenizer):
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(12))
    text = "a<|point_start|><|point_pad|><|point_pad|><|point_end|>b<|im_end|>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[1:5] == [3, 4, 4, 5] and ids[-1] == 2
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ab"


def test_layout_language_tokenises_compactly(tokenizer):
    assert all(len(tokenizer.encode(str(b), add_special_tokens=False)) == 1 for b in range(1280))
    worst = max(len(tokenizer.encode(name, add_special_tokens=False)) for name in CATEGORIES)
    assert worst <= 9  # 'leisure_table_and_chair_combination': 5 words + 4 underscores
    line = "wall_0=Wall(12,345,0,1279,88,0,140,10)\nbbox_3=Bbox(dining_table,640,322,45,1100,80,64,50)"
    ids = tokenizer.encode(line, add_special_tokens=False)
    assert tokenizer.decode(ids) == line
    assert len(ids) <= 48  # one token per number, comma and bracket


def test_chat_formats_set_eos_and_bos():
    qwen, llama = load_bundled_tokenizer("qwen"), load_bundled_tokenizer("llama")
    assert (qwen.eos_token, qwen.bos_token, qwen.pad_token) == ("<|im_end|>", None, "<|endoftext|>")
    assert (llama.eos_token, llama.bos_token, llama.pad_token) == ("<|eot_id|>", "<|begin_of_text|>", "<|endoftext|>")
    with pytest.raises(ConfigError, match="chat format"):
        load_bundled_tokenizer("mistral")


def test_bundled_tokenizer_is_small_and_byte_level():
    data = json.loads(files("spatialvlm_cli").joinpath("assets/tokenizer/tokenizer.json").read_text())
    assert 1000 <= len(data["model"]["vocab"]) <= 2048
    assert data["pre_tokenizer"]["type"] == "ByteLevel"


def test_committed_tokenizer_is_what_the_build_script_makes(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "build_tokenizer.py"
    spec = importlib.util.spec_from_file_location("build_tokenizer", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train().save_pretrained(tmp_path)
    committed = files("spatialvlm_cli").joinpath("assets/tokenizer/tokenizer.json").read_text()
    assert (tmp_path / "tokenizer.json").read_text() == committed
