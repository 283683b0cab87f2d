"""The command line never surprises: passthrough, extras, lossy outputs, stdin/stdout, help, warnings."""

import argparse
import io
import struct
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

import fllic
from fllic.cli import build_parser, main
from tests.conftest import noisy_image


@pytest.fixture
def png(tmp_path, rng):
    path = tmp_path / "noisy.png"
    Image.fromarray(noisy_image(rng, 37, 31)).save(path)
    return path


@pytest.fixture
def coded(tmp_path, png, tiny_model_path):
    f = tmp_path / "x.fllic"
    assert main(["compress", str(png), "-o", str(f), "--sigma", "20", "--model", str(tiny_model_path), "-q"]) == 0
    return f


def _one_error_line(err: str) -> bool:
    return err.startswith("fllic: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_train_passes_every_argument_through(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    assert "--data" in capsys.readouterr().out


def test_train_runs_with_its_own_options(tmp_path, rng):
    for name in ("CBSD432", "WikipediaPhotos", "BSD400"):
        (tmp_path / "d" / name).mkdir(parents=True)
        Image.fromarray(noisy_image(rng, 80, 96)).save(tmp_path / "d" / name / "0.png")
    argv = ["train", "--data", str(tmp_path / "d"), "--workdir", str(tmp_path / "w"), "--tiny", "--batch", "2",
            "--patch", "64", "--threads", "1", "--steps", "1"]
    assert main(argv) == 0 and (tmp_path / "w" / "checkpoint.pt").exists()


def test_missing_optional_extra_is_one_line_naming_the_install(monkeypatch, capsys):
    import fllic.bench.cli as bench_cli

    def missing(args):
        raise ModuleNotFoundError("No module named 'pytorch_msssim'", name="pytorch_msssim")

    monkeypatch.setattr(bench_cli, "run", missing)
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err) and "pip install" in err and "pytorch-msssim" in err and ".[bench]" in err


def test_lossy_output_is_refused_unless_asked(tmp_path, coded, tiny_model_path, capsys):
    model = ["--model", str(tiny_model_path), "-q"]
    assert main(["decompress", str(coded), "-o", str(tmp_path / "o.jpg"), *model]) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err) and "lossy" in err and not (tmp_path / "o.jpg").exists()
    assert main(["decompress", str(coded), "-o", str(tmp_path / "o.jpg"), "--allow-lossy", *model]) == 0


def test_webp_output_is_lossless(tmp_path, coded, tiny_model_path):
    assert main(["decompress", str(coded), "-o", str(tmp_path / "o.webp"), "--model", str(tiny_model_path), "-q"]) == 0
    exact = fllic.decode(coded.read_bytes(), model=str(tiny_model_path))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.webp")), exact)


def test_output_may_never_be_the_input(png, coded, tiny_model_path, capsys):
    before = png.read_bytes()
    assert main(["compress", str(png), "-o", str(png), "--force", "--model", str(tiny_model_path)]) == 1
    assert png.read_bytes() == before and "never overwrites its input" in capsys.readouterr().err
    assert main(["decompress", str(coded), "-o", str(coded), "--force", "--model", str(tiny_model_path)]) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"fllic {fllic.__version__}"


def test_stdin_and_stdout(monkeypatch, png, tiny_model_path, capsysbinary):
    class Stdin:
        buffer = io.BytesIO(png.read_bytes())

    monkeypatch.setattr(sys, "stdin", Stdin)
    assert main(["compress", "-", "-o", "-", "--sigma", "20", "--model", str(tiny_model_path), "-q"]) == 0
    data = capsysbinary.readouterr().out
    assert fllic.check(data)

    class Coded:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Coded)
    assert main(["decompress", "-", "-o", "-", "--model", str(tiny_model_path), "-q"]) == 0
    image = np.asarray(Image.open(io.BytesIO(capsysbinary.readouterr().out)))
    assert np.array_equal(image, fllic.decode(data, model=str(tiny_model_path)))


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {a}", h) for a, h in _actions(sub))
        elif not isinstance(action, argparse._HelpAction):
            yield "/".join(action.option_strings) or action.dest, action.help


def test_every_option_has_help_text():
    missing = [name for name, text in _actions(build_parser()) if not text]
    assert not missing, missing


def test_sigma_beyond_the_model_range_warns(png, tmp_path, tiny_model_path, capsys):
    assert main(["compress", str(png), "-o", str(tmp_path / "s.fllic"), "--sigma", "80",
                 "--model", str(tiny_model_path), "-q"]) == 0
    err = capsys.readouterr().err
    assert "fllic: warning: sigma 80 is outside the range 0-50" in err and "Traceback" not in err


def _with_wrong_pixel_crc(data: bytes) -> bytes:
    """The same file with a wrong pixel CRC and a recomputed file CRC: it decodes, but fails verification."""
    info = fllic.info(data)
    crc = int(info["pixels_crc32"], 16)
    body = bytearray(data[:-4])
    at = bytes(body).index(struct.pack("<I", crc))
    body[at : at + 4] = struct.pack("<I", crc ^ 1)
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def _with_a_flipped_byte(data: bytes) -> bytes:
    """The same file with one bit flipped in its coded data: the file CRC no longer matches."""
    body = bytearray(data)
    body[len(body) // 2] ^= 0x10
    return bytes(body)


def test_a_flipped_byte_is_refused_with_the_way_out_and_best_effort_writes_it(tmp_path, coded, tiny_model_path,
                                                                               capsys):
    bad = tmp_path / "bad.fllic"
    bad.write_bytes(_with_a_flipped_byte(coded.read_bytes()))
    model = ["--model", str(tiny_model_path), "-q"]
    assert main(["decompress", str(bad), "-o", str(tmp_path / "b.png"), *model]) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err) and "file CRC mismatch" in err and "--best-effort decodes it anyway" in err
    assert main(["decompress", str(bad), "-o", str(tmp_path / "b.png"), "--best-effort", *model]) == 0
    assert "damaged" in capsys.readouterr().err and (tmp_path / "b.png").exists()
    (tmp_path / "text.fllic").write_text("not a fllic file")
    assert main(["decompress", str(tmp_path / "text.fllic"), "-o", str(tmp_path / "c.png"), *model]) == 1
    err = capsys.readouterr().err  # no way out is offered where there is none
    assert _one_error_line(err) and "bad magic" in err and "--best-effort" not in err


