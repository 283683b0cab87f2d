import json

import numpy as np
import pytest
from PIL import Image

import fllic
from fllic.cli import main
from tests.conftest import noisy_image


@pytest.fixture
def png(tmp_path, rng):
    path = tmp_path / "noisy.png"
    Image.fromarray(noisy_image(rng, 37, 31)).save(path)
    return path


def test_compress_decompress_info(tmp_path, png, tiny_model_path, capsys):
    f = tmp_path / "x.fllic"
    assert main(["compress", str(png), "-o", str(f), "--sigma", "20", "--model", str(tiny_model_path)]) == 0
    assert fllic.check(f.read_bytes())
    out = tmp_path / "x.png"
    assert main(["decompress", str(f), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    decoded = np.asarray(Image.open(out))
    assert decoded.shape == (37, 31, 3)
    assert np.array_equal(decoded, fllic.decode(f.read_bytes(), model=str(tiny_model_path)))
    capsys.readouterr()
    assert main(["info", str(f), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["width"] == 31 and meta["height"] == 37 and meta["sigma"] == 20.0
    assert meta["bpp"] == pytest.approx(8 * f.stat().st_size / (37 * 31))
    assert main(["info", str(f)]) == 0
    assert "tiny-test" in capsys.readouterr().out


@pytest.mark.parametrize("suffix, mode", [(".tif", "L"), (".bmp", "RGB"), (".jpg", "L")])
def test_grey_and_colour_formats_keep_their_mode(tmp_path, rng, tiny_model_path, suffix, mode):
    src = tmp_path / f"in{suffix}"
    Image.fromarray(noisy_image(rng, 20, 33, channels=1 if mode == "L" else 3)).save(src)
    f, out = tmp_path / "a.fllic", tmp_path / "a.png"
    assert main(["compress", str(src), "-o", str(f), "--model", str(tiny_model_path)]) == 0
    assert main(["decompress", str(f), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    with Image.open(out) as im:
        assert im.mode == mode and im.size == (33, 20)


def test_existing_output_needs_force(tmp_path, png, tiny_model_path, capsys):
    f = tmp_path / "x.fllic"
    f.write_bytes(b"keep me")
    assert main(["compress", str(png), "-o", str(f), "--model", str(tiny_model_path)]) == 1
    assert f.read_bytes() == b"keep me"
    assert "--force" in capsys.readouterr().err
    assert main(["compress", str(png), "-o", str(f), "--model", str(tiny_model_path), "--force"]) == 0
    assert fllic.check(f.read_bytes())


def test_errors_are_one_line_without_traceback(tmp_path, png, tiny_model_path, capsys):
    not_image = tmp_path / "a.png"
    not_image.write_text("hello")
    corrupt = tmp_path / "c.fllic"
    good = tmp_path / "g.fllic"
    main(["compress", str(png), "-o", str(good), "--model", str(tiny_model_path)])
    corrupt.write_bytes(good.read_bytes()[:-9])
    cases = [
        ["compress", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.fllic")],
        ["compress", str(not_image), "-o", str(tmp_path / "o.fllic")],
        ["compress", str(png), "-o", str(tmp_path / "o.fllic"), "--model", "no-such-model"],
        ["compress", str(png), "-o", str(tmp_path / "o.fllic"), "--model", str(tiny_model_path), "--quality", "7"],
        ["decompress", str(corrupt), "-o", str(tmp_path / "o.png")],
        ["decompress", str(tmp_path / "missing.fllic"), "-o", str(tmp_path / "o.png")],
        ["decompress", str(good), "-o", str(tmp_path / "o.png")],  # written by a model that is not shipped
        ["info", str(not_image)],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("fllic: error:") and err.count("\n") == 1 and "Traceback" not in err, (argv, err)


def test_models_lists_the_shipped_model(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["id"] == "fllic-awgn-v1" and len(rows[0]["weights_hash"]) == 32
    assert all(r["decodes"] for r in rows)  # with torch, every shipped model decodes, and all but retired encode
    assert all(r["encodes"] for r in rows if not r["retired"])


def test_demo_runs_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--sigma", "15"]) == 0
    text = capsys.readouterr().out
    assert "fllic (quality" in text and "JPEG-XL lossless" in text and "PNG" in text
    assert (out / "decoded.png").exists() and fllic.check((out / "sample.fllic").read_bytes())
    assert main(["demo", "--out", str(out)]) == 1


def test_device_option(tmp_path, png, tiny_model_path, capsys):
    import torch

    f = tmp_path / "d.fllic"
    model = ["--model", str(tiny_model_path)]
    assert main(["compress", str(png), "-o", str(f), "--sigma", "20", "--device", "cpu", *model]) == 0
    assert main(["decompress", str(f), "-o", str(tmp_path / "d.png"), "--device", "cpu", *model]) == 0
    if not torch.cuda.is_available():
        capsys.readouterr()
        assert main(["decompress", str(f), "-o", str(tmp_path / "e.png"), "--device", "cuda", *model]) == 1
        err = capsys.readouterr().err
        assert "CUDA is not available" in err and "Traceback" not in err


def _ramp_noise(rng, sigma_of, h=160, w=224):
    x = np.linspace(20, 235, w)[None, :].repeat(h, 0)
    clean = np.stack([x, 0.8 * x + 20, 0.9 * x + 10], axis=2)
    return np.clip(np.rint(clean + rng.normal(size=clean.shape) * sigma_of(clean)), 0, 255).astype(np.uint8)


def test_noise_json_gives_the_noise_level_function(tmp_path, rng, capsys):
    path = tmp_path / "shot.png"
    Image.fromarray(_ramp_noise(rng, lambda c: np.sqrt(4.0 + 0.5 * c))).save(path)
    assert main(["noise", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    nlf = report["nlf"]
    assert len(nlf["intensity"]) >= 4 and len(nlf["sigma"]) == len(nlf["intensity"])
    assert nlf["sigma"][-1] > nlf["sigma"][0] + 3  # noise grows with intensity
    assert 0.85 < report["texture_ratio"] < 1.05  # noise, not texture, fills the smoothest patches
    assert main(["noise", str(path)]) == 0
    assert "noise-level function" in capsys.readouterr().out


def test_entropy_estimates_clean_bits_and_falls_back_to_a_clear_error(tmp_path, rng, capsys, monkeypatch):
    import fllic.entropy.clean as clean

    path = tmp_path / "noisy.png"
    Image.fromarray(_ramp_noise(rng, lambda c: 10.0)).save(path)
    assert main(["entropy", str(path), "--model", "no-such-model"]) == 1
    assert "no H(I) calibration" in capsys.readouterr().err
    monkeypatch.setattr(clean, "load_calibration", lambda m: clean.Calibration(8.0, 1.0, 0.05, 1.2, m))
    assert main(["entropy", str(path), "--sigma", "10", "--json"]) == 0
    low = json.loads(capsys.readouterr().out)
    assert low["sigma"] == 10 and low["clean_bpp"] >= 0.05
    assert low["model"] == clean.CALIBRATED_MODEL  # H(I) in the calibrated model's bits unless --model names another
    assert low["estimator"] == "line"  # the stand-in calibration has no regressor weights
    assert main(["entropy", str(path), "--sigma", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clean_bpp"] > low["clean_bpp"]  # the noise would cost bits
    assert main(["entropy", str(path), "--sigma", "-3"]) == 1


def test_large_images_bound_the_heap_and_small_ones_keep_the_default(tmp_path, png, tiny_model_path, monkeypatch):
    """compress and decompress, single and batch, hand every image's pixel count to fllic._heap.bound_for, which
    changes malloc's settings only from LARGE_PIXELS on (and takes them where the C library is glibc); decoding
    does so where PyTorch's decoder runs, not the reference decoder, whose bands bound its memory."""
    import fllic._heap as heap
    from fllic import batch, cli
    from fllic.codec import bound_decode_heap
    from fllic.models.registry import DEFAULT_MODEL

    seen, bound_for = [], heap.bound_for
    monkeypatch.setattr(cli, "bound_for", seen.append)
    monkeypatch.setattr(batch, "bound_for", seen.append)
    monkeypatch.setattr(heap, "bound_for", seen.append)  # decoding's, through fllic.codec.bound_decode_heap
    f = tmp_path / "x.fllic"
    assert main(["compress", str(png), "-o", str(f), "--sigma", "20", "--model", str(tiny_model_path)]) == 0
    assert main(["decompress", str(f), "-o", str(tmp_path / "x.png"), "--model", str(tiny_model_path)]) == 0
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(png.read_bytes())
    assert main(["compress", str(folder), "-o", str(tmp_path / "coded"), "--sigma", "20",
                 "--model", str(tiny_model_path), "-q"]) == 0
    assert main(["decompress", str(tmp_path / "coded"), "-o", str(tmp_path / "decoded"),
                 "--model", str(tiny_model_path), "-q"]) == 0
    assert seen == [37 * 31] * 6  # the tiny model's file: PyTorch's decoder
    bound_decode_heap(8, "reference", named=DEFAULT_MODEL)  # the reference decoder's bands bound its memory
    bound_decode_heap(9, "torch", named=DEFAULT_MODEL)
    assert seen[6:] == [9]
    calls = []
    monkeypatch.setattr(heap, "bound", lambda: calls.append(1) or True)
    assert not bound_for(heap.LARGE_PIXELS - 1) and calls == []
    assert bound_for(heap.LARGE_PIXELS) and calls == [1]
