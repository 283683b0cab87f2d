"""Decoding needs no PyTorch: the CLI, the Pillow plugin and `fllic models` with torch unimportable; encoding
without it fails in one line that names what to install."""

import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import fllic
from fllic.cli import main
from fllic.imageio import encode_image, read_image

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*.fllic"))
PIP_HINT = 'pip install "fllic[encode]"'

# As if torch were not installed: importing it fails as a missing module does.
_BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
"""

_CLI = _BLOCK_TORCH + """
from fllic.cli import main
rc = main(sys.argv[1:])
if "torch" in sys.modules:
    print("torch was imported", file=sys.stderr)
    rc = 99
sys.exit(rc)
"""


def _without_torch(script: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return _without_torch(_CLI, *argv)


def _one_error_line(err: str) -> bool:
    return err.startswith("fllic: error:") and err.count("\n") == 1 and "Traceback" not in err


# -- decoding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["camera5_rgb_72x90_q6.fllic", "grey_70x130_q4.fllic"])
def test_decompress_writes_the_torch_decoders_pixels(name, tmp_path):
    out = tmp_path / "out.png"
    run = _cli("decompress", str(GOLDEN / name), "-o", str(out), "-q")
    assert run.returncode == 0, run.stderr
    assert np.array_equal(read_image(out), fllic.decode((GOLDEN / name).read_bytes()))


def test_batch_decompress_of_a_folder(tmp_path):
    run = _cli("decompress", str(GOLDEN), "-o", f"{tmp_path}/", "-q")
    assert run.returncode == 0, run.stderr
    for src in GOLDEN_FILES:
        out = tmp_path / f"{src.stem}.png"  # a folder given alone is mirrored
        assert np.array_equal(read_image(out), fllic.decode(src.read_bytes())), src.name


def test_info_json_is_the_same():
    src = GOLDEN / "camera5_rgb_72x90_q6.fllic"
    run = _cli("info", "--json", str(src))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == fllic.info(src.read_bytes())


def test_check_decodes_and_reports_a_damaged_file(tmp_path):
    damaged = tmp_path / "damaged.fllic"
    data = bytearray((GOLDEN / "rgb_65x97_q3.fllic").read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    run = _cli("check", "--decode", *map(str, GOLDEN_FILES))
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(": ok\n") == len(GOLDEN_FILES)
    run = _cli("check", str(damaged), str(GOLDEN_FILES[0]))
    assert run.returncode == 1 and f"{damaged}: damaged" in run.stdout and f"{GOLDEN_FILES[0]}: ok" in run.stdout


def test_the_pillow_plugin_opens_a_golden_file():
    src = GOLDEN / "rgb_48x64_q2.fllic"
    script = _BLOCK_TORCH + f"""
import zlib
import numpy as np
from PIL import Image
import fllic.pillow_plugin
fllic.pillow_plugin.register()
with Image.open({str(src)!r}) as im:
    print(im.format, im.mode, zlib.crc32(np.asarray(im).tobytes()))
