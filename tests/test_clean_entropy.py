"""The clean-image entropy estimator H(I) (fllic.entropy.clean, docs/theory.md)."""

import numpy as np
import pytest

from fllic.entropy.clean import Calibration, calibrate, coefficients, estimate_clean_bpp, gaussian_rate


def _scene(rng, h=96, w=128):
    """A textured scene: a smooth field plus edges, in [30, 220]."""
    y, x = np.mgrid[:h, :w]
    base = 120 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0) + 30 * (x > w // 2)
    return np.clip(base[..., None] + rng.normal(0, 3, (h, w, 3)).cumsum(1) * 0.3, 30, 220)


def test_the_transform_is_orthonormal_so_white_noise_stays_white():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 7.0, (64, 96, 3))
    c = coefficients(noise)
    assert c.shape == (3, 8, 12, 64)
    assert np.isclose((c**2).sum(), (noise**2).sum())  # energy preserved exactly
    assert abs(c.std() - 7.0) < 0.2


def test_rate_is_zero_for_a_flat_image_and_falls_as_the_noise_allowance_grows():
    rng = np.random.default_rng(1)
    assert gaussian_rate(np.full((64, 64, 3), 128.0), 0.0, 4.0) == pytest.approx(0.0, abs=0.01)
    scene = _scene(rng)
    rates = [gaussian_rate(scene, s, 4.0) for s in (0, 5, 15, 40)]
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_variance_subtraction_recovers_the_clean_rate_from_noisy_images():
    rng = np.random.default_rng(2)
    scene = _scene(rng, 192, 256)
    clean = gaussian_rate(scene, 0.0, 16.0)
    noisy = scene + rng.normal(0, 15.0, scene.shape)
    assert gaussian_rate(noisy, 0.0, 16.0) > 1.5 * clean  # the noise would cost bits
    assert gaussian_rate(noisy, 15.0, 16.0, kappa=1.2) == pytest.approx(clean, rel=0.35)


def test_calibration_fits_a_known_line():
    rng = np.random.default_rng(3)
    images = [_scene(np.random.default_rng(k)) * rng.uniform(0.5, 1.0) for k in range(6)]
    truth = Calibration(distortion=8.0, gain=1.7, offset=0.1)
    target = [estimate_clean_bpp(img, 0.0, truth) for img in images]
    fit = calibrate(images, [0.0] * 6, target, "test", distortions=(2.0, 8.0, 32.0), kappas=(1.0,))
    assert fit.distortion == 8.0 and fit.model_id == "test"
    assert fit.gain == pytest.approx(1.7, rel=1e-6) and fit.offset == pytest.approx(0.1, abs=1e-6)


def test_an_unknown_model_has_no_calibration():
    import fllic
    from fllic.entropy.clean import load_calibration

    with pytest.raises(fllic.ModelMismatchError, match="no H\\(I\\) calibration"):
        load_calibration("no-such-model")


def test_the_default_model_ships_its_calibration():
    from fllic.entropy.clean import DEFAULT_CALIBRATION, load_calibration

    cal = load_calibration(DEFAULT_CALIBRATION)
    assert cal.distortion > 0 and cal.gain > 0 and cal.kappa >= 1.0


def test_the_regressor_recovers_known_weights():
    from fllic.entropy.clean import fit_regressor

    rng = np.random.default_rng(4)
    features = np.concatenate([rng.uniform(0.0, 1.0, (200, 5)), np.ones((200, 1))], axis=1)
    w = np.array([0.8, 0.3, 1.5, 0.2, 0.6, 0.4])
    fitted = fit_regressor(features, features @ w, ridge=0.0)
    assert np.allclose(fitted, w, atol=1e-9)
    shrunk = fit_regressor(features, features @ w, ridge=10.0)
    assert abs(shrunk[-1]) > 0 and np.sum(shrunk[:-1] ** 2) < np.sum(w[:-1] ** 2)  # the constant is not penalised


