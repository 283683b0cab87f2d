"""Reading and writing images: 8- and 16-bit, grey and RGB, with alpha, ICC profile and EXIF.

* **Read.** PNG and TIFF at 8 or 16 bits per channel (16-bit pixels are
  decoded by imagecodecs, since Pillow opens 16-bit RGB as 8-bit; without
  imagecodecs, 16-bit PNG by :mod:`fllic.image16` and 16-bit TIFF not at all); BMP, WebP,
  PPM/PGM and JPEG at 8 bits (Pillow). Without Pillow (a decoding install),
  PNG alone, by :mod:`fllic.image16`. Grey, grey + alpha, RGB and RGBA;
  palette images become RGB (RGBA with a transparent entry). The ICC profile
  and EXIF are read where the format has them. Anything that would not be
  read at full depth (32-bit or floating-point TIFF, 16-bit PPM, premultiplied
  alpha, ...) is refused with an InputError, never truncated.
* **Write.** 16 bits to PNG and TIFF only (:mod:`fllic.image16`, numpy and zlib); 8 bits by Pillow, or to
  PNG by :mod:`fllic.image16` where Pillow is not installed; alpha to PNG, TIFF and WebP only;
  anything else is refused with a message that says what to write instead.
  ICC profile and EXIF go where the format holds them; where it does not, a
  FllicWarning says they were dropped (BMP and PPM hold neither; fllic writes
  16-bit colour or alpha TIFF without EXIF).

EXIF is handled as its TIFF structure (starting ``II*\\0`` or ``MM\\0*``),
without JPEG's ``Exif\\0\\0`` prefix. From a TIFF file, whose EXIF lives among
its own tags, fllic takes the EXIF and GPS sub-directories and the descriptive
tags (make, model, orientation, date, artist, copyright).
"""

from __future__ import annotations

import re

import io
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fllic import image16
from fllic._errors import FllicWarning, InputError

LOSSY_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jp2", ".j2k", ".jxr", ".heic", ".avif")
_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP", ".ppm": "PPM",
            ".pgm": "PPM", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG"}
_DEEP_FORMATS = ("PNG", "TIFF")  # what holds 16 bits
_ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")  # what holds alpha exactly
_META_FORMATS = ("PNG", "TIFF", "WEBP", "JPEG")  # what holds an ICC profile and EXIF

_PNG_MAGIC = image16.MAGIC
PNG_LEVEL = 3  # zlib level of written PNGs: Pillow's default 6 took 0.125 s of a 768x512 decode's 1.14 s
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*")
_PILLOW_MAGICS = (b"\xff\xd8\xff", b"BM", b"RIFF", b"P2", b"P3", b"P5", b"P6", b"GIF8")  # JPEG, BMP, WebP, PNM, GIF
_EXIF_PREFIX = b"Exif\x00\x00"
# TIFF tags carried as EXIF: description, make, model, orientation, date, artist, copyright; EXIF and GPS IFDs
_TIFF_EXIF_TAGS = (270, 271, 272, 274, 306, 315, 33432)
_TIFF_EXIF_IFDS = (0x8769, 0x8825)
# Pillow mode -> the mode fllic reads it as (8 bits per channel)
_MODES = {"1": "L", "L": "L", "LA": "LA", "P": "RGB", "PA": "RGBA", "RGB": "RGB", "RGBA": "RGBA", "RGBX": "RGB",
          "CMYK": "RGB", "YCbCr": "RGB"}


@dataclass
class ImageFile:
    """An image as read from a file: colour, optional alpha, bit depth and metadata."""

    pixels: np.ndarray  # (H, W) grey or (H, W, 3) RGB, uint8 or uint16
    alpha: np.ndarray | None = None  # (H, W), the pixels' dtype, or None
    bit_depth: int = 8  # 8 or 16
    icc: bytes | None = None  # the ICC profile
    exif: bytes | None = None  # EXIF as a TIFF structure, no 'Exif\0\0' prefix

    @property
    def array(self) -> np.ndarray:
        """Colour and alpha in one array: (H, W), (H, W, 2), (H, W, 3) or (H, W, 4)."""
        if self.alpha is None:
            return self.pixels
        colour = self.pixels[..., None] if self.pixels.ndim == 2 else self.pixels
        return np.concatenate([colour, self.alpha[..., None]], axis=2)


