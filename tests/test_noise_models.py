"""Noise models: seeded, shaped right, and with the statistics they claim."""

from dataclasses import replace

import numpy as np
import pytest

from fllic.noise import add_noise, poisson_gaussian
from fllic.noise.models import to_linear
from fllic.noise.camera import _jpeg, camera_noise, demosaic, mosaic, process, sample_params, unprocess


def _ramp(h=64, w=96):
    x = np.linspace(20, 235, w)
    return np.repeat(np.repeat(x[None, :, None], h, axis=0), 3, axis=2).round().astype(np.uint8)


def test_poisson_gaussian_noise_grows_with_intensity():
    rng = np.random.default_rng(0)
    dark, bright = np.full((200, 200), 100, np.uint8), np.full((200, 200), 200, np.uint8)
    shot, read = 0.01, (2.0 / 255) ** 2
    for img in (dark, bright):  # in linear space the variance is shot·x + read
        x = to_linear(img)
        noisy = to_linear(np.clip(poisson_gaussian(img, 2.0, rng, shot=shot), 0, None))
        assert noisy.var() == pytest.approx(shot * x.mean() + read, rel=0.1)
    assert np.array_equal(add_noise(dark, 5, seed=3, kind="poisson-gaussian"),
                          add_noise(dark, 5, seed=3, kind="poisson-gaussian"))


def test_unprocess_then_process_is_close_to_identity():
    p = sample_params(np.random.default_rng(1))
    srgb = _ramp().astype(np.float64) / 255.0
    back = process(unprocess(srgb, p), p)
    assert np.abs(back - srgb).max() < 2.0 / 255


def test_mosaic_and_demosaic_keep_a_smooth_image():
    img = _ramp().astype(np.float64) / 255.0
    assert np.abs(demosaic(mosaic(img)) - img).max() < 1e-6 + 2.3 / 96  # bilinear on a linear ramp


@pytest.mark.parametrize("jpeg", [False, True])
def test_camera_noise_is_seeded_and_signal_dependent(jpeg):
    clean = _ramp(128, 128)
    a, pa = camera_noise(clean, np.random.default_rng(7), jpeg=jpeg)
    b, pb = camera_noise(clean, np.random.default_rng(7), jpeg=jpeg)
    assert a.dtype == np.uint8 and a.shape == clean.shape
    assert np.array_equal(a, b) and pa == pb
    assert (pa.jpeg_quality is not None) == jpeg
    assert 75 <= (pa.jpeg_quality or 75) <= 100
    assert pa.read < pa.shot  # read noise sits below shot noise on real sensors


def test_camera_noise_level_follows_the_shot_parameter():
    clean = np.full((128, 128, 3), 128, np.uint8)
    rng = np.random.default_rng(2)
    low = sample_params(rng, shot=1e-4)
    high = sample_params(rng, shot=1e-2)
    n_low, _ = camera_noise(clean, np.random.default_rng(3), params=low)
    n_high, _ = camera_noise(clean, np.random.default_rng(3), params=high)
    assert n_high.astype(float).std() > 3 * n_low.astype(float).std()


def _colour_ramp(h: int = 192, w: int = 256) -> np.ndarray:
    """A smooth colour ramp from dark to bright: flat enough that only the noise has texture."""
    x = np.linspace(20, 235, w)[None, :].repeat(h, 0)
    return np.stack([x, 0.8 * x + 20, 0.9 * x + 10], axis=2)


def test_nlf_of_white_noise_is_flat_at_sigma():
    from fllic.noise import estimate_nlf

    rng = np.random.default_rng(3)
    noisy = np.clip(np.rint(_colour_ramp() + rng.normal(0, 12.0, (192, 256, 3))), 0, 255).astype(np.uint8)
    nlf = estimate_nlf(noisy)
    assert nlf.intensity.size >= 4
    assert np.all(np.abs(nlf.sigma - 12.0) < 1.5), nlf.as_dict()


def test_nlf_follows_signal_dependent_noise_and_maps_it_per_pixel():
    from fllic.noise import estimate_nlf, noise_map

    rng = np.random.default_rng(4)
    clean = _colour_ramp()
    std = np.sqrt(4.0 + 0.5 * clean)  # shot noise above a read-noise floor
    noisy = np.clip(np.rint(clean + rng.normal(size=clean.shape) * std), 0, 255).astype(np.uint8)
    nlf = estimate_nlf(noisy)
    truth = np.sqrt(4.0 + 0.5 * nlf.intensity)
    assert np.all(np.abs(nlf.sigma - truth) / truth < 0.15), (nlf.as_dict(), truth)
    assert np.all(np.diff(nlf.sigma) > -0.5)  # it grows with intensity
    m = noise_map(noisy, nlf)
    assert m.shape == noisy.shape[:2]
    assert m[:, :20].mean() < m[:, -20:].mean() - 2


