"""Decoding loads only the decoder: the integer h_s, g_s and tables of ``<model-id>-decoder.npz``, the same pixels."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fllic
from fllic import codec
from fllic import format as fmt
from fllic._errors import ModelMismatchError
from fllic.models import decoding
from fllic.models.decoder_export import decoder_arrays, export, flat_arrays
from fllic.models.fllic_net import CodingModel
from fllic.models.registry import find, weights_path
from fllic.models.registry import load as load_full
from tests.conftest import noisy_image

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_FILES = sorted(p.name for p in GOLDEN.glob("*.fllic"))


def _whole_model_id(name: str) -> str:
    h = fmt.unpack((GOLDEN / name).read_bytes()).header
    return h.model_id if h.decoder_hash is None else h.decoder_id


# Golden files whose model ships whole here (a retired model ships its decoder part only: golden.json pins its
# files' pixels, tests/test_portable.py)
WHOLE_GOLDEN_FILES = [n for n in GOLDEN_FILES if weights_path(find(_whole_model_id(n))).is_file()]
ENCODER_MODULES = ("fllic.models.fllic_net", "fllic.models.trunk", "fllic.models.layers", "fllic.models.registry")


def _full_model(name: str) -> CodingModel:
    return load_full(_whole_model_id(name))


@pytest.mark.parametrize("name", WHOLE_GOLDEN_FILES)
def test_golden_files_decode_by_the_decoder_part_to_the_full_models_pixels(name):
    data = (GOLDEN / name).read_bytes()
    assert isinstance(codec._decoding_model(fmt.unpack(data).header, None, None), decoding.DecodingModel)
    light = fllic.decode_detailed(data)
    full = fllic.decode_detailed(data, model=_full_model(name))
    assert light.pixels.dtype == full.pixels.dtype and np.array_equal(light.pixels, full.pixels)
    manifest = json.loads((GOLDEN / "golden.json").read_text())[name]
    assert list(light.pixels.shape) == manifest["shape"]


@pytest.mark.parametrize("h, w, channels, quality", [(70, 90, 3, None), (33, 65, 1, 2), (40, 40, 4, 5)])
def test_fresh_encodes_decode_by_the_decoder_part_exactly(rng, h, w, channels, quality):
    res = codec.encode_detailed(noisy_image(rng, h, w, channels), sigma=20, quality=quality, tile=128)
    light = fllic.decode(res.data, tile=128)
    assert np.array_equal(light, res.pixels)
    assert np.array_equal(light, fllic.decode(res.data, model=load_full(res.model_id), tile=128))
    assert np.array_equal(light, fllic.decode(res.data, device="cpu", tile=64))


def test_the_decoder_part_is_loaded_once_per_model_and_hashes_to_the_full_model():
    light = decoding.load("fllic-awgn-v7")
    assert decoding.load("fllic-awgn-v7") is light
    full = load_full("fllic-awgn-v7")
    assert (light.hash, light.decoder_hash) == (full.hash, full.decoder_hash)
    assert decoding.decoder_file("fllic-camera-v5") is None  # its files name v7's decoder
    with pytest.raises(ModelMismatchError):
        decoding.load("no-such-model")


def test_models_without_a_decoder_file_load_whole(tiny_model, tiny_model_path, rng, tmp_path):
    data = fllic.encode(noisy_image(rng, 37, 31), sigma=15, model=tiny_model)
    h = fmt.unpack(data).header
    assert isinstance(codec._decoding_model(h, tiny_model_path, None), CodingModel)
    want = fllic.decode(data, model=tiny_model)
    assert np.array_equal(fllic.decode(data, model=tiny_model_path), want)
    npz = tmp_path / "tiny-test-decoder.npz"
    export(tiny_model, npz)
    assert isinstance(codec._decoding_model(h, npz, None), decoding.DecodingModel)
    assert np.array_equal(fllic.decode(data, model=npz), want)


def test_a_decoder_part_that_does_not_rebuild_to_its_hash_is_refused(tiny_model):
    arrays = flat_arrays(tiny_model)  # what reading a decoder file gives: its byte planes joined
    meta = json.loads(str(decoder_arrays(tiny_model)["meta"]))
    assert decoding.from_arrays(meta, arrays).decoder_hash == tiny_model.decoder_hash
    arrays["decoder.gs_out.bias"] = arrays["decoder.gs_out.bias"] + 1
    with pytest.raises(ModelMismatchError, match="decoder hash"):
        decoding.from_arrays(meta, arrays)


def test_another_models_decoder_part_is_refused_by_the_header(rng):
    data = codec.encode(noisy_image(rng, 40, 40), sigma=20, model="fllic-awgn-v7")
    with pytest.raises(ModelMismatchError):
        fllic.decode(data, model="fllic-awgn-v6")


def test_fllic_decompress_imports_nothing_of_the_encoder(tmp_path):
    golden = GOLDEN / "camera5_rgb_72x90_q6.fllic"
    script = f"""
import sys
from fllic.cli import main
rc = main(["decompress", {str(golden)!r}, "-o", {str(tmp_path / "out.png")!r}, "-q", "--decoder", "torch"])
print(rc, " ".join(sorted(m for m in sys.modules if m.startswith("fllic."))))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    rc, *modules = out.stdout.splitlines()[-1].split()
    assert rc == "0" and "fllic.models.decoding" in modules
    assert not set(modules) & set(ENCODER_MODULES), set(modules) & set(ENCODER_MODULES)
    assert (tmp_path / "out.png").is_file()
