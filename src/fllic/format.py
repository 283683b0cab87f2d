"""The .fllic container (specified in docs/format.md).

    magic (8) | version (1) | header length (u32) | header | sections | file CRC32 (u32)

All integers are little-endian. The header names the model and its weights
hash, the image geometry and bit depth, sigma and quality, and the CRC32 of
the decoded pixels. Version 3, written by an encoder that is not its
decoder's own (a model adapted to a camera, ``fllic adapt``), also names the
decoder the file needs: a shipped model's id and the hash of its decoder part
alone, so a stock install that never saw the adapted model decodes it.
Files of stock models stay version 2, byte for byte what earlier fllic wrote. Each section is a 4-byte tag, a u32 length and its
payload: ``Z`` and ``Y`` (the coded colour), and optionally ``A`` (the alpha
plane, stored losslessly), ``ICC`` (an ICC profile) and ``EXIF``. This module
needs neither torch nor imagecodecs.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from fllic._errors import FormatError, LimitError, ModelMismatchError

MAGIC = b"\x89FLLIC\r\n"
VERSION = 2  # a stock model's file
VERSION_DECODER = 3  # a file that names its decoder apart from its encoder
READABLE = (VERSION, VERSION_DECODER)
DEFAULT_MAX_PIXELS = 1 << 28  # about 268 megapixels: tiling bounds the memory, this bounds the work
MAX_MODEL_ID = 255
BIT_DEPTHS = (8, 16)
CHANNELS = (1, 2, 3, 4)  # grey, grey + alpha, RGB, RGB + alpha
MAX_METADATA = 1 << 24  # bytes of an ICC profile or of EXIF: 16 MiB, far above any real one
ALPHA_ZLIB_DELTA = 0  # the alpha section's only method: zlib of left-neighbour differences
_FIXED = struct.Struct("<16sIIBBHHffBI")  # hash, h, w, channels, depth, pad_h, pad_w, sigma, step, quality, crc
_SECTION = struct.Struct("<4sI")
_EXIF_HEADS = (b"II*\x00", b"MM\x00*")


@dataclass
class Header:
    model_id: str
    weights_hash: bytes
    height: int
    width: int
    channels: int  # colour channels plus alpha: 1, 2, 3 or 4
    bit_depth: int  # 8 or 16, of every channel
    pad_h: int
    pad_w: int
    sigma: float  # in the image's own code values (0..2^bit_depth - 1)
    step_scale: float
    quality: int
    pixels_crc32: int
    decoder_id: str = ""  # version 3: the shipped model whose decoder part decodes the file ("" in version 2)
    decoder_hash: bytes | None = None  # version 3: the hash of that decoder part

    @property
    def version(self) -> int:
        return VERSION_DECODER if self.decoder_hash is not None else VERSION

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def colour_channels(self) -> int:
        return 1 if self.channels <= 2 else 3

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def peak(self) -> int:
        return (1 << self.bit_depth) - 1


@dataclass
class Container:
    header: Header
    sections: dict[str, bytes] = field(default_factory=dict)


def pack(container: Container) -> bytes:
    h = container.header
    model_id = h.model_id.encode("utf-8")
    if len(model_id) > MAX_MODEL_ID:
        raise FormatError("model id is longer than 255 bytes")
    header = bytes([len(model_id)]) + model_id
    if h.decoder_hash is not None:
        decoder_id = h.decoder_id.encode("utf-8")
        if len(decoder_id) > MAX_MODEL_ID or len(h.decoder_hash) != 16:
            raise FormatError("decoder id is longer than 255 bytes or its hash is not 16 bytes")
        header += bytes([len(decoder_id)]) + decoder_id + h.decoder_hash
    header += _FIXED.pack(
        h.weights_hash, h.height, h.width, h.channels, h.bit_depth, h.pad_h, h.pad_w,
        h.sigma, h.step_scale, h.quality, h.pixels_crc32,
    )
    body = [MAGIC, bytes([h.version]), struct.pack("<I", len(header)), header]
    for tag, payload in container.sections.items():
        body += [_SECTION.pack(tag.encode("ascii").ljust(4), len(payload)), payload]
    data = b"".join(body)
    return data + struct.pack("<I", zlib.crc32(data))


def unpack(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, check_crc: bool = True) -> Container:
    """Parse and validate a .fllic file; raises FormatError or LimitError.

    The alpha section is checked for presence here and decompressed (and
    checked) by :func:`unpack_alpha`. ``check_crc=False`` (a best-effort
    decode of a damaged file) reads on past a file CRC mismatch.
    """
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
    if version not in READABLE:
        raise FormatError(f".fllic format version {version} is not supported (this fllic reads versions "
                          f"{VERSION} and {VERSION_DECODER}): install a newer fllic")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if check_crc and zlib.crc32(body) != crc:
        raise FormatError("corrupt or truncated .fllic file (file CRC mismatch)")
    pos = len(MAGIC) + 1
    (hlen,) = struct.unpack_from("<I", body, pos)
    pos += 4
    header = _parse_header(body[pos : pos + hlen], hlen, version)
    if header.pixels > max_pixels:
        raise LimitError(f"image of {header.width}x{header.height} exceeds the limit of {max_pixels} pixels")
    sections = _parse_sections(body, pos + hlen)
    _check_sections(header, sections)
    return Container(header, sections)


def _parse_header(raw: bytes, hlen: int, version: int = VERSION) -> Header:
    if len(raw) != hlen or hlen < 1:
        raise FormatError("truncated .fllic header")
    model_id, pos = _name(raw, 0, "model id")
    decoder_id, decoder_hash = "", None
    if version == VERSION_DECODER:
        decoder_id, pos = _name(raw, pos, "decoder id")
        decoder_hash, pos = raw[pos : pos + 16], pos + 16
    if hlen != pos + _FIXED.size:
        raise FormatError("malformed .fllic header")
    fields = _FIXED.unpack_from(raw, pos)
    header = Header(model_id, *fields, decoder_id=decoder_id, decoder_hash=decoder_hash)
    if header.bit_depth not in BIT_DEPTHS:
        raise FormatError(f"unsupported bit depth {header.bit_depth} in .fllic header (8 or 16)")
    if header.channels not in CHANNELS or header.height < 1 or header.width < 1:
        raise FormatError("unsupported image geometry in .fllic header")
    if not (0.0 <= header.sigma <= header.peak and 0.0 < header.step_scale <= 64.0 and header.quality >= 1):
        raise FormatError("sigma, step scale or quality out of range in .fllic header")
    return header


def _name(raw: bytes, pos: int, what: str) -> tuple[str, int]:
    """(a length-prefixed UTF-8 name at ``pos``, the position after it)."""
    if pos >= len(raw) or pos + 1 + raw[pos] > len(raw):
        raise FormatError("malformed .fllic header")
    n = raw[pos]
    try:
        return raw[pos + 1 : pos + 1 + n].decode("utf-8"), pos + 1 + n
    except UnicodeDecodeError as e:
        raise FormatError(f"malformed {what} in .fllic header") from e


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


def _check_sections(header: Header, sections: dict[str, bytes]) -> None:
    if header.has_alpha != ("A" in sections):
        raise FormatError("the alpha section does not match the header's channel count")
    if "ICC" in sections and not valid_icc(sections["ICC"]):
        raise FormatError("malformed ICC section (not an ICC profile, or over 16 MiB)")
    if "EXIF" in sections and not valid_exif(sections["EXIF"]):
        raise FormatError("malformed EXIF section (no TIFF header, or over 16 MiB)")


# -- metadata ----------------------------------------------------------------------------
def valid_icc(data: bytes) -> bool:
    """An ICC profile: at least its 128-byte header, with the 'acsp' signature at byte 36."""
    return 128 <= len(data) <= MAX_METADATA and data[36:40] == b"acsp"


def valid_exif(data: bytes) -> bool:
    """EXIF as stored: a TIFF structure (II*\\0 or MM\\0*), without JPEG's 'Exif\\0\\0' prefix."""
    return 8 <= len(data) <= MAX_METADATA and data[:4] in _EXIF_HEADS


