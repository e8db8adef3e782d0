"""Tiny panorama checkpoints (real model and image-processor classes, random weights), written once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spatialvlm_cli.panorama.geometry import plan_views
from spatialvlm_cli.panorama.image import Panorama, layout_images
from spatialvlm_cli.panorama.positions import PositionScheme
from spatialvlm_cli.panorama.source import panorama_presets


def make_synthetic_panorama(width: int = 128, height: int = 64, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: smooth colour bands plus noise, so views differ from each other."""
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, width, endpoint=False), np.linspace(0, np.pi, height))
    base = np.stack([np.sin(u), np.cos(2 * u), np.cos(v)], axis=-1) * 90 + 128
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def checkpoint_dirs(tmp_path_factory) -> dict[str, Path]:
    from spatialvlm_cli.panorama.presets import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("pano_checkpoints")
    return {name: save_tiny_checkpoint(name, root / name) for name in panorama_presets()}


@pytest.fixture(scope="session")
def loaded_models(checkpoint_dirs) -> dict:
    from spatialvlm_cli.panorama.models import load_panorama_model

    return {
        name: load_panorama_model(str(path), device="cpu", dtype="float32") for name, path in checkpoint_dirs.items()
    }


@pytest.fixture(scope="session")
def pano_images() -> tuple[list[np.ndarray], tuple[int | None, ...]]:
    """A global view and four tiles (overlap 0.25) of a synthetic panorama, and their tile_of_image."""
    layout = plan_views(4, 0.25, 90.0, global_view=True, view_height_px=32)
    panorama = Panorama(pixels=make_synthetic_panorama(), source=Path("synthetic.png"))
    return layout_images(panorama, layout, global_height_px=32), tuple(layout.tile_of_image())


def make_scheme(family, mode: str | None, tile_of_image, overlap: float = 0.25) -> PositionScheme:
    """mode None: native ids; 'shared' / 'cora': the family's PanoRoPE variant."""
    vlm_pe = None if mode is None else family.pano_pe
    return PositionScheme(vlm_pe=vlm_pe, mode=mode or "shared", overlap=overlap, tile_of_image=tuple(tile_of_image))


@pytest.fixture(scope="session")
def scheme_for():
    return make_scheme


@pytest.fixture(scope="session")
def synthetic_panorama():
    return make_synthetic_panorama
