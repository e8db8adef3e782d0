"""Scene scoring and SpatialLM's aggregation on small hand-built layouts with hand-computed F1."""

from __future__ import annotations

import math

import pytest

from spatialvlm_cli.evaluation import EvalOptions, ScenePair, score_scenes
from spatialvlm_cli.layout import Bbox, Door, Layout, Wall, Window, parse_layout


def room() -> Layout:
    """A 4 m x 3 m room: 4 walls, a door in wall_0, a window in wall_1, a bed and a chair."""
    return Layout(
        walls=[Wall(0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 3.0, 0.2), Wall(1, 4.0, 0.0, 0.0, 4.0, 3.0, 0.0, 3.0, 0.2),
               Wall(2, 4.0, 3.0, 0.0, 0.0, 3.0, 0.0, 3.0, 0.2), Wall(3, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.2)],
        doors=[Door(0, 0, 2.0, 0.0, 1.0, 1.0, 2.0)],
        windows=[Window(0, 1, 4.0, 1.5, 1.5, 1.2, 1.0)],
        bboxes=[Bbox(0, "bed", 2.0, 1.5, 0.3, 0.0, 2.0, 1.6, 0.6),
                Bbox(1, "chair", 0.8, 0.8, 0.45, 0.0, 0.5, 0.5, 0.9)],
    )


def test_ground_truth_against_itself_scores_one():
    gt = room()
    report = score_scenes([ScenePair("a", gt, gt), ScenePair("b", gt, gt)])
    for name in ("wall", "door", "window", "bed", "chair"):
        assert report.f1(name, 0.25) == report.f1(name, 0.5) == 1.0
    assert report.f1("sofa", 0.25) is None  # no scene has a sofa: masked everywhere
    assert report.group_mean("layouts", 0.5) == report.group_mean("objects", 0.25) == 1.0
    assert report.scene_counts(0, "wall", 0.5).tp == 4


def test_perturbed_copy_by_hand():
    gt = room()
    pred = Layout(
        # wall_2 moved 2 m along itself: 2 m of 4 overlap -> IoU 2 / 6 = 1/3 (a TP at .25, not at .5)
        walls=[*gt.walls[:2], Wall(2, 6.0, 3.0, 0.0, 2.0, 3.0, 0.0, 3.0, 0.2), gt.walls[3]],
        doors=[],  # the door is missed
        windows=list(gt.windows),
        bboxes=[
            gt.bboxes[0],
            Bbox(1, "chair", 0.8, 0.8, 0.45, math.pi / 4, 0.5, 0.5, 0.9),  # turned 45°: IoU 1/sqrt(2)
            Bbox(2, "sofa", 2.0, 2.5, 0.4, 0.0, 2.0, 0.9, 0.8),  # a false positive
        ],
    )
    report = score_scenes([ScenePair("scene", pred, gt)])
    assert report.f1("wall", 0.25) == 1.0
    assert report.f1("wall", 0.5) == 0.75  # P = R = 3/4
    assert report.f1("door", 0.25) == 0.0  # 0 predictions, 1 ground truth: counted, F1 0
    assert report.f1("window", 0.5) == 1.0
    assert report.f1("chair", 0.5) == 1.0 and report.f1("bed", 0.5) == 1.0
    assert report.f1("sofa", 0.25) == 0.0  # 1 prediction, 0 ground truth
    assert report.scene_matches(0, "chair", 0.5)[0].iou == 0.70711
    assert report.scene_matches(0, "wall", 0.25)[2].iou == pytest.approx(1 / 3, abs=1e-6)
    # layouts mean at .5: (0.75 + 0 + 1) / 3; objects: bed 1, chair 1, sofa 0 (the other 17 classes are unscored)
    assert report.group_mean("layouts", 0.5) == pytest.approx(1.75 / 3)
    assert report.group_mean("objects", 0.25) == pytest.approx(2 / 3)


