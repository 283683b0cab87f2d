"""The public codec: numpy arrays in, .fllic bytes out, and back.

Determinism policy (docs/format.md): the entropy coder only ever sees integer
symbols and integer tables. Everything the decoder computes that decides a
symbol or a pixel (ẑ, h_s, μ, the step map, the scale index, g_s) runs in
exact integer arithmetic (fllic.models.integer), so a file decodes to the same
pixels on every machine, thread count and device. The stored CRC32 checks it.
"""

from __future__ import annotations

import sys
import warnings
import zlib
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from fllic import format as fmt
from fllic._deps import require_torch, torch_available, torch_installed
from fllic._errors import FllicWarning, FormatError, InputError, IntegrityError, LimitError
from fllic._heap import release, reusing

PAD_MULTIPLE = 64
DEFAULT_TILE = 768  # encoding, and the reference decoder (fllic.decoder.DEFAULT_TILE)
# PyTorch's decoder: 0.85x the time of 768-pixel tiles on a 6000x4000 image, peaking at 1.73 GB against 1.42
# (1536-pixel tiles: 0.75x, 2.62 GB; results/large_decode_tiles.md)
DECODE_TILE = 1024
REFINE_STEPS = 50  # encoder refinement's setting: 100 steps add 0.02 dB at twice the time (results/refine-validation.md)
MAX_REFINE_STEPS = 10_000


def _tile(tile, default: int = DEFAULT_TILE) -> int:
    """The tile side to use: ``default`` where ``tile`` is None; InputError for one that is not a multiple of 64."""
    if tile is None:
        return default
    if not isinstance(tile, (int, np.integer)) or tile < PAD_MULTIPLE or tile % PAD_MULTIPLE:
        raise InputError(f"tile must be a multiple of {PAD_MULTIPLE} pixels, at least {PAD_MULTIPLE}, got {tile!r}")
    return int(tile)


@dataclass
class EncodeResult:
    data: bytes
    pixels: np.ndarray  # the decoded image, exactly what decode(data) returns (alpha included)
    estimated_bits: float
    sigma: float  # in the image's own units (code values of its bit depth)
    quality: int
    bit_depth: int = 8
    model_id: str = "custom"  # the model that coded it (auto mode's choice when none was given)


@dataclass
class DecodeResult:
    """What decode_detailed() returns: the image and what the file says about it."""

    pixels: np.ndarray  # (H, W), (H, W, 2), (H, W, 3) or (H, W, 4); uint8 or uint16; alpha last
    bit_depth: int  # 8 or 16
    has_alpha: bool
    icc: bytes | None  # the ICC profile the encoder was given
    exif: bytes | None  # EXIF as a TIFF structure (II*\0 or MM\0*)
    sigma: float  # in the image's own units


SIGMA_RANGE = (0.0, 50.0)  # what a model covers unless its metadata says otherwise


def _as_bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"expected .fllic data as bytes, got {type(data).__name__}")
    return bytes(data)


def _as_image(array) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(colour, alpha or None, bit depth) of an encoder input: uint8 or uint16, 1 to 4 channels."""
    try:
        arr = np.asarray(array)
    except Exception as e:  # noqa: BLE001 - whatever the object, the answer is: not an image
        raise InputError(f"expected a uint8 or uint16 image array, got {type(array).__name__}") from e
    if arr.dtype not in (np.uint8, np.uint16):
        raise InputError(f"expected a uint8 or uint16 image, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (2, 3, 4))):
        raise InputError(f"expected an (H, W) grey, (H, W, 2) grey + alpha, (H, W, 3) RGB or (H, W, 4) RGBA "
                         f"image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"image is empty: shape {arr.shape}")
    depth = 16 if arr.dtype == np.uint16 else 8
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        colour = arr[..., :-1]
        return (colour[..., 0] if colour.shape[2] == 1 else colour), arr[..., -1], depth
    return arr, None, depth


def _padding(n: int) -> int:
    return (-n) % PAD_MULTIPLE


def _padded_rgb(img: np.ndarray) -> np.ndarray:
    """(H+pad_h, W+pad_w, 3), img's dtype: grey replicated, edges repeated to a multiple of 64."""
    rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    return np.pad(rgb, ((0, _padding(img.shape[0])), (0, _padding(img.shape[1])), (0, 0)), mode="edge")


