"""The shipped weights: they load, carry their tables, and round-trip exactly."""

import numpy as np
import pytest

import fllic
from fllic.models.registry import DEFAULT_GREY_MODEL, DEFAULT_MODEL, load
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


def test_grey_images_go_to_the_grey_default_and_colour_to_the_default(rng):
    """v8 spends 1.6-7.0 % more bits than v7 on grey (results/quality-v8-grey-dev.md): grey keeps v7, colour takes v8,
    white noise given or read blind; alpha does not make a grey image colour."""
    assert (DEFAULT_MODEL, DEFAULT_GREY_MODEL) == ("fllic-awgn-v8", "fllic-awgn-v7")
    grey, colour = noisy_image(rng, 40, 56, channels=1), noisy_image(rng, 40, 56)
    grey_alpha = np.dstack([grey, np.full(grey.shape, 200, np.uint8)])
    for img, want in ((grey, DEFAULT_GREY_MODEL), (grey_alpha, DEFAULT_GREY_MODEL), (colour, DEFAULT_MODEL)):
        for sigma in (20, None):
            assert fllic.info(fllic.encode(img, sigma=sigma))["model_id"] == want
    assert fllic.info(fllic.encode(grey, sigma=20, model=DEFAULT_MODEL))["model_id"] == DEFAULT_MODEL


def test_shipped_model_denoises(rng):
    """On a smooth scene the decoded image is closer to the clean one than the noisy input."""
    from fllic.metrics import psnr
    from fllic.noise import add_noise

    yy, xx = np.mgrid[0:128, 0:128]
    clean = np.clip(128 + 50 * np.sin(xx / 11.0) + 30 * np.cos(yy / 9.0), 0, 255).astype(np.uint8)
    clean = np.repeat(clean[..., None], 3, axis=2)
    noisy = add_noise(clean, 25, seed=0)
    assert psnr(fllic.decode(fllic.encode(noisy, sigma=25)), clean) > psnr(noisy, clean) + 3


def test_every_installed_encoder_loads_under_its_id_codes_exactly_and_denoises():
    """Every current model, and a retired one where its whole weights are installed (a development install)."""
    from fllic.models.registry import SHIPPED, weights_path

    from fllic.metrics import psnr
    from fllic.noise import add_noise

    yy, xx = np.mgrid[0:128, 0:128]
    clean = np.clip(128 + 50 * np.sin(xx / 11.0) + 30 * np.cos(yy / 9.0), 0, 255).astype(np.uint8)
    noisy = add_noise(np.repeat(clean[..., None], 3, axis=2), 25, seed=0)
    for info in SHIPPED:
        if info.retired and not weights_path(info).is_file():
            continue  # its files decode from its decoder part (tests/test_portable.py)
        m = load(info.id)
        assert m.meta["id"] == info.id
        data = fllic.encode(noisy, sigma=25, model=info.id)
        assert fllic.info(data)["model_id"] == info.id
        out = fllic.decode(data)
        assert np.array_equal(out, fllic.decode(data, model=info.id))
        assert psnr(out[..., 0], clean) > psnr(noisy[..., 0], clean) + 3, info.id


def test_blind_camera_noise_goes_to_the_camera_model_and_is_denoised():
    """Through the camera pipeline, with no sigma or model given: the camera model, closer to the reference."""
    from fllic.metrics import psnr
    from fllic.models.registry import CAMERA_MODEL
    from fllic.noise.camera import camera_noise, noise_free, sample_params

    yy, xx = np.mgrid[0:192, 0:256]
    clean = np.stack([100 + 60 * np.sin(xx / 13.0), 120 + 50 * np.cos(yy / 11.0), 90 + 40 * np.sin((xx + yy) / 17.0)], 2)
    clean = np.clip(np.rint(clean), 0, 255).astype(np.uint8)
    params = sample_params(np.random.default_rng(0), shot=4e-3)
    noisy, _ = camera_noise(clean, np.random.default_rng(1), params)
    data = fllic.encode(noisy)
    assert fllic.info(data)["model_id"] == CAMERA_MODEL
    ref = noise_free(clean, params)
    assert psnr(fllic.decode(data), ref) > psnr(noisy, ref) + 3


def test_blind_quality_takes_the_levels_of_the_model_auto_mode_picks():
    """Correlated noise in a camera JPEG goes to the camera-JPEG model, which has v7's eight levels; --quality 8 is
    one of them, and a level beyond them is refused naming the model."""
    from fllic.models.registry import CAMERA_JPEG_MODEL, load
    from fllic.noise.camera import isp_noise, sample_params

    yy, xx = np.mgrid[0:192, 0:256]
    clean = np.stack([100 + 60 * np.sin(xx / 13.0), 120 + 50 * np.cos(yy / 11.0), 90 + 40 * np.sin((xx + yy) / 17.0)], 2)
    clean = np.clip(np.rint(clean), 0, 255).astype(np.uint8)
    noisy, _, _ = isp_noise(clean, np.random.default_rng(3), sample_params(np.random.default_rng(3), shot=3e-3))
    levels = len(load(CAMERA_JPEG_MODEL).meta["quality_scales"])
    res = fllic.codec.encode_detailed(noisy, quality=levels, from_jpeg=True)
    assert res.model_id == CAMERA_JPEG_MODEL and res.quality == levels == 8
    assert fllic.info(res.data)["decoder_id"] == "fllic-awgn-v7"
    assert np.array_equal(fllic.decode(res.data), res.pixels)
    with pytest.raises(fllic.FllicError, match=f"1 to 8 for model '{CAMERA_JPEG_MODEL}'"):
        fllic.encode(noisy, quality=9, from_jpeg=True)
