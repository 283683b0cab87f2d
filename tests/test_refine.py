"""Encoder refinement: the decoder's own g_s in float, better symbols, the same exact decoding."""

import numpy as np
import pytest
import torch

import fllic
from fllic.codec import encode_detailed
from fllic.models.fllic_net import _channel_groups, _clamp, _scalar
from fllic.models.integer import to_nhwc
from tests.conftest import noisy_image


def _params(model, x, sigma, q):
    """Continuous symbols u and the integer coding parameters, as compress computes them."""
    with torch.no_grad():
        y = to_nhwc(model.net.analysis(x, _scalar(sigma), _scalar(q))).double()
        z = torch.round(model.net.h_a(y.permute(0, 3, 1, 2).float()) / model.net.step_z())
        z = _clamp(z, model.tables.z, _channel_groups(tuple(z.shape)))
        p = model.decoder.entropy_params(z, sigma, q)
    return (y - p.mu_float(model.decoder.exps["mu"])) / p.step_float(), p


@pytest.mark.parametrize("which, bound", [("tiny", 0.1), ("fllic-awgn-v7", 0.1), ("fllic-awgn-v8", 0.25)])
def test_soft_synthesis_is_the_integer_decoder_without_rounding(tiny_model, which, bound):
    """Within a tenth of a level on average; a quarter for v8 (0.21 measured), whose narrow layers round their
    inputs to 10-bit steps, which the relaxation leaves smooth."""
    from fllic.models.int_decoder import PIX_FRAC, STEP_FRAC
    from fllic.models.refine import soft_synthesis
    from fllic.models.registry import resolve

    model = tiny_model if which == "tiny" else resolve(which)
    torch.manual_seed(0)
    sigma, q = 20.0, float(np.float32(model.meta["quality_scales"][1]))
    u, p = _params(model, torch.rand(1, 3, 128, 128), sigma, q)
    u = torch.round(u)
    e = model.decoder.exps
    y = (p.mu.double() * 2.0 ** (e["y"] - e["mu"]) + u * p.step.double() * 2.0 ** (e["y"] - STEP_FRAC))
    soft = soft_synthesis(model.decoder, y.permute(0, 3, 1, 2).float(), sigma, q).permute(0, 2, 3, 1)
    exact = model.decoder.synthesis(u, p, sigma, q).double()
    diff = (soft.double() - exact).abs() / 2**PIX_FRAC  # in 8-bit levels
    assert diff.mean() < bound and diff.max() < 2


@pytest.mark.parametrize("tile", [64, 4096])
def test_refined_files_decode_exactly_tiled_or_whole(tiny_model, rng, tile):
    img = noisy_image(rng, 128, 192)
    res = encode_detailed(img, sigma=20, model=tiny_model, refine=3, tile=tile)
    assert res.data != encode_detailed(img, sigma=20, model=tiny_model, tile=tile).data  # the symbols moved
    assert np.array_equal(fllic.decode(res.data, model=tiny_model), res.pixels)


@pytest.mark.parametrize("which, gain", [("tiny", 0.0), ("fllic-awgn-v7", 0.01),
                                         ("fllic-awgn-v8", 0.01)])
def test_refinement_lowers_the_codecs_loss(tiny_model, which, gain):
    """J(u) = λ(q)·MSE(g_s(u), e) + R(u)/pixels, with u rounded as coded, falls from g_a's symbols to the refined ones."""
    from fllic.demo import sample_image
    from fllic.models import refine
    from fllic.models.registry import resolve
    from fllic.noise import add_noise

    model = tiny_model if which == "tiny" else resolve(which)
    noisy = add_noise(sample_image()[:128, :192], 15, seed=0)
    x = torch.from_numpy(noisy.transpose(2, 0, 1).astype(np.float32) / 255)[None]
    sigma, q = 15.0, float(np.float32(model.meta["quality_scales"][-1]))
    u, p = _params(model, x, sigma, q)
    better = refine.refine_symbols(model, x, u, p, sigma, q, steps=10, tile=64)  # three tiles
    assert better.shape == u.shape and better.dtype == torch.float64
    assert not torch.equal(torch.round(better), torch.round(u))
    before, after = (refine.loss(model, x, v, p, sigma, q) for v in (u, better))
    assert after < (1 - gain) * before  # an untrained tiny model has little to gain


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10", 10_001])
def test_refine_must_be_a_whole_number_of_steps(tiny_model, rng, bad):
    with pytest.raises(fllic.InputError, match="refine must be"):
        fllic.encode(noisy_image(rng, 32, 32), sigma=10, model=tiny_model, refine=bad)


