"""Procedural training and evaluation rooms: scan-like point clouds with ground-truth layouts. numpy only."""

from spatialvlm_cli.synthetic.ply import write_ply
from spatialvlm_cli.synthetic.rooms import (
    FURNITURE,
    HELDOUT_SEED_BASE,
    TRAIN_SEED_BASE,
    SyntheticRoom,
    make_room,
    split_seed,
)

__all__ = ["FURNITURE", "HELDOUT_SEED_BASE", "TRAIN_SEED_BASE", "SyntheticRoom", "make_room", "split_seed", "write_ply"]
