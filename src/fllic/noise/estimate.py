"""Blind noise-level estimation: the noise of an image, from the image alone."""

from __future__ import annotations

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
    Rounding's 1/12 is subtracted. Accuracy per sigma: results/noise_estimation.md.
    Images too small for patches fall back to :func:`estimate_sigma_mad`.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if min(x.shape[:2]) < 4 * PATCH:
        return estimate_sigma_mad(image)
    dims = x.shape[2] * PATCH * PATCH
    positions = ((x.shape[0] - PATCH) // STRIDE + 1) * ((x.shape[1] - PATCH) // STRIDE + 1)
    stride = STRIDE if positions >= 40 * dims else 1  # enough patches for a stable spectrum
    w = sliding_window_view(x, (PATCH, PATCH), axis=(0, 1))[::stride, ::stride]
    patches = w.reshape(-1, x.shape[2] * PATCH * PATCH)
    means = w.reshape(-1, x.shape[2], PATCH * PATCH).mean(2)
    var = _noise_variance(patches)
    if var <= 0:
        return 0.0
    s0 = np.sqrt(var)
    keep = ((means > 1.5 * s0) & (means < 255 - 1.5 * s0)).all(1)
    if keep.sum() >= _MIN_PATCHES and not keep.all():
        patches, means = patches[keep], means[keep]
        var = _noise_variance(patches)
    return _uncensored_sigma(var, means.ravel()) if var > 0 else 0.0


def _noise_variance(patches: np.ndarray) -> float:
    """The PCA noise variance of a patch matrix (a patch per row), rounding's 1/12 removed."""
    centred = patches - patches.mean(0)
    lam = np.sort(np.linalg.eigvalsh(centred.T @ centred / len(centred)))[::-1]
    for i in range(lam.size):
        tail = lam[i:]
        tau = tail.mean()
        if (tail > tau).sum() == (tail < tau).sum():
            return float(tau) - 1.0 / 12.0
    return float(lam[-1]) - 1.0 / 12.0


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
