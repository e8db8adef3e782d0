"""The one validator of typed configuration: values against annotations, keys against fields."""

from __future__ import annotations

import logging
from typing import Literal

import pytest

from spatialvlm_cli.errors import ConfigError
from spatialvlm_cli.typed_config import check_keys, check_value


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [(3, float, 3.0), ([1, 2], tuple[int, ...], (1, 2)), (["z"], tuple[str, ...], ("z",)), (None, int | None, None),
     ("a", Literal["a", "b"], "a"), ({"k": 1}, dict, {"k": 1}), (True, bool, True)],
)
def test_values_come_back_in_the_form_the_field_holds(value, hint, expected):
    result = check_value("x", value, hint)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "hint", "fragment"),
    [(True, int, "x must be an integer, got True"), (True, float, "x must be a number"),
     (1, bool, "x must be true or false"), ([1, True], tuple[int, ...], "x must be a list of integers"),
     ([1], tuple[str, ...], "x must be a list of strings"), ("c", Literal["a", "b"], "x='c' is not one of 'a', 'b'"),
     ([], dict, "x must be a mapping"), (None, str, "x must be a string")],
)
def test_wrong_values_are_config_errors(value, hint, fragment):
    with pytest.raises(ConfigError, match=fragment):
        check_value("x", value, hint)


def test_keys_unknown_missing_or_not_a_mapping(caplog: pytest.LogCaptureFixture):
    with pytest.raises(ConfigError, match=r"unknown option\(s\) c for T \(valid: a, b\)"):
        check_keys({"a": 1, "c": 2}, ["a", "b"], "T", noun="option")
    with pytest.raises(ConfigError, match="T lacks b"):
        check_keys({"a": 1}, ["a", "b"], "T", required=["b"])
    with pytest.raises(ConfigError, match="T must be a mapping of keys to values, got list"):
        check_keys([1], ["a"], "T")
    with caplog.at_level(logging.WARNING):
        assert check_keys({"a": 1, "c": 2}, ["a"], "T", unknown="warn") == {"a": 1, "c": 2}
    assert "c" in caplog.text and "ignored" in caplog.text