def test_class_f1_is_the_mean_over_scenes_that_have_the_class():
    gt = room()
    no_chair = Layout(gt.walls, gt.doors, gt.windows, [gt.bboxes[0]])
    empty_of_objects = Layout(gt.walls, gt.doors, gt.windows, [])
    report = score_scenes([
        ScenePair("hit", gt, gt),  # chair F1 1
        ScenePair("miss", no_chair, gt),  # chair F1 0
        ScenePair("absent", empty_of_objects, empty_of_objects),  # no chair on either side: masked
    ])
    assert report.f1("chair", 0.25) == 0.5
    assert report.scores["chair"][0.25].num_scenes == 2
    assert report.scores["chair"][0.25].tp == 1 and report.scores["chair"][0.25].num_gt == 2


def test_hungarian_finds_the_matching_a_greedy_pass_misses():
    # Along x: g0 [-1, 1], g1 [1, 2]; p0 [-0.5, 2], p1 [-1.25, -0.25] (all 1 m wide and high).
    # IoU p0-g0 1.5/3 = 0.5, p0-g1 1/2.5 = 0.4, p1-g0 0.75/2.25 = 1/3. Greedy p0-g0 leaves p1 unmatched; the
    # assignment pairs p0-g1 and p1-g0: two TPs at 0.25. At 0.45 only p0-g0 qualifies.
    def box(x: float, length: float) -> Bbox:
        return Bbox(0, "sofa", x, 0.0, 0.5, 0.0, length, 1.0, 1.0)

    gt = Layout(bboxes=[box(0.0, 2.0), box(1.5, 1.0)])
    pred = Layout(bboxes=[box(0.75, 2.5), box(-0.75, 1.0)])
    report = score_scenes([ScenePair("s", pred, gt)], EvalOptions(thresholds=(0.25, 0.45)))
    assert [(m.pred_index, m.gt_index) for m in report.scene_matches(0, "sofa", 0.25)] == [(0, 1), (1, 0)]
    assert [(m.pred_index, m.gt_index, m.iou) for m in report.scene_matches(0, "sofa", 0.45)] == [(0, 0, 0.5)]


def test_iou_exactly_at_the_threshold_counts():
    # 2 x 1 x 1 boxes offset by 2/3 m: overlap 4/3, union 8/3 -> IoU 0.5 exactly after rounding.
    gt = Layout(bboxes=[Bbox(0, "bed", 0.0, 0.0, 0.5, 0.0, 2.0, 1.0, 1.0)])
    pred = Layout(bboxes=[Bbox(0, "bed", 2 / 3, 0.0, 0.5, 0.0, 2.0, 1.0, 1.0)])
    report = score_scenes([ScenePair("s", pred, gt)])
    assert report.scene_matches(0, "bed", 0.5)[0].iou == 0.5
    assert report.f1("bed", 0.5) == 1.0


def test_class_mapping_and_minimum_scale():
    gt, _ = parse_layout("bbox_0=Bbox(chair,1.0,1.0,0.5,0.0,0.1,0.1,0.1)\n"
                         "bbox_1=Bbox(pillow,2.0,1.0,0.5,0.0,0.4,0.4,0.2)")
    # dining_chair maps to chair; its 1 cm extents are clamped to 0.1 m, so it equals the ground truth box.
    # The predicted desk and pillow have no scored class: dropped, not false positives.
    pred, _ = parse_layout("bbox_0=Bbox(dining_chair,1.0,1.0,0.5,0.0,0.01,0.01,0.01)\n"
                           "bbox_1=Bbox(desk,3.0,1.0,0.5,0.0,1.0,0.5,0.7)\nbbox_2=Bbox(pillow,2.0,1.0,0.5,0.0,0.4,0.4,0.2)")
    report = score_scenes([ScenePair("s", pred, gt)])
    assert report.f1("chair", 0.5) == 1.0
    assert report.scene_matches(0, "chair", 0.5)[0].iou == 1.0
    assert all(report.scores[c][0.25].num_pred == 0 for c in report.object_classes if c != "chair")
    custom = score_scenes([ScenePair("s", pred, gt)], EvalOptions(mapping={"chair": "seat", "dining chair": "seat"},
                                                                  object_classes=("seat",)))
    assert custom.object_classes == ("seat",) and custom.f1("seat", 0.25) == 1.0