# -- reading -------------------------------------------------------------------------------
def read_image(path: str | Path | bytes) -> np.ndarray:
    """The colour pixels of an image file (or its bytes): (H, W) or (H, W, 3), uint8 or uint16.

    Alpha and metadata are left out; :func:`read_image_file` returns them too.
    """
    return read_image_file(path).pixels


def read_image_file(path: str | Path | bytes, name: str = "<stdin>") -> ImageFile:
    """Read an image file, or the file's bytes (called ``name`` in errors), at its full bit depth, with alpha,
    ICC and EXIF."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        data = bytes(path)
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: no such file")
        data, name = p.read_bytes(), str(p)
    try:
        if data.startswith(_PNG_MAGIC) and len(data) >= 29 and data[24] == 16:  # IHDR's bit depth
            return _read_png16(data, name)
        tags = _tiff_tags(data, name) if data[:4] in _TIFF_MAGICS else None
        if tags is not None and _tiff_depth(tags, name) == 16:
            return _read_tiff16(data, tags, name)
        return _read_pillow(data, name, tags)
    except OSError as e:  # Pillow's UnidentifiedImageError and truncated-file errors are OSErrors
        raise InputError(f"{name}: not a readable image ({_reason(e)})") from e


def _reason(error: OSError) -> str:
    """Pillow's message without the Python object it names (``<_io.BytesIO object at 0x...>``)."""
    text = re.sub(r"\s*<[^>]* object at 0x[0-9a-f]+>", "", str(error)).strip()
    return "not a known image format" if text in ("", "cannot identify image file") else text