def test_nlf_of_a_tiny_image_is_empty_not_an_error():
    from fllic.noise import estimate_nlf

    nlf = estimate_nlf(np.zeros((10, 12), np.uint8))
    assert nlf.intensity.size == 0 and float(nlf(100.0)) == 0.0


def test_auto_level_keeps_pca_for_white_noise_and_reads_correlated_noise_per_pixel():
    from fllic.noise import estimate_level
    from fllic.noise.camera import demosaic, mosaic

    rng = np.random.default_rng(5)
    clean = _colour_ramp()
    white = np.clip(np.rint(clean + rng.normal(0, 10.0, clean.shape)), 0, 255).astype(np.uint8)
    level = estimate_level(white)
    assert level.kind == "white" and abs(level.sigma - 10.0) < 1.0 and level.sigma == level.pca
    # Demosaiced noise: correlated between neighbouring pixels and channels, as a camera's.
    noise = demosaic(mosaic(rng.normal(0, 14.0, clean.shape)))
    camera = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
    level = estimate_level(camera)
    true_std = float(noise.std())
    assert level.kind == "correlated" and level.pca < 0.5 * true_std
    assert abs(level.sigma - true_std) < 0.25 * true_std


def test_a_correlated_reading_far_above_the_pca_one_is_held_to_the_cap():
    """``capped`` scales the level and its noise-level function down to the cap; readings within it and white
    readings are kept as they are."""
    from fllic.noise.estimate import NoiseLevel, NoiseLevelFunction

    nlf = NoiseLevelFunction(np.array([50.0, 150.0]), np.array([8.0, 12.0]), np.array([100, 300]))
    level = NoiseLevel(11.0, "correlated", 1.0, 11.0, 1.2, nlf)
    capped = level.capped(6.0)
    assert capped.sigma == pytest.approx(6.0) and capped.kind == "correlated" and capped.pca == 1.0
    assert np.allclose(capped.nlf.sigma, nlf.sigma * 6.0 / 11.0) and np.array_equal(capped.nlf.patches, nlf.patches)
    assert level.capped(11.0) is level and level.capped(20.0) is level
    white = NoiseLevel(3.0, "white", 3.0, float("nan"), 0.5)
    assert white.capped(0.5) is white


def test_a_window_lifts_the_cap_in_proportion_to_the_texture_ratio():
    """With a window, a texture ratio at or below its low end keeps the cap, at or above its high end keeps the
    reading, and between them moves the reading from the cap towards it linearly; the function scales alike."""
    from fllic.noise.estimate import NoiseLevel, NoiseLevelFunction

    def level(ratio):
        nlf = NoiseLevelFunction(np.array([50.0, 150.0]), np.array([8.0, 12.0]), np.array([100, 300]),
                                 ratio * np.array([8.0, 12.0]))
        return NoiseLevel(11.0, "correlated", 1.0, 11.0, 1.2, nlf)

    assert level(0.7).nlf.texture_ratio() == pytest.approx(0.7)
    assert level(0.7).capped(6.0, (0.8, 0.9)).sigma == pytest.approx(6.0)
    assert level(0.95).capped(6.0, (0.8, 0.9)).sigma == pytest.approx(11.0)
    between = level(0.85).capped(6.0, (0.8, 0.9))
    assert between.sigma == pytest.approx(8.5)
    assert np.allclose(between.nlf.sigma, np.array([8.0, 12.0]) * 8.5 / 11.0)
    assert np.allclose(between.nlf.weakest, 0.85 * between.nlf.sigma)  # scaled alike: the ratio stays
    bare = NoiseLevel(11.0, "correlated", 1.0, 11.0, 1.2,
                      NoiseLevelFunction(np.array([50.0]), np.array([11.0]), np.array([100])))
    assert bare.capped(6.0, (0.8, 0.9)).sigma == pytest.approx(6.0)  # no test: the cap holds


