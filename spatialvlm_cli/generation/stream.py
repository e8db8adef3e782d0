"""Streaming generation: `generate()` in a worker thread, text pieces handed to a callback as they are produced.

Unlike SpatialLM's `inference.py` there is no streamer timeout (CPU runs are slow, a 20 s timeout drops output):
the worker always ends the stream, and an exception in the worker is re-raised in the caller's thread.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spatialvlm_cli.generation.settings import GenerationSettings

log = logging.getLogger(__name__)

# `wall_3=Wall(...)` -> the part after `=`: repeats are judged on content, not on the running id.
_ENTITY_ID = re.compile(r"^\s*[a-z_]+_\d+\s*=")


def line_content(line: str) -> str:
    """An entity line without its `label_N=` prefix and surrounding white space."""
    return _ENTITY_ID.sub("", line).strip()


class RepeatGuard:
    """Stopping criterion for the endless-repeat failure: one entity line generated over and over.

    Tracks, for every sequence in the batch, the completed lines decoded so far. A sequence is done when one
    line content has appeared `max_repeats` times. Also honours an external stop request (Ctrl-C).
    """

    def __init__(self, tokenizer: Any, prompt_length: int, max_repeats: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.max_repeats = max_repeats
        self.stop_requested = threading.Event()
        self.repeated_line: str | None = None
        self._seen: list[int] = []
        self._partial: list[str] = []
        self._counts: list[Counter[str]] = []

    def __call__(self, input_ids: Any, scores: Any = None, **kwargs: Any) -> Any:
        import torch  # see stream_generate

        batch = input_ids.shape[0]
        if not self._counts:
            self._seen = [self.prompt_length] * batch
            self._partial = [""] * batch
            self._counts = [Counter() for _ in range(batch)]
        done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        for row in range(batch):
            new_ids = input_ids[row, self._seen[row] :].tolist()
            self._seen[row] = input_ids.shape[1]
            text = self._partial[row] + self.tokenizer.decode(new_ids, skip_special_tokens=True)
            *complete, self._partial[row] = text.split("\n")
            for line in complete:
                content = line_content(line)
                if not content:
                    continue
                self._counts[row][content] += 1
                if self._counts[row][content] >= self.max_repeats:
                    self.repeated_line = line.strip()
                    done[row] = True
        if self.stop_requested.is_set():
            done[:] = True
        return done


@dataclass
class GenerationResult:
    """text: the decoded new tokens (special tokens skipped); num_new_tokens per the first sequence;
    hit_token_limit: generation ended at max_new_tokens, not at the end-of-sequence token (the text is cut)."""

    text: str
    num_new_tokens: int
    stopped_by_repeat: bool
    repeated_line: str | None
    hit_token_limit: bool = False


def stream_generate(
    model: Any,
    tokenizer: Any,
    inputs: dict[str, Any],
    settings: GenerationSettings,
    on_text: Callable[[str], None] | None = None,
) -> GenerationResult:
    """Run `model.generate(**inputs)` for one sequence and stream its text to `on_text` piece by piece.

    inputs: the processor's output (input_ids (1, L), attention_mask (1, L), model-specific extras).
    Beam search cannot stream in transformers: with num_beams > 1 the whole text is handed over at the end.
    """
    # Here, not at the top: `infer` checks its flags with GenerationSettings (this package) before torch and
    # transformers load (tests/test_layering.py).
    import torch
    from transformers import StoppingCriteriaList, TextIteratorStreamer, set_seed

    set_seed(settings.seed)
    prompt_length = inputs["input_ids"].shape[1]
    guard = RepeatGuard(tokenizer, prompt_length, settings.max_line_repeats)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs = {
        **inputs,
        **settings.generate_kwargs(),
        "pad_token_id": pad_id,
        "stopping_criteria": StoppingCriteriaList([guard]),
    }
    streamer = None
    if settings.num_beams == 1 and on_text is not None:
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs["streamer"] = streamer

    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            with torch.inference_mode():
                outcome["sequences"] = model.generate(**kwargs)
        except BaseException as error:  # re-raised in the caller's thread below
            outcome["error"] = error
            if streamer is not None:
                streamer.end()
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="spatialvlm-generate", daemon=True)
    worker.start()
    try:
        if streamer is not None:
            for piece in streamer:
                on_text(piece)
        _wait(finished)
    except KeyboardInterrupt:
        # Ctrl-C: generate stops at its next step. Wait for that, whatever else is pressed: a process that exits
        # while the worker is inside torch aborts ("terminate called without an active exception").
        guard.stop_requested.set()
        while True:
            try:
                _wait(finished)
                break
            except KeyboardInterrupt:
                continue
        raise
    if "error" in outcome:
        raise outcome["error"]
    new_ids = outcome["sequences"][0, prompt_length:]
    text = tokenizer.decode(new_ids, skip_special_tokens=True)
    if streamer is None and on_text is not None:
        on_text(text)
    if guard.repeated_line is not None:
        log.warning("stopped generation: the line %r kept repeating", guard.repeated_line)
    stop_ids = _stop_ids(model, tokenizer)
    hit_limit = (guard.repeated_line is None and new_ids.numel() >= settings.max_new_tokens
                 and int(new_ids[-1]) not in stop_ids)
    return GenerationResult(
        text=text,
        num_new_tokens=int(new_ids.numel()),
        stopped_by_repeat=guard.repeated_line is not None,
        repeated_line=guard.repeated_line,
        hit_token_limit=hit_limit,
    )


def _wait(finished: threading.Event) -> None:
    """Wait for the worker in short slices: an interrupted `Thread.join()` can later return while the thread is
    still running (CPython), an event cannot."""
    while not finished.wait(0.1):
        pass


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end generation: the generation config's eos id(s) and the tokenizer's."""
    ids: set[int] = set()
    config = getattr(model, "generation_config", None)
    for value in (getattr(config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value is not None:
            ids.update(int(v) for v in value)
    return ids