def _model_input(img: np.ndarray) -> np.ndarray:
    """What the model's compress() takes: the padded uint8 or uint16 array, converted to
    x / peak (255 or 65535) a tile at a time by fllic.tiling."""
    return _padded_rgb(img)


def _model_sigma(sigma: float, bit_depth: int) -> float:
    """sigma in the model's 8-bit units: sigma · 255 / peak, one correctly rounded float64 division."""
    return sigma if bit_depth == 8 else sigma / 257.0  # 65535 / 255 = 257 exactly


def _to_tensor(img: np.ndarray):
    """(1, 3, H', W') float in [0, 1] of a uint8 image, padded (used by the bench's baselines)."""
    from fllic.tiling import to_tensor

    return to_tensor(_padded_rgb(img))


def _in_8bit_units(img: np.ndarray) -> np.ndarray:
    return img if img.dtype == np.uint8 else img.astype(np.float64) / 257.0


def _blind_level(img: np.ndarray):
    """fllic.noise.estimate_level in 8-bit units: the PCA estimate for white noise, the
    noise-level function's RMS (and the function itself) for correlated (camera, JPEG) noise."""
    from fllic.noise import estimate_level

    return estimate_level(_in_8bit_units(img))


def _estimate_sigma(img: np.ndarray) -> float:
    """The blind noise level in the image's own units (the estimator works in 8-bit units)."""
    sigma8 = _blind_level(img).sigma
    return sigma8 if img.dtype == np.uint8 else 257.0 * sigma8


def _trunk_noise_map(img: np.ndarray, level) -> np.ndarray | None:
    """The padded (2, H', W') maps for correlated noise, None for white noise.

    Channel 0 is the noise std per pixel in 8-bit units, read from the
    measured noise-level function at each pixel's local mean
    (fllic.noise.noise_map), since camera noise grows with intensity; channel 1
    is 1, the noise kind (correlated). What a ``meta["noise_map"]`` model's
    trunk takes in place of the constant sigma.
    """
    from fllic.noise import noise_map

    if level is None or not level.correlated or level.nlf is None or level.nlf.sigma.size == 0:
        return None
    level_map = noise_map(_in_8bit_units(img), level.nlf)
    level_map = np.pad(level_map, ((0, _padding(img.shape[0])), (0, _padding(img.shape[1]))), mode="edge")
    return np.stack([level_map, np.ones_like(level_map)]).astype(np.float32)


def _pixels(x, height: int, width: int, channels: int, bit_depth: int = 8) -> np.ndarray:
    """The decoded colour from the fixed-point pixels (1, H', W', 3) at 2^-PIX_FRAC of 8-bit units.

    8 bits: int_decoder.pixels_to_uint8. 16 bits, exactly in int32: RGB
    (x·257 + 2^(F-1)) >> F, grey (Σx·257 + 3·2^(F-1)) // (3·2^F); x <= 255·2^F
    keeps every result <= 65535.
    """
    from fllic.models.int_decoder import PIX_FRAC, pixels_to_uint8

    if bit_depth == 8:
        return pixels_to_uint8(x, height, width, channels)
    import torch

    x = x[0, :height, :width].to(torch.int32)
    if channels == 1:
        out = (x.sum(dim=2) * 257 + 3 * (1 << (PIX_FRAC - 1))) // (3 << PIX_FRAC)
    else:
        out = (x * 257 + (1 << (PIX_FRAC - 1))) >> PIX_FRAC
    return out.cpu().numpy().astype(np.uint16)


def _with_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return colour
    return np.concatenate([colour.reshape(*colour.shape[:2], -1), alpha[..., None]], axis=2)


def pixels_crc32(pixels: np.ndarray) -> int:
    """CRC32 of a decoded image as the header stores it: row-major, channels interleaved (alpha
    last), little-endian samples; for an 8-bit image, its bytes."""
    return zlib.crc32(np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes())


def _metadata(icc, exif) -> dict[str, bytes]:
    from fllic.imageio import normalise_exif

    sections = {}
    if icc:
        if not isinstance(icc, (bytes, bytearray, memoryview)) or not fmt.valid_icc(bytes(icc)):
            raise InputError("icc must be the bytes of an ICC profile ('acsp' signature, at most 16 MiB)")
        sections["ICC"] = bytes(icc)
    if exif:
        if not isinstance(exif, (bytes, bytearray, memoryview)):
            raise InputError(f"exif must be bytes, got {type(exif).__name__}")
        exif = normalise_exif(exif)
        if not fmt.valid_exif(exif):
            raise InputError("exif must be EXIF bytes: a TIFF structure (II*\\0 or MM\\0*), at most 16 MiB")
        sections["EXIF"] = exif
    return sections


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


