"""PNG and 16-bit TIFF in numpy and zlib: what a decoding install writes and reads without an imaging library.

A decoding install (numpy, constriction) must write what ``fllic
decompress`` decodes at full depth, with no imaging library, and Pillow
writes 16-bit images for grey only. :func:`tiff` writes a baseline 16-bit TIFF
(deflate, horizontal predictor). :func:`png` writes any 8- or 16-bit PNG
(grey, grey + alpha, RGB, RGBA; PNG specification, ISO/IEC 15948), choosing
each row's filter among None, Sub, Up and Paeth by the smallest sum of
absolute filtered bytes, as libpng does. Its reader, :func:`read_png`, undoes
every filter along the image's anti-diagonals: a pixel's filter reads only its
left, upper and upper-left neighbours, which all lie on earlier diagonals, so
each diagonal is one vectorised step. Where imagecodecs (16 bits) or Pillow
(8 bits) is installed, fllic.imageio reads with it instead.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from fllic._errors import InputError

MAGIC = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey + alpha, RGB, RGBA)
BAND_ROWS = 256  # rows filtered at a time: the filters' int16 temporaries stay bounded on large images


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(array: np.ndarray, level: int = 6, extra: bytes = b"") -> bytes:
    """An 8- or 16-bit PNG of a uint8 or uint16 (H, W) or (H, W, C) array, C in 1..4; ``extra``, whole chunks,
    goes after IHDR."""
    arr, h, w, channels = _checked(array, "PNG", (np.uint8, np.uint16))
    size = arr.dtype.itemsize
    raw = np.ascontiguousarray(arr, f">u{size}").view(np.uint8).reshape(h, w * channels * size)
    squeeze = zlib.compressobj(level)
    idat = []
    for r0 in range(0, h, BAND_ROWS):
        above = raw[r0 - 1] if r0 else np.zeros(raw.shape[1], np.uint8)
        idat.append(squeeze.compress(_filtered(raw[r0:r0 + BAND_ROWS], above, size * channels).tobytes()))
    idat.append(squeeze.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 8 * size, COLOUR_TYPES[channels], 0, 0, 0)
    return MAGIC + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b"")


def _checked(array: np.ndarray, fmt: str, dtypes=(np.uint16,)) -> tuple[np.ndarray, int, int, int]:
    arr = np.asarray(array)
    channels = 1 if arr.ndim == 2 else arr.shape[2] if arr.ndim == 3 else 0
    if arr.dtype not in dtypes or channels not in COLOUR_TYPES or 0 in arr.shape:
        depth = "16-bit " if dtypes == (np.uint16,) else ""
        raise InputError(f"cannot write a {depth}{fmt} of {arr.dtype} samples of shape {arr.shape}")
    return arr, arr.shape[0], arr.shape[1], channels


def tiff(array: np.ndarray, icc: bytes | None = None, level: int = 6, rows_per_strip: int = 64) -> bytes:
    """A little-endian baseline TIFF of a uint16 (H, W) or (H, W, C) array, C in 1..4 (alpha unassociated):
    chunky samples in strips, each deflated (compression 8) after a horizontal predictor (317 = 2), with
    the ICC profile (tag 34675) where given."""
    arr, h, w, channels = _checked(array, "TIFF")
    strips = [zlib.compress(_predicted(arr[r:r + rows_per_strip], channels).tobytes(), level)
              for r in range(0, h, rows_per_strip)]
    colour = 3 if channels >= 3 else 1
    tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [16] * channels), (259, 3, [8]), (262, 3, [2 if colour == 3 else 1]),
            (273, 4, [0] * len(strips)), (277, 3, [channels]), (278, 4, [rows_per_strip]),
            (279, 4, [len(s) for s in strips]), (284, 3, [1]), (317, 3, [2])]
    if channels > colour:
        tags.append((338, 3, [2]))  # extra sample: unassociated alpha
    tags.append((339, 3, [1] * channels))  # unsigned integers
    if icc:
        tags.append((34675, 7, list(icc)))
    return _tiff_file(tags, strips)


def _predicted(rows: np.ndarray, channels: int) -> np.ndarray:
    """TIFF's horizontal predictor on a strip: each sample minus its left neighbour's, mod 2^16, little-endian."""
    samples = rows.reshape(rows.shape[0], rows.shape[1], channels).astype(np.int32)
    samples[:, 1:] -= rows.reshape(samples.shape)[:, :-1]
    return (samples & 0xFFFF).astype("<u2")


_TIFF_SIZES = {3: ("H", 2), 4: ("I", 4), 7: ("B", 1)}  # SHORT, LONG, UNDEFINED


def _tiff_file(tags: list, strips: list[bytes]) -> bytes:
    """Header, the strips, out-of-line tag values, then the one IFD; the strip offsets filled in."""
    data = bytearray(b"II*\x00\x00\x00\x00\x00")
    offsets = []
    for s in strips:
        offsets.append(len(data))
        data += s + b"\x00" * (len(s) % 2)
    entries = []
    for tag, kind, values in sorted(tags):
        values = offsets if tag == 273 else values
        code, size = _TIFF_SIZES[kind]
        packed = struct.pack(f"<{len(values)}{code}", *values)
        if len(packed) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\x00"))
        else:
            entries.append(struct.pack("<HHII", tag, kind, len(values), len(data)))
            data += packed + b"\x00" * (len(packed) % 2)
    struct.pack_into("<I", data, 4, len(data))
    data += struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return bytes(data)


def _filtered(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """(n, 1 + row bytes): each row led by the filter type that leaves it the smallest absolute bytes."""
    a = np.zeros(rows.shape, np.int16)
    a[:, bpp:] = rows[:, :-bpp]
    b = np.vstack([above[None], rows[:-1]]).astype(np.int16)
    c = np.zeros(rows.shape, np.int16)
    c[:, bpp:] = b[:, :-bpp]
    x = rows.astype(np.int16)
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - paeth]).astype(np.uint8)  # filter types 0, 1, 2 and 4, mod 256
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(2)
    best = cost.argmin(0)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = np.array([0, 1, 2, 4], np.uint8)[best]
    out[:, 1:] = candidates[best, np.arange(rows.shape[0])]
    return out


def read_png(data: bytes, name: str = "<png>") -> np.ndarray:
    """The uint8 or uint16 (H, W) or (H, W, C) samples of a non-interlaced 8- or 16-bit grey or RGB PNG, with or
    without alpha (a palette, a colour key or fewer bits need an imaging library: Pillow reads them)."""
    header, idat = _chunks(data, name)
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {v: k for k, v in COLOUR_TYPES.items()}.get(colour)
    if depth not in (8, 16) or channels is None:
        raise InputError(f"{name}: a PNG of bit depth {depth} and colour type {colour}: pip install pillow to read it")
    library = "imagecodecs" if depth == 16 else "pillow"  # Pillow reads 16-bit colour as 8-bit
    if interlace:
        raise InputError(f"{name}: an interlaced {depth}-bit PNG; pip install {library} to read it")
    if depth == 8 and b"tRNS" in (kind for kind, _ in chunks(data)):
        raise InputError(f"{name}: a PNG with a transparent colour; pip install pillow to read it")
    size = depth // 8
    bpp, stride = size * channels, size * channels * w
    try:
        filtered = np.frombuffer(zlib.decompress(idat), np.uint8)
    except zlib.error as e:
        raise InputError(f"{name}: not a readable PNG ({e})") from e
    if filtered.size != h * (stride + 1):
        raise InputError(f"{name}: not a readable PNG (its pixel data does not fill {w}x{h})")
    rows = filtered.reshape(h, stride + 1)
    kinds = rows[:, 0].astype(np.int32)
    if kinds.max() > 4:
        raise InputError(f"{name}: not a readable PNG (a row with filter type {kinds.max()})")
    raw = _unfiltered(rows[:, 1:].reshape(h, w, bpp).astype(np.int32), kinds)
    samples = np.ascontiguousarray(raw).view(f">u{size}").astype(np.uint8 if size == 1 else np.uint16)
    return samples.reshape(h, w) if channels == 1 else samples.reshape(h, w, channels)


def chunks(data: bytes):
    """(type, body) of each chunk of a PNG, up to IEND (a truncated last chunk comes short)."""
    pos = len(MAGIC)
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        yield kind, data[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            return
        pos += 12 + length


def _chunks(data: bytes, name: str) -> tuple[bytes, bytes]:
    """(IHDR body, the IDAT bodies joined) of a PNG."""
    if not data.startswith(MAGIC):
        raise InputError(f"{name}: not a PNG")
    found = list(chunks(data))
    header = next((body for kind, body in found if kind == b"IHDR"), None)
    idat = b"".join(body for kind, body in found if kind == b"IDAT")
    if header is None or len(header) != 13 or not idat:
        raise InputError(f"{name}: not a readable PNG (no image header or no pixel data)")
    return header, idat


def _unfiltered(filtered: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """(H, W, bytes per pixel) uint8: every row's filter (types 0-4 in ``kinds``) undone, mod 256.

    One anti-diagonal r + x = d at a time: its pixels' left (r, x-1), upper
    (r-1, x) and upper-left (r-1, x-1) neighbours are on diagonals d-1 and d-2.
    """
    h, w, _ = filtered.shape
    out = np.zeros((h + 1, w + 1, filtered.shape[2]), np.int32)  # a zero row above and column left
    for d in range(h + w - 1):
        r = np.arange(max(0, d - w + 1), min(h, d + 1))
        x = d - r
        a, b, c = out[r + 1, x], out[r, x + 1], out[r, x]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        kind = kinds[r][:, None]
        pred = np.select([kind == 1, kind == 2, kind == 3, kind == 4], [a, b, (a + b) // 2, paeth], 0)
        out[r + 1, x + 1] = (filtered[r, x] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8).reshape(h, -1)