def test_cli_refine(tmp_path, rng, tiny_model_path):
    from PIL import Image

    from fllic.cli import main

    src, f, out = tmp_path / "a.png", tmp_path / "a.fllic", tmp_path / "b.png"
    Image.fromarray(noisy_image(rng, 70, 90)).save(src)
    args = ["--sigma", "20", "--model", str(tiny_model_path)]
    assert main(["compress", str(src), "-o", str(f), *args, "--refine", "--refine-steps", "2"]) == 0
    assert main(["decompress", str(f), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    assert np.asarray(Image.open(out)).shape == (70, 90, 3)
    assert main(["compress", str(src), "-o", str(tmp_path / "c.fllic"), *args, "--refine", "--refine-steps", "-2"]) == 1
    assert main(["compress", str(src), "-o", str(tmp_path / "d.fllic"), *args, "--refine-steps", "2"]) == 0
    assert (tmp_path / "d.fllic").read_bytes() == f.read_bytes()  # the steps imply --refine


def test_bench_names_the_refined_points(tiny_model):
    from fllic.baselines._base import Context
    from fllic.baselines.registry import build
    from fllic.codec import REFINE_STEPS

    ctx = Context(sigma=25, model=tiny_model)
    default, level = build("fllic-refine", ctx), build("fllic-q1-refine", ctx)
    assert (default.name, default.refine, default.quality) == ("fllic-refine", REFINE_STEPS, 2)
    assert (level.name, level.curve, level.quality) == ("fllic-q1-refine", "fllic-refine", 1)
    assert build("fllic-q1", ctx).refine == 0


def test_the_validation_bench_measures_each_variant(tiny_model, rng):
    from fllic.bench import refine as bench

    crops = [noisy_image(rng, 64, 128) for _ in range(2)]
    variants = (bench.VARIANTS[0], ("continuous", 2, 0.03, False), ("straight-through", 2, 0.01, True))
    results = bench.measure(tiny_model, crops, sigmas=(20.0,), variants=variants, progress=False)
    rows = results[20.0]
    assert set(rows) == {("plain", 0, 0.0), ("continuous", 2, 0.03), ("straight-through", 2, 0.01)}
    assert all(len(v) == 4 and v[0] > 0 and np.isfinite(v[1]) for v in rows.values())
    text = bench.report(results, "# header")
    assert "| plain | 0 | – |" in text and "+0.00 | +0.0 % |" in text and "| straight-through | 2 | 0.01 |" in text


def test_the_bench_crops_are_the_trainers_held_out_photographs():
    from fllic.bench.refine import VALIDATION_PHOTOS
    from fllic.train.data import VALIDATION_PHOTOS as held_out

    assert VALIDATION_PHOTOS == held_out


def test_refined_coding_takes_the_refined_default_table(tiny_model, rng):
    """A model with refined tables (python -m fllic.train.quality --refine) codes refined images at
    their levels, grey before colour; plain coding keeps the plain tables."""
    import copy

    m = copy.copy(tiny_model)
    assert len(m.meta["quality_scales"]) == 2
    m.meta = dict(m.meta, default_quality=[[255.0, 2]], default_quality_grey=[[30.0, 1], [255.0, 2]],
                  default_quality_refine=[[10.0, 2], [255.0, 1]])
    cases = [(25, False, False), (25, True, False), (25, False, True), (5, False, True), (40, True, True)]
    assert [m.default_quality(s, grey, refined) for s, grey, refined in cases] == [2, 1, 1, 2, 1]
    m.meta["default_quality_refine_grey"] = [[255.0, 2]]
    assert m.default_quality(25, grey=True, refined=True) == 2
    rgb = noisy_image(rng, 40, 48)
    assert fllic.info(fllic.encode(rgb, sigma=25, model=m, refine=2))["quality"] == 1
    assert fllic.info(fllic.encode(rgb, sigma=25, model=m))["quality"] == 2
    assert fllic.info(fllic.encode(rgb, sigma=25, model=m, refine=2, quality=2))["quality"] == 2  # asked for: obeyed


def test_refined_defaults_take_the_coarsest_refined_level_within_tolerance():
    from fllic.train.quality import choose_refined

    table = {10.0: {"estimate": 30.0, "levels": [(28.0, 0.3), (29.5, 0.6), (29.9, 1.0)], "default": 3,
                    "refined": {1: (28.3, 0.3), 2: (29.95, 0.6), 3: (30.1, 1.0)}},
             20.0: {"estimate": 26.0, "levels": [(25.0, 0.3), (25.6, 0.6), (25.85, 1.0)], "default": 3,
                    "refined": {1: (25.2, 0.3), 2: (25.7, 0.6)}}}
    # sigma 10: best is refined level 3 (30.1), and refined level 2 is within 0.2 dB of it;
    # sigma 20: no refined level is within 0.2 dB of the estimate, so the plain default stays
    assert choose_refined(table, 0.2) == [[15.0, 2], [255.0, 3]]


def test_quality_refine_refuses_camera_and_copy(capsys):
    from fllic.train.quality import main

    assert main(["--model", "x.pt", "--refine", "5", "--camera"]) == 2
    assert main(["--model", "x.pt", "--refine", "5", "--copy-from", "fllic-awgn-v2"]) == 2
    assert "--refine takes neither" in capsys.readouterr().err


def test_the_speed_bench_times_refined_encoding(tmp_path, rng, tiny_model_path, capsys):
    from PIL import Image

    from fllic.bench.speed import main
    from fllic.codec import REFINE_STEPS

    Image.fromarray(noisy_image(rng, 64, 96)).save(tmp_path / "a.png")
    assert main(["--data", str(tmp_path), "--threads", "1", "--model", str(tiny_model_path), "--refine"]) == 0
    out = capsys.readouterr().out
    assert f"refined ({REFINE_STEPS} steps)" in out and "| a.png | 96x64 |" in out and "cold (fresh processes" in out


def test_a_large_window_recomputes_g_s_in_the_backward_pass_and_refines_to_the_same_symbols(tiny_model, rng, monkeypatch):
    """Windows above CHECKPOINT_PIXELS keep no activations of g_s for the backward pass (large images' memory):
    the gradients, and so the refined file, are those of the plain pass."""
    from fllic.models import refine

    img = noisy_image(rng, 128, 128)
    plain = encode_detailed(img, sigma=20, model=tiny_model, refine=3)
    calls = []
    real = refine.checkpoint
    monkeypatch.setattr(refine, "checkpoint", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    monkeypatch.setattr(refine, "CHECKPOINT_PIXELS", 0)
    recomputed = encode_detailed(img, sigma=20, model=tiny_model, refine=3)
    assert calls and recomputed.data == plain.data
