"""Reading and writing 8-bit grey and RGB images (PNG, TIFF, BMP, JPEG) with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fllic._errors import InputError

_ACCEPTED_MODES = {"L": "L", "RGB": "RGB", "P": "RGB", "1": "L", "CMYK": "RGB", "YCbCr": "RGB"}


def read_image(path: str | Path) -> np.ndarray:
    """(H, W) uint8 for grey, (H, W, 3) uint8 for colour."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            if im.mode not in _ACCEPTED_MODES:
                raise InputError(
                    f"{path}: image mode {im.mode} is not supported; fllic reads 8-bit grey or RGB "
                    "(flatten alpha and convert 16-bit images first)"
                )
            return np.asarray(im.convert(_ACCEPTED_MODES[im.mode]))
    except OSError as e:  # Pillow's UnidentifiedImageError and truncated-file errors are OSErrors
        raise InputError(f"{path}: not a readable image ({e})") from e


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write a (H, W) or (H, W, 3) uint8 array; the format follows the extension."""
    from PIL import Image

    try:
        Image.fromarray(np.ascontiguousarray(array)).save(path)
    except (ValueError, KeyError) as e:
        raise InputError(f"{path}: cannot write this image format ({e})") from e
