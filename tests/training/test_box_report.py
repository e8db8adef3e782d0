"""The box report's measures against hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spatialvlm_cli.layout import Bbox, Layout, format_layout
from spatialvlm_cli.training.box_report import average_precision, box_placement, main


def test_average_precision_by_hand():
    # Ranked 0.9 (hit), 0.8 (miss), 0.7 (hit): precisions at the hits 1/1 and 2/3.
    assert average_precision(np.array([0.7, 0.9, 0.8]), np.array([1, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0.1, 0.2]), np.array([0, 0])) == 0.0
    assert average_precision(np.array([0.2, 0.1]), np.array([1, 0])) == 1.0


def box(class_name: str, x: float, y: float) -> Bbox:
    return Bbox(id=0, class_name=class_name, position_x=x, position_y=y, position_z=0.3, angle_z=0.0, scale_x=0.5,
                scale_y=0.5, scale_z=0.6)


def test_box_placement_measures_the_nearest_written_box(tmp_path: Path):
    """Room a: a bed at (1, 1) and a sofa at (4, 1); written: a bed 0.2 m off the bed. Room b: a chair, nothing
    written. Distances 0.2 m (right class), 3.0..3.01 m (from the sofa to that bed, wrong class), inf."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    (gt / "a.txt").write_text(format_layout(Layout(bboxes=[box("bed", 1.0, 1.0), box("sofa", 4.0, 1.0)])))
    (gt / "b.txt").write_text(format_layout(Layout(bboxes=[box("chair", 2.0, 2.0)])))
    (pred / "a.txt").write_text(format_layout(Layout(bboxes=[box("bed", 1.2, 1.0)])))
    report = box_placement(pred, gt)
    assert report["gt_boxes"] == 3 and report["written_boxes"] == 1 and report["classes"] == {"bed": 1}
    assert report["median_m"] == pytest.approx(2.8)
    assert report["within_0_3_m"] == pytest.approx(1 / 3) and report["within_0_6_m"] == pytest.approx(1 / 3)
    assert report["right_class"] == pytest.approx(1 / 3)


def test_without_run_or_pred_it_is_one_line_and_exit_1(capsys):
    assert main([]) == 1
    assert capsys.readouterr().err.strip().startswith("error: give --run")


def test_token_report_reads_a_runs_dense_head(tmp_path: Path):
    """A 2-step tiny run with the dense loss: one share and AP per class and 'any box', each in [0, 1], and a token
    holds 'any box' at least as often as each box class; a run without the dense head is refused."""
    from spatialvlm_cli.training import TrainSettings, build_examples, train
    from spatialvlm_cli.training.box_report import BOX_CLASSES, token_occupancy_ap
    from spatialvlm_cli.training.dense import DENSE_CLASSES

    examples = build_examples("tiny-qwen", "train", 0, 2, workers=1)
    train(TrainSettings(model="tiny-qwen", steps=2, batch_size=2, warmup_steps=1, dense_weight=1.0), examples,
          tmp_path / "dense")
    report = token_occupancy_ap(tmp_path / "dense", 2)
    assert list(report) == [*DENSE_CLASSES, "any box"]
    assert all(0 <= row["share"] <= 1 and 0 <= row["ap"] <= 1 for row in report.values())
    assert all(report["any box"]["share"] >= report[name]["share"] for name in BOX_CLASSES)
    assert report["wall"]["share"] > 0
    train(TrainSettings(model="tiny-qwen", steps=1, batch_size=2, warmup_steps=1), examples, tmp_path / "plain")
    with pytest.raises(ValueError, match="without the dense loss"):
        token_occupancy_ap(tmp_path / "plain", 2)
