"""Camera noise and the noise-map trunk (issue 9): the training data, the map, the blind path."""

import numpy as np
import pytest
import torch

import fllic
from fllic.models.fllic_net import FLLIC, FllicConfig, finalize
from fllic.noise.camera import camera_noise, noise_free, sample_params, true_noise_map


def _scene(h=128, w=128):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([40 + 180 * xx / w, 128 + 60 * np.sin(yy / 9.0), 200 - 150 * yy / h], axis=2)
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def test_true_noise_map_of_white_noise_is_flat_at_sigma():
    rng = np.random.default_rng(0)
    ref = _scene().astype(np.float64)
    noisy = ref + rng.normal(0, 8.0, ref.shape)
    level = true_noise_map(noisy, ref)
    assert level.shape == ref.shape[:2]
    assert level.mean() == pytest.approx(8.0, rel=0.05) and level.std() < 1.0


def test_true_noise_map_follows_signal_dependent_noise():
    rng = np.random.default_rng(1)
    ref = np.repeat(np.repeat(np.linspace(10, 245, 128)[None, :, None], 128, 0), 3, 2)
    noisy = ref + rng.normal(size=ref.shape) * (1.0 + 0.06 * ref)
    level = true_noise_map(noisy, ref)
    dark, bright = level[:, 10:20].mean(), level[:, -20:-10].mean()
    assert dark == pytest.approx(1.0 + 0.06 * ref[0, 15, 0], rel=0.25)
    assert bright == pytest.approx(1.0 + 0.06 * ref[0, -15, 0], rel=0.15)


def test_noise_free_pipeline_is_seed_free_and_close_to_the_camera_output():
    clean = _scene()
    params = sample_params(np.random.default_rng(2), shot=1e-4)
    ref = noise_free(clean, params)
    assert ref.dtype == np.uint8 and np.array_equal(ref, noise_free(clean, params))
    noisy, _ = camera_noise(clean, np.random.default_rng(3), params)
    assert 0 < np.abs(noisy.astype(int) - ref).mean() < 3


@pytest.mark.parametrize("camera_fraction", [0.0, 1.0])
def test_mixed_sampler_gives_targets_noisy_patches_and_maps(camera_fraction):
    from fllic.train.data import MixedNoiseSampler

    sampler = MixedNoiseSampler([_scene(140, 150), _scene(120, 160)], patch=32, sigma_max=30,
                                camera_fraction=camera_fraction, seed=0)
    target, noisy, maps = sampler.batch(4)
    assert target.shape == noisy.shape == (4, 3, 32, 32) and maps.shape == (4, 2, 32, 32)
    level, kind = maps[:, :1], maps[:, 1:]
    assert 0 <= float(target.min()) and float(target.max()) <= 1 and float(level.min()) >= 0
    assert torch.all(kind == camera_fraction)  # 1: correlated (camera), 0: white
    per_patch_spread = level.flatten(1).std(1)
    if camera_fraction == 0:  # AWGN: one sigma per patch, and the noise has it
        assert float(per_patch_spread.max()) < 1e-4
        for k in range(4):
            sd = float(((noisy[k] - target[k]) * 255).std())
            assert sd == pytest.approx(float(level[k, 0, 0, 0]), abs=1.5 + 0.1 * float(level[k, 0, 0, 0]))
    else:  # camera noise grows with intensity: the map varies within a patch
        assert float(per_patch_spread.max()) > 0


def _map_model():
    torch.manual_seed(0)
    return finalize(FLLIC(FllicConfig.tiny(trunk=True)), {"id": "tiny-map", "quality_scales": [1.0], "noise_map": True})


