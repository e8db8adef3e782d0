"""Our input builder against the official transformers processor classes, token for token.

Gemma3Processor builds without torchvision; the InternVL and Qwen-VL processors need it (their video processor),
so those comparisons run only where torchvision is installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.panorama.processing import PanoramaProcessor
from spatialvlm_cli.panorama.source import panorama_presets

NEEDS_TORCHVISION = {"tiny-internvl", "tiny-qwen2.5-vl", "tiny-qwen3-vl"}


@pytest.mark.parametrize("name", list(panorama_presets()))
def test_inputs_equal_the_official_processor(name, checkpoint_dirs, loaded_models, pano_images):
    if name in NEEDS_TORCHVISION and importlib.util.find_spec("torchvision") is None:
        pytest.skip("the official InternVL/Qwen-VL processors need torchvision")
    from transformers import AutoProcessor

    images, _ = pano_images
    ours = loaded_models[name].processor(images, "Describe the room.")
    official = AutoProcessor.from_pretrained(str(checkpoint_dirs[name]))
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}] * len(images) + [{"type": "text", "text": "Describe the room."}],
        }
    ]
    text = official.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    kwargs = {"crop_to_patches": False} if name == "tiny-internvl" else {}
    from PIL import Image

    theirs = official(text=text, images=[Image.fromarray(i) for i in images], return_tensors="pt", **kwargs)
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert torch.equal(ours[key].to(value.dtype), value), key


@pytest.mark.parametrize("name", list(panorama_presets()))
def test_one_image_run_per_image_and_special_tokens_refused(name, loaded_models, pano_images):
    from spatialvlm_cli.panorama.positions import image_runs

    processor: PanoramaProcessor = loaded_models[name].processor
    images, _ = pano_images
    inputs = processor(images, "Describe the room.")
    is_image = (inputs["input_ids"][0] == processor.image_token_id).numpy()
    runs = image_runs(is_image)
    assert len(runs) == len(images)
    if "image_grid_thw" not in inputs:
        assert [stop - start for start, stop in runs] == [processor.image_seq_length] * len(images)
        assert inputs["pixel_values"].shape[0] == len(images)  # one patch per view
    else:
        merge = processor.image_processor.merge_size**2
        counts = [int(g.prod()) // merge for g in inputs["image_grid_thw"]]
        assert [stop - start for start, stop in runs] == counts
    with pytest.raises(InputError, match="special tokens"):
        processor(images, f"look {processor.placeholder} here")


def test_gemma3_token_types_mark_exactly_the_image_tokens(loaded_models, pano_images):
    processor = loaded_models["tiny-gemma3"].processor
    images, _ = pano_images
    inputs = processor(images, "Describe the room.")
    ids = inputs["input_ids"][0].numpy()
    np.testing.assert_array_equal(inputs["token_type_ids"][0].numpy(), ids == processor.image_token_id)
    assert (ids == processor.image_token_id).sum() == 4 * len(images)
