"""Streaming generation: `generate()` in a worker thread, text pieces handed to a callback as they are produced.

Unlike SpatialLM's `inference.py` there is no streamer timeout (CPU runs are slow, a 20 s timeout drops output):
the worker always ends the stream, and an exception in the worker is re-raised in the caller's thread.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spatialvlm_cli.generation.settings import GenerationSettings

if TYPE_CHECKING:
    from torch import Tensor
    from transformers import GenerationMixin, PreTrainedTokenizerBase, TextIteratorStreamer

log = logging.getLogger(__name__)

# `wall_3=Wall(...)` -> the part after `=`: repeats are judged on content, not on the running id.
_ENTITY_ID = re.compile(r"^\s*[a-z_]+_\d+\s*=")


def line_content(line: str) -> str:
    """An entity line without its `label_N=` prefix and surrounding white space."""
    return _ENTITY_ID.sub("", line).strip()


class RepeatGuard:
    """Stopping criterion for the endless-repeat failure: one entity line generated over and over.

    Tracks, for every sequence in the batch, the completed lines decoded so far. A sequence is done when one
    line content has appeared `max_repeats` times; `repeated_lines[row]` is that line and `stopped_at[row]` the
    sequence's length (prompt included) when it was stopped, None for rows it did not stop. Also honours an external
    stop request (Ctrl-C).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt_length: int, max_repeats: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.max_repeats = max_repeats
        self.stop_requested = threading.Event()
        self.repeated_lines: list[str | None] = []
        self.stopped_at: list[int | None] = []
        self._seen: list[int] = []
        self._partial: list[str] = []
        self._counts: list[Counter[str]] = []

    @property
    def repeated_line(self) -> str | None:
        """The first row's repeated line (a one-sequence run), None when the guard did not stop it."""
        return self.repeated_lines[0] if self.repeated_lines else None

    def __call__(self, input_ids: Tensor, scores: Tensor | None = None, **kwargs: object) -> Tensor:
        """input_ids (B, L): the sequences so far, prompt included; returns (B,) bool: the rows that are done."""
        import torch  # see stream_generate

        batch = input_ids.shape[0]
        if not self._counts:
            self._seen = [self.prompt_length] * batch
            self._partial = [""] * batch
            self._counts = [Counter() for _ in range(batch)]
            self.repeated_lines = [None] * batch
            self.stopped_at = [None] * batch
        done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        for row in range(batch):
            if self.stopped_at[row] is not None:
                done[row] = True
                continue
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
                    self.repeated_lines[row] = line.strip()
                    self.stopped_at[row] = input_ids.shape[1]
                    done[row] = True
                    break
        if self.stop_requested.is_set():
            done[:] = True
        return done


@dataclass
class GenerationResult:
    """text: the decoded new tokens (special tokens skipped); num_new_tokens: the row's new tokens, its
    end-of-sequence token included; hit_token_limit: generation ended at max_new_tokens, not at the end-of-sequence
    token (the text is cut)."""

    text: str
    num_new_tokens: int
    stopped_by_repeat: bool
    repeated_line: str | None
    hit_token_limit: bool = False


def stream_generate(
    model: GenerationMixin,
    tokenizer: PreTrainedTokenizerBase,
    inputs: Mapping[str, Tensor | list[Tensor]],
    settings: GenerationSettings,
    on_text: Callable[[str], None] | None = None,
) -> GenerationResult:
    """Run `model.generate(**inputs)` for one sequence and stream its text to `on_text` piece by piece.

    inputs: the processor's output (input_ids (1, L), attention_mask (1, L), model-specific extras).
    Beam search cannot stream in transformers: with num_beams > 1 the whole text is handed over at the end.
    """
    # Here, not at the top: `infer` checks its flags with GenerationSettings (this package) before torch and
    # transformers load (tests/test_layering.py).
    from transformers import TextIteratorStreamer

    streamer = None
    if settings.num_beams == 1 and on_text is not None:
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    result = _generate(model, tokenizer, inputs, settings, streamer, on_text)[0]
    if streamer is None and on_text is not None:
        on_text(result.text)
    return result


