"""The public codec: numpy arrays in, .fllic bytes out, and back.

Determinism policy (docs/format.md): the entropy coder only ever sees integer
symbols and integer tables. Everything the decoder computes that decides a
symbol or a pixel (ẑ, h_s, μ, the step map, the scale index, g_s) runs in
exact integer arithmetic (fllic.models.integer), so a file decodes to the same
pixels on every machine, thread count and device. The stored CRC32 checks it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from fllic import format as fmt
import warnings

from fllic._errors import FllicWarning, FormatError, InputError, IntegrityError, LimitError, ModelMismatchError

PAD_MULTIPLE = 64
DEFAULT_TILE = 768


def _tile(tile) -> int:
    if not isinstance(tile, (int, np.integer)) or tile < PAD_MULTIPLE or tile % PAD_MULTIPLE:
        raise InputError(f"tile must be a multiple of {PAD_MULTIPLE} pixels, at least {PAD_MULTIPLE}, got {tile!r}")
    return int(tile)


@dataclass
class EncodeResult:
    data: bytes
    pixels: np.ndarray  # the decoded image, exactly what decode(data) returns
    estimated_bits: float
    sigma: float
    quality: int


SIGMA_RANGE = (0.0, 50.0)  # what a model covers unless its metadata says otherwise


def _as_bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"expected .fllic data as bytes, got {type(data).__name__}")
    return bytes(data)


def _as_image(array) -> np.ndarray:
    try:
        arr = np.asarray(array)
    except Exception as e:  # noqa: BLE001 - whatever the object, the answer is: not an image
        raise InputError(f"expected a uint8 image array, got {type(array).__name__}") from e
    if arr.dtype != np.uint8:
        raise InputError(f"expected a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise InputError(f"expected an (H, W) grey or (H, W, 3) RGB image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"image is empty: shape {arr.shape}")
    return arr


def _padding(n: int) -> int:
    return (-n) % PAD_MULTIPLE


def _padded_rgb(img: np.ndarray) -> np.ndarray:
    """(H+pad_h, W+pad_w, 3) uint8: grey replicated, edges repeated to a multiple of 64."""
    rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    return np.pad(rgb, ((0, _padding(img.shape[0])), (0, _padding(img.shape[1])), (0, 0)), mode="edge")


def _to_tensor(img: np.ndarray):
    from fllic.tiling import to_tensor

    return to_tensor(_padded_rgb(img))


def _pixels(x, height: int, width: int, channels: int) -> np.ndarray:
    from fllic.models.int_decoder import pixels_to_uint8

    return pixels_to_uint8(x, height, width, channels)


def _on_device(model, device):
    """``model`` moved to ``device`` (cpu or cuda), or as it is for None."""
    if device is None:
        return model
    import torch

    if str(device) not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"device must be cpu or cuda, got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA is not available on this machine (no GPU, or a CPU-only torch); use --device cpu")
    return model.to(device)


def _quality_scale(model, quality: int | None) -> tuple[int, float]:
    scales = model.meta.get("quality_scales", [1.0])
    if quality is None:
        quality = len(scales)
    if not isinstance(quality, (int, np.integer)) or not 1 <= quality <= len(scales):
        raise InputError(f"quality must be an integer from 1 to {len(scales)} (default {len(scales)}), got {quality!r}")
    return int(quality), float(np.float32(scales[quality - 1]))


def encode_detailed(array, sigma: float | None = None, model=None, quality: int | None = None,
                    max_pixels: int = fmt.DEFAULT_MAX_PIXELS, device: str | None = None,
                    tile: int = DEFAULT_TILE, progress: bool = False) -> EncodeResult:
    """encode(), also returning the decoded pixels and the model's estimated bits."""
    from fllic.models.registry import resolve
    from fllic.noise import estimate_sigma

    img = _as_image(array)
    h, w = img.shape[:2]
    if h * w > max_pixels:
        raise LimitError(f"image of {w}x{h} exceeds the limit of {max_pixels} pixels")
    m = _on_device(resolve(model), device)
    sigma = estimate_sigma(img) if sigma is None else sigma
    try:
        sigma = float(sigma)
    except (TypeError, ValueError) as e:
        raise InputError(f"sigma must be a number, got {sigma!r}") from e
    if not np.isfinite(sigma) or not 0 <= sigma <= 255:
        raise InputError(f"sigma must be between 0 and 255, got {sigma}")
    sigma = float(np.float32(sigma))
    lo, hi = m.meta.get("sigma_range", SIGMA_RANGE)
    if not lo <= sigma <= hi:
        warnings.warn(f"sigma {sigma:g} is outside the range {lo:g}-{hi:g} that model "
                      f"{m.meta.get('id', 'custom')!r} was trained for; expect a poorer image", FllicWarning, stacklevel=2)
    quality, q = _quality_scale(m, quality)
    comp = m.compress(_padded_rgb(img), sigma, q, tile=_tile(tile), progress=progress)
    channels = 1 if img.ndim == 2 else 3
    pixels = _pixels(comp.pixels, h, w, channels)
    header = fmt.Header(
        model_id=m.meta.get("id", "custom"), weights_hash=m.hash, height=h, width=w,
        channels=channels, bit_depth=8, pad_h=_padding(h), pad_w=_padding(w),
        sigma=sigma, step_scale=q, quality=quality, pixels_crc32=zlib.crc32(pixels.tobytes()),
    )
    data = fmt.pack(fmt.Container(header, {"Z": comp.strings[0], "Y": comp.strings[1]}))
    return EncodeResult(data, pixels, comp.estimated_bits, sigma, quality)


