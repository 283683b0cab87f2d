"""Blind noise-level estimation: the noise of an image, from the image alone."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


def estimate_sigma_mad(image: np.ndarray) -> float:
    """A simple noise-level estimate in 8-bit units: the MAD of the finest Haar HH band.

    Donoho & Johnstone's robust estimator, sigma = median(|HH|) / 0.6745, taken
    per channel and medianed. Image detail inflates it a little on clean images
    and clipping deflates it near black and white; ``--sigma`` overrides it.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    if h == 0 or w == 0:
        return 0.0
    a = img[:h:2, :w:2]; b = img[:h:2, 1:w:2]; c = img[1:h:2, :w:2]; d = img[1:h:2, 1:w:2]
    hh = (a - b - c + d) / 2.0
    return float(np.median([np.median(np.abs(hh[..., k])) / 0.6745 for k in range(hh.shape[2])]))


PATCH = 7
STRIDE = 3
_MIN_PATCHES = 3000
BAND_BYTES = 64 << 20  # the float64 patches or pixels one band of rows holds: memory stays bounded on any image


def _bands(count: int, per_row: int) -> list[tuple[int, int]]:
    """Row ranges [k0, k1) of ``count`` rows, each at most :data:`BAND_BYTES` of ``per_row`` bytes a row."""
    rows = max(1, BAND_BYTES // max(per_row, 1))
    return [(k, min(k + rows, count)) for k in range(0, count, rows)]


def _patch_rows(x: np.ndarray, stride: int, size: int = PATCH):
    """The image's ``size``-square patches at every ``stride``-th position, a band of rows at a time.

    Yields (index of the band's first patch, its windows (rows, cols, channels, size, size) in float64);
    the bands follow the row-major order of the patch positions, so the patch matrix is never whole in
    memory, whatever the image's size.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    rows, cols = (x.shape[0] - size) // stride + 1, (x.shape[1] - size) // stride + 1
    for k0, k1 in _bands(rows, cols * x.shape[2] * size * size * 8):
        band = np.asarray(x[k0 * stride:(k1 - 1) * stride + size], np.float64)
        yield k0 * cols, sliding_window_view(band, (size, size), axis=(0, 1))[::stride, ::stride]


def _patch_moments(x: np.ndarray, stride: int, keep: np.ndarray | None = None):
    """(covariance, count, per-patch channel means) of the patches :func:`_patch_rows` gives.

    ``keep`` (a mask over the patches, row-major) leaves some out of the covariance; the means are
    every patch's. Sums over bands in float64: pixel values below 2^16 keep E[xx^T] - mu mu^T exact to
    far below the rounding noise's 1/12.
    """
    dims = x.shape[2] * PATCH * PATCH
    total, moment, count, means = np.zeros(dims), np.zeros((dims, dims)), 0, []
    for first, w in _patch_rows(x, stride):
        patches = w.reshape(-1, dims)
        means.append(w.reshape(-1, x.shape[2], PATCH * PATCH).mean(2))
        if keep is not None:
            patches = patches[keep[first:first + len(patches)]]
        total += patches.sum(0)
        moment += patches.T @ patches
        count += len(patches)
    mu = total / max(count, 1)
    return moment / max(count, 1) - np.outer(mu, mu), count, np.concatenate(means)


def estimate_sigma(image: np.ndarray) -> float:
    """Blind AWGN level in 8-bit units, from the image alone.

    The weak-texture PCA estimator of Chen, Zhu & Heng ("An efficient
    statistical method for image noise level estimation", ICCV 2015): the
    covariance of 7x7 patches (every 3rd position, every position in small
    images; all channels) has the
    eigenvalues of signal plus noise; the noise variance is the mean of the
    longest tail of the sorted eigenvalues whose mean equals its median.
    Two additions for 8-bit files: patches whose mean lies within 1.5 sigma
    of 0 or 255 are left out when enough others remain, and the variance of
    noise censored to [0, 255] is inverted over the patches' means, since
    clipping makes the stored noise weaker than the noise that was added.
    The tail's mean is corrected for the spread of a sample covariance's
    eigenvalues (Marchenko-Pastur): without it the estimate fell 3.5 % short
    at sigma 50 on CBSD68's small images. Rounding's 1/12 is subtracted.
    The covariance is summed a band of rows at a time (:func:`_patch_moments`),
    so a 24-megapixel photograph needs no more memory than a small one.
    Accuracy per sigma: results/noise_estimation.md.
    Images too small for patches fall back to :func:`estimate_sigma_mad`.
    """
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[..., None]
    if min(x.shape[:2]) < 4 * PATCH:
        return estimate_sigma_mad(image)
    dims = x.shape[2] * PATCH * PATCH
    positions = ((x.shape[0] - PATCH) // STRIDE + 1) * ((x.shape[1] - PATCH) // STRIDE + 1)
    stride = STRIDE if positions >= 40 * dims else 1  # enough patches for a stable spectrum
    cov, count, means = _patch_moments(x, stride)
    var = _noise_variance(cov, count)
    if var <= 0:
        return 0.0
    s0 = np.sqrt(var)
    keep = ((means > 1.5 * s0) & (means < 255 - 1.5 * s0)).all(1)
    if keep.sum() >= _MIN_PATCHES and not keep.all():
        cov, count, _ = _patch_moments(x, stride, keep)
        means = means[keep]
        var = _noise_variance(cov, count)
    return _uncensored_sigma(var, means.ravel()) if var > 0 else 0.0


def _noise_variance(cov: np.ndarray, count: int) -> float:
    """The PCA noise variance from the covariance of ``count`` patches, rounding's 1/12 removed.

    The tail of eigenvalues whose mean equals its median is the noise's; its
    mean, divided by what the same lowest share of a Marchenko-Pastur spectrum
    averages (:func:`_mp_tail_mean`), is the noise variance: a sample
    covariance spreads pure noise's eigenvalues, and texture that takes the top
    ones leaves the tail only the low end of that spread.
    """
    lam = np.sort(np.linalg.eigvalsh(cov))[::-1]
    ratio = lam.size / count
    for i in range(lam.size):
        tail = lam[i:]
        tau = tail.mean()
        if (tail > tau).sum() == (tail < tau).sum():
            return float(tau) / _mp_tail_mean(tail.size / lam.size, ratio) - 1.0 / 12.0
    return float(lam[-1]) / _mp_tail_mean(1 / lam.size, ratio) - 1.0 / 12.0


def _mp_tail_mean(share: float, ratio: float, points: int = 4001) -> float:
    """Mean of the lowest ``share`` of the Marchenko-Pastur law with aspect ``ratio`` (< 1) and unit variance."""
    lo, hi = (1 - np.sqrt(ratio)) ** 2, (1 + np.sqrt(ratio)) ** 2
    x = np.linspace(lo, hi, points)
    density = np.sqrt(np.maximum((hi - x) * (x - lo), 0.0)) / (2 * np.pi * ratio * x)
    mass = np.cumsum(density)
    mass /= mass[-1]
    cut = max(1, int(np.searchsorted(mass, share)))
    return float(np.sum(x[:cut] * density[:cut]) / np.sum(density[:cut]))


def _censored_variance(mu: np.ndarray, sigma: float, lo: float = -0.5, hi: float = 255.5) -> np.ndarray:
    """Variance of N(mu, sigma^2) clipped to [lo, hi] (the 8-bit range, before rounding)."""
    import torch

    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    pa, pb = (torch.special.ndtr(torch.from_numpy(v)).numpy() for v in (a, b))
    da, db = (np.exp(-0.5 * v * v) / np.sqrt(2 * np.pi) for v in (a, b))
    m1 = lo * pa + hi * (1 - pb) + mu * (pb - pa) + sigma * (da - db)
    m2 = (lo * lo * pa + hi * hi * (1 - pb) + (mu * mu + sigma * sigma) * (pb - pa)
          + 2 * mu * sigma * (da - db) + sigma * sigma * (a * da - b * db))
    return np.maximum(m2 - m1 * m1, 0.0)


def _uncensored_sigma(var_obs: float, means: np.ndarray) -> float:
    """The sigma whose clipped variance, averaged over ``means``, is ``var_obs`` (bisection)."""
    mus = np.random.default_rng(0).choice(means, size=min(means.size, 20000), replace=False)
    lo, hi = float(np.sqrt(var_obs)), 4.0 * float(np.sqrt(var_obs))
    if _censored_variance(mus, lo).mean() >= var_obs:
        return lo
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _censored_variance(mus, mid).mean() < var_obs else (lo, mid)
    return 0.5 * (lo + hi)


# -- signal-dependent noise: the noise-level function --------------------------------
NLF_PATCH = 7
WEAKEST = 0.01  # the share of each bin's patches, least textured first, that tests the reading for texture
WEAKEST_MIN = 10  # ... and the fewest patches that test uses


@dataclass
class NoiseLevelFunction:
    """Noise std against intensity, both in 8-bit units: what camera noise looks like.

    ``intensity`` holds the centres of the intensity bins that had enough
    weak-texture patches, ``sigma`` the noise std measured in each and
    ``patches`` how many patches each used. Calling it interpolates (flat
    beyond the ends). ``weakest`` is the std of each bin's least textured
    :data:`WEAKEST` share of patches, a fraction of the weak share ``sigma``
    reads (:meth:`texture_ratio`).
    """

    intensity: np.ndarray
    sigma: np.ndarray
    patches: np.ndarray
    weakest: np.ndarray | None = None

    def __call__(self, values) -> np.ndarray:
        if self.intensity.size == 0:
            return np.zeros_like(np.asarray(values, np.float64))
        return np.interp(values, self.intensity, self.sigma)

    def as_dict(self) -> dict:
        return {"intensity": [round(float(v), 2) for v in self.intensity],
                "sigma": [round(float(v), 3) for v in self.sigma],
                "patches": [int(v) for v in self.patches]}

    def scaled(self, gain: float) -> "NoiseLevelFunction":
        return replace(self, sigma=self.sigma * gain, weakest=None if self.weakest is None else self.weakest * gain)

    def texture_ratio(self) -> float:
        """The std of the least textured patches over the weak share's (RMS over bins, weighted by patches).

        Selecting ever fewer, ever smoother patches barely lowers a reading
        that noise fills: the ratio stays near 1. Where texture is what the
        weak share reads, the smoothest patches hold less of it, and the ratio
        falls. A camera model's ``spread_window`` says where between the two it
        trusts the reading (:meth:`NoiseLevel.capped`; fllic-camera-v8's was
        chosen on development images, results/blind_textured_windows.md and
        results/blind_textured_windows_heavy.md). NaN without bins.
        """
        if self.weakest is None or not self.sigma.size or not np.any(self.sigma > 0):
            return float("nan")
        w = self.patches.astype(np.float64)
        return float(np.sqrt(np.average(self.weakest**2, weights=w) / np.average(self.sigma**2, weights=w)))


def estimate_nlf(image: np.ndarray, bins: int = 8, min_patches: int = 200, weak: float = 0.1) -> NoiseLevelFunction:
    """The noise-level function of an 8-bit image, blind: noise std per intensity bin.

    7x7 patches (every 3rd position) are binned by their mean intensity into
    ``bins`` equal bins. In each bin with ``min_patches`` patches, the
    ``weak`` fraction with the least texture (the gradient energy of a 3x3
    box-smoothed copy, which the noise barely moves, so the choice does not
    favour patches where the noise happened to be weak) gives the noise
    variance: their mean within-patch variance, all channels.

    Unlike the PCA estimator of :func:`estimate_sigma`, which measures the
    weakest direction of the noise and so reads far too low on demosaiced
    camera noise (correlated across pixels and channels), this measures the
    per-pixel std. Residual texture makes it read high on textured images at
    low noise: results/noise_estimation.md gives its errors against the true
    noise-level function under the camera pipeline.
    """
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[..., None]
    p = NLF_PATCH
    if min(x.shape[:2]) < 4 * p:
        return NoiseLevelFunction(np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros(0))
    texture, var, means = (np.concatenate(a) for a in zip(*_nlf_patches(x)))
    which = np.clip(np.digitize(means, np.linspace(0.0, 255.0, bins + 1)) - 1, 0, bins - 1)
    centres, sigmas, counts, weakest = [], [], [], []
    for b in range(bins):
        sel = np.flatnonzero(which == b)
        if sel.size < min_patches:
            continue
        order = sel[np.argsort(texture[sel], kind="stable")]
        k = order[: max(min_patches // 4, int(weak * sel.size))]
        centres.append(float(means[k].mean()))
        sigmas.append(_patch_std(var[k]))
        counts.append(int(k.size))
        weakest.append(_patch_std(var[order[: max(WEAKEST_MIN, int(WEAKEST * sel.size))]]))
    return NoiseLevelFunction(np.array(centres), np.array(sigmas), np.array(counts, np.int64), np.array(weakest))


def _patch_std(variances: np.ndarray) -> float:
    """The noise std of patches of these within-patch variances, less the 8-bit rounding's 1/12."""
    return float(np.sqrt(max(variances.mean() - 1.0 / 12.0, 0.0)))


def _nlf_patches(x: np.ndarray):
    """Per band of patch rows: (texture, variance, mean) of each NLF_PATCH patch at every 3rd position.

    Texture is the mean gradient energy of the 3x3 box-smoothed grey image over the patch; a band
    reads :data:`_NLF_MARGIN` rows beyond its patches on each side, more than the smoothing, the
    gradient and the patch window reach, so each band's figures are the whole image's.
    """
    p, h = NLF_PATCH, x.shape[0]
    for first, w in _patch_rows(x, 3, p):
        r0, r1 = first // w.shape[1] * 3, first // w.shape[1] * 3 + (w.shape[0] - 1) * 3 + p
        a0, a1 = max(r0 - _NLF_MARGIN, 0), min(r1 + _NLF_MARGIN, h)
        smooth = _box(np.asarray(x[a0:a1], np.float64), 3).mean(2)
        gy, gx = np.gradient(smooth)
        energy = _box(gx * gx + gy * gy, p)
        texture = energy[r0 - a0 + p // 2::3][: w.shape[0], p // 2::3][:, : w.shape[1]]
        flat = w.reshape(w.shape[0], w.shape[1], x.shape[2], p * p)
        yield texture.ravel(), flat.var(-1, ddof=1).mean(-1).ravel(), flat.mean((-1, -2)).ravel()


_NLF_MARGIN = 2 * NLF_PATCH


def _box(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k window (reflected edges), same shape as ``a`` (2-D or 3-D)."""
    pad = ((k // 2, k // 2), (k // 2, k // 2)) + ((0, 0),) * (a.ndim - 2)
    c = np.cumsum(np.cumsum(np.pad(np.pad(a, pad, mode="reflect"), ((1, 0), (1, 0)) + ((0, 0),) * (a.ndim - 2)), 0), 1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def noise_map(image: np.ndarray, nlf: NoiseLevelFunction | None = None, window: int = 7) -> np.ndarray:
    """(H, W) float32 noise std per pixel, 8-bit units: the NLF read at each pixel's local mean intensity.

    The local mean (a ``window``-pixel box, all channels) stands for the clean
    intensity. This is the per-pixel conditioning a noise-map model reads. It
    is computed a band of rows at a time, each band reading ``window`` rows
    beyond itself, so memory stays bounded on large images.
    """
    x = np.asarray(image)
    nlf = estimate_nlf(image) if nlf is None else nlf
    out = np.empty(x.shape[:2], np.float32)
    for k0, k1 in _bands(x.shape[0], x.shape[1] * 8 * (x.shape[2] if x.ndim == 3 else 1)):
        a0, a1 = max(k0 - window, 0), min(k1 + window, x.shape[0])
        grey = np.asarray(x[a0:a1], np.float64)
        grey = grey.mean(2) if grey.ndim == 3 else grey
        out[k0:k1] = nlf(_box(grey, window)[k0 - a0:k1 - a0])
    return out


@dataclass(frozen=True)
class NoiseLevel:
    """The level ``fllic compress --sigma auto`` uses, and which estimator gave it."""

    sigma: float
    kind: str  # "white": the PCA estimate; "correlated": the noise-level function's RMS
    pca: float
    nlf_rms: float
    scale_ratio: float  # PCA estimate after 2x2 averaging over the PCA estimate: 0.5 for white noise
    nlf: NoiseLevelFunction | None = field(default=None, compare=False)  # measured for correlated noise

    @property
    def correlated(self) -> bool:
        return self.kind == "correlated"

    def capped(self, spread: float, window: tuple[float, float] | None = None) -> "NoiseLevel":
        """Correlated noise read at most ``spread`` times the PCA reading (the level and its function scaled down).

        On textured images the weakest-texture patches of some intensities are
        still texture, and the noise-level function reads the texture's
        variance as noise: on mildly noisy camera-JPEG-like images of textured
        scenes it read several times the true std, and a model reading it made the
        image worse than its noisy input (results/blind_textured.md).
        The PCA reading of the weakest direction stays low on texture, so a
        reading far above it is texture, not noise. White readings are returned
        as they are.

        Heavy correlated noise reads far above the PCA reading too, and the cap
        cost it (results/blind_textured_caps_heavy.md). With ``window`` (lo,
        hi), the noise-level function's :meth:`~NoiseLevelFunction.texture_ratio`
        decides: at ``hi`` or above noise fills the weak patches and the
        reading stands, at ``lo`` or below the cap holds, and between them the
        reading moves from the cap to the reading in proportion.
        """
        limit = spread * self.pca
        if not self.correlated or self.sigma <= limit or limit <= 0:
            return self
        share = 0.0
        if window is not None and self.nlf is not None:
            lo, hi = window
            ratio = self.nlf.texture_ratio()
            share = 0.0 if not np.isfinite(ratio) else float(np.clip((ratio - lo) / max(hi - lo, 1e-9), 0.0, 1.0))
        return self.scaled((limit + share * (self.sigma - limit)) / self.sigma)

    def scaled(self, gain: float) -> "NoiseLevel":
        """The level and its noise-level function times ``gain`` (what a model's ``correlated_gain`` asks for)."""
        return replace(self, sigma=self.sigma * gain, nlf=None if self.nlf is None else self.nlf.scaled(gain))


def _half_resolution(x: np.ndarray) -> np.ndarray:
    """The 2x2 means, float64, summed in place (the image is never whole in float64)."""
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    out = x[:h:2, :w:2].astype(np.float64)
    for part in (x[1:h:2, :w:2], x[:h:2, 1:w:2], x[1:h:2, 1:w:2]):
        out += part
    return out / 4.0


# White or correlated: both tests must say correlated. Chosen on the development half of CBSD68 (every other
# image of 1-34, 256x256 centre crops, grey and colour, white noise at sigma 2-50 against the Brooks and the
# in-camera pipelines; results/noise_kind.md): the lowest spread that took no white crop at sigma 5 or more for
# correlated (5 of 34 at sigma 2). A ratio of 0.8 would take none at all, but it took 4 of 6 full-size Kodak
# images through the Brooks pipeline for white (ratio 0.6-0.8 there), which their PCA reading leaves noisy;
# and higher spreads lose raw-converted camera noise (1.3-2.0 on full-size Kodak images through that pipeline).
CORRELATED_RATIO = 0.6  # the half-resolution PCA reading over the full one: 0.5 for white noise
CORRELATED_SPREAD = 1.5  # the per-pixel std (the noise-level function's RMS) over the PCA reading: 1 for white


def estimate_level(image: np.ndarray) -> NoiseLevel:
    """The blind noise level for an AWGN-conditioned model, white or correlated noise alike.

    White noise: the PCA estimate (:func:`estimate_sigma`). Demosaiced camera
    noise and JPEG-compressed noise are correlated between neighbouring pixels,
    and the PCA tail reads only a fraction of their per-pixel std
    (results/noise_nlf_camera.md; on real camera JPEGs a tenth to a fifth,
    results/real_noise.md). Two tests tell them apart, and both must say
    correlated. Scale: averaging 2x2 pixels halves white noise, so the PCA
    estimate of the half-resolution image is half the full one, while
    correlated noise survives the averaging (above :data:`CORRELATED_RATIO`).
    Spread: white noise has the same std in every direction, so its per-pixel
    std (the noise-level function's RMS, :func:`estimate_nlf`) equals the PCA
    reading of its weakest direction, while correlated noise's is several
    times larger (above :data:`CORRELATED_SPREAD`). Texture fools each test
    alone on small or grey images at low noise; together they held on every
    development crop down to 256x256. For correlated noise the noise-level
    function's RMS (weighted by patches) is the level.
    """
    pca = estimate_sigma(image)
    half = _half_resolution(image)
    ratio = estimate_sigma(half) / pca if pca > 0 and min(half.shape[:2]) >= 4 * PATCH else 0.0
    if ratio <= CORRELATED_RATIO:
        return NoiseLevel(pca, "white", pca, float("nan"), ratio)
    nlf = estimate_nlf(image)
    rms = float(np.sqrt(np.average(nlf.sigma**2, weights=nlf.patches))) if nlf.sigma.size else pca
    if rms <= CORRELATED_SPREAD * pca:
        return NoiseLevel(pca, "white", pca, rms, ratio)
    return NoiseLevel(max(rms, pca), "correlated", pca, rms, ratio, nlf)
