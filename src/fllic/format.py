"""The .fllic container (specified in docs/format.md).

    magic (8) | version (1) | header length (u32) | header | sections | file CRC32 (u32)

All integers are little-endian. The header names the model and its weights
hash, the image geometry, sigma and quality, and the CRC32 of the decoded
pixels. Each section is a 4-byte tag, a u32 length and its payload.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from fllic._errors import FormatError, LimitError

MAGIC = b"\x89FLLIC\r\n"
VERSION = 2
DEFAULT_MAX_PIXELS = 1 << 28  # about 268 megapixels: tiling bounds the memory, this bounds the work
MAX_MODEL_ID = 255
_FIXED = struct.Struct("<16sIIBBHHffBI")  # hash, h, w, channels, depth, pad_h, pad_w, sigma, step, quality, crc
_SECTION = struct.Struct("<4sI")


@dataclass
class Header:
    model_id: str
    weights_hash: bytes
    height: int
    width: int
    channels: int
    bit_depth: int
    pad_h: int
    pad_w: int
    sigma: float
    step_scale: float
    quality: int
    pixels_crc32: int

    @property
    def pixels(self) -> int:
        return self.height * self.width


@dataclass
class Container:
    header: Header
    sections: dict[str, bytes] = field(default_factory=dict)


def pack(container: Container) -> bytes:
    h = container.header
    model_id = h.model_id.encode("utf-8")
    if len(model_id) > MAX_MODEL_ID:
        raise FormatError("model id is longer than 255 bytes")
    header = bytes([len(model_id)]) + model_id + _FIXED.pack(
        h.weights_hash, h.height, h.width, h.channels, h.bit_depth, h.pad_h, h.pad_w,
        h.sigma, h.step_scale, h.quality, h.pixels_crc32,
    )
    body = [MAGIC, bytes([VERSION]), struct.pack("<I", len(header)), header]
    for tag, payload in container.sections.items():
        body += [_SECTION.pack(tag.encode("ascii").ljust(4), len(payload)), payload]
    data = b"".join(body)
    return data + struct.pack("<I", zlib.crc32(data))


def unpack(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Container:
    """Parse and validate a .fllic file; raises FormatError or LimitError."""
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise FormatError("not a .fllic file (bad magic bytes)")
    if len(data) < len(MAGIC) + 1 + 4 + 4:
        raise FormatError("truncated .fllic file")
    version = data[len(MAGIC)]
    if version == 1:
        raise FormatError(
            "this file is .fllic format version 1, written by fllic 0.1, whose floating-point decoder "
            "is not portable; this fllic reads version 2: compress the source image again"
        )
    if version != VERSION:
        raise FormatError(f".fllic format version {version} is not supported (this fllic reads {VERSION})")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise FormatError("corrupt or truncated .fllic file (file CRC mismatch)")
    pos = len(MAGIC) + 1
    (hlen,) = struct.unpack_from("<I", body, pos)
    pos += 4
    header = _parse_header(body[pos : pos + hlen], hlen)
    if header.pixels > max_pixels:
        raise LimitError(f"image of {header.width}x{header.height} exceeds the limit of {max_pixels} pixels")
    return Container(header, _parse_sections(body, pos + hlen))


def _parse_header(raw: bytes, hlen: int) -> Header:
    if len(raw) != hlen or hlen < 1:
        raise FormatError("truncated .fllic header")
    n = raw[0]
    if hlen != 1 + n + _FIXED.size:
        raise FormatError("malformed .fllic header")
    try:
        model_id = raw[1 : 1 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError("malformed model id in .fllic header") from e
    fields = _FIXED.unpack_from(raw, 1 + n)
    header = Header(model_id, *fields)
    if header.channels not in (1, 3) or header.bit_depth != 8 or header.height < 1 or header.width < 1:
        raise FormatError("unsupported image geometry in .fllic header")
    if not (0.0 <= header.sigma <= 255.0 and 0.0 < header.step_scale <= 64.0 and header.quality >= 1):
        raise FormatError("sigma, step scale or quality out of range in .fllic header")
    return header


def _parse_sections(body: bytes, pos: int) -> dict[str, bytes]:
    sections: dict[str, bytes] = {}
    while pos < len(body):
        if pos + _SECTION.size > len(body):
            raise FormatError("truncated section header")
        tag, length = _SECTION.unpack_from(body, pos)
        pos += _SECTION.size
        if pos + length > len(body):
            raise FormatError("section runs past the end of the file")
        sections[tag.decode("ascii", "replace").strip()] = body[pos : pos + length]
        pos += length
    return sections


def check(data: bytes) -> bool:
    """True when ``data`` parses as a .fllic container with a valid file CRC."""
    try:
        unpack(data, max_pixels=1 << 62)
    except FormatError:
        return False
    return True
