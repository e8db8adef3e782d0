"""Where a `--model` comes from, checked without loading anything: a path that is not there, a hub that cannot be
reached. No torch, no transformers here: these checks run in the first second of a command."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import constants, try_to_load_from_cache

HUB_PROBE_SECONDS = 2.0
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_path(spec: str) -> bool:
    """True when `spec` can only mean a file-system path: it starts with '.', '/' or '~', or has a backslash or
    more than one '/' (a hub id is exactly `owner/name`)."""
    return spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1 or spec.endswith("/")


def missing_model_path(spec: str) -> str | None:
    """The one-line error for a path-like `--model` that does not exist, else None."""
    if looks_like_path(spec) and not Path(spec).expanduser().exists():
        return f"model '{spec}' does not exist (a checkpoint directory with config.json, weights and tokenizer)"
    return None


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be used right now ('HF_HUB_OFFLINE is set', or the connection error), or
    None when its host answers within HUB_PROBE_SECONDS. One TCP connection, no request: a machine without network
    learns it in seconds instead of after transformers' retries."""
    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=HUB_PROBE_SECONDS).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"cannot reach {host}: {error.strerror or error}")

    worker = threading.Thread(target=probe, daemon=True)  # name resolution has no timeout of its own
    worker.start()
    worker.join(HUB_PROBE_SECONDS + 0.5)
    return outcome[0] if outcome else f"cannot reach {host}: no answer within {HUB_PROBE_SECONDS:.0f} s"


def offline_hub_problem(spec: str) -> str | None:
    """For a hub id (`owner/name`, not a path or preset file that exists): the one-line reason it cannot be loaded
    right now (the hub is out of reach and the id is not in the local cache), else None."""
    if not HUB_ID.match(spec) or Path(spec).expanduser().exists() or spec.endswith((".yaml", ".yml")):
        return None
    reason = hub_unreachable()
    if reason is None:
        return None
    if isinstance(try_to_load_from_cache(spec, "config.json"), str):
        return None
    return f"cannot load '{spec}': offline ({reason}) and not in the local Hugging Face cache"
