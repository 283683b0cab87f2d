import numpy as np
import pytest
from PIL import Image

from fllic import InputError
from fllic.metrics import bpp, psnr, ssim
from fllic.noise import add_noise, estimate_sigma


def test_add_noise_is_seeded_rounded_and_clipped():
    clean = np.full((64, 64, 3), 250, np.uint8)
    a, b = add_noise(clean, 25, seed=3), add_noise(clean, 25, seed=3)
    assert a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, add_noise(clean, 25, seed=4))
    assert a.max() == 255  # clipped, not wrapped
    assert np.array_equal(add_noise(clean, 0, seed=1), clean)


def test_add_noise_rejects_bad_arguments():
    with pytest.raises(InputError):
        add_noise(np.zeros((4, 4), np.uint8), -1)
    with pytest.raises(InputError):
        add_noise(np.zeros((4, 4), np.uint8), 5, kind="speckle")


@pytest.mark.parametrize("sigma", [5, 15, 30])
def test_estimate_sigma_on_a_flat_scene(sigma):
    clean = np.full((256, 256, 3), 128, np.uint8)
    est = estimate_sigma(add_noise(clean, sigma, seed=0))
    assert abs(est - sigma) < 0.1 * sigma + 0.5


def test_psnr_ssim_bpp():
    a = np.zeros((32, 32), np.uint8)
    b = a.copy()
    b[0, 0] = 255
    assert psnr(a, a) == float("inf")
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / (255**2 / 1024)))
    assert ssim(a, a) == pytest.approx(1.0)
    assert bpp(100, 10, 10) == 8.0


@pytest.mark.parametrize("sigma", [5.0, 20.0, 40.0])
def test_blind_estimate_is_close_on_a_textured_scene(sigma):
    from fllic.noise import add_noise, estimate_sigma

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:160, 0:200]
    scene = 128 + 50 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + 20 * np.sin(xx / 2.5)
    clean = np.clip(np.repeat(scene[..., None], 3, axis=2) + rng.normal(0, 3, (160, 200, 3)), 0, 255).astype(np.uint8)
    estimate = estimate_sigma(add_noise(clean, sigma, seed=1))
    assert abs(estimate - np.hypot(sigma, 3.0)) < 0.1 * sigma + 0.5  # the scene's own grain is noise too


def test_blind_estimate_of_flat_and_tiny_images():
    from fllic.noise import estimate_sigma

    assert estimate_sigma(np.full((64, 64), 7, np.uint8)) == 0.0
    assert estimate_sigma(np.zeros((5, 9, 3), np.uint8)) == 0.0


def test_noise_command(tmp_path, capsys):
    import json

    from PIL import Image

    from fllic.cli import main
    from fllic.noise import add_noise

    path = tmp_path / "n.png"
    Image.fromarray(add_noise(np.full((96, 96, 3), 120, np.uint8), 12, seed=0)).save(path)
    assert main(["noise", str(path), "--json"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["sigma"] - 12) < 1


def test_marchenko_pastur_tail_means():
    """The whole spectrum averages the noise variance; a low share of it averages less, the more so the fewer patches."""
    from fllic.noise.estimate import _mp_tail_mean

    assert _mp_tail_mean(1.0, 0.01) == pytest.approx(1.0, abs=2e-3)
    few, many = _mp_tail_mean(0.3, 0.01), _mp_tail_mean(0.3, 0.001)
    assert few < many < 1.0
    assert few == pytest.approx(0.87, abs=0.02)  # the low end of [(1 - 0.1)^2, (1 + 0.1)^2]


def test_pca_estimate_is_unbiased_when_texture_takes_most_of_the_spectrum():
    """Strong texture in most patch directions leaves the noise only a short tail of eigenvalues: still the true sigma."""
    rng = np.random.default_rng(7)
    texture = np.clip(128 + 60 * rng.standard_normal((96, 128, 3)), 0, 255)
    clean = np.asarray(Image.fromarray(texture.astype(np.uint8)).resize((256, 192), Image.BICUBIC))
    sigma = 50.0
    errors = [estimate_sigma(add_noise(clean, sigma, seed=k)) - sigma for k in range(3)]
    assert abs(np.mean(errors)) < 0.02 * sigma  # without the Marchenko-Pastur correction: -1.45