def _refine_steps(refine) -> int:
    if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or not 0 <= refine <= MAX_REFINE_STEPS:
        raise InputError(f"refine must be a whole number of steps from 0 to {MAX_REFINE_STEPS} "
                         f"({REFINE_STEPS} is the recorded setting), got {refine!r}")
    return int(refine)


def _quality_scale(model, quality: int | None, sigma8: float, grey: bool = False,
                   refined: bool = False) -> tuple[int, float]:
    """(level, step scale q); level None is the model's default for the noise level (8-bit units) and,
    where the model has such tables, for a grey image and for refined coding."""
    scales = model.meta.get("quality_scales", [1.0])
    if quality is None:
        quality = model.default_quality(sigma8, grey, refined)
    if not isinstance(quality, (int, np.integer)) or not 1 <= quality <= len(scales):
        raise InputError(f"quality must be an integer from 1 to {len(scales)} for model "
                         f"{model.meta.get('id', 'custom')!r} (default: the model's choice for the noise level), "
                         f"got {quality!r}")
    return int(quality), float(np.float32(scales[quality - 1]))


def encode_detailed(array, sigma: float | None = None, model=None, quality: int | None = None,
                    max_pixels: int = fmt.DEFAULT_MAX_PIXELS, device: str | None = None,
                    tile: int | None = DEFAULT_TILE, progress: bool = False, *, icc: bytes | None = None,
                    exif: bytes | None = None, refine: int = 0, max_bytes: int | None = None,
                    from_jpeg: bool = False, float32: bool = False) -> EncodeResult:
    """encode(), also returning the decoded pixels, the model and the model's estimated bits."""
    from fllic import precision

    require_torch("encoding")
    with precision.float32(float32), reusing():
        return _encode(array, sigma, model, quality, max_pixels, device, tile, progress, icc, exif, refine,
                       max_bytes, from_jpeg)


def _encode(array, sigma, model, quality, max_pixels, device, tile, progress, icc, exif, refine, max_bytes,
            from_jpeg) -> EncodeResult:
    from fllic.models.registry import auto_model, resolve

    img, alpha, depth = _as_image(array)
    refine = _refine_steps(refine)
    if img.shape[0] * img.shape[1] > max_pixels:
        raise LimitError(f"image of {img.shape[1]}x{img.shape[0]} exceeds the limit of {max_pixels} pixels")
    sections = _metadata(icc, exif)
    level = _blind_level(img) if sigma is None else None
    release(img.shape[0] * img.shape[1])  # a large image is read (and its noise estimated): the analysis starts afresh
    m = _on_device(resolve(model if model is not None else auto_model(level, from_jpeg, grey=img.ndim == 2)), device)
    if level is not None:
        level = _level_for(m, level)
        sigma = level.sigma if depth == 8 else 257.0 * level.sigma
    sigma = _checked_sigma(sigma, depth, m)
    level_map = _trunk_noise_map(img, level) if m.meta.get("noise_map") else None
    chosen, capped = quality, quality is None and max_bytes is not None
    while True:
        res = _code_at(m, img, alpha, depth, sigma, chosen, sections, tile, progress, level_map, refine)
        if capped and len(res.data) > max_bytes and res.quality > 1:
            chosen = res.quality - 1  # over the size cap: the next coarser level
            continue
        return res


