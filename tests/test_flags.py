"""Flag values shared by the commands and scripts: parsed without torch."""

import subprocess
import sys

import pytest

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.flags import is_stock_spelling, parse_key_values, parse_vlm_pe


@pytest.mark.parametrize("value", [None, "None", "none", " NONE ", "1D_RoPE", "stock"])
def test_stock_spellings_mean_stock_rope(value):
    assert is_stock_spelling(value) and parse_vlm_pe(value) is None


def test_variant_names_pass_on_stripped():
    assert parse_vlm_pe(" 3D_RoPE ") == "3D_RoPE" and parse_vlm_pe("PanoRoPE-1D") == "PanoRoPE-1D"
    assert not is_stock_spelling("3D_RoPE")


def test_key_values_get_yaml_types():
    parsed = parse_key_values(["theta_3d=100", "layout=chunked", "axis_pairs=[5, 5, 6]", "learned=true"], "--pe_option")
    assert parsed == {"theta_3d": 100, "layout": "chunked", "axis_pairs": [5, 5, 6], "learned": True}
    assert parse_key_values(None, "--pe_option") == {}


@pytest.mark.parametrize(("item", "message"), [("theta_3d", "expects KEY=VALUE, got 'theta_3d'"),
                                               ("=3", "expects KEY=VALUE"),
                                               ("axis_pairs=[5, 5", "axis_pairs: cannot read value")])
def test_bad_key_values_name_the_flag(item, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_key_values([item], "--pe_option")


def test_importing_flags_loads_no_torch():
    code = "import sys, spatialvlm_cli.flags; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
