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
    import signal

    from spatialvlm_cli.generation import stream_generate

    # Python's Ctrl-C handler, as in a terminal: a shell that starts the tests in the background leaves SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    model = SlowModel(interrupt_at=5)
    try:
        with pytest.raises(KeyboardInterrupt):
            stream_generate(model, StopTokenizer(), {"input_ids": torch.tensor([[65]])},
                            GenerationSettings(greedy=True, max_new_tokens=400))
    finally:
        signal.signal(signal.SIGINT, previous)
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


class ScriptedModel:
    """`generate` as transformers runs a batch: row r emits `scripts[r]` one character per step, then its eos; a row
    that emitted eos or that a stopping criterion calls done gets the pad id from then on, and generation ends when
    every row is done or at max_new_tokens."""

    EOS = 3

    class generation_config:  # the attribute generate reads
        eos_token_id = 3

    def __init__(self, scripts: list[str]) -> None:
        self.scripts = scripts

    def generate(self, input_ids, stopping_criteria, max_new_tokens, pad_token_id, **kwargs):
        sequence = input_ids
        unfinished = torch.ones(len(self.scripts), dtype=torch.bool)
        for step in range(max_new_tokens):
            tokens = torch.tensor([ord(script[step]) if step < len(script) else self.EOS for script in self.scripts])
            tokens = torch.where(unfinished, tokens, torch.full_like(tokens, pad_token_id))
            sequence = torch.cat([sequence, tokens[:, None]], dim=1)
            unfinished &= tokens != self.EOS
            unfinished &= ~stopping_criteria(sequence, None)
            if not unfinished.any():
                break
        return sequence


class ScriptTokenizer(CharTokenizer):
    pad_token_id = 0
    eos_token_id = 3

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if i not in (0, 3))


def test_batch_rows_stop_on_their_own_and_equal_single_runs():
    """Row 0 repeats a line (the guard stops it), row 1 ends early with its eos, row 2 runs into max_new_tokens;
    prompts of different lengths are left-padded. Each row's result is the one-row run's."""
    from spatialvlm_cli.generation import generate_batch, stream_generate

    scripts = ["w_0=A\nw_1=B\nw_2=A\nw_3=A\nw_4=C\n", "w_0=A\n", "w_0=A\nw_1=B\nw_2=C\nw_3=D\nw_4=E\nw_5=F\n"]
    prompts = [ids("P"), ids("PPP"), ids("PP")]
    width = max(len(prompt) for prompt in prompts)
    batch = torch.tensor([[0] * (width - len(prompt)) + prompt for prompt in prompts])
    mask = (batch != 0).long()
    settings = GenerationSettings(greedy=True, max_new_tokens=30, max_line_repeats=3)
    rows = generate_batch(ScriptedModel(scripts), ScriptTokenizer(), {"input_ids": batch, "attention_mask": mask},
                          settings)
    singles = [stream_generate(ScriptedModel([script]), ScriptTokenizer(), {"input_ids": torch.tensor([prompt])},
                               settings) for script, prompt in zip(scripts, prompts, strict=True)]
    assert rows == singles
    assert (rows[0].text, rows[0].stopped_by_repeat, rows[0].repeated_line) == \
        ("w_0=A\nw_1=B\nw_2=A\nw_3=A\n", True, "w_3=A")
    assert (rows[1].text, rows[1].num_new_tokens, rows[1].hit_token_limit) == ("w_0=A\n", 7, False)
    assert (rows[2].num_new_tokens, rows[2].hit_token_limit, rows[2].stopped_by_repeat) == (30, True, False)
