"""Portable decoding with the shipped model: same pixels under every thread count, ISA and golden file.

Golden files: ``tests/golden/*.fllic`` with the SHA-256 of their decoded
pixels in ``golden.json``: every shipped model id, grey and colour, odd sizes,
several levels. A change that alters decoding fails here. To add a case, list
it below and run ``FLLIC_REGEN_GOLDEN=1 python -m pytest tests/test_portable.py``:
that writes the files that are missing and never rewrites one that exists (delete
a file to remake it on purpose).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import fllic
from fllic.bench.portable import DECODES, ENVIRONMENTS, decode_in, encode_in, pixels_sha256, write_noisy_sample
from tests.conftest import noisy_image

GOLDEN = Path(__file__).parent / "golden"
# name: (height, width, channels, quality, sigma)
# fllic-awgn-v1's files (fllic 0.1's default): name: (height, width, channels, quality, sigma)
GOLDEN_CASES = {
    "grey_31x37_q1.fllic": (31, 37, 1, 1, 15.0),
    "rgb_48x64_q2.fllic": (48, 64, 3, 2, 25.0),
    "rgb_65x97_q3.fllic": (65, 97, 3, 3, 50.0),
    "grey_70x130_q4.fllic": (70, 130, 1, 4, 25.0),
    "rgb_200x33_q4.fllic": (200, 33, 3, 4, 10.0),
}

# Files of every other shipped model: name: (model, height, width, channels, quality, sigma)
GOLDEN_MODEL_CASES = {
    "camera5_rgb_72x90_q6.fllic": ("fllic-camera-v5", 72, 90, 3, 6, 8.0),  # format version 3, names v7's decoder
    "camera6_rgb_59x74_q7.fllic": ("fllic-camera-v6", 59, 74, 3, 7, 9.0),  # names v7's decoder
    "awgn2_rgb_45x61_q5.fllic": ("fllic-awgn-v2", 45, 61, 3, 5, 20.0),
    "awgn3_grey_53x37_q2.fllic": ("fllic-awgn-v3", 53, 37, 1, 2, 30.0),
    "awgn4_rgb_33x77_q6.fllic": ("fllic-awgn-v4", 33, 77, 3, 6, 5.0),
    "awgn5_grey_66x41_q4.fllic": ("fllic-awgn-v5", 66, 41, 1, 4, 15.0),
    "awgn6_rgb_39x58_q3.fllic": ("fllic-awgn-v6", 39, 58, 3, 3, 35.0),
    "awgn7_grey_47x71_q8.fllic": ("fllic-awgn-v7", 47, 71, 1, 8, 10.0),
    "awgn7_rgb_81x43_q1.fllic": ("fllic-awgn-v7", 81, 43, 3, 1, 50.0),
    "awgn8_rgb_77x53_q6.fllic": ("fllic-awgn-v8", 77, 53, 3, 6, 20.0),  # narrow layers (decoder format 3)
    "awgn8_grey_49x66_q3.fllic": ("fllic-awgn-v8", 49, 66, 1, 3, 45.0),
    "camera2_rgb_50x70_q4.fllic": ("fllic-camera-v2", 50, 70, 3, 4, 12.0),
    "camera3_rgb_63x35_q6.fllic": ("fllic-camera-v3", 63, 35, 3, 6, 6.0),
    "camera4_grey_42x56_q2.fllic": ("fllic-camera-v4", 42, 56, 1, 2, 25.0),
    "weak2_rgb_29x83_q1.fllic": ("fllic-weak-v2", 29, 83, 3, 1, 25.0),
    "weak3_grey_57x49_q5.fllic": ("fllic-weak-v3", 57, 49, 1, 5, 20.0),
    "weak4_rgb_44x44_q3.fllic": ("fllic-weak-v4", 44, 44, 3, 3, 40.0),
    "weak5_rgb_71x39_q6.fllic": ("fllic-weak-v5", 71, 39, 3, 6, 15.0),
    "camera7_rgb_67x53_q5.fllic": ("fllic-camera-v7", 67, 53, 3, 5, 11.0),  # names v7's decoder
    "camera8_grey_58x46_q4.fllic": ("fllic-camera-v8", 58, 46, 1, 4, 16.0),  # names v7's decoder
}


def _regenerate() -> None:
    """Write the golden files that are missing (and their manifest entries); existing ones stay as they are."""
    manifest = json.loads((GOLDEN / "golden.json").read_text())
    cases = {name: ("fllic-awgn-v1", *case) for name, case in GOLDEN_CASES.items()} | GOLDEN_MODEL_CASES
    for k, (name, (model, h, w, ch, quality, sigma)) in enumerate(cases.items()):
        if (GOLDEN / name).exists() and name in manifest:
            continue
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


def test_every_shipped_model_has_a_golden_file():
    from fllic.models.registry import SHIPPED

    covered = {"fllic-awgn-v1"} | {model for model, *_ in GOLDEN_MODEL_CASES.values()}
    assert covered == {m.id for m in SHIPPED}
    for name in GOLDEN_MODEL_CASES:
        assert fllic.info((GOLDEN / name).read_bytes())["model_id"] == GOLDEN_MODEL_CASES[name][0]


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


@pytest.mark.parametrize("decode", sorted(DECODES))
@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_sample_decodes_identically_in_every_environment_by_each_decoder(sample, env, decode):
    """Each decoder, and PyTorch's in bands of one latent row, under 1 and 2 threads and oneDNN's AVX2 and SSE41
    kernels, in fresh processes (where decoder="auto" would take the reference decoder for so small a file)."""
    work, want = sample
    decoder, tile = DECODES[decode]
    assert decode_in(work / "sample.fllic", ENVIRONMENTS[env], decoder=decoder, tile=tile) == want


def test_file_encoded_under_avx2_decodes_identically_under_the_default(sample):
    work, _ = sample
    enc = encode_in(work / "noisy.png", work / "avx2.fllic", ENVIRONMENTS["oneDNN AVX2"])
    assert decode_in(work / "avx2.fllic", {}) == enc
