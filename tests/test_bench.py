import json

import numpy as np
import pytest
from PIL import Image

from fllic import FllicError
from fllic.baselines import Context, Method, build
from fllic.bench import BDError, BenchConfig, DecodeCheckError, bd_psnr, bd_rate, run_bench, run_method
from fllic.bench.bd import pchip_eval, rate_at_psnr
from fllic.bench.cost import DECODE_STAGES, ENCODE_STAGES, network_cost
from fllic.cli import main
from tests.conftest import noisy_image

RATES = [0.5, 1.0, 2.0, 4.0, 8.0]
PSNRS = [28.0, 30.5, 33.0, 35.0, 36.5]


# -- Bjøntegaard -----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["pchip", "poly"])
def test_half_the_rate_is_minus_fifty_percent(method):
    half = [r / 2 for r in RATES]
    assert bd_rate(RATES, PSNRS, half, PSNRS, method) == pytest.approx(-50.0, abs=1e-9)
    assert bd_rate(half, PSNRS, RATES, PSNRS, method) == pytest.approx(100.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES, PSNRS, method) == pytest.approx(0.0, abs=1e-9)


def test_bd_psnr_of_a_shifted_line():
    # PSNR linear in log10(rate): halving the rate shifts the curve by 3 dB exactly.
    rates = [1.0, 2.0, 4.0, 8.0]
    psnrs = [30.0, 33.0, 36.0, 39.0]
    assert bd_psnr(rates, psnrs, [r / 2 for r in rates], psnrs) == pytest.approx(3.0, abs=1e-9)
    assert bd_psnr(rates, psnrs, rates, [p - 1 for p in psnrs]) == pytest.approx(-1.0, abs=1e-9)


def test_bd_needs_overlapping_curves_with_enough_points():
    with pytest.raises(BDError):
        bd_rate([1, 2], [30, 31], [1, 2], [40, 41])  # no PSNR overlap
    with pytest.raises(BDError):
        bd_rate([1], [30], [1, 2], [30, 31])
    with pytest.raises(BDError):
        bd_rate([1, 2, 3], [30, 31, 32], [1, 2, 3], [30, 31, 32], method="poly")
    with pytest.raises(BDError):
        bd_rate([0, 2], [30, 31], [1, 2], [30, 31])
    assert issubclass(BDError, FllicError)


def test_pchip_matches_scipy_and_interpolates_rates():
    interpolate = pytest.importorskip("scipy.interpolate")
    x = np.array([0.0, 0.7, 1.5, 3.0, 3.2, 5.0])
    y = np.array([1.0, 2.0, 1.2, 4.0, 4.1, 3.0])
    t = np.linspace(0, 5, 57)
    assert np.allclose(pchip_eval(x, y, t), interpolate.PchipInterpolator(x, y)(t), atol=1e-12)
    assert rate_at_psnr(RATES, PSNRS, 33.0) == pytest.approx(2.0)
    assert rate_at_psnr(RATES, PSNRS, 40.0) is None


# -- cost --------------------------------------------------------------------------------
def test_macs_scale_exactly_from_the_64px_count(tiny_model):
    import torch
    from torch import nn

    cost = network_cost(tiny_model)
    net = tiny_model.net
    total = [0]

    def hook(module, inputs, output):
        total[0] += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        s, q = torch.tensor([10.0]), torch.tensor([1.0])
        y = net.analysis(torch.zeros(1, 3, 128, 192), s, q)
        net.entropy_params(net.h_a(y), s, q)
        net.synthesis(y, s, q)
    for h in handles:
        h.remove()
    # A 100x150 image pads to 128x192.
    assert cost.macs_per_pixel(ENCODE_STAGES["codec"], 100, 150) * 100 * 150 == pytest.approx(total[0])
    assert 0 < cost.macs_per_pixel(DECODE_STAGES["codec"], 64, 64) < cost.macs_per_pixel(ENCODE_STAGES["codec"], 64, 64)
    assert cost.parameters("codec") == sum(p.numel() for p in net.parameters())
    assert cost.parameters("denoiser") < cost.parameters("codec")


# -- checks ------------------------------------------------------------------------------
class _Lossy(Method):
    """Claims to be lossless but flips one bit."""

    name = "liar"

    def encode(self, array):
        return array.tobytes()

    def decode(self, data):
        out = np.frombuffer(data, np.uint8).copy()
        out[0] ^= 1
        return out.reshape(self.shape)


def test_a_broken_lossless_decode_is_caught(rng):
    img = noisy_image(rng, 16, 20)
    liar = _Lossy()
    liar.shape = img.shape
    with pytest.raises(DecodeCheckError, match="liar on x.png.*lossless"):
        run_method(liar, img, img, "x.png")
    record = run_method(build("jpegls-near2", Context(25)), img, img)
    assert record["check"] == "±2" and record["max_abs_err"] <= 2


