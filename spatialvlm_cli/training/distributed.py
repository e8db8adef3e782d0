"""`Ranks` moved to `spatialvlm_cli.distributed` (training and `infer` share it); this name stays for
`scripts/train_rooms.py`, which imports it from here."""

from spatialvlm_cli.distributed import Ranks

__all__ = ["Ranks"]
