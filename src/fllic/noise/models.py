"""Signal-independent and raw-space noise: how a clean image becomes the noisy file a sensor stores.

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


GAMMA = 2.2


def to_linear(srgb8: np.ndarray) -> np.ndarray:
    """8-bit display values to linear intensity in [0, 1] (a plain 2.2 gamma)."""
    return (np.asarray(srgb8, np.float64) / 255.0) ** GAMMA


def to_display(linear: np.ndarray) -> np.ndarray:
    """Linear intensity back to 8-bit display values, as float (not yet rounded or clipped)."""
    return 255.0 * np.clip(linear, 0.0, None) ** (1.0 / GAMMA)


def poisson_gaussian(clean: np.ndarray, sigma: float, rng: np.random.Generator, shot: float | None = None) -> np.ndarray:
    """Poisson–Gaussian noise in raw linear space, as float display values.

    In linear intensity x in [0, 1] the noise variance is ``shot * x + read``
    (photon shot noise above a read-noise floor; Foi et al. 2008), with the
    read noise's std ``sigma / 255``. ``shot`` defaults to the read variance
    times 40, roughly the ratio of a camera at moderate ISO (Brooks et al. 2019).
    The Poisson part is drawn as its Gaussian approximation.
    """
    read = (sigma / 255.0) ** 2
    shot = 40.0 * read if shot is None else shot
    x = to_linear(clean)
    return to_display(x + rng.normal(size=x.shape) * np.sqrt(shot * x + read))


NOISE_MODELS: dict[str, NoiseFn] = {"awgn": awgn, "poisson-gaussian": poisson_gaussian}


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