# -- the alpha plane ---------------------------------------------------------------------
def _dtype(bit_depth: int) -> np.dtype:
    return np.dtype(np.uint8) if bit_depth == 8 else np.dtype("<u2")


def pack_alpha(alpha: np.ndarray, bit_depth: int) -> bytes:
    """The ``A`` section: a method byte (0), then zlib of each row's left-neighbour differences.

    Differences are modulo 2^bit_depth, little-endian for 16 bits; the first
    column is stored as it is. An opaque or smooth alpha costs a few bytes.
    """
    a = np.ascontiguousarray(alpha, dtype=_dtype(bit_depth))
    delta = a.copy()
    delta[:, 1:] -= a[:, :-1]  # unsigned: wraps modulo 2^bit_depth
    return bytes([ALPHA_ZLIB_DELTA]) + zlib.compress(delta.tobytes(), 9)


def unpack_alpha(payload: bytes, height: int, width: int, bit_depth: int) -> np.ndarray:
    """The (height, width) alpha plane of an ``A`` section; FormatError unless it is exactly that."""
    dtype = _dtype(bit_depth)
    size = height * width * dtype.itemsize
    if not payload or payload[0] != ALPHA_ZLIB_DELTA:
        raise FormatError("unknown coding method in the alpha section")
    d = zlib.decompressobj()
    try:
        raw = d.decompress(payload[1:], size + 1)  # never inflates more than one byte past the plane
    except zlib.error as e:
        raise FormatError(f"corrupt alpha section ({e})") from e
    if len(raw) != size or not d.eof or d.unused_data or d.unconsumed_tail:
        raise FormatError("corrupt alpha section (its size does not match the image)")
    plane = np.frombuffer(raw, dtype).reshape(height, width)
    return np.cumsum(plane, axis=1, dtype=dtype).astype(np.uint8 if bit_depth == 8 else np.uint16)


def check(data: bytes) -> bool:
    """True when ``data`` parses as a .fllic container with a valid file CRC."""
    try:
        unpack(data, max_pixels=1 << 62)
    except FormatError:
        return False
    return True


def check_model(h: Header, weights_hash: bytes, decoder_hash: bytes) -> None:
    """ModelMismatchError unless a model may decode the file ``h`` heads: its weights hash must be the file's
    (version 2), or its decoder hash the decoder the file names (version 3)."""
    if h.decoder_hash is None:
        if weights_hash != h.weights_hash:
            raise ModelMismatchError(f"file was written with weights {h.weights_hash.hex()} of {h.model_id!r}, "
                                     f"but the available weights are {weights_hash.hex()}; "
                                     "install the fllic that wrote it")
    elif decoder_hash != h.decoder_hash:
        raise ModelMismatchError(f"file needs the decoder {h.decoder_hash.hex()} of {h.decoder_id!r} "
                                 f"(written by {h.model_id!r}), but the available decoder is {decoder_hash.hex()}; "
                                 "install the fllic that wrote it")


def decoder_name(h: Header) -> str:
    """The model id that decodes the file: its writer's (version 2) or the decoder it names (version 3)."""
    return h.model_id if h.decoder_hash is None else h.decoder_id