def _pillow_image():
    """PIL.Image, or None where Pillow is not installed (a decoding install reads and writes PNG without it)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _needs_pillow(what: str) -> InputError:
    return InputError(f"{what} needs Pillow: pip install pillow (without it fllic reads and writes PNG)")


def _read_pillow(data: bytes, name: str, tiff_tags) -> ImageFile:
    Image = _pillow_image()
    if Image is None:
        if data.startswith(_PILLOW_MAGICS):
            raise _needs_pillow(f"{name}: reading this image")
        if not data.startswith(_PNG_MAGIC):
            raise InputError(f"{name}: not a readable image (not a known image format)")
        return _samples(image16.read_png(data, name), name, *_png_metadata(data))
    with Image.open(io.BytesIO(data)) as im:
        _refuse_deep(im, name)
        if im.mode in ("La", "RGBa"):
            raise InputError(f"{name}: premultiplied alpha is not supported; store unassociated alpha (PNG, RGBA TIFF)")
        if im.mode not in _MODES:
            raise InputError(f"{name}: image mode {im.mode} is not supported; fllic reads grey or RGB, "
                             "with or without alpha, at 8 or 16 bits")
        target = _MODES[im.mode]
        if "transparency" in im.info and target in ("L", "RGB"):
            target += "A"  # a transparent palette entry or colour key becomes an alpha channel
        array = np.asarray(im.convert(target) if target != im.mode else im)
        icc = im.info.get("icc_profile")
        if im.format == "TIFF":
            exif = _tiff_exif(tiff_tags)
        elif im.format == "PNG":
            icc, exif = _png_metadata(data)
        else:
            exif = im.info.get("exif")
            if not exif:
                found = im.getexif()
                exif = found.tobytes() if len(found) else None
    colour, alpha = (array[..., :-1], array[..., -1]) if target in ("LA", "RGBA") else (array, None)
    if colour.ndim == 3 and colour.shape[2] == 1:
        colour = colour[..., 0]
    return ImageFile(np.ascontiguousarray(colour), None if alpha is None else np.ascontiguousarray(alpha), 8,
                     *_clean_metadata(icc, exif, name))


def _refuse_deep(im, name: str) -> None:
    """Refuse what Pillow would open at another depth than the file's (16-bit RGB PPM as 8-bit, ...)."""
    deep = im.mode.startswith("I;16") or im.mode in ("I", "F")
    for tile in getattr(im, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        raw = args[0] if isinstance(args, tuple) and args else args
        deep = deep or (isinstance(raw, str) and (";16" in raw or ";32" in raw))
    if deep:
        raise InputError(f"{name}: a {im.format} image of more than 8 bits per sample (mode {im.mode}); fllic reads "
                         "16 bits from PNG and TIFF only and will not drop bits: convert it to a 16-bit PNG or TIFF")


def _read_png16(data: bytes, name: str) -> ImageFile:
    """imagecodecs where it is installed (the encode extra); fllic.image16's numpy reader otherwise."""
    try:
        import imagecodecs
    except ImportError:
        return _samples(image16.read_png(data, name), name, *_png_metadata(data))
    try:
        array = imagecodecs.png_decode(data)
    except Exception as e:  # noqa: BLE001 - imagecodecs raises PngError and friends
        raise InputError(f"{name}: not a readable 16-bit PNG ({e})") from e
    return _samples(array, name, *_png_metadata(data))


def _read_tiff16(data: bytes, tags, name: str) -> ImageFile:
    try:
        import imagecodecs
    except ImportError:
        raise InputError(f"{name}: reading a 16-bit TIFF needs imagecodecs: pip install imagecodecs "
                         "(or convert it to a 16-bit PNG)") from None

    photometric = tags.get(262)
    if photometric not in (0, 1, 2):
        raise InputError(f"{name}: a 16-bit TIFF with photometric interpretation {photometric} (palette, CMYK, "
                         "YCbCr, ...); fllic reads 16-bit grey or RGB: convert it")
    samples, colour = int(tags.get(277, 1)), 3 if photometric == 2 else 1
    extra = tags.get(338, ())
    extra = tuple(extra) if isinstance(extra, (tuple, list)) else (extra,)
    if samples - colour not in (0, 1):
        raise InputError(f"{name}: a TIFF with {samples} samples per pixel; fllic reads grey or RGB, with or without alpha")
    if samples > colour and extra[:1] == (1,):
        raise InputError(f"{name}: premultiplied alpha is not supported; store unassociated alpha")
    try:
        array = imagecodecs.tiff_decode(data)
    except Exception as e:  # noqa: BLE001 - imagecodecs raises TiffError and friends
        raise InputError(f"{name}: not a readable 16-bit TIFF ({e})") from e
    h, w = int(tags.get(257, 0)), int(tags.get(256, 0))
    if samples > 1 and array.shape == (samples, h, w):  # planar configuration 2
        array = np.moveaxis(array, 0, 2)
    if array.shape != ((h, w) if samples == 1 else (h, w, samples)):
        raise InputError(f"{name}: a TIFF whose first image is not a {w}x{h} picture of {samples} samples")
    if photometric == 0:  # min-is-white: store it as min-is-black
        array = array.astype(np.uint16)  # a copy
        if samples == 1:
            array = 65535 - array
        else:
            array[..., :colour] = 65535 - array[..., :colour]
    return _samples(array, name, tags.get(34675), _tiff_exif(tags))


def _samples(array: np.ndarray, name: str, icc, exif) -> ImageFile:
    """An ImageFile of 8- or 16-bit samples, (H, W) or (H, W, C) with C in 1..4, alpha last."""
    if array.dtype.kind != "u" or array.dtype.itemsize not in (1, 2):
        raise InputError(f"{name}: expected 8- or 16-bit unsigned samples, found {array.dtype}")
    depth = 8 * array.dtype.itemsize
    array = array.astype(np.uint8 if depth == 8 else np.uint16, copy=False)
    channels = 1 if array.ndim == 2 else array.shape[2]
    if array.ndim not in (2, 3) or channels not in (1, 2, 3, 4):
        raise InputError(f"{name}: a {depth}-bit image of shape {array.shape}; fllic reads grey or RGB, with or without alpha")
    if array.ndim == 3 and channels == 1:
        array = array[..., 0]
    colour, alpha = (array[..., :-1], array[..., -1]) if channels in (2, 4) else (array, None)
    if colour.ndim == 3 and colour.shape[2] == 1:
        colour = colour[..., 0]
    return ImageFile(np.ascontiguousarray(colour), None if alpha is None else np.ascontiguousarray(alpha), depth,
                     *_clean_metadata(icc, exif, name))


def _tiff_tags(data: bytes, name: str):
    """The first IFD of a TIFF file (Pillow's Exif reader), or None when it cannot be parsed."""
    Image = _pillow_image()
    if Image is None:
        raise _needs_pillow(f"{name}: reading a TIFF")
    tags = Image.Exif()
    try:
        tags.load(data)
        tags.get(258)
    except Exception:  # noqa: BLE001 - Pillow's own open will report the file as unreadable
        return None
    return tags


def _tiff_depth(tags, name: str) -> int:
    bits = tags.get(258, 1)
    bits = set(bits) if isinstance(bits, (tuple, list)) else {bits}
    sample_format = tags.get(339, 1)
    sample_format = set(sample_format) if isinstance(sample_format, (tuple, list)) else {sample_format}
    if sample_format - {1}:
        kind = "floating-point" if 3 in sample_format else "signed-integer"
        raise InputError(f"{name}: a {kind} TIFF; fllic reads 8- and 16-bit unsigned images: convert it")
    if bits == {16}:
        return 16
    if max(bits) > 8 or len(bits) > 1:
        depth = "/".join(str(b) for b in sorted(bits))
        raise InputError(f"{name}: a {depth}-bit TIFF; fllic reads 8- and 16-bit images and will not drop bits: "
                         "convert it to 16 bits")
    return 8


def _tiff_exif(tags) -> bytes | None:
    if tags is None:
        return None
    from PIL import Image

    out = Image.Exif()
    for tag in _TIFF_EXIF_TAGS:
        if tag in tags:
            out[tag] = tags[tag]
    for tag in _TIFF_EXIF_IFDS:
        if tag in tags:
            try:
                sub = dict(tags.get_ifd(tag))
            except Exception:  # noqa: BLE001 - a broken sub-directory is left out
                continue
            if sub:
                out[tag] = sub
    return out.tobytes() if len(out) else None


def _png_metadata(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(ICC profile, EXIF) of a PNG file, from its iCCP and eXIf chunks."""
    icc = exif = None
    for kind, body in image16.chunks(data):
        if kind == b"iCCP" and b"\x00" in body[:80]:
            start = body.index(b"\x00") + 2  # name, NUL, compression method (0: zlib)
            try:
                icc = zlib.decompressobj().decompress(body[start:], 1 << 24)
            except zlib.error:
                icc = None
        elif kind == b"eXIf":
            exif = body
    return icc, exif


def _clean_metadata(icc, exif, name: str) -> tuple[bytes | None, bytes | None]:
    """The ICC profile and EXIF as fllic stores them; malformed ones are dropped with a warning."""
    from fllic.format import valid_exif, valid_icc

    icc = bytes(icc) if icc else None
    if icc is not None and not valid_icc(icc):
        warnings.warn(f"{name}: its ICC profile is malformed and is not carried", FllicWarning, stacklevel=4)
        icc = None
    exif = normalise_exif(exif)
    if exif is not None and not valid_exif(exif):
        warnings.warn(f"{name}: its EXIF is malformed and is not carried", FllicWarning, stacklevel=4)
        exif = None
    return icc, exif


def normalise_exif(exif) -> bytes | None:
    """EXIF bytes without JPEG's 'Exif\\0\\0' prefix (Pillow adds it, PNG and WebP store none)."""
    if not exif:
        return None
    exif = bytes(exif)
    return exif[len(_EXIF_PREFIX):] if exif.startswith(_EXIF_PREFIX) else exif


# -- writing -------------------------------------------------------------------------------
def write_image(path: str | Path, array: np.ndarray, allow_lossy: bool = False, suffix: str | None = None, *,
                alpha: np.ndarray | None = None, icc: bytes | None = None, exif: bytes | None = None) -> None:
    """Write an image; the format follows the extension (or ``suffix``). See :func:`encode_image`."""
    Path(path).write_bytes(encode_image(array, suffix or Path(path).suffix, allow_lossy,
                                        alpha=alpha, icc=icc, exif=exif))


def encode_image(array: np.ndarray, suffix: str, allow_lossy: bool = False, *, alpha: np.ndarray | None = None,
                 icc: bytes | None = None, exif: bytes | None = None) -> bytes:
    """The bytes of an image file of the format named by ``suffix`` (e.g. '.png').

    ``array`` is uint8 or uint16, (H, W), (H, W, 2) grey + alpha, (H, W, 3) or
    (H, W, 4) RGBA; a separate ``alpha`` plane may be given instead. 16-bit
    images go to PNG and TIFF only, alpha to PNG, TIFF and WebP only. Lossy
    formats (JPEG and the like) would change the exactly decoded pixels, so they
    are refused unless ``allow_lossy``; WebP is written lossless (exact under
    transparent pixels too). The ICC profile and EXIF are written where the
    format holds them, and dropped with a FllicWarning where it does not.
    """
    arr = _writable(array, alpha)
    depth = 16 if arr.dtype == np.uint16 else 8
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    fmt = check_writable(suffix, depth, channels in (2, 4), allow_lossy)
    icc, exif = (bytes(icc) if icc else None), normalise_exif(exif)
    if fmt not in _META_FORMATS:
        _dropped(fmt, icc, exif)
        icc = exif = None
    if fmt == "PNG" and (depth == 16 or _pillow_image() is None):
        return _png(arr, icc, exif)
    if depth == 16 and channels > 1:
        return _tiff16(arr, icc, exif)
    return _pillow(arr, fmt, icc, exif)


def check_writable(suffix: str, bit_depth: int = 8, alpha: bool = False, allow_lossy: bool = False) -> str:
    """The Pillow format name for ``suffix``, or an InputError saying why it cannot hold such an image."""
    suffix = suffix.lower()
    if suffix in LOSSY_SUFFIXES and not allow_lossy:
        raise InputError(
            f"{suffix} is a lossy format: the written image would differ from the decoded one; "
            "write PNG, TIFF, BMP or WebP (lossless), or pass --allow-lossy"
        )
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise InputError(f"cannot write images of type {suffix or '(no extension)'}; use .png, .tif, .bmp or .webp")
    if bit_depth == 16 and fmt not in _DEEP_FORMATS:
        raise InputError(f"{fmt} cannot hold a 16-bit image; write .png or .tif to keep all 16 bits")
    if alpha and fmt not in _ALPHA_FORMATS:
        raise InputError(f"{fmt} cannot hold an alpha channel; write .png, .tif or .webp to keep it")
    return fmt


def _writable(array, alpha) -> np.ndarray:
    arr = np.asarray(array)
    if arr.dtype not in (np.uint8, np.uint16):
        raise InputError(f"images are written from uint8 or uint16 arrays, got dtype {arr.dtype}")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.dtype != arr.dtype or alpha.shape != arr.shape[:2] or not (arr.ndim == 2 or arr.shape[2] in (1, 3)):
            raise InputError(f"alpha must be an {arr.shape[:2]} {arr.dtype} plane beside grey or RGB colour")
        arr = np.concatenate([arr.reshape(*arr.shape[:2], -1), alpha[..., None]], axis=2)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (2, 3, 4))):
        raise InputError(f"cannot write an image of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _dropped(fmt: str, icc, exif, why: str = "") -> None:
    lost = " and ".join(n for n, v in (("ICC profile", icc), ("EXIF", exif)) if v)
    if lost:
        both = " and " in lost
        warnings.warn(f"{why or fmt + ' cannot hold them'}: the image's {lost} {'were' if both else 'was'} "
                      f"not written; write .png to keep {'them' if both else 'it'}", FllicWarning, stacklevel=4)


def _pillow(arr: np.ndarray, fmt: str, icc, exif) -> bytes:
    Image = _pillow_image()
    if Image is None:
        raise _needs_pillow(f"writing {fmt}")
    options: dict = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    if fmt == "PNG":
        options["compress_level"] = PNG_LEVEL
    if icc:
        options["icc_profile"] = icc
    if exif:
        options["exif"] = _EXIF_PREFIX + exif
    buf = io.BytesIO()
    try:
        Image.fromarray(arr).save(buf, format=fmt, **options)
    except (ValueError, KeyError, OSError, TypeError) as e:
        raise InputError(f"cannot write this image as {fmt} ({e})") from e
    return buf.getvalue()


def _png(arr: np.ndarray, icc, exif) -> bytes:
    """An 8- or 16-bit PNG (fllic.image16), with iCCP and eXIf chunks after IHDR."""
    extra = b""
    if icc:
        extra += image16.chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc, 9))
    if exif:
        extra += image16.chunk(b"eXIf", exif)
    return image16.png(arr, level=PNG_LEVEL, extra=extra)


def _tiff16(arr: np.ndarray, icc, exif) -> bytes:
    """A 16-bit grey + alpha, RGB or RGBA TIFF (fllic.image16: deflate with a horizontal predictor)."""
    _dropped("TIFF", None, exif, why="fllic writes 16-bit colour or alpha TIFF without EXIF")
    return image16.tiff(arr, icc)