def generate_batch(model: GenerationMixin, tokenizer: PreTrainedTokenizerBase,
                   inputs: Mapping[str, Tensor | list[Tensor]],
                   settings: GenerationSettings) -> list[GenerationResult]:
    """Run `model.generate(**inputs)` for a left-padded batch of B sequences, without streaming: one result per row.

    inputs: the processor's output for B prompts (input_ids (B, L) left-padded, attention_mask (B, L), extras).
    Each row stops on its own (end-of-sequence token, repeat guard, max_new_tokens): a finished row is padded while
    the others go on, and its result holds its own tokens only. With greedy decoding each row's text is the text a
    one-sequence run gives (up to float summation order in the padded prefill); sampled rows draw from one shared
    random stream, so they depend on the batch they are in.
    """
    return _generate(model, tokenizer, inputs, settings, None, None)


def _generate(model: GenerationMixin, tokenizer: PreTrainedTokenizerBase, inputs: Mapping[str, Tensor | list[Tensor]],
              settings: GenerationSettings, streamer: TextIteratorStreamer | None,
              on_text: Callable[[str], None] | None) -> list[GenerationResult]:
    """`model.generate` in a worker thread (seeded, repeat guard per row, Ctrl-C stops it at its next step), the
    streamer's pieces handed to `on_text` as they come; one result per row of inputs["input_ids"]."""
    # Here, not at the top: see stream_generate.
    import torch
    from transformers import StoppingCriteriaList, set_seed

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
    if streamer is not None:
        kwargs["streamer"] = streamer

    outcome: dict[str, Tensor | BaseException] = {}
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
        if streamer is not None and on_text is not None:
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
    config = getattr(model, "generation_config", None)
    eos_ids = _token_ids(getattr(config, "eos_token_id", None))
    stop_ids = eos_ids | _token_ids(tokenizer.eos_token_id)
    return [_row_result(tokenizer, outcome["sequences"][row, prompt_length:], guard, row, prompt_length, eos_ids,
                        stop_ids, settings.max_new_tokens) for row in range(outcome["sequences"].shape[0])]


def _row_result(tokenizer: PreTrainedTokenizerBase, new_ids: Tensor, guard: RepeatGuard, row: int, prompt_length: int,
                eos_ids: set[int], stop_ids: set[int], max_new_tokens: int) -> GenerationResult:
    """One row's result: its new tokens (1-D) up to where the row stopped, what stopped it, and whether it ran into
    max_new_tokens. eos_ids: the ids generate ends a row at (the generation config's): the row keeps its first one
    and drops the padding after it. stop_ids: those and the tokenizer's eos (a text that ends in one is whole)."""
    ids = new_ids.tolist()
    end = len(ids)
    eos = next((index for index, token in enumerate(ids) if token in eos_ids), None)
    if eos is not None:
        end = eos + 1
    repeated = guard.repeated_lines[row] if guard.repeated_lines else None
    stopped = guard.stopped_at[row] if guard.stopped_at else None
    by_repeat = stopped is not None and stopped - prompt_length <= end
    if by_repeat:
        end = stopped - prompt_length
        log.warning("stopped generation: the line %r kept repeating", repeated)
    ids = ids[:end]
    return GenerationResult(
        text=tokenizer.decode(ids, skip_special_tokens=True),
        num_new_tokens=len(ids),
        stopped_by_repeat=by_repeat,
        repeated_line=repeated if by_repeat else None,
        hit_token_limit=not by_repeat and len(ids) >= max_new_tokens and ids[-1] not in stop_ids,
    )


def _wait(finished: threading.Event) -> None:
    """Wait for the worker in short slices: an interrupted `Thread.join()` can later return while the thread is
    still running (CPython), an event cannot."""
    while not finished.wait(0.1):
        pass


def _token_ids(value: int | list[int] | None) -> set[int]:
    """A config's eos_token_id (one id, a list of them, or None) as a set."""
    if value is None:
        return set()
    return {value} if isinstance(value, int) else {int(v) for v in value}