# -- the tiny bench run ------------------------------------------------------------------
METHODS = ["lossless", "near-lossless", "fllicdn+png", "fllicdn+jxl-ll",
           "fllicdn+jxl-d0.5", "fllicdn+jxl-d2.0", "fllicdn+jxl-d6.0", "fllic"]


@pytest.fixture
def data(tmp_path, rng):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(noisy_image(rng, 40, 48)).save(folder / "a.png")
    Image.fromarray(noisy_image(rng, 33, 29, channels=1)).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_tiny_bench_writes_every_output(tmp_path, data, tiny_model_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["bench", "--data", str(data), "--sigma", "15", "30", "--model", str(tiny_model_path),
            "--out", str(out), "--cache", str(cache), "--no-progress", "--methods", *METHODS]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    for name in ["results.json", "report.md", "cost.md", "rd_sigma15.png", "rd_sigma30.png"]:
        assert (out / name).stat().st_size > 0, name
    with Image.open(out / "rd_sigma15.png") as im:
        assert im.format == "PNG" and im.size[0] > 400

    res = json.loads((out / "results.json").read_text())
    assert [i["name"] for i in res["images"]] == ["a.png", "b.png"]
    per = res["per_image"]
    assert len(per) == 2 * (5 + 4 + 5 + 3) + 2 * (5 + 4 + 5 + 3)  # near7 at sigma 15, near15 at 30; fllic-q1, q2, default
    pixels = {"a.png": 40 * 48, "b.png": 33 * 29}
    for r in per:
        assert r["bytes"] > 0 and r["bpp"] == pytest.approx(8 * r["bytes"] / pixels[r["image"]])
        assert r["encode_s"] >= 0 and r["decode_s"] >= 0 and r["peak_mb"] >= 0
        if r["kind"] == "lossless":
            assert r["check"] == "exact" and r["max_abs_err"] == 0
        if r["family"] == "lossless":
            assert r["psnr_noisy"] is None  # infinite: the noisy image itself
    s15 = res["by_sigma"]["15"]
    assert s15["means"]["fllic-q2"]["n"] == 2 and "jpegls-near7" in s15["means"]
    assert "jpegls-near15" in res["by_sigma"]["30"]["means"]
    assert s15["bd"][0]["anchor"] == "fllicdn+jxl" and s15["bd"][0]["test"] == "fllic"
    assert s15["default_point"]["method"] == "fllic-default" and s15["default_point"]["is_model_default"]
    # The tiny model has no per-sigma table: its default is its finest level, q2, bit for bit.
    assert s15["means"]["fllic-default"]["bpp"] == s15["means"]["fllic-q2"]["bpp"]
    factors = {v["method"]: v["bits_factor"] for v in s15["default_point"]["vs"]}
    assert factors["png"] == pytest.approx(s15["means"]["png"]["bpp"] / s15["means"]["fllic-default"]["bpp"])
    assert res["config"]["model"]["id"] == "tiny-test" and res["config"]["seed"] == 0
    rows = {r["method"]: r for r in res["cost"]["rows"]}
    assert rows["fllic-q1"]["params"] > 0 and rows["fllic-q1"]["macs_per_px_encode"] > 0
    assert rows["png"]["params"] is None and rows["png"]["encode_s_per_mp"] > 0

    report = (out / "report.md").read_text()
    for text in ["## Headline", "## σ = 15", "## σ = 30", "BD-rate", "× bits", "rd_sigma30.png",
                 "MACs/px encode", "fllicdn+jxl-ll"]:
        assert text in report, text
    assert "MACs/px encode" in (out / "cost.md").read_text()

    # The report redraws from results.json alone, to the same text.
    from fllic.bench.report import main as report_main

    before = (out / "report.md").read_text()
    (out / "report.md").unlink()
    assert report_main([str(out)]) == 0 and (out / "report.md").read_text() == before
    assert report_main([str(tmp_path / "nowhere")]) == 1
    # A re-run needs --force, and then takes the denoised images from the cache.
    assert main(argv) == 1
    assert "--force" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0
    res2 = json.loads((out / "results.json").read_text())
    assert all(r["denoise_cached"] for r in res2["per_image"] if r["method"].startswith("fllicdn+"))
    same = {(r["image"], r["sigma"], r["method"]): r["bytes"] for r in per}
    assert {(r["image"], r["sigma"], r["method"]): r["bytes"] for r in res2["per_image"]} == same


def test_parallel_jobs_give_the_same_bytes(tmp_path, data, tiny_model_path):
    common = dict(data=data, sigmas=(20.0,), methods=("png", "fllicdn+png", "fllic-q2"), limit=1,
                  model=str(tiny_model_path), cache_dir=None, progress=False)
    serial = run_bench(BenchConfig(out=tmp_path / "serial", jobs=1, **common))
    parallel = run_bench(BenchConfig(out=tmp_path / "parallel", jobs=2, **common))  # one task: one worker
    assert ([r["bytes"] for r in parallel["per_image"]] == [r["bytes"] for r in serial["per_image"]])
    assert parallel["config"]["jobs"] == 2


def test_a_stopped_bench_resumes_from_its_finished_tasks(tmp_path, data, tiny_model_path, monkeypatch):
    """Each finished (image, sigma) task is logged; a re-run after a stop computes only the rest, and the
    record equals an uninterrupted run's. Tasks go sigma by sigma."""
    import fllic.bench.runner as runner

    common = dict(data=data, sigmas=(15.0, 30.0), methods=("png", "fllic-q2"), model=str(tiny_model_path),
                  cache_dir=None, progress=False)
    whole = run_bench(BenchConfig(out=tmp_path / "whole", **common))
    calls, real_run_task = [], runner.run_task

    def stop_after_two(task, on_method=None):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append((task.path.name, task.sigma))
        return real_run_task(task, on_method)

    monkeypatch.setattr(runner, "run_task", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_bench(BenchConfig(out=tmp_path / "resumed", **common))
    assert calls == [("a.png", 15.0), ("b.png", 15.0)]  # sigma 15 whole before sigma 30
    log = tmp_path / "resumed" / runner.TASK_LOG
    assert len(log.read_text().splitlines()) == 3  # the run's signature (the weights), then two tasks
    other = tmp_path / "other.jsonl"  # a log of other weights is not resumed from
    other.write_text(log.read_text())
    assert runner._finished_tasks(other, [], {"signature": 1, "weights": "0" * 32}) == {}
    assert other.read_text().count("\n") == 1
    calls.clear()
    monkeypatch.setattr(runner, "run_task", lambda t, on_method=None: calls.append(t.sigma) or real_run_task(t, on_method))
    resumed = run_bench(BenchConfig(out=tmp_path / "resumed", **common))
    assert calls == [30.0, 30.0] and not log.exists()
    key = lambda res: sorted((r["image"], r["sigma"], r["method"], r["bytes"]) for r in res["per_image"])
    assert key(resumed) == key(whole)


def test_bench_errors_are_one_line(tmp_path, data, tiny_model_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    base = ["--no-progress", "--model", str(tiny_model_path), "--out", str(tmp_path / "o")]
    cases = [
        ["bench", *base],  # no --data, and no ../shared/data/Kodak24 from here
        ["bench", "--data", str(tmp_path / "missing"), *base],
        ["bench", "--data", str(empty), *base],
        ["bench", "--data", str(data), "--methods", "gif", *base],
        ["bench", "--data", str(data), "--methods", "fllic-q9", *base],
        ["bench", "--data", str(data), "--sigma", "-3", *base],
        ["bench", "--data", str(data), "--jobs", "0", *base],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("fllic: error:") and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "o").exists()


def test_list_methods(tiny_model_path, capsys):
    assert main(["bench", "--list-methods", "--sigma", "25", "--model", str(tiny_model_path)]) == 0
    out = capsys.readouterr().out
    assert "jpegls-near12" in out and "cbm3d+jxl-d1.0" in out and "fllic-q2" in out


def test_bd_rows_of_mean_curves_end_sweeps_at_their_lossless_point():
    from fllic.bench.report import bd_rows, curves_of

    def point(family, curve, bpp, psnr):
        return {"family": family, "curve": curve, "bpp": bpp, "psnr": psnr}

    means = {f"cbm3d+jxl-d{d}": point("cascade-lossy", "cbm3d+jxl", r, p)
             for d, r, p in [(4, 0.5, 28.0), (2, 1.0, 30.5), (1, 2.0, 33.0)]}
    means["cbm3d+jxl-ll"] = point("cascade", None, 4.0, 35.0)
    means.update({f"fllic-q{k}": point("fllic", "fllic", r / 2, p)
                  for k, (r, p) in enumerate([(0.5, 28.0), (1.0, 30.5), (2.0, 33.0), (4.0, 35.0)], 1)})
    curves = curves_of(means)
    assert [p[0] for p in curves["cbm3d+jxl"]][-1] == "cbm3d+jxl-ll"
    (row,) = bd_rows(curves)
    assert row["anchor"] == "cbm3d+jxl" and row["points"] == [4, 4] and row["error"] is None
    assert row["bd_rate_pct"] == pytest.approx(-50.0)


def test_compare_reports_differences_and_tolerance():
    from fllic.bench.compare import compare, to_markdown

    def record(psnr, bpp):
        return {"by_sigma": {"25": {"sigma": 25.0, "means": {"fllic-q4": {"psnr": psnr, "bpp": bpp, "n": 3}}}}}

    rows = compare(record(30.0, 1.0), record(29.9, 1.02))
    assert len(rows) == 1
    assert rows[0]["d_psnr"] == pytest.approx(-0.1) and rows[0]["d_bpp_pct"] == pytest.approx(2.0)
    text = to_markdown(rows, "a", "b", 0.05, 1.0, "cmd")
    assert "**no**" in text and "-0.100" in text


def test_crop_figure_has_a_row_per_sigma(tiny_model, rng, monkeypatch):
    from fllic.baselines.denoisers import Cbm3d, Ffdnet
    from fllic.bench.crops import figure

    monkeypatch.setattr(Cbm3d, "available", classmethod(lambda cls: False))
    monkeypatch.setattr(Ffdnet, "available", classmethod(lambda cls: False))
    clean = noisy_image(rng, 96, 120)
    fig = figure(clean, [10.0, 30.0], (20, 24, 40), model=tiny_model)
    assert fig.dtype == np.uint8 and fig.ndim == 3
    assert fig.shape[0] == 2 * (40 + 18 + 4)  # two rows of labelled tiles
    assert fig.shape[1] == 3 * (40 + 4)  # noisy, fllic, clean


def test_real_photograph_bench_caps_at_the_source_jpeg(tmp_path, capsys):
    """bench.real on generated NAME_Real.jpg / NAME_mean.png pairs: rows, the size cap, the gain sweep."""
    from PIL import Image

    from fllic.bench.real import folds, main as real_main, pairs
    from tests.conftest import noisy_image

    rng = np.random.default_rng(0)
    for name in ("camA_one", "camA_two", "camB_three"):
        clean = noisy_image(rng, 96, 96)
        Image.fromarray(clean).save(tmp_path / f"{name}_mean.png")
        noisy = np.clip(clean + rng.normal(0, 6, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(tmp_path / f"{name}_Real.jpg", quality=80)
    assert [s for s, _, _ in pairs(tmp_path)] == ["camA_one", "camA_two", "camB_three"]
    assert folds(["a", "b", "c"]) == (["a", "c"], ["b"])
    out = tmp_path / "real.md"
    assert real_main(["--data", str(tmp_path), "--crop", "64", "--cbm3d-sigmas", "--out", str(out)]) == 0
    text = out.read_text()
    assert "**mean of 3**" in text and "python -m fllic.bench.real" in text
    for line in text.splitlines()[8:11]:  # each photograph's fllic bpp is at most its source JPEG's
        cells = [c.strip() for c in line.split("|")]
        assert float(cells[7]) <= float(cells[4]) + 1e-9
    assert real_main(["--data", str(tmp_path), "--crop", "64", "--gains", "1", "2"]) == 0
    assert "| camA (2) |" in capsys.readouterr().out
    assert real_main(["--data", str(tmp_path), "--crop", "64", "--estimate-gains", "1", "2"]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| all 3 (3) |"))
    cells = [float(c) for c in row.split("|")[2:7]]  # gain 1, gain 2, metric Q's pick, best per photo, true map
    assert cells[3] >= max(cells[:3]) - 1e-9  # the per-photo oracle is at least each gain's mean and Q's pick
    assert min(cells[:2]) - 1e-9 <= cells[2]  # Q picks one of the gains per photo


def test_ensembles_put_every_pixel_back_where_it_came_from(monkeypatch):
    """The rotations and the pixel-shuffled sub-images of --ensembles: with a stand-in trunk that returns its
    input plus its noise map's mean, every estimate is the image itself, turned back and put back in place."""
    from fllic.bench import real

    monkeypatch.setattr(real, "trunk_estimate", lambda m, noisy, level_map, sigma: noisy + np.uint8(level_map[0].mean()))
    rng = np.random.default_rng(3)
    noisy = rng.integers(0, 200, (6, 10, 3), dtype=np.uint8)
    std = np.full(noisy.shape[:2], 2.0)
    for turns in (1, 4):
        assert np.array_equal(real._turned_estimate(None, noisy, std, 1.0, 5.0, turns), noisy + 2.0)
        assert np.array_equal(real._sub_image_estimate(None, noisy, std, 1.0, 5.0, turns), noisy + 2.0)


def test_real_photograph_bench_measures_ensembles(tmp_path, capsys):
    """--ensembles: one pass, sub-images and their mean, each once and over four rotations, per camera and fold."""
    from PIL import Image

    from fllic.bench.real import main as real_main
    from tests.conftest import noisy_image

    rng = np.random.default_rng(2)
    for name in ("camA_one", "camB_two"):
        clean = noisy_image(rng, 64, 64)
        Image.fromarray(clean).save(tmp_path / f"{name}_mean.png")
        noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(tmp_path / f"{name}_Real.jpg", quality=85)
    assert real_main(["--data", str(tmp_path), "--crop", "64", "--ensembles"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")]
    assert "mean of both, 4 rotations (8x)" in lines[0]
    rows = {ln.split("|")[1].strip(): [float(c) for c in ln.split("|")[2:8]] for ln in lines[1:]}
    assert set(rows) == {"camA (1)", "camB (1)", "fold a (1)", "fold b (1)", "all 2 (2)"}
    from fllic.models.registry import CAMERA_JPEG_MODEL, resolve

    gain = resolve(CAMERA_JPEG_MODEL).meta.get("correlated_gain", 1.0)
    assert real_main(["--data", str(tmp_path), "--crop", "64", "--estimate-gains", str(gain)]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| all 2 (2) |"))
    assert float(row.split("|")[2]) == rows["all 2 (2)"][0]  # one pass is the estimate at the model's own gain


def test_real_photograph_bench_picks_each_baselines_best_sigma(tmp_path, capsys, monkeypatch):
    """--cbm3d-sigmas and --ffdnet-sigmas: each baseline's column holds its best sigma against the reference,
    the mean row beside them; stand-in denoisers (a box blur whose width is the sigma) keep the test light."""
    from PIL import Image
    from scipy.ndimage import uniform_filter

    from fllic.bench import real

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    for k, name in enumerate(("camA_one", "camB_two")):
        ramp = 60 + xx + (k + 1) * 0.5 * yy
        clean = np.stack([ramp, ramp * 0.8, 255 - ramp], axis=2).clip(0, 255).astype(np.uint8)
        Image.fromarray(clean).save(tmp_path / f"{name}_mean.png")
        noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(tmp_path / f"{name}_Real.png")
    blur = lambda img, s: uniform_filter(img.astype(float), (s, s, 1)).round().clip(0, 255).astype(np.uint8)
    monkeypatch.setattr(real, "BASELINES", {"cbm3d": ("CBM3D", blur), "ffdnet": ("FFDNet", blur)})
    assert real.main(["--data", str(tmp_path), "--crop", "64", "--cbm3d-sigmas", "1", "3",
                      "--ffdnet-sigmas", "1", "3"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")]
    assert "CBM3D best σ" in lines[0] and "FFDNet best σ" in lines[0]
    for line in lines[1:3]:  # the rule line starts "|-"
        cells = [c.strip() for c in line.split("|")]
        assert cells[11] == cells[16] == "3.0"  # a 3-pixel blur beats none on noise of std 12
        assert float(cells[12]) > float(cells[3])  # and gains over the noisy crop
        assert float(cells[10]) > 0 and float(cells[9]) > 0  # fllic's own trunk → JPEG-XL beside them
    assert lines[3].startswith("| **mean of 2** |")


def test_metric_q_falls_with_noise_and_with_blur():
    """Zhu and Milanfar's metric Q, the bench's noisy-only gain criterion: highest on the clean edges, lower
    with noise left in and with detail smoothed away, so its maximum over a denoiser's settings lies between."""
    from scipy.ndimage import gaussian_filter

    from fllic.bench.real import ANISOTROPIC, anisotropy_q

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    clean = 128 + 60 * np.sign(np.sin((xx + 0.5 * yy) / 5.0))
    noisy = clean + rng.normal(0, 20, clean.shape)
    selected = anisotropy_q(noisy)[1] > ANISOTROPIC
    score = lambda img: anisotropy_q(img)[0][selected].mean()
    assert selected.mean() > 0.3  # the stripes' patches test as anisotropic through the noise
    assert score(clean) > score(gaussian_filter(clean, 2.0)) and score(clean) > score(noisy)
    assert abs(ANISOTROPIC - 0.234) < 0.001  # the test's threshold at significance 0.001 over 8x8 patches


def test_halves_split_a_set_by_name_and_never_overlap(tmp_path):
    from fllic.bench.runner import list_images
    from fllic.bench.splits import DEV_IMAGES, split

    for i in range(68):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / f"{67 - i:03d}.png")
    dev, test = list_images(tmp_path, half="dev"), list_images(tmp_path, half="test")
    assert [p.name for p in dev] == [f"{i:03d}.png" for i in range(DEV_IMAGES)]
    assert [p.name for p in test] == [f"{i:03d}.png" for i in range(DEV_IMAGES, 68)]
    assert list_images(tmp_path, limit=3, half="test") == test[:3]
    assert len(list_images(tmp_path)) == 68
    with pytest.raises(ValueError):
        split(dev, "validation")


def test_package_bench_counts_the_wheels_weight_files(tmp_path):
    import zipfile

    from fllic.bench.package import _tree_bytes, wheel_contents

    wheel = tmp_path / "fllic-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
        z.writestr("fllic/models/weights/m.pt", b"x" * 1000)
        z.writestr("fllic/models/weights/m-decoder.npz", b"y" * 300)
        z.writestr("fllic/codec.py", b"z" * 50)
    sizes = wheel_contents(wheel)
    assert (sizes["pt"], sizes["npz"]) == (1000, 300) and sizes["all"] == wheel.stat().st_size > 1350
    assert _tree_bytes(tmp_path) == wheel.stat().st_size


def test_package_bench_weighs_the_environment_and_the_weights_entropy(tmp_path):
    import io

    import numpy as np

    from fllic.bench.package import _entropy_bytes, _npz_floor, environment_parts

    assert _entropy_bytes(np.array([0, 0, 1, 1])) == 0.5 and _entropy_bytes(np.zeros(9, np.int8)) == 0
    buf = io.BytesIO()  # a .w_int as byte planes: 4 distinct values, 2 bits each; a constant array: nothing
    np.savez(buf, meta=np.array("{}"), **{"decoder.c.w_int.hi": np.array([0, 0, -1, -1], np.int8),
                                          "decoder.c.w_int.lo": np.array([1, 2, 3, 4], np.uint8),
                                          "decoder.c.shift": np.full(4, 9, np.int32)})
    assert _npz_floor(buf.getvalue()) == 1.0
    site = tmp_path / "lib" / "python3.x" / "site-packages"
    for name, size in (("PIL/a.so", 700), ("pillow.libs/b.so", 300), ("numpy/c.so", 500), ("tqdm/d.py", 10),
                       ("tqdm-4.0.dist-info/RECORD", 5)):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"x" * size)
    (tmp_path / "pyvenv.cfg").write_bytes(b"y" * 7)
    assert environment_parts(tmp_path, top=2) == [("pillow", 1000), ("numpy", 500), ("other site-packages", 15),
                                                  ("the rest (interpreter links, scripts)", 7)]


def test_record_command_writes_home_paths_with_a_tilde():
    from pathlib import Path

    from fllic.bench._record import command

    line = command("python -m fllic.bench.real", ["--adapted", str(Path.home() / "x" / "m.fllicm"), "--crop", "64"])
    assert line == "python -m fllic.bench.real --adapted ~/x/m.fllicm --crop 64"
    python = f"qemu -L {Path.home() / 'r'} {Path.home() / 'r' / 'python3'}"
    assert command("p", ["--python", python, "--sigmas", "6", "9"]) == "p --python 'qemu -L ~/r ~/r/python3' --sigmas 6 9"
    inner = f"~/x{Path.home()}/y"  # the home folder's path inside another path stays as it is
    assert command("p", ["--a", inner, f"--b={Path.home()}/z"]) == f"p --a {inner} --b=~/z"


def test_a_misaligned_reference_shows_at_edges_and_rewards_blur():
    """An exact reference leaves noise alike at edges and in flat parts, and blurring a noisy textured image
    loses against it; a reference shifted by a pixel (shots not aligned) differs at edges, and blur gains."""
    from fllic.bench.reference import blur_gains, edge_ratio

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:160, 0:160]
    clean = np.stack([128 + 80 * np.sign(np.sin(xx / 9.0 + c)) * np.sign(np.sin(yy / 7.0)) for c in range(3)], 2)
    clean = np.clip(clean, 0, 255)
    noisy = np.clip(np.rint(clean + rng.normal(0, 3.0, clean.shape)), 0, 255).astype(np.uint8)
    exact = clean.astype(np.uint8)
    shifted = np.roll(exact, 1, axis=1)
    assert edge_ratio(noisy, exact) < 1.5 < 2.0 < edge_ratio(noisy, shifted)
    assert blur_gains(noisy, exact, [1.0])[0] < 0 < blur_gains(noisy, shifted, [1.0])[0]


def test_the_cap_table_gives_each_caps_mean_worst_and_losses():
    from fllic.bench.textured import cap_table

    sweep = {"a": {None: -3.0, 6.0: 0.5}, "b": {None: 1.0, 6.0: 0.9}}
    lines = cap_table({"textured": sweep})
    assert lines[2] == "| as read (no cap) | -1.00 dB, -3.00, 1 |"
    assert lines[3] == "| at most 6 x PCA | +0.70 dB, +0.50, 0 |"


def test_portable_bench_decodes_under_another_python_by_both_decoders():
    """--python: one process per decoder under the given interpreter, its description first, one hash per file."""
    import json
    import platform
    import sys
    from pathlib import Path

    from fllic.bench.portable import decode_foreign

    golden = Path(__file__).parent / "golden"
    name = "camera5_rgb_72x90_q6.fllic"
    want = json.loads((golden / "golden.json").read_text())[name]["sha256"]
    for decoder in ("reference", "torch"):
        where, hashes = decode_foreign([sys.executable], [], decoder, [golden / name, golden / name])
        assert where.split()[1:3] == [platform.python_version(), "torch"] and hashes == [want, want]


def test_latent_bench_costs_a_files_y_symbols_to_about_its_y_section():
    import fllic
    from fllic import format as fmt
    from fllic.bench.latents import channel_bits
    from fllic.noise import add_noise

    rng = np.random.default_rng(4)
    img = np.clip(np.cumsum(rng.normal(0, 6, (96, 128, 3)), axis=1) + 120, 0, 255).astype(np.uint8)
    data = fllic.encode(add_noise(img, 25.0, seed=0), sigma=25.0, quality=3)
    bits = channel_bits(data)
    y_bits = 8 * len(fmt.unpack(data).sections["Y"])
    assert bits.shape == (192,) and bits.min() >= 0 and abs(bits.sum() - y_bits) <= 0.03 * y_bits + 64


def test_real_photograph_bench_passes_its_adaptation_settings_to_fllic_adapt():
    import argparse

    from fllic.adapt import AdaptOptions
    from fllic.bench.real import _adapt_options

    args = argparse.Namespace(adapt_minutes=5.0, adapt_objective="recorrupt", adapt_lr=1e-4, adapt_anchor=0.1,
                              adapt_threads=None, adapt_sample_level=1.0)
    opts = _adapt_options(args)
    assert (opts.minutes, opts.objective, opts.lr, opts.anchor, opts.sample_level) == (5.0, "recorrupt", 1e-4, 0.1, 1.0)
    assert opts.threads == AdaptOptions().threads  # not given: fllic adapt's own default
    args.adapt_sample_level = None
    assert _adapt_options(args).sample_level == AdaptOptions().sample_level


def test_the_decode_table_times_each_decode_against_the_first_and_flags_a_mismatch():
    from fllic.bench.large import _label, _tile_table
    from fllic.codec import DECODE_TILE, DEFAULT_TILE

    first = {"seconds": 10.0, "peak_mb": 1400.0, "identical": True}
    rows = _tile_table(_label("torch", None), first,
                       [(_label("reference", 1536), {"seconds": 8.0, "peak_mb": 1900.0, "identical": False})], 24.0)
    assert _tile_table("torch, 768", first, [], 24.0) == []
    assert rows[-2] == f"| torch, {DECODE_TILE} | 10.0 | 1.00x | 2.40 | 1400 | yes |"
    assert rows[-1] == "| reference, 1536 | 8.0 | 0.80x | 3.00 | 1900 | NO |"
    assert _label("reference", None) == f"reference, {DEFAULT_TILE}"


def test_the_large_image_bench_names_the_codecs_default_tiles_unless_one_is_given():
    from fllic.bench.large import _tiles
    from fllic.codec import DECODE_TILE, DEFAULT_TILE

    assert _tiles(512) == "tiles of 512 px"
    assert f"{DEFAULT_TILE} px to encode, {DECODE_TILE} px to decode" in _tiles(None)


def test_the_large_image_bench_encodes_with_refinement_when_asked(tmp_path, monkeypatch):
    """--refine N reaches the encoder (the refined file differs), and the file still decodes to its pixels."""
    import fllic.codec
    from fllic.bench.large import _child_decode, _child_encode
    from fllic.imageio import write_image

    src = tmp_path / "noisy.png"
    write_image(src, noisy_image(np.random.default_rng(5), 64, 64))
    seen = []
    real = fllic.codec.encode_detailed
    monkeypatch.setattr(fllic.codec, "encode_detailed", lambda *a, **kw: seen.append(kw["refine"]) or real(*a, **kw))
    plain, refined = _child_encode(src, tmp_path / "plain.fllic", 25.0, 64), _child_encode(src, tmp_path / "r.fllic", 25.0, 64, refine=2)
    assert seen == [0, 2] and plain["bytes"] > 0 and refined["peak_mb"] > 0
    assert (tmp_path / "plain.fllic").read_bytes() != (tmp_path / "r.fllic").read_bytes()
    assert _child_decode(tmp_path / "r.fllic", 64)["identical"]
    from fllic import tiling

    monkeypatch.setattr(tiling, "BAND_LATENTS", tiling.BAND_LATENTS)  # restored after the test
    assert _child_decode(tmp_path / "r.fllic", 64, band=1)["identical"] and tiling.BAND_LATENTS == 1


def test_the_heap_bench_times_each_setting_and_checks_the_pixels_agree():
    """One child's measurements (glibc's default, a strip 128 px wide), reported for every setting: every size
    and step has its row, every ratio is 1.00x, and the pixels are identical."""
    from fllic.bench import heap

    one = heap._child(heap.HEAPS[0], 128, 1)
    assert set(one["elementwise"]) == {f"{mb} {k}" for mb in heap.SIZES_MB for k in ("new", "in place")}
    assert all(v > 0 for v in one["elementwise"].values())
    text = heap.report({h: one for h in heap.HEAPS}, 128, 1, 2, ["--width", "128"])
    assert text.count("(1.00x)") == 4 * len(heap.HEAPS) and text.count("| yes |") == 4
    assert "| 768x512, whole | first |" in text and "| 128x128, streamed | later (median) |" in text
    assert text.count("| a >> 3 (a new result) |") == len(heap.SIZES_MB)


def test_speed_side_by_side_decodes_both_models_exactly_and_gives_the_ratio(tmp_path, tiny_model_path, capsys):
    from dataclasses import replace

    import torch

    from fllic.bench import speed
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

    torch.manual_seed(1)
    deeper = tmp_path / "deeper.pt"
    finalize(FLLIC(replace(FllicConfig.tiny(), gs_blocks=3)), {"id": "tiny-deeper", "quality_scales": [2.0, 1.0]}).save(deeper)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(noisy_image(rng, 64, 96)).save(tmp_path / f"img{i}.png")
    assert speed.main(["--data", str(tmp_path), "--model", str(tiny_model_path), "--against", str(deeper),
                       "--repeat", "1", "--threads", "1", "--quality", "2"]) == 0
    out = capsys.readouterr().out
    assert "| tiny-deeper / tiny-test |" in out.replace("decode time, ", "")
    assert out.count("| 96x64 |") == 2
    assert "decode time, tiny-deeper against tiny-test: median" in out and "x over 2 images" in out
    narrow = tmp_path / "narrow.pt"
    finalize(FLLIC(replace(FllicConfig.tiny(), gs_narrow=2)), {"id": "tiny-narrow", "quality_scales": [2.0, 1.0]}).save(narrow)
    assert speed.main(["--data", str(tmp_path), "--model", str(tiny_model_path), "--against", str(narrow),
                       "--repeat", "1", "--threads", "1", "--quality", "2", "--decoder", "reference"]) == 0
    out = capsys.readouterr().out
    assert "reference decoder" in out and "decode time, tiny-narrow against tiny-test: median" in out


def test_cold_bench_times_each_decoder_and_shows_autos_choice(tmp_path, capsys):
    from fllic.bench import cold

    clean = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    big = cold.mirrored(clean, 100, 70)
    assert big.shape == (70, 100, 3) and np.array_equal(big[:40, :56], clean)
    assert np.array_equal(big[40:80, :56], clean[::-1][:30])  # mirrored about the bottom edge
    Image.fromarray(clean).save(tmp_path / "clean.png")
    out = tmp_path / "cold.md"
    assert cold.main(["--image", str(tmp_path / "clean.png"), "--sizes", "128x64", "--repeat", "1",
                      "--threads", "1", "--out", str(out)]) == 0
    row = [line for line in out.read_text().splitlines() if line.startswith("| 128x64 |")]
    assert len(row) == 1 and row[0].endswith("(reference) |")  # a small image in a fresh process
    with pytest.raises(SystemExit):
        cold.main(["--sizes", "128by64"])


def test_winograd_f4_is_exact_at_the_bounds():
    """Every tap's input at ±A_MAX with its weight's sign (or against it), one output channel's |w| summing to
    L1_MAX on a single tap and spread over all: F(4x4, 3x3)'s float64 sums are the per-tap products' integers."""
    from fllic.decoder import integer as ni

    for tap in ((2, 2), (0, 0), None):
        w = np.zeros((2, 4, 3, 3))
        if tap:
            w[0, 0][tap], w[1, 3][tap] = ni.L1_MAX, -ni.L1_MAX
        else:
            w[:] = np.where(np.arange(36).reshape(4, 3, 3) % 2, 1, -1) * (ni.L1_MAX // 36)
        signs = np.sign(np.random.default_rng(0).standard_normal((8, 12, 4)))
        for a in (np.full((8, 12, 4), float(ni.A_MAX)), -ni.A_MAX * signs):
            per_tap, f4 = (ni.Conv(w.astype(np.int64), np.zeros(2, np.int64), np.full(2, 9), winograd=k) for k in (0, 4))
            assert np.array_equal(f4.sums(a), per_tap.sums(a))


def test_every_convolution_kernel_the_bench_times_gives_the_reference_decoders_integers(monkeypatch, tmp_path):
    from fllic.bench import kernels

    rows = kernels.measure(12, 8, 8, 16, repeat=1)
    assert [exact for _, _, exact in rows] == [True, True, True, True, True, None, None, True, True]
    assert rows[5][0].endswith(f"x{kernels.INT8_PIECES} pieces") and all(s >= 0 for _, s, _ in rows)
    assert rows[5][1] == kernels.INT8_PIECES * rows[6][1]  # the split's products, six of the one
    assert all(name.startswith("narrow layer") for name, _, _ in rows[7:])  # each checked against the reference
    a, w = kernels._layer(12, 8, 8, 16)
    assert np.abs(a).max() > 0.9 * 32639 and np.abs(w).reshape(16, -1).sum(1).max() <= (1 << 17) - 1
    real = kernels.winograd_torch
    monkeypatch.setattr(kernels, "winograd_torch", lambda a, w: real(a, w) + (1 << 20))  # a broken kernel
    out = tmp_path / "kernels.md"
    assert kernels.main(["--size", "8", "12", "--channels", "8", "16", "--repeat", "1", "--out", str(out)]) == 1
    assert "| Winograd F(2x2, 3x3), float64, PyTorch |" in out.read_text().split("NO |")[0]


def test_the_in_process_bench_tiles_its_image_to_each_size_and_rates_torch_against_the_reference():
    from fllic.bench.in_process import _row, _tiled

    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    big = _tiled(img, 7, 5)
    assert big.shape == (5, 7, 3) and np.array_equal(big[:2, :3], img)
    assert np.array_equal(big[:2, 3:6], img[:, ::-1]) and np.array_equal(big[2:4, :3], img[::-1])  # mirrored
    assert _row("1024x1024", 0.5, 1.0) == "| 1024x1024 | 1.05 | 0.50 | 1.00 | 0.50x |"
