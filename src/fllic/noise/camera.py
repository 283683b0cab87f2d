"""A camera pipeline for realistic noise: Brooks et al., "Unprocessing Images for Learned
Raw Denoising" (CVPR 2019).

A clean sRGB image is *unprocessed* into a plausible raw mosaic (inverse tone
curve, inverse gamma, inverse colour matrix, inverse white balance, Bayer
RGGB sampling), given shot and read noise at levels sampled as real sensors'
are (log-linear relation between them), then *processed* back (Malvar-He-Cutler
demosaicing, white balance, colour matrix, gamma, tone curve) and stored as 8
bits, optionally through JPEG at quality 75 to 100. The result has noise that
grows with intensity, is correlated across neighbouring pixels and channels by
the demosaicing, and is reshaped by the colour pipeline: what camera files
carry, unlike AWGN. Every random choice comes from the given Generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# XYZ -> camera matrices of four cameras (from Brooks et al.'s reference code) and sRGB -> XYZ.
_XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
])
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])
SHOT_RANGE = (1e-4, 1.2e-2)  # the paper's log-uniform range of the shot-noise factor


@dataclass(frozen=True)
class CameraParams:
    rgb2cam: tuple[tuple[float, ...], ...]
    rgb_gain: float
    red_gain: float
    blue_gain: float
    shot: float  # variance per unit of raw intensity
    read: float  # variance floor
    jpeg_quality: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def sample_params(rng: np.random.Generator, shot: float | None = None, jpeg: bool = False) -> CameraParams:
    """Random camera settings: colour matrix, gains, and a noise level like a real sensor's."""
    weights = rng.uniform(1e-8, 1e8, size=len(_XYZ2CAMS))
    xyz2cam = np.tensordot(weights / weights.sum(), _XYZ2CAMS, axes=1)
    rgb2cam = xyz2cam @ _RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(axis=1, keepdims=True)
    if shot is None:
        shot = float(np.exp(rng.uniform(np.log(SHOT_RANGE[0]), np.log(SHOT_RANGE[1]))))
    log_read = 2.18 * np.log(shot) + 1.20 + rng.normal(0.0, 0.26)
    return CameraParams(
        rgb2cam=tuple(map(tuple, rgb2cam)), rgb_gain=float(1.0 / rng.normal(0.8, 0.1)),
        red_gain=float(rng.uniform(1.9, 2.4)), blue_gain=float(rng.uniform(1.5, 1.9)),
        shot=shot, read=float(np.exp(log_read)), jpeg_quality=int(rng.integers(75, 101)) if jpeg else None,
    )


def _gains(p: CameraParams) -> np.ndarray:
    return np.array([p.red_gain, 1.0, p.blue_gain]) * p.rgb_gain


