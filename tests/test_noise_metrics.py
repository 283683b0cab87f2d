import numpy as np
import pytest

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
        add_noise(np.zeros((4, 4), np.uint8), 5, kind="poisson-gaussian")


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