def _code_at(m, img, alpha, depth: int, sigma: float, quality: int | None, sections: dict, tile, progress: bool,
             level_map, refine: int) -> EncodeResult:
    """One coding of the colour at ``quality`` (None: the model's default for the noise level), packed."""
    s8 = _model_sigma(sigma, depth)
    h, w = img.shape[:2]
    quality, q = _quality_scale(m, quality, s8, grey=img.ndim == 2, refined=refine > 0)
    comp = m.compress(_model_input(img), s8, q, tile=_tile(tile), progress=progress, noise_map=level_map,
                      refine=refine)
    colour = 1 if img.ndim == 2 else 3
    pixels = _with_alpha(_pixels(comp.pixels, h, w, colour, depth), alpha)
    header = fmt.Header(
        model_id=m.meta.get("id", "custom"), weights_hash=m.hash, height=h, width=w,
        channels=colour + (alpha is not None), bit_depth=depth, pad_h=_padding(h), pad_w=_padding(w),
        sigma=sigma, step_scale=q, quality=quality, pixels_crc32=pixels_crc32(pixels), **_decoder_fields(m),
    )
    coded = {"Z": comp.strings[0], "Y": comp.strings[1],
             **({"A": fmt.pack_alpha(alpha, depth)} if alpha is not None else {}), **sections}
    data = fmt.pack(fmt.Container(header, coded))
    return EncodeResult(data, pixels, comp.estimated_bits, sigma, quality, depth, m.meta.get("id", "custom"))


def _decoder_fields(m) -> dict:
    """Header fields naming the decoder, for a model that is not its own decoder (format version 3)."""
    if m.decoder_id == m.meta.get("id", "custom"):
        return {}
    return {"decoder_id": m.decoder_id, "decoder_hash": m.decoder_hash}


def _decoding_model(h: fmt.Header, model, device):
    """The model that decodes a file: the one that wrote it (version 2), or the decoder it names (version 3),
    its weights checked against the file's hash.

    A shipped model id (the header's, or ``model``) with a decoder file, or a ``-decoder.npz`` path, loads
    the decoder part alone (:mod:`fllic.models.decoding`: integer h_s, g_s and tables, nothing of the
    encoder); any other model (an exported file, a CodingModel) loads whole."""
    m = _on_device(_decoder_of(fmt.decoder_name(h) if model is None else model), device)
    fmt.check_model(h, m.hash, m.decoder_hash)
    return m


def _decoder_of(model):
    """The decoder part of a shipped id or a ``-decoder.npz`` file; the whole model (registry.resolve) otherwise."""
    from pathlib import Path

    from fllic.models import decoding

    if isinstance(model, (str, Path)) and str(model).endswith(".npz") and Path(model).is_file():
        return decoding.load_file(model)
    if isinstance(model, str) and not Path(model).is_file() and decoding.decoder_file(model) is not None:
        return decoding.load(model)
    from fllic.models.registry import resolve

    return resolve(model)


def _level_for(model, level):
    """The blind level as ``model`` reads it: correlated noise scaled by the model's ``correlated_gain``.

    The blind estimator measures correlated noise's per-pixel std within 7x7
    weak-texture patches, which leaves out the noise's coarser part; a model
    states (``meta["correlated_gain"]``) by what factor its trunk wants that
    reading scaled, a factor chosen on real development photographs
    (results/real_noise.md). A model with ``meta["spread_cap"]`` first holds
    that reading to at most that many times the PCA reading
    (:meth:`fllic.noise.estimate.NoiseLevel.capped`): beyond it the reading is
    texture; with ``meta["spread_window"]`` it holds only where the weakest
    patches say the reading is texture, not heavy noise.
    """
    level = _capped_level(model, level)
    gain = float(model.meta.get("correlated_gain", 1.0))
    return level.scaled(gain) if level.correlated and gain != 1.0 else level


def _capped_level(model, level):
    """The blind level held to ``model``'s spread cap (and window), where it has one; not yet scaled by its gain."""
    cap, window = model.meta.get("spread_cap"), model.meta.get("spread_window")
    if cap is None:
        return level
    return level.capped(float(cap), None if window is None else (float(window[0]), float(window[1])))


def _checked_sigma(sigma, depth: int, m) -> float:
    """``sigma`` as a float32-exact number in the image's units, or InputError; a warning outside the model's range."""
    peak = (1 << depth) - 1
    try:
        sigma = float(sigma)
    except (TypeError, ValueError) as e:
        raise InputError(f"sigma must be a number, got {sigma!r}") from e
    if not np.isfinite(sigma) or not 0 <= sigma <= peak:
        raise InputError(f"sigma must be between 0 and {peak} (the {depth}-bit image's own units), got {sigma}")
    sigma = float(np.float32(sigma))
    s8 = _model_sigma(sigma, depth)
    lo, hi = m.meta.get("sigma_range", SIGMA_RANGE)
    if not lo <= s8 <= hi:
        units = "" if depth == 8 else f" ({s8:g} in 8-bit units)"
        warnings.warn(f"sigma {sigma:g}{units} is outside the range {lo:g}-{hi:g} that model "
                      f"{m.meta.get('id', 'custom')!r} was trained for; expect a poorer image", FllicWarning, stacklevel=3)
    return sigma


