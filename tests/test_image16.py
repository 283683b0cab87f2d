"""PNG and 16-bit TIFF in numpy and zlib (fllic.image16): what libpng and libtiff (through imagecodecs) and
Pillow read back, and a decoding install's image files without Pillow."""

import struct
import sys
import zlib

import io

import imagecodecs
import numpy as np
import pytest
from PIL import Image

from fllic import image16
from fllic._errors import InputError
from fllic.imageio import encode_image, read_image_file

from .test_depth_alpha import srgb_icc

SHAPES = [(7, 5), (33, 17, 2), (64, 48, 3), (31, 29, 4), (1, 1, 3), (1, 9), (9, 1, 3)]


def _images(shape, rng):
    """Random samples (the Paeth and None filters win) and smooth ramps (Sub and Up win)."""
    ramp = np.cumsum(rng.integers(0, 50, shape), axis=1).astype(np.uint16)
    return rng.integers(0, 65536, shape).astype(np.uint16), ramp


@pytest.mark.parametrize("shape", SHAPES)
def test_png_written_reads_back_in_libpng_and_libpng_s_in_ours(shape, rng):
    for a in _images(shape, rng):
        ours = image16.png(a)
        assert np.array_equal(imagecodecs.png_decode(ours), a)
        assert np.array_equal(image16.read_png(ours), a)
        assert np.array_equal(image16.read_png(imagecodecs.png_encode(a)), a)


def _filter_row(kind: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    left = np.concatenate([np.zeros(bpp, np.int32), line[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
    p = left + prev - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
    pred = [0, left, prev, (left + prev) // 2, np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))]
    return np.concatenate([[kind], (line - pred[kind]) & 0xFF]).astype(np.uint8)


def test_png_reader_undoes_every_filter_type_row_by_row(rng):
    a = rng.integers(0, 65536, (20, 13, 3)).astype(np.uint16)
    raw = np.ascontiguousarray(a, ">u2").view(np.uint8).reshape(20, -1).astype(np.int32)
    rows = [_filter_row(r % 5, raw[r], raw[r - 1] if r else np.zeros_like(raw[0]), 6) for r in range(20)]
    data = (image16.MAGIC + image16.chunk(b"IHDR", struct.pack(">IIBBBBB", 13, 20, 16, 2, 0, 0, 0))
            + image16.chunk(b"IDAT", zlib.compress(np.stack(rows).tobytes())) + image16.chunk(b"IEND", b""))
    assert np.array_equal(imagecodecs.png_decode(data), a)  # the file is right
    assert np.array_equal(image16.read_png(data), a)


def test_png_reader_refuses_what_it_cannot_read(rng):
    good = image16.png(rng.integers(0, 65536, (8, 8, 3)).astype(np.uint16))
    interlaced = bytearray(good)
    interlaced[28] = 1  # IHDR's interlace method (its CRC is not checked)
    with pytest.raises(InputError, match="interlaced"):
        image16.read_png(bytes(interlaced))
    with pytest.raises(InputError, match="not a readable"):
        image16.read_png(good[:60])
    with pytest.raises(InputError, match="not a PNG"):
        image16.read_png(b"GIF89a")


@pytest.mark.parametrize("shape", SHAPES)
def test_tiff_written_reads_back_in_libtiff_with_its_icc_profile(shape, rng):
    a = rng.integers(0, 65536, shape).astype(np.uint16)
    icc = srgb_icc()
    data = image16.tiff(a, icc=icc, rows_per_strip=4)
    assert np.array_equal(imagecodecs.tiff_decode(data), a)
    back = read_image_file(data)
    assert np.array_equal(back.array, a)
    assert back.icc == icc and back.bit_depth == 16


def test_without_imagecodecs_16_bit_png_still_reads_and_tiff_says_what_to_install(monkeypatch, rng):
    rgb = rng.integers(0, 65536, (9, 11, 3)).astype(np.uint16)
    png, tiff = encode_image(rgb, ".png"), encode_image(rgb, ".tif")
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import imagecodecs now fails
    assert np.array_equal(read_image_file(png).array, rgb)
    with pytest.raises(InputError, match="pip install imagecodecs"):
        read_image_file(tiff)


@pytest.mark.parametrize("shape", SHAPES)
def test_8_bit_png_written_reads_back_in_pillow_and_pillow_s_in_ours(shape, rng):
    noise = rng.integers(0, 256, shape).astype(np.uint8)
    ramp = np.cumsum(rng.integers(0, 3, shape), axis=1).astype(np.uint8)
    for a in (noise, ramp):
        ours = image16.png(a)
        with Image.open(io.BytesIO(ours)) as im:
            assert np.array_equal(np.asarray(im), a)
        assert np.array_equal(image16.read_png(ours), a)
        theirs = io.BytesIO()
        Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a).save(theirs, format="PNG")
        assert np.array_equal(image16.read_png(theirs.getvalue()), a)


def test_without_pillow_png_is_written_and_read_with_its_metadata_and_the_rest_says_what_to_install(
        monkeypatch, rng):
    from .test_depth_alpha import camera_exif

    icc, exif = srgb_icc(), camera_exif()
    rgba = rng.integers(0, 256, (9, 11, 4)).astype(np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(jpeg, format="JPEG")
    palette = io.BytesIO()
    Image.fromarray(rgba[..., 0]).convert("P").save(palette, format="PNG")
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails, as on a decoding install
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    for a in (rgba, rgba[..., :3], rgba[..., 0], rgba[..., :2]):
        back = read_image_file(encode_image(a, ".png", icc=icc, exif=exif))
        assert np.array_equal(back.array, a) and back.bit_depth == 8
        assert back.icc == icc and back.exif == exif
    with pytest.raises(InputError, match="writing BMP needs Pillow: pip install pillow"):
        encode_image(rgba[..., :3], ".bmp")
    with pytest.raises(InputError, match="needs Pillow: pip install pillow"):
        read_image_file(jpeg.getvalue())
    with pytest.raises(InputError, match="pip install pillow"):
        read_image_file(palette.getvalue())
    with pytest.raises(InputError, match="not a readable image"):
        read_image_file(b"a text file named .png")
