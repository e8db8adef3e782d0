import pytest
import torch

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.generation import GenerationSettings, RepeatGuard, line_content


class CharTokenizer:
    """One token per character: enough to drive the guard's incremental decoding."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)


def ids(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_line_content_ignores_the_running_id():
    assert line_content("wall_12=Wall(1,2,3,4,5,6,7,8)") == "Wall(1,2,3,4,5,6,7,8)"
    assert line_content("  bbox_3 = Bbox(bed,1,2,3,0,4,5,6) ") == "Bbox(bed,1,2,3,0,4,5,6)"


def test_repeat_guard_stops_on_the_third_identical_entity():
    prompt = ids("PROMPT")
    text = "wall_0=Wall(1,2)\nwall_1=Wall(3,4)\nwall_2=Wall(1,2)\nwall_3=Wall(1,2)\n"
    guard = RepeatGuard(CharTokenizer(), prompt_length=len(prompt), max_repeats=3)
    stops = []
    for end in range(1, len(text) + 1):  # one token per step, as generate calls it
        row = torch.tensor([prompt + ids(text[:end])])
        stops.append(bool(guard(row)[0]))
    first_stop = stops.index(True)
    assert text[: first_stop + 1].endswith("wall_3=Wall(1,2)\n")
    assert guard.repeated_line == "wall_3=Wall(1,2)"


def test_repeat_guard_is_per_sequence_and_honours_stop_requests():
    guard = RepeatGuard(CharTokenizer(), prompt_length=0, max_repeats=2)
    batch = torch.tensor([ids("w_0=X\nw_1=X\n"), ids("w_0=X\nw_1=Y\n")])
    assert guard(batch).tolist() == [True, False]
    guard.stop_requested.set()
    assert guard(torch.cat([batch, batch[:, :1]], dim=1)).tolist() == [True, True]


def test_settings_validate_and_map_to_generate_kwargs():
    assert GenerationSettings(greedy=True).generate_kwargs() == {"max_new_tokens": 4096, "num_beams": 1,
                                                                 "do_sample": False}
    sampled = GenerationSettings(temperature=0.7, top_k=5).generate_kwargs()
    assert sampled["do_sample"] is True and sampled["temperature"] == 0.7 and sampled["top_k"] == 5
    for bad in ({"temperature": 0}, {"top_p": 1.5}, {"num_beams": 0}, {"max_new_tokens": 0}, {"top_k": -1}):
        with pytest.raises(ConfigError):
            GenerationSettings(**bad)
