"""The shipped weights: they load, carry their tables, and round-trip exactly."""

import numpy as np

import fllic
from fllic.models.registry import DEFAULT_MODEL, load
from tests.conftest import noisy_image


def test_shipped_model_loads_with_quality_levels():
    m = load(DEFAULT_MODEL)
    assert m.meta["id"] == DEFAULT_MODEL
    scales = m.meta["quality_scales"]
    assert len(scales) >= 3 and scales == sorted(scales, reverse=True)


def test_shipped_model_round_trip_by_id(rng):
    img = noisy_image(rng, 70, 90)
    data = fllic.encode(img, sigma=25)
    assert fllic.info(data)["model_id"] == DEFAULT_MODEL
    out = fllic.decode(data)
    assert out.shape == img.shape
    assert np.array_equal(out, fllic.decode(data))


def test_shipped_model_denoises(rng):
    """On a smooth scene the decoded image is closer to the clean one than the noisy input."""
    from fllic.metrics import psnr
    from fllic.noise import add_noise

    yy, xx = np.mgrid[0:128, 0:128]
    clean = np.clip(128 + 50 * np.sin(xx / 11.0) + 30 * np.cos(yy / 9.0), 0, 255).astype(np.uint8)
    clean = np.repeat(clean[..., None], 3, axis=2)
    noisy = add_noise(clean, 25, seed=0)
    assert psnr(fllic.decode(fllic.encode(noisy, sigma=25)), clean) > psnr(noisy, clean) + 3
