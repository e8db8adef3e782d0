"""Scripts a user runs from the README: they fail the way commands do (one `error:` line on stderr, exit code 1),
and the README's tables are what they print from the committed results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "scripts" / "results"  # committed predictions behind the README's tables


def test_pe_table_with_no_runs_is_one_line_and_exit_1(tmp_path: Path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: nothing to tabulate") and str(tmp_path) in lines[0]


SETTINGS = {"vlm_pe": None, "merge_rule": None, "pe_options": {}, "steps": 300, "dense_weight": 1.0,
            "wall_offset_weight": 1.0, "read_weight": 10.0, "read_from_step": 500, "mix_prompts": True,
            "all_share": 0.2}


def write_seed_run(runs: Path, row: str, seed: int, truth: bool) -> None:
    """RUNS/<row>/seed<k>: predictions on the shipped rooms that are the ground truth (truth) or empty, and a
    training.json of SETTINGS whose run took 60 s x (seed + 1) and ended at loss 1 + seed."""
    run = runs / row / f"seed{seed}"
    pred = run / "heldout" / "pred"
    pred.mkdir(parents=True)
    for txt in sorted((REPO / "scenes").glob("room_*.txt")):
        (pred / txt.name).write_text(txt.read_text() if truth else "")
    report = {"seconds": 60.0 * (seed + 1), "losses": [2.0, 1.0 + seed]}
    (run / "training.json").write_text(json.dumps({"settings": SETTINGS, "report": report}))


def test_pe_table_gives_mean_and_sd_over_seeds(tmp_path: Path):
    """Row `none` with two seeds on the shipped rooms: seed 0 writes the ground truth (wall F1 100), seed 1 nothing
    (0), so the row is 50.0 ± 70.7 (sample standard deviation of 100 and 0); its flags come from training.json."""
    write_seed_run(tmp_path / "pe", "none", 0, truth=True)
    write_seed_run(tmp_path / "pe", "none", 1, truth=False)
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), str(tmp_path / "pe"),
                             "--gt", str(REPO / "scenes")], capture_output=True, text=True, check=True)
    header, _, row = result.stdout.splitlines()
    cells = dict(zip([c.strip() for c in header.split("|")[1:-1]], [c.strip() for c in row.split("|")[1:-1]],
                     strict=True))
    assert cells["row"] == "none" and cells["seeds"] == "2"
    assert cells["wall F1@.25 exact"] == "50.0 ± 70.7"
    assert cells["extent err m (median)"] == "1.00 ± 1.41"  # 0 m for the truth, the 2 m cutoff for nothing
    assert cells["training flags"] == ("`--VLM_PE None --steps 300 --dense-weight 1 --wall-offset-weight 1 "
                                       "--read-weight 10 --read-from-step 500 --mix-prompts --all-share 0.2`")
    assert cells["vs none"] == "+0.0 ± 0.0" and cells["± with seeds"] == "0.0"
    assert (cells["train min"], cells["final loss"]) == ("1.5", "1.500")


def test_pe_table_per_seed_puts_each_seed_in_its_column_with_the_spread(tmp_path: Path):
    """`none` with seeds 0 (ground truth: 100.0 / 0.00 m) and 1 (nothing: 0.0 / the 2 m cutoff), spread
    100.0 / 2.00; `other` with seed 1 alone: a dash under seed 0 and no spread; --row and baselines are left out,
    and with no seed runs at all --per-seed is one error line."""
    write_seed_run(tmp_path / "pe", "none", 0, truth=True)
    write_seed_run(tmp_path / "pe", "none", 1, truth=False)
    write_seed_run(tmp_path / "pe", "other", 1, truth=True)
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), str(tmp_path / "pe"),
                             "--per-seed", "--row", f"extra={tmp_path / 'pe' / 'other' / 'seed1' / 'heldout'}",
                             "--gt", str(REPO / "scenes")], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        "| row: exact wall F1@.25 / extent err m (median) | seed 0 | seed 1 | spread |",
        "|---|---|---|---|",
        "| none | 100.0 / 0.00 | 0.0 / 2.00 | 100.0 / 2.00 |",
        "| other | – | 100.0 / 0.00 | – |",
    ]
    only_row = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), "--per-seed", "--row",
                               f"extra={tmp_path / 'pe' / 'other' / 'seed1' / 'heldout'}", "--gt",
                               str(REPO / "scenes")], capture_output=True, text=True)
    assert only_row.returncode == 1 and only_row.stdout == ""
    assert only_row.stderr.startswith("error: --per-seed tabulates the seed runs of RUNS")
    assert len(only_row.stderr.splitlines()) == 1


def test_pe_table_versus_takes_the_paired_difference_from_the_named_row(tmp_path: Path):
    """--versus other: `none` (the ground truth, wall F1 100 in every room) is +100.0 over `other` (nothing, 0), the
    same in every room, so its standard error is 0; a name that is no row is one error line and exit 1."""
    write_seed_run(tmp_path / "pe", "none", 0, truth=True)
    write_seed_run(tmp_path / "pe", "other", 0, truth=False)
    command = [sys.executable, str(REPO / "scripts" / "pe_table.py"), str(tmp_path / "pe"), "--gt",
               str(REPO / "scenes"), "--versus"]
    header, _, none_row, other_row = subprocess.run([*command, "other"], capture_output=True, text=True,
                                                    check=True).stdout.splitlines()
    column = [c.strip() for c in header.split("|")].index("vs other")
    assert none_row.split("|")[column].strip() == "+100.0 ± 0.0"
    assert other_row.split("|")[column].strip() == "+0.0 ± 0.0"
    result = subprocess.run([*command, "bogus"], capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "error: --versus names 'bogus', which is no row of this table (rows: none, other)\n"


def test_pe_table_with_seeds_adds_each_rows_seed_variance_to_the_paired_error(tmp_path: Path):
    """`none`: seed 0 the ground truth (wall F1 100 in every room), seed 1 nothing (0), so 50 in every room and a
    seed variance of the mean of (100 - 50)² x 2 / 1 / 2 seeds = 2500; `other`: two seeds of the truth, 100 in every
    room, no seed variance. Paired over rooms `other` is +50.0 ± 0.0, and with seeds ± sqrt(0 + 0 + 2500) = 50.0;
    a --row of one seed has an unknown seed variance: a dash."""
    write_seed_run(tmp_path / "pe", "none", 0, truth=True)
    write_seed_run(tmp_path / "pe", "none", 1, truth=False)
    write_seed_run(tmp_path / "pe", "other", 0, truth=True)
    write_seed_run(tmp_path / "pe", "other", 1, truth=True)
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), str(tmp_path / "pe"), "--row",
                             f"single={tmp_path / 'pe' / 'other' / 'seed0' / 'heldout'}", "--gt",
                             str(REPO / "scenes")], capture_output=True, text=True, check=True)
    header, _, *rows = result.stdout.splitlines()
    titles = [c.strip() for c in header.split("|")]
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")] for row in rows}
    paired, with_seeds = titles.index("vs none"), titles.index("± with seeds")
    assert (cells["none"][paired], cells["none"][with_seeds]) == ("+0.0 ± 0.0", "0.0")
    assert (cells["other"][paired], cells["other"][with_seeds]) == ("+50.0 ± 0.0", "50.0")
    assert (cells["single"][paired], cells["single"][with_seeds]) == ("+50.0 ± 0.0", "–")


def test_compare_pe_rows_naming_no_row_is_one_line_and_exit_1():
    """One misspelt name in ROWS stops the comparison, rather than silently leaving that row out."""
    result = subprocess.run(["bash", str(REPO / "scripts" / "compare_pe.sh"), "10", "0"], capture_output=True,
                            text=True, env={"PATH": os.environ["PATH"], "ROWS": "none bogus_row"})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ROWS names 'bogus_row', which is no row of this script (rows: none ")
    assert len(result.stderr.splitlines()) == 1


def test_curve_table_reads_curve_and_training_minutes(tmp_path: Path):
    run = tmp_path / "r80"
    run.mkdir()
    (run / "curve.jsonl").write_text(json.dumps({"step": 200, "wall": 31.04, "door": 0.0, "window": None,
                                                 "boxes": 2.5, "extent_median_m": 1.553, "wall_error_median_m": 0.4,
                                                 "rooms": 8, "seconds": 17.9}) + "\n")
    (run / "progress.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0, "lr": 1e-3, "seconds": 3.0 * s})
                                                + "\n" for s in (175, 200)))
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "curve_table.py"), str(run)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[2] == "| r80 | 200 | 10.0 | 8 | 31.0 | 0.0 | – | 2.5 | 1.55 | 0.40 |"
    with (run / "curve.jsonl").open("a") as handle:  # a newer line that checks the prompt too
        handle.write(json.dumps({"step": 400, "wall": 40.0, "door": 0.0, "window": 0.0, "boxes": 0.0,
                                 "extent_median_m": 0.5, "wall_error_median_m": 0.3, "arch_with_boxes": 0.25,
                                 "categories_other": 1.0, "rooms": 8, "seconds": 9.0}) + "\n")
    lines = subprocess.run([sys.executable, str(REPO / "scripts" / "curve_table.py"), str(run)],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0].endswith("| prompt ignored (arch, categories) |") and lines[1] == "|---" * 11 + "|"
    assert lines[2].endswith("| 0.40 | –, – |") and lines[3].endswith("| 0.30 | 0.25, 1.00 |")
    missing = subprocess.run([sys.executable, str(REPO / "scripts" / "curve_table.py"), str(tmp_path / "none")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no curve.jsonl in")


def test_bench_infer_times_three_ways_that_write_the_same_text():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_infer.py"), "--rooms", "3", "--batch-size",
                             "2", "--model", "tiny-qwen", "--max-new-tokens", "3"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].endswith("same text all three ways: yes")
    rows = [line.split(" | ") for line in lines[3:]]
    assert [row[0] for row in rows] == ["| one process, scene by scene", "| one process, --batch_size 2",
                                        "| 2 processes (torchrun)"]
    assert rows[0][3] == "1.00 |" and all(float(row[1]) > 0 for row in rows)
    failed = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_infer.py"), "--rooms", "1", "--model",
                             "no-such-preset"], capture_output=True, text=True, timeout=600)
    assert failed.returncode == 1 and failed.stderr.startswith("error: ") and "no-such-preset" in failed.stderr


def test_eval_turned_rooms_scores_both_legs_of_one_room(tmp_path: Path):
    """The README's turned-scan check through the shipped model, one room: the turned and aligned scan's layout,
    turned back into the room's frame, lies where the upright scan's does (median extent errors within 0.1 m of
    each other and under 0.5 m; a layout left in another frame scores the 2 m cutoff)."""
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "eval_turned_rooms.py"), "--count", "1",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()
            if line.split()[:1] in (["upright"], ["turned"])}
    assert list(rows) == ["upright", "turned"]
    upright, turned = (float(rows[leg][-2]) for leg in ("upright", "turned"))  # median extent error, metres
    assert turned < 0.5 and abs(turned - upright) < 0.1
    assert {path.name for path in (tmp_path / "turned").glob("*.txt")} == {"room_000.txt"}


@pytest.fixture(scope="module")
def heldout_rooms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 50 held-out rooms, made from their seeds by the README's command."""
    heldout = tmp_path_factory.mktemp("heldout")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_scenes.py"), "--out", str(heldout), "--split",
                    "heldout", "--start", "0", "--count", "50"], check=True, capture_output=True)
    return heldout


