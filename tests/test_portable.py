"""Portable decoding with the shipped model: same pixels under every thread count, ISA and golden file.

Golden files: ``tests/golden/*.fllic`` with the SHA-256 of their decoded
pixels in ``golden.json``. A change that alters decoding fails here; to
regenerate them on purpose, run ``FLLIC_REGEN_GOLDEN=1 python -m pytest tests/test_portable.py``.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import fllic
from fllic.bench.portable import ENVIRONMENTS, decode_in, encode_in, pixels_sha256, write_noisy_sample
from tests.conftest import noisy_image

GOLDEN = Path(__file__).parent / "golden"
# name: (height, width, channels, quality, sigma)
GOLDEN_CASES = {
    "grey_31x37_q1.fllic": (31, 37, 1, 1, 15.0),
    "rgb_48x64_q2.fllic": (48, 64, 3, 2, 25.0),
    "rgb_65x97_q3.fllic": (65, 97, 3, 3, 50.0),
    "grey_70x130_q4.fllic": (70, 130, 1, 4, 25.0),
    "rgb_200x33_q4.fllic": (200, 33, 3, 4, 10.0),
}

# Files of other shipped models: name: (model, height, width, channels, quality, sigma)
GOLDEN_MODEL_CASES = {
    "camera5_rgb_72x90_q6.fllic": ("fllic-camera-v5", 72, 90, 3, 6, 8.0),  # format version 3, names v7's decoder
}


def _regenerate() -> None:
    manifest = {}
    cases = {name: (None, *case) for name, case in GOLDEN_CASES.items()} | GOLDEN_MODEL_CASES
    for k, (name, (model, h, w, ch, quality, sigma)) in enumerate(cases.items()):
        img = noisy_image(np.random.default_rng(100 + k), h, w, channels=ch)
        res = fllic.codec.encode_detailed(img, sigma=sigma, quality=quality, model=model)
        (GOLDEN / name).write_bytes(res.data)
        manifest[name] = {"sha256": pixels_sha256(res.pixels), "shape": list(res.pixels.shape), "quality": quality}
    (GOLDEN / "golden.json").write_text(json.dumps(manifest, indent=1) + "\n")


@pytest.fixture(scope="module")
def manifest():
    if os.environ.get("FLLIC_REGEN_GOLDEN") == "1":
        _regenerate()
    return json.loads((GOLDEN / "golden.json").read_text())


def test_golden_files_cover_grey_rgb_and_every_quality(manifest):
    assert {manifest[n]["quality"] for n in GOLDEN_CASES} == {1, 2, 3, 4}
    assert {len(e["shape"]) for e in manifest.values()} == {2, 3}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES) + sorted(GOLDEN_MODEL_CASES))
def test_golden_file_decodes_to_its_recorded_pixels(manifest, name):
    pixels = fllic.decode((GOLDEN / name).read_bytes())
    assert list(pixels.shape) == manifest[name]["shape"]
    assert pixels_sha256(pixels) == manifest[name]["sha256"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The whole bundled 512x384 sample with noise, coded in this process by the shipped model."""
    work = tmp_path_factory.mktemp("portable")
    noisy = write_noisy_sample(work / "noisy.png")
    res = fllic.codec.encode_detailed(noisy, sigma=25.0)
    (work / "sample.fllic").write_bytes(res.data)
    return work, pixels_sha256(res.pixels)


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_sample_decodes_identically_in_every_environment(sample, env):
    work, want = sample
    assert decode_in(work / "sample.fllic", ENVIRONMENTS[env]) == want


def test_file_encoded_under_avx2_decodes_identically_under_the_default(sample):
    work, _ = sample
    enc = encode_in(work / "noisy.png", work / "avx2.fllic", ENVIRONMENTS["oneDNN AVX2"])
    assert decode_in(work / "avx2.fllic", {}) == enc
