"""Noise: models that make noisy images (seeded), and estimators that measure noise blind.

- :mod:`fllic.noise.models`: AWGN and Poisson–Gaussian noise in raw linear space.
- :mod:`fllic.noise.camera`: a camera pipeline (Brooks et al.'s unprocessing):
  raw-space shot and read noise, demosaicing, colour processing, optional JPEG.
- :mod:`fllic.noise.estimate`: blind estimation of the noise level, and of the
  noise-level function (noise against intensity) for signal-dependent noise.
"""

from fllic.noise.estimate import (
    NoiseLevel,
    NoiseLevelFunction,
    estimate_level,
    estimate_nlf,
    estimate_sigma,
    estimate_sigma_mad,
    noise_map,
)
from fllic.noise.models import NOISE_MODELS, add_noise, awgn, poisson_gaussian

__all__ = [
    "NOISE_MODELS", "NoiseLevel", "NoiseLevelFunction", "add_noise", "awgn", "estimate_level", "estimate_nlf", "estimate_sigma", "estimate_sigma_mad",
    "noise_map", "poisson_gaussian",
]