def test_band_features_see_a_grey_image_as_its_replicated_colour():
    from fllic.entropy.clean import BAND_DISTORTIONS, BANDS, band_features

    grey = _scene(np.random.default_rng(5))[..., 0]
    f_grey = band_features(grey, 0.0)
    f_rgb = band_features(np.repeat(grey[..., None], 3, axis=2), 0.0)
    assert f_grey.shape == f_rgb.shape == (2 * len(BAND_DISTORTIONS) * (len(BANDS) + 1) + 2,)
    assert np.allclose(f_grey, f_rgb)
    assert f_rgb[len(BANDS)] == 0.0  # a replicated grey has no chroma


def test_the_shipped_regressor_subtracts_the_noise():
    from fllic.entropy.clean import CALIBRATED_MODEL, load_calibration

    cal = load_calibration(CALIBRATED_MODEL)
    assert cal.weights is not None
    rng = np.random.default_rng(6)
    scene = _scene(rng, 256, 256)
    clean = estimate_clean_bpp(scene, 0.0, cal)
    for sigma in (15.0, 25.0):
        noisy = np.clip(scene + rng.normal(0, sigma, scene.shape), 0, 255)
        assert estimate_clean_bpp(noisy, sigma, cal) == pytest.approx(clean, rel=0.3)
        assert estimate_clean_bpp(noisy, 0.0, cal) > 1.5 * clean  # told no noise, it would count the noise


def test_cross_validation_scores_each_image_by_a_fit_without_it():
    from fllic.bench.entropy import cross_validate

    rng = np.random.default_rng(7)
    features = np.concatenate([rng.uniform(0.5, 1.0, (60, 3)), np.ones((60, 1))], axis=1)
    target = features @ np.array([1.0, 0.5, 0.2, 0.3])
    groups, sigmas = np.repeat(np.arange(20), 3), np.tile([0.0, 25.0, 50.0], 20)
    exact = cross_validate(features, target, groups, sigmas, ridges=(0.0,))[0.0]
    assert set(exact) == {0.0, 25.0, 50.0} and max(exact.values()) < 1e-9
    noisy = target * rng.uniform(0.8, 1.2, len(target))
    cv = cross_validate(features, noisy, groups, sigmas, ridges=(0.0, 100.0))
    assert 0.01 < cv[0.0][25.0] < cv[100.0][25.0]  # held-out error is real, and a crushing ridge costs more


def test_a_grey_image_takes_the_grey_fit_where_there_is_one():
    from fllic.entropy.clean import band_features, regressor_for

    n = len(band_features(np.zeros((16, 16)), 0.0))
    colour_fit, grey_fit = (0.0,) * (n - 1) + (1.0,), (0.0,) * (n - 1) + (2.0,)  # constants only
    scene = _scene(np.random.default_rng(8))
    both = Calibration(8.0, 1.0, 0.0, weights=colour_fit, weights_grey=grey_fit)
    assert estimate_clean_bpp(scene, 10.0, both) == pytest.approx(1.0)
    assert estimate_clean_bpp(scene[..., 0], 10.0, both) == pytest.approx(2.0)
    assert estimate_clean_bpp(scene[..., :1], 10.0, both) == pytest.approx(2.0)
    colour_only = Calibration(8.0, 1.0, 0.0, weights=colour_fit)
    assert estimate_clean_bpp(scene[..., 0], 10.0, colour_only) == pytest.approx(1.0)
    grey_only = Calibration(8.0, 1.0, 0.0, weights_grey=grey_fit)
    assert regressor_for(scene[..., 0], grey_only) == grey_fit and regressor_for(scene, grey_only) is None
    line = both.line()  # what the weak trainer budgets with: no regressor, whatever the calibration carries
    assert line.weights is None and line.weights_grey is None
    assert estimate_clean_bpp(scene, 10.0, line) == pytest.approx(gaussian_rate(scene, 10.0, 8.0))