def _camera_like(seed=4, h=192, w=256):
    from fllic.noise.camera import demosaic, mosaic

    rng = np.random.default_rng(seed)
    clean = _scene(h, w).astype(np.float64)
    noise = demosaic(mosaic(rng.normal(0, 1.0, clean.shape))) * (3.0 + 0.08 * clean)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def test_blind_encoding_of_correlated_noise_feeds_the_trunk_a_noise_map(monkeypatch):
    model = _map_model()
    seen = []
    real = model.net.trunk.forward
    monkeypatch.setattr(model.net.trunk, "forward", lambda x, level: seen.append(level) or real(x, level))
    img = _camera_like()
    res = fllic.encode_detailed(img, model=model, tile=4096)
    assert seen and seen[-1].shape == (1, 2, 192, 256)
    assert float(seen[-1][:, 0].std()) > 0 and torch.all(seen[-1][:, 1] == 1)  # per pixel; correlated
    assert np.array_equal(fllic.decode(res.data, model=model), res.pixels)
    seen.clear()  # a given sigma is white noise's: the trunk gets the constant
    fllic.encode_detailed(img, sigma=10, model=model, tile=4096)
    assert seen[-1].dim() == 1


class _Recording(torch.nn.Module):
    """A stand-in trunk: returns its input plus ``shift``, and records the maps it reads."""

    def __init__(self, shift: float = 0.0):
        super().__init__()
        self.shift, self.maps = shift, []

    def forward(self, x, level):
        self.maps.append(level)
        return x + self.shift


def test_two_scale_takes_the_coarse_band_from_the_coarse_pass():
    from fllic.models.trunk import two_scale

    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    level = torch.stack([torch.rand(32, 48) * 20, torch.ones(32, 48)])[None]
    trunk = _Recording()
    assert torch.allclose(two_scale(trunk, x, level, 0.5), x, atol=1e-6)  # passes that agree: the fine one
    fine, coarse = trunk.maps
    assert coarse.shape == (1, 2, 16, 24)
    assert torch.allclose(coarse[:, 0], torch.nn.functional.avg_pool2d(level, 2)[:, 0] * 0.5)
    assert torch.equal(coarse[:, 1], torch.ones(1, 16, 24))  # the kind channel as it is
    # A coarse pass that lifts its image by 0.1 lifts the result by 0.1 everywhere (bilinear keeps constants).
    shifted = two_scale(lambda img, m: img + (0.1 if img.shape[-1] == 24 else 0.0), x, level, 0.5)
    assert torch.allclose(shifted, x + 0.1, atol=1e-6)


def test_a_model_with_a_coarse_gain_runs_two_scales_on_correlated_noise_only():
    model = _map_model()
    model = type(model)(model.net, model.tables, model.decoder, {**model.meta, "coarse_gain": 0.625})
    seen = []
    real = model.net.trunk.forward
    model.net.trunk.forward = lambda x, level: seen.append(tuple(x.shape[-2:])) or real(x, level)
    img = _camera_like()
    res = fllic.encode_detailed(img, model=model, tile=4096)
    assert seen == [(192, 256), (96, 128)]
    assert np.array_equal(fllic.decode(res.data, model=model), res.pixels)
    seen.clear()  # white noise (a given sigma): one pass
    fllic.encode_detailed(img, sigma=10, model=model, tile=4096)
    assert seen == [(192, 256)]


def test_a_spread_cap_holds_the_reading_before_the_gain():
    """A model's ``spread_cap`` holds a correlated reading to that many times the PCA reading, then its
    ``correlated_gain`` scales it; without the cap the gain alone; white readings untouched."""
    from fllic.codec import _level_for
    from fllic.noise.estimate import NoiseLevel, NoiseLevelFunction

    model = _map_model()
    nlf = NoiseLevelFunction(np.array([100.0]), np.array([9.0]), np.array([500]))
    level = NoiseLevel(9.0, "correlated", 0.5, 9.0, 1.1, nlf)
    gained = type(model)(model.net, model.tables, model.decoder, {**model.meta, "correlated_gain": 2.0})
    capped = type(model)(model.net, model.tables, model.decoder, {**gained.meta, "spread_cap": 6.0})
    assert _level_for(gained, level).sigma == pytest.approx(18.0)
    assert _level_for(capped, level).sigma == pytest.approx(6.0)  # 6 x 0.5, then x 2
    assert float(_level_for(capped, level).nlf(100.0)) == pytest.approx(6.0)
    white = NoiseLevel(4.0, "white", 4.0, float("nan"), 0.5)
    assert _level_for(capped, white) is white