def encode(array, sigma: float | None = None, model=None, quality: int | None = None,
           device: str | None = None, tile: int | None = DEFAULT_TILE, *, icc: bytes | None = None,
           exif: bytes | None = None, refine: int = 0, max_bytes: int | None = None,
           from_jpeg: bool = False, float32: bool = False) -> bytes:
    """Compress a noisy image to .fllic bytes.

    ``array`` is uint8 or uint16: (H, W) grey, (H, W, 2) grey + alpha, (H, W, 3)
    RGB or (H, W, 4) RGBA. The colour is coded by the model; alpha is stored
    losslessly beside it. A 16-bit image is decoded at 16 bits.

    ``sigma`` is the noise std in the image's own units (code values: 0-255
    for uint8, 0-65535 for uint16), estimated when None; the model sees the
    image and sigma normalised by the peak (x / peak, sigma · 255 / peak), so
    sigma 2570 on a 16-bit image is sigma 10 on an 8-bit one. ``model`` is a
    shipped model id, an exported .pt path or a CodingModel, and ``quality`` a
    level from 1 to the model's highest; None, the default, is the model's
    functionally lossless point for the noise level. ``device`` runs the network there (cpu, cuda);
    the pixels do not depend on it. ``tile`` bounds memory: the image is
    analysed and synthesised that many pixels at a time (a 16-bit image is
    first converted to float whole, 12 bytes per pixel). ``icc`` (an ICC
    profile) and ``exif`` (EXIF bytes) are stored as they are and returned by
    :func:`decode_detailed`. ``refine`` spends that many optimisation steps per
    tile choosing the latent symbols for the decoder (``REFINE_STEPS`` is the
    recorded setting): a lower rate–distortion cost against the model's
    estimate, at about 20 times the encoding time. The default level then
    comes from the model's refined table where it has one (on Kodak24 at
    sigma 15, 17 % fewer bits for 0.07 dB less; at a fixed level, +0.15 dB for
    0.4 % more bits). The decoder and the file format are the same either way.
    ``max_bytes`` caps the file when no ``quality`` is given: the default level
    steps down until the file fits or level 1 is reached (``fllic compress``
    caps a JPEG input at the JPEG's own size). ``from_jpeg`` says the image
    was decoded from a camera's JPEG: blind, its correlated noise goes to the
    camera-JPEG model (``fllic compress`` sets it for JPEG files). The trunk and g_a run in bf16 on a CPU
    with AVX-512 BF16 or AMX (:mod:`fllic.precision`); ``float32`` keeps them in float32. Either way the file
    decodes exactly to the pixels returned with it.
    """
    return encode_detailed(array, sigma=sigma, model=model, quality=quality, device=device, tile=tile,
                           icc=icc, exif=exif, refine=refine, max_bytes=max_bytes, from_jpeg=from_jpeg,
                           float32=float32).data


DECODERS = ("auto", "torch", "reference")


TORCH_FRESH_PIXELS = 2048 * 1536  # the smallest size measured where PyTorch's decoder is faster, its import paid


def auto_decoder(model=None, device: str | None = None, named: str | None = None, pixels: int | None = None) -> str:
    """decoder="auto"'s choice: "reference" where PyTorch is not installed; "torch" on another device and where
    the reference decoder cannot read the model (a whole model file, not an installed decoder file); otherwise
    "torch" in a process that has already imported PyTorch, and in a fresh one for an image of at least
    ``TORCH_FRESH_PIXELS``, "reference" below it. Both give the same pixels. PyTorch's decoder streams g_s in
    bands of rows as the reference decoder does (fllic.models.int_rows): with PyTorch imported it takes 0.61x to
    0.82x the reference decoder's time from 0.4 to 6.3 MP (results/decode-in-process-stream.md); a fresh
    decode pays PyTorch's import, so there the reference decoder is faster up to 1.6 MP (0.63x PyTorch's time at
    0.4 MP, 0.96x at 1.6 MP) and slower from 3.1 MP on (1.01x at 3.1 MP, 1.06x at 6.3 MP,
    results/decode-cold-v8-stream.md; 1.31x at 24 MP, results/large_stream_v8.md)."""
    if not torch_installed():
        return "reference"
    if device not in (None, "cpu"):
        return "torch"
    if not _reference_reads(model if model is not None else named):
        return "torch"
    large = pixels is not None and pixels >= TORCH_FRESH_PIXELS
    return "torch" if large or "torch" in sys.modules else "reference"