def unprocess(srgb: np.ndarray, p: CameraParams) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] to a linear camera-space image, white balance undone."""
    x = np.clip(srgb, 0.0, 1.0)
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)  # inverse of the smoothstep tone curve
    x = np.maximum(x, 1e-8) ** 2.2
    x = x @ np.asarray(p.rgb2cam).T
    gains = _gains(p)
    # Undo the white balance, keeping highlights below saturation (Brooks et al.'s safe inversion).
    grey = x.mean(axis=2, keepdims=True)
    inv = 1.0 / gains
    mask = (np.maximum(grey - 0.9, 0.0) / 0.1) ** 2
    return x * np.maximum(inv, (1.0 - mask) * inv + mask)


def mosaic(x: np.ndarray) -> np.ndarray:
    """RGGB Bayer sampling: (H, W, 3) -> (H, W) with one colour per site (H, W even)."""
    out = np.empty(x.shape[:2])
    out[0::2, 0::2] = x[0::2, 0::2, 0]
    out[0::2, 1::2] = x[0::2, 1::2, 1]
    out[1::2, 0::2] = x[1::2, 0::2, 1]
    out[1::2, 1::2] = x[1::2, 1::2, 2]
    return out


# Malvar, He & Cutler (ICASSP 2004): gradient-corrected linear demosaicing, 5x5 kernels (x 1/8).
_MHC_G_AT_RB = np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]) / 8
_MHC_ROW = np.array([[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]]) / 8
_MHC_COL = _MHC_ROW.T
_MHC_DIAG = np.array([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]) / 8


def demosaic(raw: np.ndarray) -> np.ndarray:
    """Demosaicing of an RGGB mosaic, (H, W) -> (H, W, 3), by Malvar-He-Cutler's linear filters.

    Bilinear interpolation corrected by the Laplacian of the site's own colour:
    what MATLAB's ``demosaic`` does, and close to a camera's own output, where
    plain bilinear interpolation leaves colour fringes and zippers that no real
    reference has. It still correlates the noise across neighbouring pixels and
    channels, as every demosaicer does.
    """
    g_rb, row, col, diag = (_conv(raw, k) for k in (_MHC_G_AT_RB, _MHC_ROW, _MHC_COL, _MHC_DIAG))
    out = np.empty(raw.shape + (3,))
    r, g, b = out[..., 0], out[..., 1], out[..., 2]
    # Red sites (even, even) and blue sites (odd, odd).
    r[0::2, 0::2], g[0::2, 0::2], b[0::2, 0::2] = raw[0::2, 0::2], g_rb[0::2, 0::2], diag[0::2, 0::2]
    b[1::2, 1::2], g[1::2, 1::2], r[1::2, 1::2] = raw[1::2, 1::2], g_rb[1::2, 1::2], diag[1::2, 1::2]
    # Green sites in red rows (red left and right, blue above and below), and in blue rows.
    g[0::2, 1::2], r[0::2, 1::2], b[0::2, 1::2] = raw[0::2, 1::2], row[0::2, 1::2], col[0::2, 1::2]
    g[1::2, 0::2], b[1::2, 0::2], r[1::2, 0::2] = raw[1::2, 0::2], row[1::2, 0::2], col[1::2, 0::2]
    return out


def _conv(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Correlation of a 2-D array with a small odd kernel, reflected edges (Bayer phase kept)."""
    m = k.shape[0] // 2
    p = np.pad(a, m, mode="reflect")
    h, w = a.shape
    return sum(k[i, j] * p[i : i + h, j : j + w] for i in range(k.shape[0]) for j in range(k.shape[1]) if k[i, j])


def process(cam: np.ndarray, p: CameraParams) -> np.ndarray:
    """Camera-space linear image back to sRGB in [0, 1]: white balance, colour matrix, gamma, tone curve."""
    x = cam * _gains(p)
    x = np.clip(x @ np.linalg.inv(np.asarray(p.rgb2cam)).T, 0.0, 1.0)
    x = np.maximum(x, 1e-8) ** (1.0 / 2.2)
    return np.clip(3.0 * x * x - 2.0 * x ** 3, 0.0, 1.0)


def camera_noise(clean: np.ndarray, rng: np.random.Generator, params: CameraParams | None = None,
                 jpeg: bool = False) -> tuple[np.ndarray, CameraParams]:
    """(noisy uint8 image, its camera parameters) for a clean uint8 RGB image (H, W even)."""
    p = params if params is not None else sample_params(rng, jpeg=jpeg)
    raw = mosaic(unprocess(np.asarray(clean, np.float64) / 255.0, p))
    raw = raw + rng.normal(size=raw.shape) * np.sqrt(p.shot * np.clip(raw, 0.0, None) + p.read)
    out = np.clip(np.rint(255.0 * process(demosaic(np.clip(raw, 0.0, 1.0)), p)), 0, 255).astype(np.uint8)
    if p.jpeg_quality is not None:
        out = _jpeg(out, p.jpeg_quality)
    return out, p


