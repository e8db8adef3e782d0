"""Sampling settings shared by every `infer` path (point cloud and panorama)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from spatialvlm_cli.errors import ConfigError

SEED_LIMIT = 2**32


@dataclass(frozen=True)
class GenerationSettings:
    """What `generate()` is asked to do. Defaults are SpatialLM's `inference.py` values."""

    max_new_tokens: int = 4096
    greedy: bool = False
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 10
    num_beams: int = 1
    # A fixed default: two runs with the same settings give the same text (numpy's seeds are 32-bit).
    seed: int = 0
    # Stop when one entity line (ignoring its id) has been generated this many times: the endless-repeat failure.
    max_line_repeats: int = 3

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"--temperature must be a number > 0, got {self.temperature} (use --greedy for argmax)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"--top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"--top_k must be >= 0, got {self.top_k}")
        if self.num_beams < 1:
            raise ConfigError(f"--num_beams must be at least 1, got {self.num_beams}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ConfigError(f"--seed must be in 0 .. {SEED_LIMIT - 1}, got {self.seed}")
        if self.max_line_repeats < 2:
            raise ConfigError(f"max_line_repeats must be at least 2, got {self.max_line_repeats}")

    def to_json(self) -> dict[str, Any]:
        """Every setting, so a run can be repeated from its JSON file."""
        return asdict(self)

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate` (sampling part only)."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams}
        if self.greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        return kwargs