assert "torch" not in sys.modules
"""
    run = _without_torch(script)
    assert run.returncode == 0, run.stderr
    pixels = fllic.decode(src.read_bytes())
    assert run.stdout.split() == ["FLLIC", "RGB", str(zlib.crc32(pixels.tobytes()))]


def test_models_says_every_model_decodes_and_none_encodes():
    run = _cli("models", "--json")
    assert run.returncode == 0, run.stderr
    without = {r["id"]: r for r in json.loads(run.stdout)}
    main_rows = _models_with_torch()
    assert without.keys() == main_rows.keys()
    for model_id, row in without.items():
        theirs = main_rows[model_id]
        assert (theirs["encodes"] or theirs["retired"]) and not row["encodes"], model_id
        assert row["decodes"] and theirs["decodes"] and row["decoder"] == theirs["decoder"], model_id
        assert row["quality_levels"] == theirs["quality_levels"], model_id
        assert row["weights_hash"] in (None, theirs["weights_hash"]), model_id
        assert row["weights_hash"] is not None or row["decoder"] != model_id, model_id
    text = _cli("models")
    assert text.returncode == 0 and f"does not encode (encoding needs PyTorch: {PIP_HINT})" in text.stdout


def _models_with_torch() -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["models", "--json"]) == 0
    return {r["id"]: r for r in json.loads(out.getvalue())}


# -- encoding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, extra", [
    (["compress", "{png}", "-o", "{out}"], "encode"),
    (["demo", "--out", "{out}"], "encode"),
    (["adapt", "{png}", "-o", "{out}"], "encode"),
    (["noise", "{png}"], "encode"),
    (["bench", "--data", "."], "bench"),
    (["train", "--help"], "train"),
])
def test_encoding_commands_fail_in_one_line_naming_the_extra(argv, extra, tmp_path):
    png = tmp_path / "in.png"
    png.write_bytes(encode_image(np.zeros((8, 8, 3), np.uint8), ".png"))
    run = _cli(*(a.format(png=png, out=tmp_path / "out") for a in argv))
    assert run.returncode == 1 and _one_error_line(run.stderr), run.stderr
    assert "needs PyTorch" in run.stderr and f'pip install "fllic[{extra}]"' in run.stderr
    assert not (tmp_path / "out").exists()


def test_fllic_encode_raises_dependency_error_without_torch():
    script = _BLOCK_TORCH + """
import numpy as np
import fllic
try:
    fllic.encode(np.zeros((8, 8), np.uint8), sigma=5)
except fllic.DependencyError as e:
    print(e)
"""
    run = _without_torch(script)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("\n") == 1 and "encoding needs PyTorch" in run.stdout and PIP_HINT in run.stdout


# -- with torch ------------------------------------------------------------------------------------
def test_check_with_torch_reports_each_file(tmp_path, capsys):
    truncated = tmp_path / "t.fllic"
    truncated.write_bytes(GOLDEN_FILES[0].read_bytes()[:40])
    assert main(["check", str(GOLDEN_FILES[0]), "--decode"]) == 0
    assert main(["check", str(truncated), str(tmp_path / "missing.fllic")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(": ok") and "damaged" in out[1] and out[2].endswith("missing.fllic: no such file")


# -- decoder="auto" ---------------------------------------------------------------------------------
def test_auto_decodes_a_small_image_without_importing_torch_where_torch_is_installed(tmp_path):
    """A fresh process decoding a small file skips PyTorch's import (it costs more than its kernels save)."""
    script = ("import sys, fllic, numpy as np; from pathlib import Path\n"
              "ref = fllic.decode(Path(sys.argv[1]).read_bytes(), decoder='reference')\n"
              "out = fllic.decode(Path(sys.argv[1]).read_bytes())\n"
              "print(np.array_equal(ref, out), 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", script, str(GOLDEN / "awgn7_rgb_81x43_q1.fllic")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "False"]


def test_auto_picks_the_reference_decoder_in_a_fresh_process_below_the_size_where_pytorchs_pays(monkeypatch, tmp_path):
    from fllic.codec import TORCH_FRESH_PIXELS as large
    from fllic.codec import auto_decoder

    shipped = GOLDEN_FILES[0]
    named = fllic.info(shipped.read_bytes())["decoder_id"]
    # PyTorch imported (here, by the tests): its decoder at every size
    assert "torch" in sys.modules and auto_decoder(named=named) == "torch"
    assert auto_decoder(named=named, device="cpu", pixels=768 * 512) == "torch"
    assert auto_decoder(named=named, pixels=large) == "torch"
    monkeypatch.delitem(sys.modules, "torch")  # a fresh process: the reference below the size where PyTorch's pays
    assert auto_decoder(named=named, pixels=768 * 512) == "reference"
    assert auto_decoder(named=named, pixels=large - 1) == "reference" and auto_decoder(named=named) == "reference"
    assert auto_decoder(named=named, pixels=large) == "torch"
    monkeypatch.undo()
    assert auto_decoder(named=named, device="cuda") == "torch"
    assert auto_decoder(model=str(tmp_path / "whole.pt"), named=named) == "torch"  # a whole model file
    assert auto_decoder(named="no-such-model") == "torch"
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # PyTorch not installed
    assert auto_decoder(named="no-such-model") == "reference"
