"""Hostile input, property-based (hypothesis): every case ends in a FllicError or an exact decode.

Cases: random bytes; bit flips and truncations of valid files (8-bit grey
and RGB, and a 16-bit RGBA file with EXIF); absurd header fields; payload
mutations (Z, Y, alpha and EXIF sections) with the file CRC recomputed, so
that they reach the header parser, the alpha inflater, the entropy decoder
and the synthesis. A decode that
succeeds has passed the stored pixel CRC by construction. Each case must
finish within the deadline (5 s) on the tiny model; the longer fuzz target
is tests/fuzz_decode.py (atheris).
"""

import dataclasses

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fllic  # noqa: E402
from fllic import format as fmt  # noqa: E402
from tests.conftest import noisy_image  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def seeds(tiny_model):
    rng = np.random.default_rng(5)
    seeds = [fllic.encode(noisy_image(rng, h, w, channels=c), sigma=20, model=tiny_model)
             for h, w, c in ((40, 52, 3), (33, 17, 1), (70, 90, 3))]
    rgba16 = np.dstack([noisy_image(rng, 29, 37), rng.integers(0, 256, (29, 37), dtype=np.uint8)]).astype(np.uint16) * 257
    exif = b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
    return seeds + [fllic.encode(rgba16, sigma=5000, model=tiny_model, exif=exif)]  # 16-bit, alpha, EXIF


def _decodes_or_fails_cleanly(data: bytes, model) -> None:
    try:
        out = fllic.decode(data, model=model)
    except fllic.FllicError:
        return
    assert out.dtype in (np.uint8, np.uint16)


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_random_bytes(data, tiny_model):
    _decodes_or_fails_cleanly(data, tiny_model)
    _decodes_or_fails_cleanly(fmt.MAGIC + data, tiny_model)


@SETTINGS
@given(k=st.integers(0, 3), flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=8), cut=st.integers(0, 10**6))
def test_bit_flips_and_truncations(seeds, tiny_model, k, flips, cut):
    data = bytearray(seeds[k])
    for f in flips:
        data[f % len(data)] ^= 1 << (f % 8)
    _decodes_or_fails_cleanly(bytes(data), tiny_model)
    _decodes_or_fails_cleanly(seeds[k][: cut % len(seeds[k])], tiny_model)


_ABSURD = {
    "height": st.integers(0, 2**32 - 1), "width": st.integers(0, 2**32 - 1), "channels": st.integers(0, 255),
    "bit_depth": st.integers(0, 255), "pad_h": st.integers(0, 2**16 - 1), "pad_w": st.integers(0, 2**16 - 1),
    "sigma": st.floats(width=32, allow_nan=True, allow_infinity=True),
    "step_scale": st.floats(width=32, allow_nan=True, allow_infinity=True), "quality": st.integers(0, 255),
    "pixels_crc32": st.integers(0, 2**32 - 1), "model_id": st.text(max_size=40),
    "weights_hash": st.binary(min_size=16, max_size=16),
}


@SETTINGS
@given(k=st.integers(0, 3), field=st.sampled_from(sorted(_ABSURD)), data=st.data())
def test_absurd_header_fields(seeds, tiny_model, k, field, data):
    c = fmt.unpack(seeds[k])
    value = data.draw(_ABSURD[field])
    header = dataclasses.replace(c.header, **{field: value})
    try:
        packed = fmt.pack(fmt.Container(header, c.sections))
    except Exception:  # noqa: BLE001 - the writer refuses it (struct range, id length): not a file at all
        return
    _decodes_or_fails_cleanly(packed, tiny_model)


@SETTINGS
@given(k=st.integers(0, 3), section=st.sampled_from(["Z", "Y", "A", "EXIF"]), edits=st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6), cut=st.integers(0, 64))
def test_payload_mutations_reach_the_entropy_decoder(seeds, tiny_model, k, section, edits, cut):
    c = fmt.unpack(seeds[k])
    if section not in c.sections:
        k, c = 3, fmt.unpack(seeds[3])  # the seed with every section
    payload = bytearray(c.sections[section])
    for pos, value in edits:
        if payload:
            payload[pos % len(payload)] = value
    payload = payload[: max(0, len(payload) - cut)] if cut % 2 else payload
    packed = fmt.pack(fmt.Container(c.header, {**c.sections, section: bytes(payload)}))  # file CRC recomputed
    _decodes_or_fails_cleanly(packed, tiny_model)


def test_a_small_file_claiming_a_huge_image_is_refused_at_once(seeds, tiny_model):
    c = fmt.unpack(seeds[0])
    huge = dataclasses.replace(c.header, height=16000, width=16000, pad_h=(-16000) % 64, pad_w=(-16000) % 64)
    with pytest.raises(fllic.FormatError, match="too short"):
        fllic.decode(fmt.pack(fmt.Container(huge, c.sections)), model=tiny_model)
