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


class SlowModel:
    """`generate` that emits one token every 20 ms until a stopping criterion says done or 500 tokens are out;
    with `interrupt_at`, it sends the main thread SIGINT (Ctrl-C) after that many tokens."""

    generation_config = None

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.finished = False
        self.interrupt_at = interrupt_at

    def generate(self, input_ids, stopping_criteria, max_new_tokens, **kwargs):
        import signal
        import threading
        import time

        sequence = input_ids
        for step in range(min(max_new_tokens, 500)):
            if step == self.interrupt_at:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            time.sleep(0.02)
            sequence = torch.cat([sequence, torch.tensor([[ord("x")]])], dim=1)
            if bool(stopping_criteria[0](sequence)[0]):
                break
        self.finished = True
        return sequence


class StopTokenizer(CharTokenizer):
    pad_token_id = 0
    eos_token_id = 1


def test_ctrl_c_waits_for_generate_to_stop():
    from spatialvlm_cli.generation import stream_generate

    model = SlowModel(interrupt_at=5)
    with pytest.raises(KeyboardInterrupt):
        stream_generate(model, StopTokenizer(), {"input_ids": torch.tensor([[65]])},
                        GenerationSettings(greedy=True, max_new_tokens=400))
    assert model.finished  # the worker was not left inside generate


def test_hitting_max_new_tokens_is_reported():
    from spatialvlm_cli.generation import stream_generate

    result = stream_generate(SlowModel(), StopTokenizer(), {"input_ids": torch.tensor([[65]])},
                             GenerationSettings(greedy=True, max_new_tokens=3))
    assert (result.text, result.num_new_tokens, result.hit_token_limit) == ("xxx", 3, True)


def test_sampling_values_are_checked():
    for bad, fragment in (({"temperature": float("nan")}, "--temperature"), ({"seed": -1}, "--seed"),
                          ({"seed": 2**32}, "--seed")):
        with pytest.raises(ConfigError, match=fragment):
            GenerationSettings(**bad)