def test_readme_pe_table_is_what_pe_table_prints_from_the_committed_results(heldout_rooms: Path):
    """The README's PE comparison table is regenerated, not typed: pe_table.py over the committed run results
    (scripts/results/pe: each run's training.json and predictions) and baselines, scored against the held-out
    rooms, prints it line for line."""
    table = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), str(RESULTS / "pe"),
                            "--baselines", str(RESULTS / "baselines"), "--gt", str(heldout_rooms)],
                           capture_output=True, text=True, check=True).stdout
    assert table.count("\n") >= 2 + 1 + 4  # header, rule, at least one run, the four baselines
    assert table in (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_per_seed_table_is_what_pe_table_prints_from_the_committed_results(heldout_rooms: Path):
    """The README's per-seed figures of the comparison, which its reading quotes, are regenerated too."""
    table = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), str(RESULTS / "pe"),
                            "--per-seed", "--gt", str(heldout_rooms)], capture_output=True, text=True,
                           check=True).stdout
    assert table.count("\n") >= 2 + 1  # header, rule, at least one run
    assert table in (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_model_card_row_of_the_shipped_model_is_what_its_committed_predictions_score(heldout_rooms: Path):
    """The model card's row of the shipped model, from its committed greedy predictions on the held-out rooms
    (scripts/results/shipped: `scripts/eval_rooms.sh spatialvlm-rooms`)."""
    name = "shipped now: + prompt leg with the box head and box pointer (400 steps, 17 min)"
    table = subprocess.run([sys.executable, str(REPO / "scripts" / "pe_table.py"), "--row",
                            f"{name}={RESULTS / 'shipped'}", "--gt", str(heldout_rooms)],
                           capture_output=True, text=True, check=True).stdout
    row = table.splitlines()[2]
    assert row.startswith(f"| {name} | 67.4 | ")  # the exact wall F1@.25 the model card quotes
    readme = (REPO / "README.md").read_text(encoding="utf-8").replace("**", "")  # the card bolds the best row
    assert f"\n{row}\n" in readme


def test_baseline_rooms_scores_the_baselines_and_refreshes_their_committed_copy(tmp_path: Path):
    """On the shipped rooms (mean room over 2 training rooms): the empty layout finds no wall, the binned ground
    truth nearly all; --results replaces each DIR/<baseline>/pred by the fresh predictions (a stale file goes)."""
    stale = tmp_path / "results" / "empty" / "pred" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("wall_0=Wall(0,0,0,1,0,0,2.5,0.1)\n")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "baseline_rooms.py"), "--heldout",
                             str(REPO / "scenes"), "--out", str(tmp_path / "out"), "--train-rooms", "2",
                             "--workers", "1", "--results", str(tmp_path / "results")],
                            capture_output=True, text=True, check=True, cwd=REPO)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line}
    assert float(rows["empty"][0]) == 0.0 and float(rows["gt_bins"][0]) >= 90.0
    rooms = sorted(p.stem for p in (REPO / "scenes").glob("room_*.txt"))
    for name in ("constant", "empty", "gt_noise", "gt_bins"):
        made, kept = tmp_path / "out" / name / "pred", tmp_path / "results" / name / "pred"
        assert sorted(p.stem for p in kept.iterdir()) == rooms
        assert all((kept / f"{room}.txt").read_text() == (made / f"{room}.txt").read_text() for room in rooms)
