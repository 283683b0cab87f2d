"""Reading and writing 8-bit grey and RGB images (PNG, TIFF, BMP, WebP; JPEG on request) with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fllic._errors import InputError

_ACCEPTED_MODES = {"L": "L", "RGB": "RGB", "P": "RGB", "1": "L", "CMYK": "RGB", "YCbCr": "RGB"}


LOSSY_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jp2", ".j2k", ".jxr", ".heic", ".avif")
_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP", ".ppm": "PPM",
            ".pgm": "PPM", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG"}


def read_image(path: str | Path | bytes) -> np.ndarray:
    """(H, W) uint8 for grey, (H, W, 3) uint8 for colour, from a file or the file's bytes."""
    import io

    from PIL import Image

    if isinstance(path, (bytes, bytearray)):
        source, path = io.BytesIO(path), Path("<stdin>")
    else:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        source = path
    try:
        with Image.open(source) as im:
            if _deeper_than_8_bits(im):
                raise InputError(
                    f"{path}: a 16-bit image; fllic codes 8-bit images and would silently drop its low "
                    "bits, so it refuses it: convert it to 8 bits first if that loss is acceptable"
                )
            if im.mode not in _ACCEPTED_MODES:
                raise InputError(
                    f"{path}: image mode {im.mode} is not supported; fllic reads 8-bit grey or RGB "
                    "(flatten alpha and convert 16-bit images first)"
                )
            return np.asarray(im.convert(_ACCEPTED_MODES[im.mode]))
    except OSError as e:  # Pillow's UnidentifiedImageError and truncated-file errors are OSErrors
        raise InputError(f"{path}: not a readable image ({e})") from e


def _deeper_than_8_bits(im) -> bool:
    """Pillow opens some 16-bit files (RGB PNG and TIFF) as 8-bit RGB; their raw mode tells."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return True
    for tile in getattr(im, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str) and (";16" in raw or ";32" in raw):
            return True
    return False


def write_image(path: str | Path, array: np.ndarray, allow_lossy: bool = False, suffix: str | None = None) -> None:
    """Write a (H, W) or (H, W, 3) uint8 array; the format follows the extension (or ``suffix``).

    Lossy formats (JPEG and the like) would change the exactly decoded pixels,
    so they are refused unless ``allow_lossy``; WebP is written lossless.
    """
    Path(path).write_bytes(encode_image(array, suffix or Path(path).suffix, allow_lossy))


def encode_image(array: np.ndarray, suffix: str, allow_lossy: bool = False) -> bytes:
    """The bytes of an image file of the format named by ``suffix`` (e.g. '.png')."""
    import io

    from PIL import Image

    suffix = suffix.lower()
    if suffix in LOSSY_SUFFIXES and not allow_lossy:
        raise InputError(
            f"{suffix} is a lossy format: the written image would differ from the decoded one; "
            "write PNG, TIFF, BMP or WebP (lossless), or pass --allow-lossy"
        )
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise InputError(f"cannot write images of type {suffix or '(no extension)'}; use .png, .tif, .bmp or .webp")
    buf = io.BytesIO()
    try:
        Image.fromarray(np.ascontiguousarray(array)).save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    except (ValueError, KeyError, OSError) as e:
        raise InputError(f"cannot write this image as {fmt} ({e})") from e
    return buf.getvalue()