ISP_BLUR_LUMA = (0.0, 1.0)  # Gaussian std (pixels) of the in-camera noise reduction on luma noise
ISP_BLUR_COARSE = (1.5, 3.0)  # ... and of a coarser part it leaves (real noise stays correlated at 8 pixels)
ISP_COARSE = (0.0, 0.6)  # that coarse part's share of the luma noise's std
ISP_BLUR_CHROMA = (0.5, 3.0)  # Gaussian std (pixels) of the noise reduction on chroma noise
ISP_KEEP = (0.5, 1.0)  # the share of the luma noise's std that the noise reduction leaves
ISP_KEEP_CHROMA = (0.1, 0.6)  # ... and of the chroma noise's, which cameras smooth harder
ISP_SHARPEN = (0.0, 0.5)  # unsharp-mask amount (radius 1 pixel), on the image and its reference alike
JPEG_SUBSAMPLING = (0, 1, 2)  # Pillow's 4:4:4, 4:2:2 and 4:2:0
ISP_JPEG_QUALITY = (85, 100)  # a camera's own JPEG settings ("fine" and above)


def isp_noise(clean: np.ndarray, rng: np.random.Generator,
              params: CameraParams | None = None) -> tuple[np.ndarray, np.ndarray, CameraParams]:
    """(noisy JPEG-decoded uint8, its noise-free reference uint8, params): camera noise as an in-camera JPEG
    engine leaves it.

    The raw noise of :func:`camera_noise`, demosaiced and processed, then what
    a camera's own image processor does before it writes a JPEG and what the
    Brooks pipeline lacks: noise reduction that low-passes luma noise (with a
    coarser part beside, :data:`ISP_BLUR_COARSE`) and chroma noise at scales
    of their own and leaves a share of their power, chroma's smaller, so the
    noise that survives is smoother, more correlated and more luma than
    demosaicing alone makes it (results/real_noise.md: on real high-ISO
    camera JPEGs, 0.58 correlation at one pixel and 0.18 at eight, 72 % of
    the variance in luma, against 0.26, 0.02 and 44 % for the Brooks
    pipeline); sharpening of image and noise
    alike; JPEG at quality 85-100 with 4:4:4, 4:2:2 or 4:2:0 chroma. The
    reference is the same pipeline without noise, sharpened the same way, as
    a mean of many shots is.
    """
    p = params if params is not None else sample_params(rng)
    raw = np.clip(mosaic(unprocess(np.asarray(clean, np.float64) / 255.0, p)), 0.0, 1.0)
    noisy_raw = raw + rng.normal(size=raw.shape) * np.sqrt(p.shot * raw + p.read)
    ref = process(demosaic(raw), p)
    noise = process(demosaic(np.clip(noisy_raw, 0.0, 1.0)), p) - ref
    luma = noise.mean(2, keepdims=True)
    chroma = noise - luma
    coarse, keep = rng.uniform(*ISP_COARSE), rng.uniform(*ISP_KEEP)
    noise = (_smoothed(luma, rng.uniform(*ISP_BLUR_LUMA), keep * (1.0 - coarse))
             + _smoothed(luma, rng.uniform(*ISP_BLUR_COARSE), keep * coarse)
             + _smoothed(chroma, rng.uniform(*ISP_BLUR_CHROMA), rng.uniform(*ISP_KEEP_CHROMA)))
    amount = rng.uniform(*ISP_SHARPEN)
    sharpen = lambda x: x + amount * (x - _gaussian(x, 1.0))
    ref8 = np.clip(np.rint(255.0 * sharpen(ref)), 0, 255).astype(np.uint8)
    noisy8 = np.clip(np.rint(255.0 * sharpen(ref + noise)), 0, 255).astype(np.uint8)
    lo, hi = ISP_JPEG_QUALITY
    quality = p.jpeg_quality if p.jpeg_quality is not None else int(rng.integers(lo, hi + 1))
    return _jpeg(noisy8, quality, int(rng.choice(JPEG_SUBSAMPLING))), ref8, p