def test_openings_need_a_valid_wall_in_their_own_layout():
    text = ("wall_0=Wall(0.0,0.0,0.0,4.0,0.0,0.0,3.0,0.2)\nwall_1=Wall(1.0,1.0,0.0,1.0,1.0,0.0,3.0,0.2)\n"
            "door_0=Door(wall_0,2.0,0.0,1.0,1.0,2.0)\ndoor_1=Door(wall_1,1.0,1.0,1.0,1.0,2.0)")
    layout, issues = parse_layout(text + "\ndoor_2=Door(wall_7,2.0,0.0,1.0,1.0,2.0)")
    assert [i.line_no for i in issues] == [5]  # wall_7 does not exist: skipped while parsing
    report = score_scenes([ScenePair("s", layout, layout)])
    # wall_1 has no xy extent: it and the door in it are left out on both sides
    assert report.scene_counts(0, "wall", 0.5) == report.scene_counts(0, "door", 0.5)
    assert (report.scene_counts(0, "door", 0.5).num_pred, report.f1("door", 0.5)) == (1, 1.0)


def test_duplicate_wall_ids_resolve_to_the_last_wall_like_spatiallm():
    text = ("wall_0=Wall(0.0,0.0,0.0,4.0,0.0,0.0,3.0,0.2)\nwall_0=Wall(0.0,5.0,0.0,4.0,5.0,0.0,3.0,0.2)\n"
            "door_0=Door(wall_0,2.0,0.0,1.0,1.0,2.0)")
    layout, _ = parse_layout(text)
    report = score_scenes([ScenePair("s", layout, layout)])
    assert report.f1("door", 0.25) == 1.0  # same lookup on both sides: the door still matches itself


def test_empty_prediction_empty_ground_truth_and_missing_files():
    gt = room()
    report = score_scenes([
        ScenePair("empty_pred", Layout(), gt),
        ScenePair("empty_gt", gt, Layout()),
        ScenePair("both_empty", Layout(), Layout()),
        ScenePair("no_pred_file", None, gt),
    ])
    assert report.f1("wall", 0.25) == 0.0 and report.scores["wall"][0.25].num_scenes == 3
    assert [s.status for s in report.scenes] == ["scored", "scored", "scored", "no_prediction"]
    only_empty = score_scenes([ScenePair("nothing", Layout(), Layout())])
    assert all(only_empty.f1(c, 0.5) is None for c in only_empty.classes)
    assert only_empty.group_mean("objects", 0.5) is None


def test_exact_mode_changes_only_the_quirky_pairs():
    gt = Layout(walls=[Wall(0, 0.0, 0.3, 0.0, 4.0, 0.3, 0.0, 3.0, 0.2)])
    pred = Layout(walls=[Wall(0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 3.0, 0.2)])  # ground truth 0.3 m behind it
    assert score_scenes([ScenePair("s", pred, gt)]).f1("wall", 0.5) == 1.0
    assert score_scenes([ScenePair("s", pred, gt)], EvalOptions(exact=True)).f1("wall", 0.5) == 0.0


def test_json_form():
    gt = room()
    data = score_scenes([ScenePair("a", gt, gt)], EvalOptions(thresholds=(0.25, 0.5, 0.75))).to_json()
    assert data["thresholds"] == [0.25, 0.5, 0.75]
    assert data["summary"]["layouts"]["classes"]["wall"]["0.75"]["f1"] == 1.0
    assert data["summary"]["objects"]["mean"]["0.5"]["f1"] == 1.0
    scene = data["scenes"][0]
    assert scene["classes"]["bed"]["0.5"] == {"tp": 1, "num_pred": 1, "num_gt": 1, "f1": 1.0, "matches": [[0, 0, 1.0]]}
    assert "sofa" not in scene["classes"]
