"""Values of the flags that the CLI commands and the scripts share, parsed without heavy imports (no torch), so a
command can check its flags before it loads anything: `--VLM_PE` spellings and repeatable KEY=VALUE options.
"""

from __future__ import annotations

import yaml

from spatialvlm_cli.errors import ConfigError

STOCK_SPELLINGS = ("none", "1d_rope", "stock")  # "1D_RoPE" is what the fork writes for stock RoPE


def is_stock_spelling(name: str | None) -> bool:
    """True for the spellings of stock 1-D RoPE: Python None, "None" in any case, "1D_RoPE", "stock"."""
    return name is None or str(name).strip().lower() in STOCK_SPELLINGS


def parse_vlm_pe(value: str | None) -> str | None:
    """A `--VLM_PE` value: the stock spellings mean stock 1-D RoPE, i.e. Python None; other names pass on as given
    (point-cloud and panorama variants are checked by their own registries)."""
    return None if is_stock_spelling(value) else str(value).strip()


def parse_key_values(items: list[str] | None, flag: str) -> dict[str, object]:
    """['theta_3d=100', 'layout=chunked', 'axis_pairs=[5,5,6]'] -> {'theta_3d': 100, 'layout': 'chunked', ...}.

    Values are read as YAML scalars/lists, so numbers, booleans and lists get their types. Raises ConfigError naming
    `flag` for an item without '=' or with an unreadable value."""
    parsed: dict[str, object] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got '{item}'")
        try:
            parsed[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"{flag} {key.strip()}: cannot read value '{raw}'") from None
    return parsed
