"""Reading an equirectangular panorama (jpg/png through Pillow) and turning it into the images a VLM is sent."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatialvlm_cli.errors import InputError
from spatialvlm_cli.panorama.geometry import ViewLayout, render_view

log = logging.getLogger(__name__)

MIN_HEIGHT_PX = 32
MIN_WIDTH_PX = 64
# The largest panorama accepted: 16K equirectangular (16384 x 8192, 134 Mpx, 400 MB as RGB). Larger headers are
# refused before any pixel is decoded (a PNG can claim 30000 x 15000 in a few bytes: a decompression bomb).
MAX_PIXELS = 16384 * 8192
ASPECT_TOLERANCE = 0.05  # relative deviation from 2:1 accepted without a warning


@dataclass
class Panorama:
    """pixels: (H, W, 3) uint8 RGB, equirectangular (yaw across the width, pitch down the height).
    source: the file it was read from. aspect_warning: the warning given when it is not about 2:1, else None."""

    pixels: np.ndarray
    source: Path
    aspect_warning: str | None = None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def read_panorama(path: Path) -> Panorama:
    """Read and check an equirectangular panorama.

    Raises InputError when the file is missing, not an image Pillow can decode, smaller than 64×32 pixels or
    larger than MAX_PIXELS (16384×8192). An aspect ratio far from 2:1 is allowed (some panoramas are cropped) but
    logged as a warning."""
    # Pillow here, not at the top: `infer --point_cloud` imports this module to check its flags
    # (tests/test_layering.py).
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise InputError(f"image '{path}' does not exist")
    if path.is_dir():
        raise InputError(f"'{path}' is a folder, not an image file")
    too_large = f"image '{path}' is larger than the 16384×8192 pixels (134 Mpx) a panorama may have"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides, below
            image = Image.open(path)
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise InputError(f"{too_large}: its header says {image.width}×{image.height}")
            image.load()
            rgb = image.convert("RGB")
    except Image.DecompressionBombError:
        raise InputError(too_large) from None
    except UnidentifiedImageError:
        raise InputError(f"'{path}' is not an image Pillow can read (expected a jpg or png panorama)") from None
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read image '{path}': {error}") from None
    pixels = np.asarray(rgb, dtype=np.uint8)
    height, width = pixels.shape[:2]
    if height < MIN_HEIGHT_PX or width < MIN_WIDTH_PX:
        raise InputError(
            f"image '{path}' is {width}×{height} pixels; a panorama needs at least {MIN_WIDTH_PX}×{MIN_HEIGHT_PX}"
        )
    warning = None
    aspect = width / height
    if abs(aspect / 2 - 1) > ASPECT_TOLERANCE:
        warning = (
            f"'{path.name}' is {width}×{height} (aspect {aspect:.2f}), not 2:1: it is treated as a full 360°×180° "
            "equirectangular panorama anyway, so the views will be stretched"
        )
        log.warning(warning)
    return Panorama(pixels=pixels, source=path, aspect_warning=warning)


def resize_image(pixels: np.ndarray, height: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 to `height` rows keeping the aspect ratio (bicubic, Pillow)."""
    from PIL import Image  # as in read_panorama

    width = max(1, round(pixels.shape[1] * height / pixels.shape[0]))
    return np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def letterbox_square(pixels: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (side, side, 3) uint8: the longer edge resized to `side` (bicubic, Pillow), the image
    centred on black, offsets rounded down (panollava's `letterbox_square`)."""
    from PIL import Image  # as in read_panorama

    height, width = pixels.shape[:2]
    scale = side / max(width, height)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    resized = np.asarray(Image.fromarray(pixels).resize((new_width, new_height), Image.Resampling.BICUBIC))
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    top, left = (side - new_height) // 2, (side - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = resized
    return canvas


def global_view_image(panorama: Panorama, layout: ViewLayout, global_height_px: int) -> np.ndarray:
    """The global view of a layout: the panorama letter-boxed into a `global_height_px` square (panollava's
    convention) or resized to `global_height_px` rows keeping its aspect (at most its own height). (h, w, 3) uint8."""
    if layout.letterbox_global:
        return letterbox_square(panorama.pixels, global_height_px)
    return resize_image(panorama.pixels, min(global_height_px, panorama.height))


def layout_images(panorama: Panorama, layout: ViewLayout, global_height_px: int) -> list[np.ndarray]:
    """The images of a layout in prompt order: the global view (if `layout.global_view`, see `global_view_image`)
    then every tile. Returns a list of (h, w, 3) uint8 arrays."""
    images = []
    if layout.global_view:
        images.append(global_view_image(panorama, layout, global_height_px))
    images.extend(render_view(panorama.pixels, tile) for tile in layout.tiles)
    return images