def chosen_decoder(decoder: str = "auto", model=None, device: str | None = None, named: str | None = None,
                   pixels: int | None = None) -> str:
    """The decoder :func:`decode_detailed` runs for ``decoder``: itself, or auto's choice (:func:`auto_decoder`)."""
    return auto_decoder(model, device, named, pixels) if decoder == "auto" else decoder


def bound_decode_heap(pixels: int, decoder: str = "auto", model=None, device: str | None = None,
                      named: str | None = None) -> bool:
    """fllic._heap.bound_for(pixels) where PyTorch's decoder will decode: one malloc arena, so that the blocks its
    threads free return to the heap its next band reuses. The reference decoder keeps glibc's arenas (bounding its
    heap, when that also mapped each block afresh, slowed it: 289 s against 103 s, in runs results/README.md lists
    under large_reference.md). True where the heap was bounded."""
    from fllic._heap import bound_for

    return chosen_decoder(decoder, model, device, named, pixels) == "torch" and bound_for(pixels)


def _reference_reads(model) -> bool:
    """Whether the reference decoder can read ``model``: a ``-decoder.npz`` file, or an id with one installed."""
    from pathlib import Path

    from fllic.decoder.model import _ID, SUFFIX, weights_dir

    if not isinstance(model, (str, Path)):
        return False
    if str(model).endswith(SUFFIX):
        return Path(model).is_file()
    return bool(_ID.fullmatch(str(model))) and (weights_dir() / f"{model}{SUFFIX}").is_file()


def decode_detailed(data: bytes, model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS, device: str | None = None,
                    tile: int | None = None, progress: bool = False, verify: bool = True,
                    decoder: str = "auto") -> DecodeResult:
    """decode(), also returning the bit depth, whether there is alpha, the ICC profile and EXIF.

    ``decoder``: "torch" (PyTorch's integer kernels, on any device), "reference" (the numpy reference decoder
    :mod:`fllic.decoder`; ``model`` a shipped id or a ``-decoder.npz`` file), or "auto": the reference decoder
    on the CPU where it reads the model for an image below 3.1 MP in a process that has not imported PyTorch,
    torch otherwise (:func:`auto_decoder`). Both give the same pixels."""
    with reusing():
        return _decode_detailed(_as_bytes(data), model, max_pixels, device, tile, progress, verify, decoder)