def test_noise_map_is_tiled_with_the_image_and_decodes_exactly():
    from fllic.metrics import psnr

    model = _map_model()
    img = _camera_like(h=256, w=320)
    whole = fllic.encode_detailed(img, model=model, tile=4096)
    tiled = fllic.encode_detailed(img, model=model, tile=128)
    assert np.array_equal(fllic.decode(tiled.data, model=model), tiled.pixels)
    assert abs(psnr(tiled.pixels, img) - psnr(whole.pixels, img)) < 0.05


def test_auto_mode_picks_the_camera_model_for_correlated_noise_only(monkeypatch, tmp_path):
    """Correlated noise goes to the camera model where its weights are installed, to the default otherwise."""
    import fllic.models.registry as registry
    from fllic.noise import estimate_level

    rng = np.random.default_rng(6)
    white = estimate_level(np.clip(np.rint(_scene(192, 256) + rng.normal(0, 10, (192, 256, 3))), 0, 255).astype(np.uint8))
    camera = estimate_level(_camera_like())
    assert registry.auto_model(None) == registry.DEFAULT_MODEL
    assert registry.auto_model(white) == registry.DEFAULT_MODEL
    # Where the camera model is installed it takes correlated noise; where its weights are missing, the default does.
    assert registry.auto_model(camera) == registry.CAMERA_MODEL  # shipped
    assert registry.auto_model(camera, from_jpeg=True) == registry.CAMERA_JPEG_MODEL  # a camera's own JPEG
    assert registry.auto_model(white, from_jpeg=True) == registry.DEFAULT_MODEL
    monkeypatch.setattr(registry, "weights_path", lambda i: tmp_path / i.filename)
    assert registry.auto_model(camera) == registry.DEFAULT_MODEL
    registry.weights_path(registry.find(registry.CAMERA_MODEL)).write_bytes(b"")
    assert registry.auto_model(camera) == registry.CAMERA_MODEL
    assert registry.auto_model(camera, from_jpeg=True) == registry.CAMERA_MODEL  # the JPEG model is missing
    assert registry.auto_model(white) == registry.DEFAULT_MODEL


@pytest.fixture
def photos(tmp_path):
    from PIL import Image

    for name in ("CBSD432", "WikipediaPhotos"):
        (tmp_path / name).mkdir()
        for k in range(2):
            Image.fromarray(_scene(144, 160)).save(tmp_path / name / f"{k}.png")
    return tmp_path


def test_camera_trunk_and_codec_train_on_camera_patches(tmp_path, photos):
    """Both stages take --camera-fraction: the trunk fine-tunes from a trunk file, the codec codes its estimates."""
    from fllic.train.__main__ import main as train_main
    from fllic.train.denoiser import main as denoiser_main

    common = ["--data", str(photos), "--tiny", "--batch", "2", "--threads", "1", "--camera-fraction", "0.5"]
    assert denoiser_main(common + ["--workdir", str(tmp_path / "t0"), "--patch", "32", "--steps", "1"]) == 0
    assert denoiser_main(["--workdir", str(tmp_path / "t0"), "--export", str(tmp_path / "t0.pt")]) == 0
    assert denoiser_main(common + ["--workdir", str(tmp_path / "t1"), "--patch", "32", "--steps", "2",
                                   "--from", str(tmp_path / "t0.pt")]) == 0
    assert "resume at step 0" in (tmp_path / "t1" / "train.log").read_text()  # --from starts a new schedule
    # The codec starts from a v2-like model whose own trunk (no kind input) gives way to the camera trunk.
    torch.save({"model": FLLIC(FllicConfig.tiny(trunk=True)).state_dict(), "step": 9, "elapsed": 0.0},
               tmp_path / "v2.pt")
    assert train_main(common + ["--workdir", str(tmp_path / "c"), "--patch", "64", "--steps", "2", "--targets", "clean",
                                "--trunk", str(tmp_path / "t1" / "checkpoint.pt"), "--freeze-trunk",
                                "--code-estimate", "--init", str(tmp_path / "v2.pt")]) == 0
    assert torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=False)["step"] == 2
    # Exported, the model asks the blind path for noise maps, and its float resume point keeps the kind input.
    from fllic.models.fllic_net import CodingModel, trunk_path
    from fllic.train.export import main as export_main

    out, resume = tmp_path / "cam.pt", tmp_path / "cam-float.pt"
    assert export_main(["--checkpoint", str(tmp_path / "c" / "checkpoint.pt"), "--out", str(out), "--id", "tiny-cam",
                        "--synthetic-calibration", "--quality-scales", "1", "--float-out", str(resume)]) == 0
    assert CodingModel.load(out).meta["noise_map"] is True
    assert torch.load(trunk_path(resume), weights_only=True)["config"]["kind_input"] is True


