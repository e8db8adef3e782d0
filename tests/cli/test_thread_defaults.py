"""The CLI sets OMP_WAIT_POLICY=PASSIVE before torch loads, unless the user set it (environment.py says why)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = ("import os, sys; import spatialvlm_cli.cli.app; "
         "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE"), ("passive", "passive")])
def test_wait_policy_default_is_set_before_torch_and_overridable(given: str | None, expected: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    # torch is not loaded yet when the entry point has set the variable, so its OpenMP runtime will read it
    assert done.stdout.split() == [expected, "False"]