def _decode_detailed(data: bytes, model, max_pixels: int, device, tile, progress: bool, verify: bool,
                     decoder: str) -> DecodeResult:
    if decoder not in DECODERS:
        raise InputError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
    if decoder == "auto":
        h = fmt.unpack(data, max_pixels=max_pixels, check_crc=False).header
        decoder = auto_decoder(model, device, fmt.decoder_name(h), h.height * h.width)
    if decoder == "reference":
        return _decode_without_torch(data, model, max_pixels, device, tile, verify, progress)
    require_torch("decoding with decoder='torch'")
    from fllic.decoder import symbols

    if not verify and not fmt.check(data):
        warnings.warn("the file's CRC does not match its bytes: it is damaged; decoding it anyway", FllicWarning,
                      stacklevel=4)
    c = fmt.unpack(data, max_pixels=max_pixels, check_crc=verify)
    h = c.header
    m = _decoding_model(h, model, device)
    if h.pad_h != _padding(h.height) or h.pad_w != _padding(h.width):
        raise FormatError("padding in the header does not match the image size")
    if "Z" not in c.sections or "Y" not in c.sections:
        raise FormatError("the file lacks its Z or Y section")
    alpha = fmt.unpack_alpha(c.sections["A"], h.height, h.width, h.bit_depth) if h.has_alpha else None
    z_shape = ((h.height + h.pad_h) // PAD_MULTIPLE, (h.width + h.pad_w) // PAD_MULTIPLE)
    try:
        with nullcontext() if verify else symbols.lenient():
            x = m.decompress((c.sections["Z"], c.sections["Y"]), z_shape, _model_sigma(h.sigma, h.bit_depth),
                             h.step_scale, tile=_tile(tile, DECODE_TILE), progress=progress)
    except (ValueError, RuntimeError, OverflowError, IndexError) as e:
        raise FormatError(f"corrupt entropy-coded data ({e})") from e
    pixels = _with_alpha(_pixels(x, h.height, h.width, h.colour_channels, h.bit_depth), alpha)
    if pixels_crc32(pixels) != h.pixels_crc32:
        message = "decoded pixels do not match the stored CRC32: the file's coded data is damaged"
        if verify:
            raise IntegrityError(f"{message} (fllic decompress --best-effort writes the image anyway)")
        warnings.warn(f"{message}; this image is a best effort", FllicWarning, stacklevel=4)
    return DecodeResult(pixels, h.bit_depth, h.has_alpha, c.sections.get("ICC"), c.sections.get("EXIF"), h.sigma)


def _torch_available() -> bool:
    return torch_available()


def _decode_without_torch(data: bytes, model, max_pixels: int, device, tile: int | None, verify: bool,
                          progress: bool = False) -> DecodeResult:
    """decode_detailed() by the torch-free reference decoder, on the CPU."""
    import fllic.decoder

    if device not in (None, "cpu"):
        if _torch_available():
            raise InputError(f"the reference decoder runs on the cpu only; decode on {device!r} with decoder='torch'")
        raise InputError(f"device {device!r} needs PyTorch, which is not installed; decode on the cpu")
    r = fllic.decoder.decode_detailed(data, model=model, max_pixels=max_pixels,
                                      tile=_tile(tile, fllic.decoder.DEFAULT_TILE), verify=verify, progress=progress)
    return DecodeResult(r.pixels, r.bit_depth, r.has_alpha, r.icc, r.exif, r.sigma)


def decode(data: bytes, model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS, device: str | None = None,
           tile: int | None = None, progress: bool = False, verify: bool = True, decoder: str = "auto") -> np.ndarray:
    """Decode .fllic bytes to the denoised image, with the encoder's dtype and shape, on any ``device``.

    uint8 or uint16 as the encoded image was; (H, W), (H, W, 2), (H, W, 3) or
    (H, W, 4), alpha last and bit-exact. The image is synthesised ``tile``
    pixels at a time (memory bounded by the tile; by default DECODE_TILE with
    PyTorch's kernels, the reference decoder's own otherwise); the pixels do
    not depend on the tile size. With ``verify=False`` a damaged file whose pixels fail the
    stored CRC still returns its best-effort image, with a FllicWarning,
    instead of raising IntegrityError. ``decoder`` picks PyTorch's kernels or
    the numpy reference decoder (see :func:`decode_detailed`; the same pixels).
    :func:`decode_detailed` also returns the ICC profile and EXIF.
    """
    return decode_detailed(data, model=model, max_pixels=max_pixels, device=device, tile=tile,
                           progress=progress, verify=verify, decoder=decoder).pixels


def check(data: bytes) -> bool:
    """True when ``data`` is a structurally valid .fllic file (magic, version, CRC); no decoding."""
    return fmt.check(_as_bytes(data))


def info(data: bytes, verify: bool = True) -> dict:
    """What a .fllic file says about itself, without decoding it; ``verify=False`` reads on past a file CRC
    mismatch (a damaged file's best-effort decode needs its header)."""
    c = fmt.unpack(_as_bytes(data), max_pixels=1 << 62, check_crc=verify)
    h = c.header
    return {
        "model_id": h.model_id, "weights_hash": h.weights_hash.hex(), "format_version": h.version,
        "decoder_id": h.decoder_id or h.model_id, **({"decoder_hash": h.decoder_hash.hex()} if h.decoder_hash else {}),
        "width": h.width, "height": h.height,
        "channels": h.channels, "bit_depth": h.bit_depth, "alpha": h.has_alpha,
        "icc": "ICC" in c.sections, "exif": "EXIF" in c.sections, "pad_h": h.pad_h, "pad_w": h.pad_w,
        "sigma": h.sigma, "quality": h.quality, "step_scale": h.step_scale,
        "pixels_crc32": f"{h.pixels_crc32:08x}", "file_bytes": len(data),
        "sections": {k: len(v) for k, v in c.sections.items()},
        "bpp": 8.0 * len(data) / h.pixels,
    }
