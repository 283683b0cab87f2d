"""Image quality and rate metrics. bpp is bits per pixel of the image, not per sub-pixel."""

from __future__ import annotations

import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all pixels and channels; inf for identical images."""
    err = mse(a, b)
    return float("inf") if err == 0 else 10.0 * np.log10(peak**2 / err)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (pytorch-msssim, 11x11 Gaussian window), averaged over channels."""
    import torch
    from pytorch_msssim import ssim as _ssim

    def t(x):
        x = np.asarray(x, np.float32)
        x = x[..., None] if x.ndim == 2 else x
        return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]

    ta, tb = t(a), t(b)
    win = 11 if min(ta.shape[2:]) >= 11 else (min(ta.shape[2:]) // 2) * 2 - 1
    if win < 3:
        return float("nan")
    return float(_ssim(ta, tb, data_range=255.0, win_size=win))


def bpp(n_bytes: int, height: int, width: int) -> float:
    return 8.0 * n_bytes / (height * width)
