import struct
import zlib

import pytest

from fllic import format as fmt
from fllic._errors import FormatError, LimitError


def header(**kw):
    base = dict(model_id="fllic-awgn-v1", weights_hash=bytes(range(16)), height=31, width=37, channels=3,
                bit_depth=8, pad_h=33, pad_w=27, sigma=25.0, step_scale=1.0, quality=4, pixels_crc32=0xDEADBEEF)
    return fmt.Header(**(base | kw))


def test_pack_unpack_round_trip():
    c = fmt.Container(header(), {"Z": b"\x01\x02\x03\x04", "Y": bytes(range(256)) * 3})
    data = fmt.pack(c)
    assert data.startswith(fmt.MAGIC) and data[len(fmt.MAGIC)] == fmt.VERSION
    back = fmt.unpack(data)
    assert back.header == c.header and back.sections == c.sections


def test_bad_magic_version_and_crc():
    data = fmt.pack(fmt.Container(header(), {"Z": b"", "Y": b"abcd"}))
    with pytest.raises(FormatError, match="magic"):
        fmt.unpack(b"PNG" + data[3:])
    bumped = bytearray(data)
    bumped[len(fmt.MAGIC)] = 99
    with pytest.raises(FormatError, match="version"):
        fmt.unpack(bytes(bumped))
    flipped = bytearray(data)
    flipped[-8] ^= 1
    with pytest.raises(FormatError, match="CRC"):
        fmt.unpack(bytes(flipped))


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_section_overrun_is_caught_even_with_a_valid_crc():
    data = fmt.pack(fmt.Container(header(), {"Y": b"abcd"}))
    body = bytearray(data[:-4])
    struct.pack_into("<I", body, len(body) - 8, 10_000)  # the Y section's length field
    with pytest.raises(FormatError, match="past the end"):
        fmt.unpack(_recrc(bytes(body)))


def test_pixel_limit():
    data = fmt.pack(fmt.Container(header(height=100_000, width=100_000), {}))
    with pytest.raises(LimitError):
        fmt.unpack(data)
    assert fmt.unpack(data, max_pixels=10**10).header.width == 100_000


@pytest.mark.parametrize("field, value", [("sigma", float("nan")), ("sigma", -1.0), ("step_scale", 0.0),
                                          ("step_scale", float("inf")), ("quality", 0)])
def test_out_of_range_coding_parameters(field, value):
    with pytest.raises(FormatError, match="out of range"):
        fmt.unpack(fmt.pack(fmt.Container(header(**{field: value}), {})))


@pytest.mark.parametrize("field, value", [("channels", 0), ("channels", 5), ("height", 0), ("width", 0),
                                          ("bit_depth", 12), ("bit_depth", 0)])
def test_unsupported_geometry(field, value):
    with pytest.raises(FormatError):
        fmt.unpack(fmt.pack(fmt.Container(header(**{field: value}), {})))


def test_alpha_needs_its_section_and_16_bits_widen_the_sigma_range():
    with pytest.raises(FormatError, match="alpha section"):
        fmt.unpack(fmt.pack(fmt.Container(header(channels=4), {})))
    with pytest.raises(FormatError, match="alpha section"):
        fmt.unpack(fmt.pack(fmt.Container(header(channels=3), {"A": b"\x00"})))
    assert fmt.unpack(fmt.pack(fmt.Container(header(bit_depth=16, sigma=5000.0), {}))).header.bit_depth == 16
    with pytest.raises(FormatError, match="out of range"):
        fmt.unpack(fmt.pack(fmt.Container(header(sigma=5000.0), {})))


def test_check():
    data = fmt.pack(fmt.Container(header(), {"Y": b"1234"}))
    assert fmt.check(data)
    assert not fmt.check(data[:-1])
    assert not fmt.check(b"")
    assert not fmt.check(b"\x89PNG\r\n\x1a\n")
