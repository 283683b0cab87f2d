"""The reference decoder of .fllic files: numpy and the range coder, no PyTorch.

This package is the decoder's specification in code, and a decoder in its
own right: it imports nothing of the encoder (no torch, nothing of
``fllic.models``). A file decodes in five steps (docs/format.md):

1. the container (:mod:`fllic.format`): header, sections, file CRC;
2. the model's decoder part from ``<model-id>-decoder.npz`` (:mod:`.model`),
   named by the header and checked against its hash;
3. the z symbols from the ``Z`` section under per-channel tables, then
   h_s(ẑ) → μ, Δ_y and each latent's table index, then the y symbols from the
   ``Y`` section under those tables (:mod:`.symbols`, :mod:`.synthesis`);
4. ŷ = μ + u · Δ_y and g_s(ŷ) → fixed-point pixels, band by band of latent rows
   (:mod:`.synthesis`), every step exact integer arithmetic (:mod:`.integer`);
5. the pixels rounded to the file's bit depth, cropped, alpha appended, and
   checked against the header's pixel CRC32.

It returns exactly the pixels ``fllic.decode`` returns.
"""

from __future__ import annotations

import warnings
import zlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fllic import format as fmt
from fllic._errors import FllicWarning, FormatError, InputError, IntegrityError, ModelMismatchError
from fllic._heap import release, reusing
from fllic.decoder import model as models
from fllic.decoder import symbols
from fllic.decoder.model import DecoderModel, load_file
from fllic.decoder.synthesis import PIX_FRAC, entropy_params, streamed_synthesis

PAD_MULTIPLE = 64  # the padded image is a whole number of hyper-latents (64 pixels)
DEFAULT_TILE = 768

__all__ = ["Decoded", "DecoderModel", "decode", "decode_detailed", "decoding_model", "load_file"]


@dataclass
class Decoded:
    """A decoded image and what the file says about it."""

    pixels: np.ndarray  # (H, W), (H, W, 2), (H, W, 3) or (H, W, 4); uint8 or uint16; alpha last
    bit_depth: int
    has_alpha: bool
    icc: bytes | None
    exif: bytes | None
    sigma: float  # in the image's own units


# -- the model ----------------------------------------------------------------------------
def _given(model) -> DecoderModel:
    if isinstance(model, DecoderModel):
        return model
    if isinstance(model, (str, Path)) and str(model).endswith(".npz") and Path(model).is_file():
        return load_file(model)
    if isinstance(model, (str, Path)) and Path(model).is_file():
        raise ModelMismatchError(f"the reference decoder reads a model id or a -decoder.npz file, not "
                                 f"{Path(model).name}; decode with the torch decoder, or export its decoder part "
                                 "(python -m fllic.models.decoder_export)")
    if isinstance(model, str):
        return models.load(model)
    raise ModelMismatchError(f"cannot use {model!r} as a decoder; pass a model id or a -decoder.npz file")


def decoding_model(h: fmt.Header, model=None) -> DecoderModel:
    """The decoder of a file: the model that wrote it (version 2), checked against its weights hash, or the
    decoder it names (version 3), checked against its decoder hash. ``model`` overrides the name."""
    m = _given(fmt.decoder_name(h) if model is None else model)
    fmt.check_model(h, m.weights_hash, m.decoder_hash)
    return m


# -- the latents ----------------------------------------------------------------------------
def model_sigma(h: fmt.Header) -> float:
    """The header's sigma in the model's 8-bit units: one float64 division by 257 for 16 bits."""
    return h.sigma if h.bit_depth == 8 else h.sigma / 257.0


def latent_symbols(m: DecoderModel, z_data: bytes, y_data: bytes, zh: int, zw: int, sigma: float, q: float):
    """(u, p): the y symbols (4·zh, 4·zw, m) of the Z and Y sections and the entropy parameters h_s gave them.

    z symbols are grouped by channel, in NCHW raster order within the stream;
    y symbols by their table index, in HWC raster order.
    """
    z_groups = np.broadcast_to(np.arange(m.nz).reshape(-1, 1, 1), (m.nz, zh, zw))
    y_count = 16 * zh * zw * m.m
    symbols.check_length("Z", z_data, zh * zw * float(m.tables_z.min_bits().sum()))
    symbols.check_length("Y", y_data, y_count * float(m.tables_y.min_bits().min()))
    z_sym = symbols.decode(z_data, z_groups, m.tables_z).transpose(1, 2, 0)
    p = entropy_params(m, z_sym, sigma, q)
    return symbols.decode(y_data, p.index, m.tables_y), p


def fixed_point_pixels(m: DecoderModel, z_data: bytes, y_data: bytes, zh: int, zw: int, sigma: float, q: float,
                       tile: int = DEFAULT_TILE, progress: bool = False) -> np.ndarray:
    """Pixels (64·zh, 64·zw, 3) at 2^-PIX_FRAC from the Z and Y sections (:func:`latent_symbols`, then g_s)."""
    u, p = latent_symbols(m, z_data, y_data, zh, zw, sigma, q)
    release(zh * zw * PAD_MULTIPLE**2)  # a large image's h_s maps are freed: g_s's bands start afresh
    return streamed_synthesis(m, u, p, sigma, q, tile, progress)