def test_a_white_noise_trunk_gains_the_kind_input_unchanged():
    """v2's trunk, loaded into a trunk that also reads the noise kind, computes what it did (zero weights)."""
    from fllic.models.trunk import DenoisingTrunk, TrunkConfig, load_trunk_weights

    torch.manual_seed(3)
    white = DenoisingTrunk(TrunkConfig.tiny())
    for prm in white.parameters():
        torch.nn.init.normal_(prm, std=0.1)
    both = DenoisingTrunk(TrunkConfig((8, 8, 8), 1, kind_input=True))
    load_trunk_weights(both, white.state_dict())
    x = torch.rand(1, 3, 32, 32)
    flat = torch.full((1, 1, 32, 32), 12.0)
    assert torch.allclose(both(x, flat), white(x, flat), atol=1e-6)
    assert torch.allclose(both(x, torch.cat([flat, torch.zeros_like(flat)], 1)), white(x, flat), atol=1e-6)
    torch.nn.init.normal_(both.head.weight)
    assert not torch.allclose(both(x, torch.cat([flat, torch.ones_like(flat)], 1)), both(x, flat))


def test_camera_quality_table_is_measured_blind_against_the_reference():
    from fllic.train.quality import choose, measure_camera

    model = finalize(FLLIC(FllicConfig.tiny(trunk=True)), {"id": "tiny-map", "quality_scales": [2.0, 1.0],
                                                           "noise_map": True})
    table = measure_camera(model, [_scene(128, 128)], shots=(1e-3, 8e-3))
    assert len(table) == 2 and all(len(row["levels"]) == 2 for row in table.values())
    low, high = sorted(table)
    assert table[low]["shot"] == 1e-3 and table[high]["shot"] == 8e-3  # more shot noise, higher blind sigma
    pairs = choose(table, 0.2)
    assert [p[1] in (1, 2) for p in pairs] == [True, True] and pairs[-1][0] == 255.0


def test_default_quality_is_measured_against_the_models_best_point():
    """A level within the tolerance of the model's best: its unquantized estimate, or a coded level that
    beats it (the camera model's unquantized ŷ can fall below its coded points)."""
    from fllic.train.quality import choose, uniform

    table = {10.0: {"estimate": 30.0, "levels": [(28.0, 0.3), (29.95, 0.6), (30.1, 1.0)]},
             20.0: {"estimate": 26.0, "levels": [(25.0, 0.3), (27.0, 0.6), (28.0, 1.0)]}}
    assert choose(table, 0.2) == [[15.0, 2], [255.0, 3]]
    assert uniform(choose(table, 0.2)) == [[255.0, 3]]  # camera noise: one level, within tolerance everywhere


def test_the_default_is_the_finest_level_when_no_level_reaches_the_estimate():
    from fllic.train.quality import choose

    table = {25.0: {"estimate": 40.0, "levels": [(30.0, 0.5), (31.0, 1.0)]}}
    assert choose(table, 0.2) == [[255.0, 2]]