def test_the_texture_ratio_tells_heavy_noise_from_texture():
    """Noise fills a flat scene's smoothest patches as it fills the rest (ratio near 1); on a textured scene
    at mild noise the smoothest patches hold less texture than the weak share, and the ratio falls well below."""
    from fllic.noise.estimate import estimate_nlf

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    flat = np.repeat((60 + 140 * xx)[..., None], 3, axis=2)
    noisy = np.clip(np.rint(flat + demosaic(mosaic(rng.normal(0, 12.0, flat.shape)))), 0, 255).astype(np.uint8)
    texture = 40 * np.sin(2 * np.pi * (9 * xx + 4 * yy) * (1 + 3 * yy)) * (0.2 + xx)
    scene = np.clip(np.repeat((110 + texture)[..., None], 3, axis=2) + rng.normal(0, 1.0, flat.shape), 0, 255)
    assert estimate_nlf(noisy).texture_ratio() > 0.85
    assert estimate_nlf(np.rint(scene).astype(np.uint8)).texture_ratio() < 0.75


def _textured_scene(rng, side: int, grey: bool) -> np.ndarray:
    """A photograph-like test scene: smooth shading, hard-edged shapes and fine texture, in 0-255."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    channels = 1 if grey else 3
    out = np.empty((side, side, channels))
    for c in range(channels):
        a, b, f = rng.uniform(0.5, 2.0, 3)
        img = 110 + 60 * np.sin(a * 6 * xx + c) * np.cos(b * 5 * yy)
        for _ in range(6):  # discs of other brightness: edges
            cy, cx, r = rng.uniform(0, 1, 2).tolist() + [rng.uniform(0.05, 0.2)]
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += rng.uniform(-60, 60)
        img += 12 * np.sin(f * 90 * xx) * np.sin(f * 70 * yy)  # fine texture
        out[..., c] = img
    return np.clip(out[..., 0] if grey else out, 10, 245)


@pytest.mark.parametrize("grey", [True, False])
@pytest.mark.parametrize("sigma", [5.0, 10.0, 20.0, 35.0, 50.0])
def test_white_noise_is_never_taken_for_correlated_on_small_crops(grey, sigma):
    """Down to 256x256, grey or colour, sigma 5 to 50: white noise stays white (grey crops at sigma 10 and 20 went
    to the camera model in fllic 0.12). At sigma 2 texture can still tip it (results/noise_kind.md)."""
    from fllic.noise import estimate_level

    for seed in range(3):
        rng = np.random.default_rng(seed)
        clean = _textured_scene(rng, 256, grey)
        noisy = np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
        level = estimate_level(noisy)
        assert level.kind == "white", (seed, level)
        assert abs(level.sigma - sigma) < 0.15 * sigma + 1.0


def test_real_like_camera_noise_is_taken_for_correlated():
    """Noise through an in-camera JPEG engine (noise reduction, sharpening, JPEG) reads as correlated."""
    from fllic.noise import estimate_level
    from fllic.noise.camera import isp_noise, sample_params

    rng = np.random.default_rng(2)
    clean = np.clip(np.rint(_textured_scene(rng, 256, False)), 0, 255).astype(np.uint8)
    params = replace(sample_params(rng, shot=3e-3), jpeg_quality=95)
    kinds = []
    for seed in range(3):
        noisy, ref, _ = isp_noise(clean, np.random.default_rng(seed), params)
        kinds.append(estimate_level(noisy).kind)
    assert kinds.count("correlated") >= 2


def _lag_correlation(noise: np.ndarray, lag: int) -> float:
    y = noise.mean(2)
    return float(np.corrcoef(y[:, :-lag].ravel(), y[:, lag:].ravel())[0, 1])


def test_shaped_noise_spans_real_camera_jpegs_statistics():
    """Shaped noise is seeded, mostly luma, spatially correlated over a range that covers real camera JPEGs'
    (0.35-0.84 at one pixel), grows with intensity, and its reference is the clean image."""
    from fllic.noise.camera import shaped_noise

    rng = np.random.default_rng(0)
    clean = np.clip(np.rint(_textured_scene(rng, 128, False)), 0, 255).astype(np.uint8)
    a, ref, params = shaped_noise(clean, np.random.default_rng(5))
    b, _, _ = shaped_noise(clean, np.random.default_rng(5))
    assert np.array_equal(a, b) and np.array_equal(ref, clean)
    lag1, luma, modes = [], [], set()
    for seed in range(12):
        noisy, _, p = shaped_noise(clean, np.random.default_rng(seed))
        modes.add(p["jpeg_subsampling"])
        if p["jpeg_subsampling"] == 0:  # what it reports is what it used: 4:4:4 re-encodes near losslessly
            again = [np.abs(_jpeg(noisy, p["jpeg_quality"], s).astype(int) - noisy).mean() for s in (0, 2)]
            assert again[0] < 0.5 * again[1]
        d = noisy.astype(np.float64) - clean
        assert d.std() > 0.5 * p["sigma"]  # and JPEG's own error on top, which dominates at low sigma
        lag1.append(_lag_correlation(d, 1))
        luma.append(3.0 * (d.mean(2) ** 2).mean() / (d**2).sum(2).mean())
    assert min(lag1) < 0.45 and max(lag1) > 0.7
    assert 0 in modes and len(modes) >= 2
    assert np.mean(luma) > 0.5
    flat = np.full((96, 96, 3), 40, np.uint8), np.full((96, 96, 3), 200, np.uint8)
    dark, bright = ((shaped_noise(f, np.random.default_rng(1))[0].astype(np.float64) - f).std() for f in flat)
    assert bright >= dark


def test_mixed_sampler_draws_shaped_noise_with_its_true_map():
    import torch

    from fllic.train.data import MixedNoiseSampler

    rng = np.random.default_rng(0)
    colour = [np.clip(np.rint(_textured_scene(rng, 160, False)), 0, 255).astype(np.uint8) for _ in range(2)]
    sampler = MixedNoiseSampler(colour, 64, 50.0, camera_fraction=1.0, shaped_fraction=1.0, map_jitter=0.0, seed=1)
    target, noisy, level = sampler.batch(3)
    assert target.shape == noisy.shape == (3, 3, 64, 64) and level.shape == (3, 2, 64, 64)
    assert torch.all(level[:, 1] == 1)  # the correlated kind
    true_std = ((noisy - target) * 255).pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.allclose(level[:, 0].pow(2).mean(dim=(1, 2)).sqrt(), true_std, rtol=0.5)


def _textured_noisy(h: int, w: int, seed: int, correlated: bool) -> np.ndarray:
    """A ramp with texture and white or box-blurred (correlated) noise, 8-bit colour."""
    rng = np.random.default_rng(seed)
    clean = _colour_ramp(h, w) + 20 * np.sin(np.arange(w) / 7.0)[None, :, None] * np.cos(np.arange(h) / 11.0)[:, None, None]
    noise = rng.normal(0, 8.0, clean.shape)
    if correlated:
        noise = 2.5 * (noise + np.roll(noise, 1, 0) + np.roll(noise, 1, 1) + np.roll(noise, (1, 1), (0, 1))) / 4
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("correlated", [False, True])
def test_estimators_read_the_same_levels_a_band_of_rows_at_a_time(monkeypatch, correlated):
    from fllic.noise import estimate as est

    noisy = _textured_noisy(200, 160, 6, correlated)
    whole = est.estimate_level(noisy), est.estimate_nlf(noisy)
    whole_map = est.noise_map(noisy, whole[1])
    monkeypatch.setattr(est, "BAND_BYTES", 1 << 16)  # a few rows of patches a band: dozens of bands
    assert len(est._bands(200, 160 * 3 * 8)) > 10
    level, nlf = est.estimate_level(noisy), est.estimate_nlf(noisy)
    assert level.kind == whole[0].kind == ("correlated" if correlated else "white")
    assert level.sigma == pytest.approx(whole[0].sigma, rel=1e-9)
    assert level.scale_ratio == pytest.approx(whole[0].scale_ratio, rel=1e-9)
    assert np.array_equal(nlf.patches, whole[1].patches) and np.allclose(nlf.sigma, whole[1].sigma, rtol=1e-9)
    assert np.allclose(est.noise_map(noisy, whole[1]), whole_map, rtol=1e-6)


def test_blind_estimation_holds_memory_to_its_bands(monkeypatch):
    """A 24-megapixel photograph once took 7.7 GB to estimate: the patch matrix, whole, in float64."""
    import tracemalloc

    from fllic.noise import estimate as est

    noisy = _textured_noisy(480, 640, 7, correlated=True)
    patch_matrix = ((480 - 7) // 3 + 1) * ((640 - 7) // 3 + 1) * 3 * 49 * 8  # 38 MB in float64
    monkeypatch.setattr(est, "BAND_BYTES", 1 << 20)
    tracemalloc.start()
    try:
        level = est.estimate_level(noisy)
        est.noise_map(noisy, level.nlf)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert level.correlated
    assert peak < patch_matrix / 2, (peak, patch_matrix)