SHAPED_SIGMA = (1.0, 14.0)  # log-uniform noise std at mid-grey, 8-bit units
SHAPED_FLOOR = (0.2, 1.0)  # the std's share that does not grow with intensity (1: flat)
SHAPED_LUMA = (0.5, 0.95)  # the luma share of the noise variance (real camera JPEGs: 0.55-0.96)
SHAPED_FINE = (0.4, 1.2)  # Gaussian std (pixels) of the fine-grained part
SHAPED_COARSE = (1.5, 3.5)  # ... and of the coarse-grained part
SHAPED_CHROMA_BLUR = (0.5, 2.5)  # ... of the chroma noise
SHAPED_JPEG_QUALITY = (88, 99)


def shaped_noise(clean: np.ndarray, rng: np.random.Generator,
                 sigma_range: tuple[float, float] = SHAPED_SIGMA) -> tuple[np.ndarray, np.ndarray, dict]:
    """(noisy JPEG-decoded uint8, its noise-free reference uint8, parameters): noise as a camera's own JPEG
    carries it, synthesised from its measured statistics rather than from a sensor model.

    A camera JPEG's noise is what demosaicing, noise reduction, sharpening and
    JPEG left of the sensor's; whatever the camera, it is (results/real_noise.md)
    spatially correlated over several pixels (0.35-0.84 at one pixel, still
    0.01-0.7 at eight), mostly luma (55-96 % of the variance) and grows with
    intensity. Each patch draws those properties at random over ranges wider
    than any one camera's: white Gaussian noise in a luma / two-chroma basis,
    each part a random mix of white, fine-grained (:data:`SHAPED_FINE`) and
    coarse-grained (:data:`SHAPED_COARSE`) noise, scaled per pixel by a
    noise-level function of the clean intensity, added, rounded, then JPEG at
    quality 88-99 with 4:4:4, 4:2:2 or 4:2:0 chroma. The reference is the
    clean image itself. ``sigma_range``: the log-uniform range of the std at
    mid-grey, 8-bit units.
    """
    img = np.asarray(clean, np.float64)
    sigma = float(np.exp(rng.uniform(*np.log(sigma_range))))
    floor, luma = rng.uniform(*SHAPED_FLOOR), rng.uniform(*SHAPED_LUMA)
    mix = rng.dirichlet((1.0, 1.5, 1.0))  # white, fine, coarse shares of the luma noise's variance
    fine, coarse = rng.uniform(*SHAPED_FINE), rng.uniform(*SHAPED_COARSE)
    y = (np.sqrt(mix[0]) * _unit(rng.normal(size=img.shape[:2] + (1,)))
         + np.sqrt(mix[1]) * _unit(_gaussian(rng.normal(size=img.shape[:2] + (1,)), fine))
         + np.sqrt(mix[2]) * _unit(_gaussian(rng.normal(size=img.shape[:2] + (1,)), coarse)))
    c = _unit(_gaussian(rng.normal(size=img.shape[:2] + (2,)), rng.uniform(*SHAPED_CHROMA_BLUR)))
    basis = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [-0.5, 1.0, -0.5]])
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    noise = (np.sqrt(luma) * _unit(y) * np.sqrt(3.0)) @ basis[:1] + (np.sqrt(1.0 - luma) * c * np.sqrt(1.5)) @ basis[1:]
    level = sigma * np.sqrt(floor + (1.0 - floor) * img.mean(2, keepdims=True) / 128.0)
    noisy8 = np.clip(np.rint(img + level * noise), 0, 255).astype(np.uint8)
    quality = int(rng.integers(SHAPED_JPEG_QUALITY[0], SHAPED_JPEG_QUALITY[1] + 1))
    subsampling = int(rng.choice(JPEG_SUBSAMPLING))
    params = {"sigma": sigma, "floor": floor, "luma": luma, "mix": mix.tolist(), "fine": fine, "coarse": coarse,
              "jpeg_quality": quality, "jpeg_subsampling": subsampling}
    return _jpeg(noisy8, quality, subsampling), np.asarray(clean, np.uint8), params


