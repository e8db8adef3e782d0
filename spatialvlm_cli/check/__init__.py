"""`spatialvlm check`: shapes and positional-encoding wiring judged at the seeds' nine attention-layer checkpoints.

    from spatialvlm_cli.check import run_checks
    results = run_checks(loaded, inputs, layers=[0], verbose_printer=None)   # list[CheckResult]

`verbose_prefill(model, console)` prints the same checkpoints during a real run (infer with SPATIALVLM_VERBOSE=1).
`checkpoints.py` documents how each seed checkpoint maps onto our one-pass rotation.
"""

from spatialvlm_cli.check.capture import AttentionRecorder
from spatialvlm_cli.check.model_checks import extend_attention_mask
from spatialvlm_cli.check.results import CHECKPOINT_NAMES, CheckResult, results_to_json
from spatialvlm_cli.check.runner import ALL_VARIANTS, check_variants, mode_label, run_checks, verbose_prefill
from spatialvlm_cli.check.scene import CheckScene, load_check_scene, synthetic_room
from spatialvlm_cli.model.attention import AttentionCall

__all__ = [
    "ALL_VARIANTS",
    "CHECKPOINT_NAMES",
    "AttentionCall",
    "AttentionRecorder",
    "CheckResult",
    "CheckScene",
    "check_variants",
    "extend_attention_mask",
    "load_check_scene",
    "mode_label",
    "results_to_json",
    "run_checks",
    "synthetic_room",
    "verbose_prefill",
]