# -- the pixels ---------------------------------------------------------------------------------
def to_samples(x: np.ndarray, height: int, width: int, channels: int, bit_depth: int) -> np.ndarray:
    """The colour at the file's bit depth from fixed-point pixels x at 2^-F (F = PIX_FRAC), cropped.

    With gain g = 1 (8 bits) or 257 (16 bits), in int64: RGB (g·x + 2^(F-1)) >> F;
    grey, the mean of the three channels, (g·Σx + 3·2^(F-1)) // (3·2^F).
    x <= 255·2^F keeps every result within the bit depth.
    """
    x = x[:height, :width].astype(np.int64) * (1 if bit_depth == 8 else 257)
    if channels == 1:
        out = (x.sum(axis=2) + 3 * (1 << (PIX_FRAC - 1))) // (3 << PIX_FRAC)
    else:
        out = (x + (1 << (PIX_FRAC - 1))) >> PIX_FRAC
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)


def with_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return colour
    return np.concatenate([colour.reshape(*colour.shape[:2], -1), alpha[..., None]], axis=2)


def pixels_crc32(pixels: np.ndarray) -> int:
    """CRC32 of the image as the header stores it: row-major, channels interleaved, little-endian samples."""
    return zlib.crc32(np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes())


# -- a file -------------------------------------------------------------------------------------
def _as_bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"expected .fllic data as bytes, got {type(data).__name__}")
    return bytes(data)


def _tile(tile) -> int:
    if not isinstance(tile, (int, np.integer)) or tile < PAD_MULTIPLE or tile % PAD_MULTIPLE:
        raise InputError(f"tile must be a multiple of {PAD_MULTIPLE} pixels, at least {PAD_MULTIPLE}, got {tile!r}")
    return int(tile)


def decode_detailed(data: bytes, model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS, tile: int = DEFAULT_TILE,
                    verify: bool = True, progress: bool = False) -> Decoded:
    """Decode .fllic bytes: the image, its bit depth, alpha, ICC profile, EXIF and sigma.

    ``model`` (a model id, a ``-decoder.npz`` path or a DecoderModel) overrides
    the decoder the header names. ``tile`` bounds memory (g_s runs on bands of
    latent rows of about a tile's area); the pixels do not depend on it.
    ``progress`` shows a bar of the bands on stderr (tqdm). With ``verify=False`` a damaged file's best-effort image is
    returned with a FllicWarning instead of an IntegrityError or a file CRC error.
    """
    with reusing():
        return _decode_detailed(_as_bytes(data), model, max_pixels, _tile(tile), verify, progress)


def _decode_detailed(data: bytes, model, max_pixels: int, tile: int, verify: bool, progress: bool) -> Decoded:
    if not verify and not fmt.check(data):
        warnings.warn("the file's CRC does not match its bytes: it is damaged; decoding it anyway", FllicWarning,
                      stacklevel=3)
    c = fmt.unpack(data, max_pixels=max_pixels, check_crc=verify)
    h = c.header
    m = decoding_model(h, model)
    if h.pad_h != (-h.height) % PAD_MULTIPLE or h.pad_w != (-h.width) % PAD_MULTIPLE:
        raise FormatError("padding in the header does not match the image size")
    if "Z" not in c.sections or "Y" not in c.sections:
        raise FormatError("the file lacks its Z or Y section")
    alpha = fmt.unpack_alpha(c.sections["A"], h.height, h.width, h.bit_depth) if h.has_alpha else None
    zh, zw = (h.height + h.pad_h) // PAD_MULTIPLE, (h.width + h.pad_w) // PAD_MULTIPLE
    with nullcontext() if verify else symbols.lenient():
        x = fixed_point_pixels(m, c.sections["Z"], c.sections["Y"], zh, zw, model_sigma(h), h.step_scale, tile,
                               progress)
    pixels = with_alpha(to_samples(x, h.height, h.width, h.colour_channels, h.bit_depth), alpha)
    if pixels_crc32(pixels) != h.pixels_crc32:
        message = "decoded pixels do not match the stored CRC32: the file's coded data is damaged"
        if verify:
            raise IntegrityError(f"{message} (decode with verify=False for a best-effort image)")
        warnings.warn(f"{message}; this image is a best effort", FllicWarning, stacklevel=3)
    return Decoded(pixels, h.bit_depth, h.has_alpha, c.sections.get("ICC"), c.sections.get("EXIF"), h.sigma)


def decode(data: bytes, model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS, tile: int = DEFAULT_TILE,
           verify: bool = True) -> np.ndarray:
    """The pixels of .fllic bytes, exactly as ``fllic.decode`` returns them (see :func:`decode_detailed`)."""
    return decode_detailed(data, model, max_pixels, tile, verify).pixels