def _unit(a: np.ndarray) -> np.ndarray:
    """``a`` scaled to unit std (per array)."""
    s = a.std()
    return a / s if s > 0 else a


def _smoothed(noise: np.ndarray, blur: float, keep: float) -> np.ndarray:
    """``noise`` low-passed by a Gaussian of std ``blur`` pixels, scaled to ``keep`` times its former std."""
    out = _gaussian(noise, blur)
    before, after = noise.std(), out.std()
    return out * (keep * before / after) if after > 0 else out


def _gaussian(a: np.ndarray, std: float) -> np.ndarray:
    """Separable Gaussian filter of an (H, W, C) array, reflected edges; the identity for std below 0.1."""
    if std < 0.1:
        return a
    r = max(1, int(np.ceil(3 * std)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / std) ** 2)
    k /= k.sum()
    p = np.pad(a, ((r, r), (r, r), (0, 0)), mode="reflect")
    h, w = a.shape[:2]
    rows = sum(k[i] * p[i : i + h] for i in range(k.size))
    return sum(k[j] * rows[:, j : j + w] for j in range(k.size))


def noise_free(clean: np.ndarray, params: CameraParams) -> np.ndarray:
    """The pipeline's output without noise or JPEG: the reference a camera's clean capture gives.

    Demosaicing alone puts the image 27.6 dB (PSNR, mean) from the clean
    input on Kodak24, so denoising is measured against this, not against the
    input: the noise is what a noisy capture adds to a clean one.
    """
    raw = np.clip(mosaic(unprocess(np.asarray(clean, np.float64) / 255.0, params)), 0.0, 1.0)
    return np.clip(np.rint(255.0 * process(demosaic(raw), params)), 0, 255).astype(np.uint8)


def true_noise_map(noisy: np.ndarray, reference: np.ndarray, bins: int = 16, min_pixels: int = 64,
                   window: int = 7) -> np.ndarray:
    """(H, W) per-pixel noise std of ``noisy`` against its noise-free ``reference``, 8-bit units.

    The true noise-level function (RMS over channels of noisy minus reference,
    per intensity bin of the reference) read at each pixel's local mean of the
    noisy image, as :func:`fllic.noise.estimate.noise_map` reads an estimated
    one: the map a noise-map-conditioned model is trained with.
    """
    from fllic.noise.estimate import _box

    diff = np.asarray(noisy, np.float64) - np.asarray(reference, np.float64)
    energy = (diff**2).mean(2) if diff.ndim == 3 else diff**2
    level = np.asarray(reference, np.float64)
    level = level.mean(2) if level.ndim == 3 else level
    which = np.clip((level * bins / 256.0).astype(int), 0, bins - 1).ravel()
    counts = np.bincount(which, minlength=bins)
    keep = counts >= min_pixels
    if not keep.any():
        return np.full(level.shape, np.sqrt(energy.mean()))
    centres = np.bincount(which, level.ravel(), bins)[keep] / counts[keep]
    sigma = np.sqrt(np.bincount(which, energy.ravel(), bins)[keep] / counts[keep])
    local = np.asarray(noisy, np.float64)
    return np.interp(_box(local.mean(2) if local.ndim == 3 else local, window), centres, sigma)


def jpeg_bytes(img: np.ndarray, quality: int, subsampling: int = 2) -> bytes:
    """The baseline JPEG file (Pillow; 4:2:0 unless ``subsampling`` says 0 for 4:4:4 or 1 for 4:2:2) of an
    8-bit RGB image: what a camera stores."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def _jpeg(img: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(jpeg_bytes(img, quality, subsampling))) as im:
        return np.asarray(im.convert("RGB"))
