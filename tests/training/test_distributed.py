"""Data-parallel training: the one-process identities, and a 2-process torchrun (gloo) run equal to one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spatialvlm_cli.distributed import Ranks

REPO = Path(__file__).resolve().parents[2]


def test_one_process_is_the_identity():
    ranks = Ranks.current()
    assert ranks == Ranks(0, 1) and ranks.is_main
    assert ranks.shard([5, 2, 7, 1]) == [5, 2, 7, 1]
    assert ranks.shares([17]) == [1.0] and ranks.totals([2.5]) == [2.5]


def test_shards_split_a_batch_by_rank():
    assert Ranks(0, 2).shard([5, 2, 7, 1]) == [5, 7] and Ranks(1, 2).shard([5, 2, 7, 1]) == [2, 1]
    with pytest.raises(ValueError, match="does not split"):
        Ranks(0, 3).shard([5, 2, 7, 1])


def test_two_processes_train_like_one(tmp_path: Path):
    """Same global batch of 4 rooms, every loss term on (layout, dense, wall offset, read, mixed prompts): after 3
    steps the weights agree to float summation order."""
    common = ["--model", "tiny-qwen", "--train-rooms", "4", "--data", str(tmp_path / "rooms.pt"),
              "--workers", "1", "--batch-size", "4", "--steps", "3", "--threads", "1", "--dense-weight", "1",
              "--wall-offset-weight", "1", "--read-weight", "10", "--mix-prompts", "--VLM_PE", "3D_RoPE",
              "--PCD_PE_Merge_Rule", "3D_with_1D"]
    script = str(REPO / "scripts" / "train_rooms.py")
    subprocess.run([sys.executable, script, *common, "--out", str(tmp_path / "one")], check=True,
                   capture_output=True)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          script, *common, "--out", str(tmp_path / "two")], capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    one_weights, two_weights = load_file(tmp_path / "one" / "model.safetensors"), \
        load_file(tmp_path / "two" / "model.safetensors")
    assert one_weights.keys() == two_weights.keys()
    for name, tensor in one_weights.items():
        torch.testing.assert_close(two_weights[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    one_report = json.loads((tmp_path / "one" / "training.json").read_text())
    two_report = json.loads((tmp_path / "two" / "training.json").read_text())
    assert (one_report["processes"], two_report["processes"]) == (1, 2)
    assert two_report["report"]["losses"] == pytest.approx(one_report["report"]["losses"], rel=1e-5)
    assert two.stdout.count("3 steps") == 1  # rank 0 alone reports
