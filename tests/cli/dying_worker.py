"""`python -m spatialvlm_cli` for torchrun, except that rank 1 kills itself (SIGKILL, nothing cleaned up) when it
reaches its second scene: a node lost partway through a sharded run (tests/cli/test_torchrun.py)."""

import os
import signal
import sys

import spatialvlm_cli.pipeline as pipeline
from spatialvlm_cli.cli.app import main

real_infer_scene = pipeline.infer_scene
started = []


def infer_scene_or_die(*args, **kwargs):
    started.append(1)
    if os.environ["RANK"] == "1" and len(started) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_infer_scene(*args, **kwargs)


pipeline.infer_scene = infer_scene_or_die
sys.argv[0] = "spatialvlm"
main()
