"""`spatialvlm check`: shapes and positional-encoding wiring judged by tables of small named invariants.

    from spatialvlm_cli.check import run_checks
    results = run_checks(loaded, inputs, layers=[0], verbose_printer=None)   # list[CheckResult]

Every verdict is one `CheckResult` (measured numbers, then the text rendered from them): the seeds' nine numbered
attention-layer checkpoints (`checkpoints.CHECKPOINTS`), the whole-model checks (`model_checks.MODEL_CHECKS`) and
the panorama checks (`panorama.PANORAMA_CHECKS`). `verbose_prefill(model, console)` prints the nine checkpoints
during a real run (infer with SPATIALVLM_VERBOSE=1). `checkpoints.py` documents how each seed checkpoint maps onto
our one-pass rotation.
"""

from spatialvlm_cli.check.checkpoints import CHECKPOINT_NAMES, CHECKPOINTS
from spatialvlm_cli.check.results import Check, CheckResult, Invariant, Measurement, results_to_json
from spatialvlm_cli.check.runner import ALL_VARIANTS, check_variants, run_checks, verbose_prefill
from spatialvlm_cli.check.scene import CheckScene, load_check_scene, synthetic_room

__all__ = [
    "ALL_VARIANTS",
    "CHECKPOINTS",
    "CHECKPOINT_NAMES",
    "Check",
    "CheckResult",
    "CheckScene",
    "Invariant",
    "Measurement",
    "check_variants",
    "load_check_scene",
    "results_to_json",
    "run_checks",
    "synthetic_room",
    "verbose_prefill",
]