def encode(array, sigma: float | None = None, model=None, quality: int | None = None,
           device: str | None = None, tile: int = DEFAULT_TILE) -> bytes:
    """Compress a noisy uint8 image, (H, W) grey or (H, W, 3) RGB, to .fllic bytes.

    ``sigma`` is the noise std in 8-bit units (estimated when None), ``model`` a
    shipped model id, an exported .pt path or a CodingModel, and ``quality`` a
    level from 1 to the model's highest, which is the default: the
    functionally lossless point. ``device`` runs the network there (cpu, cuda);
    the pixels do not depend on it. ``tile`` bounds memory: the image is
    analysed and synthesised that many pixels at a time.
    """
    return encode_detailed(array, sigma=sigma, model=model, quality=quality, device=device, tile=tile).data


def decode(data: bytes, model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS, device: str | None = None,
           tile: int = DEFAULT_TILE, progress: bool = False, verify: bool = True) -> np.ndarray:
    """Decode .fllic bytes to the denoised uint8 image, with the encoder's shape, on any ``device``.

    The image is synthesised ``tile`` pixels at a time (memory bounded by the
    tile); the pixels do not depend on the tile size. With ``verify=False`` a
    damaged file whose pixels fail the stored CRC still returns its
    best-effort image, with a FllicWarning, instead of raising IntegrityError.
    """
    from fllic.models.registry import resolve

    c = fmt.unpack(_as_bytes(data), max_pixels=max_pixels)
    h = c.header
    m = _on_device(resolve(h.model_id if model is None else model), device)
    if m.hash != h.weights_hash:
        raise ModelMismatchError(
            f"file was written with weights {h.weights_hash.hex()} of {h.model_id!r}, "
            f"but the available weights are {m.hash.hex()}"
        )
    if h.pad_h != _padding(h.height) or h.pad_w != _padding(h.width):
        raise FormatError("padding in the header does not match the image size")
    if "Z" not in c.sections or "Y" not in c.sections:
        raise FormatError("the file lacks its Z or Y section")
    z_shape = ((h.height + h.pad_h) // PAD_MULTIPLE, (h.width + h.pad_w) // PAD_MULTIPLE)
    try:
        x = m.decompress((c.sections["Z"], c.sections["Y"]), z_shape, h.sigma, h.step_scale,
                         tile=_tile(tile), progress=progress)
    except (ValueError, RuntimeError, OverflowError, IndexError) as e:
        raise FormatError(f"corrupt entropy-coded data ({e})") from e
    pixels = _pixels(x, h.height, h.width, h.channels)
    if zlib.crc32(pixels.tobytes()) != h.pixels_crc32:
        message = "decoded pixels do not match the stored CRC32: the file's coded data is damaged"
        if verify:
            raise IntegrityError(f"{message} (fllic decompress --best-effort writes the image anyway)")
        warnings.warn(f"{message}; this image is a best effort", FllicWarning, stacklevel=2)
    return pixels


def check(data: bytes) -> bool:
    """True when ``data`` is a structurally valid .fllic file (magic, version, CRC); no decoding."""
    return fmt.check(_as_bytes(data))


def info(data: bytes) -> dict:
    """What a .fllic file says about itself, without decoding it."""
    c = fmt.unpack(_as_bytes(data), max_pixels=1 << 62)
    h = c.header
    return {
        "model_id": h.model_id, "weights_hash": h.weights_hash.hex(), "width": h.width, "height": h.height,
        "channels": h.channels, "bit_depth": h.bit_depth, "pad_h": h.pad_h, "pad_w": h.pad_w,
        "sigma": h.sigma, "quality": h.quality, "step_scale": h.step_scale,
        "pixels_crc32": f"{h.pixels_crc32:08x}", "file_bytes": len(data),
        "sections": {k: len(v) for k, v in c.sections.items()},
        "bpp": 8.0 * len(data) / h.pixels,
    }
