"""Noise models: how a clean image becomes the noisy input a sensor would store.

Each model takes an explicit ``numpy.random.Generator`` (or a seed), in the
style of deepinv's NoiseModel, so every benchmark draw is reproducible.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fllic._errors import InputError

NoiseFn = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def awgn(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of std ``sigma`` (8-bit units), as float."""
    return clean.astype(np.float64) + rng.normal(0.0, sigma, size=clean.shape)


NOISE_MODELS: dict[str, NoiseFn] = {"awgn": awgn}


def add_noise(
    clean: np.ndarray, sigma: float, seed: int | np.random.Generator = 0, kind: str = "awgn"
) -> np.ndarray:
    """Noisy 8-bit image: noise added, then rounded and clipped, as a real file stores it."""
    if kind not in NOISE_MODELS:
        raise InputError(f"unknown noise model {kind!r}; choose from {sorted(NOISE_MODELS)}")
    if sigma < 0:
        raise InputError(f"sigma must be >= 0, got {sigma}")
    noisy = NOISE_MODELS[kind](clean, sigma, _rng(seed))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def estimate_sigma(image: np.ndarray) -> float:
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