def test_best_effort_in_batch_mode_writes_the_damaged_file_too(tmp_path, coded, tiny_model_path, capsys):
    folder = tmp_path / "coded"
    folder.mkdir()
    (folder / "bad.fllic").write_bytes(_with_a_flipped_byte(coded.read_bytes()))
    model = ["--model", str(tiny_model_path), "-q"]
    assert main(["decompress", str(folder), "-o", str(tmp_path / "strict"), *model]) == 1
    assert not list((tmp_path / "strict").rglob("*.png"))
    assert main(["decompress", str(folder), "-o", str(tmp_path / "lenient"), "--best-effort", *model]) == 0
    assert [p.name for p in (tmp_path / "lenient").rglob("*.png")] == ["bad.png"]


def test_damaged_payload_is_reported_and_best_effort_writes_it(tmp_path, coded, tiny_model_path, capsys):
    bad = tmp_path / "bad.fllic"
    bad.write_bytes(_with_wrong_pixel_crc(coded.read_bytes()))
    model = ["--model", str(tiny_model_path), "-q"]
    assert main(["decompress", str(bad), "-o", str(tmp_path / "b.png"), *model]) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err) and "CRC32" in err and "--best-effort" in err
    assert main(["decompress", str(bad), "-o", str(tmp_path / "b.png"), "--best-effort", *model]) == 0
    assert "best effort" in capsys.readouterr().err and (tmp_path / "b.png").exists()


@pytest.mark.parametrize("bad", [None, "text", 3.5, [1, 2], object(), {"a": 1}, np.zeros((4, 4), np.float32)])
def test_public_functions_raise_only_fllic_errors_on_bad_input(bad, tiny_model):
    img = np.zeros((8, 8), np.uint8)
    calls = [lambda: fllic.decode(bad, model=tiny_model), lambda: fllic.check(bad), lambda: fllic.info(bad),
             lambda: fllic.encode(bad, sigma=10, model=tiny_model),
             lambda: fllic.encode(img, sigma=10, model=bad if bad is not None else 1)]
    if bad is not None:  # None is a valid sigma (estimate it) and quality (the default)
        calls.append(lambda: fllic.encode(img, sigma=10, model=tiny_model, quality=bad))
    if not isinstance(bad, (float, type(None))):  # a float is a valid sigma
        calls.append(lambda: fllic.encode(img, sigma=bad, model=tiny_model))
    for call in calls:
        with pytest.raises(fllic.FllicError):
            call()


def test_bench_without_its_extras_names_the_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytorch_msssim" else real(name, *a))
    assert main(["bench", "--data", "."]) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err) and "pytorch-msssim" in err


def test_missing_module_name_is_read_from_the_message_when_unpickled():
    from fllic.cli import _missing_extra

    text = _missing_extra("bench", ModuleNotFoundError("No module named 'matplotlib'"))
    assert "matplotlib" in text and ".[bench]" in text


def test_pixel_limit_is_configurable(png, coded, tmp_path, tiny_model_path, capsys):
    model = ["--model", str(tiny_model_path), "-q"]
    assert main(["compress", str(png), "-o", str(tmp_path / "l.fllic"), "--max-pixels", "100", *model]) == 1
    assert "exceeds the limit of 100 pixels" in capsys.readouterr().err
    assert main(["decompress", str(coded), "-o", str(tmp_path / "l.png"), "--max-pixels", "100", *model]) == 1


def test_sigma_auto_and_jpeg_warning(tmp_path, rng, tiny_model_path, capsys):
    src = tmp_path / "photo.jpg"
    Image.fromarray(noisy_image(rng, 64, 64)).save(src, quality=90)
    out = tmp_path / "p.fllic"
    assert main(["compress", str(src), "-o", str(out), "--sigma", "auto", "--model", str(tiny_model_path), "-q"]) == 0
    assert "warning" not in capsys.readouterr().err  # blind: auto mode reads the JPEG's noise itself
    assert fllic.info(out.read_bytes())["sigma"] > 0
    assert len(out.read_bytes()) <= src.stat().st_size  # never larger than the JPEG it came from
    assert main(["compress", str(src), "-o", str(out), "--sigma", "5", "--force", "--model", str(tiny_model_path),
                 "-q"]) == 0
    assert "fllic: warning: the input is a JPEG" in capsys.readouterr().err
    assert main(["compress", str(src), "-o", str(out), "--sigma", "loud", "--force", "--model", str(tiny_model_path)]) == 1
    assert "--sigma must be a number or auto" in capsys.readouterr().err


def test_an_unreadable_image_is_named_without_python_reprs(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["compress", str(bad), "-o", str(tmp_path / "n.fllic"), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: not a readable image" in err and "<stdin>" not in err and "object at 0x" not in err
