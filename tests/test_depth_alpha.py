"""16-bit images, alpha and metadata: full depth in and out, alpha bit-exact, ICC and EXIF carried.

Small generated images (odd sizes) and the shipped model; every encode is well under a second.
"""

import dataclasses
import functools
import io
import json
import struct
import zlib

import imagecodecs
import numpy as np
import pytest
from PIL import Image

import fllic
from fllic import format as fmt
from fllic.cli import main
from fllic.codec import decode_detailed, encode_detailed, pixels_crc32
from fllic.imageio import encode_image, read_image, read_image_file
from fllic.models.registry import DEFAULT_MODEL, load


@pytest.fixture(scope="module")
def model():
    return load(DEFAULT_MODEL)


def scene(rng, h, w, channels=3, depth=16, sigma8=15.0):
    """A smooth scene plus noise at the given depth; 16-bit values use their low byte."""
    peak = (1 << depth) - 1
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.23 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    img = base[..., None] + rng.normal(0, sigma8 / 255, size=(h, w, channels))
    img = np.clip(np.rint(img * peak), 0, peak).astype(np.uint16 if depth == 16 else np.uint8)
    return img[..., 0] if channels == 1 else img


def alpha_plane(rng, h, w, depth=16):
    """Opaque, a transparent disc, and a noisy band: every kind of alpha."""
    peak = (1 << depth) - 1
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.full((h, w), peak, np.int64)
    a[(yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 4) ** 2] = 0
    a[:, -7:] = rng.integers(0, peak + 1, size=(h, 7))
    return a.astype(np.uint16 if depth == 16 else np.uint8)


@functools.lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    from PIL.ImageCms import ImageCmsProfile, createProfile

    return ImageCmsProfile(createProfile("sRGB")).tobytes()


def camera_exif() -> bytes:
    """EXIF as fllic stores it: a TIFF structure, no 'Exif\\0\\0' prefix."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "FllicCam", "Model 16"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    return exif.tobytes()[6:]


def exif_fields(data: bytes) -> tuple:
    exif = Image.Exif()
    exif.load(data)
    return exif.get(0x010F), exif.get(0x0110), exif.get_ifd(0x8769).get(0x9003)


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _repack(data: bytes, **sections) -> bytes:
    """The file with sections replaced (None removes one), and a valid file CRC."""
    c = fmt.unpack(data)
    new = {k: v for k, v in ({**c.sections, **sections}).items() if v is not None}
    return fmt.pack(fmt.Container(c.header, new))


# -- the codec -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape, channels", [((40, 56), 3), ((37, 29), 1), ((33, 70), 3)])
def test_16_bit_round_trip_is_exact_and_16_bit(model, rng, shape, channels):
    img = scene(rng, *shape, channels=channels)
    res = encode_detailed(img, sigma=15 * 257, model=model)
    out = fllic.decode(res.data)
    assert out.dtype == np.uint16 and out.shape == img.shape
    assert np.array_equal(out, res.pixels)
    meta = fllic.info(res.data)
    assert meta["bit_depth"] == 16 and meta["sigma"] == 15 * 257 and not meta["alpha"]
    assert meta["pixels_crc32"] == f"{zlib.crc32(out.astype('<u2').tobytes()):08x}"
    assert (out % 257).any(), "16-bit output uses its low byte"


def test_16_bit_is_normalised_by_the_peak(model, rng):
    """x·257 with sigma·257 codes to the same symbols as the 8-bit image; the pixels agree to half a code."""
    img8 = scene(rng, 40, 56, depth=8)
    img16 = img8.astype(np.uint16) * 257
    r8 = encode_detailed(img8, sigma=10, model=model)
    r16 = encode_detailed(img16, sigma=2570, model=model)
    c8, c16 = fmt.unpack(r8.data), fmt.unpack(r16.data)
    assert c8.sections == c16.sections
    d8, d16 = r8.pixels.astype(np.int64), fllic.decode(r16.data).astype(np.int64)
    assert np.abs(d16 - 257 * d8).max() <= 129  # 8-bit rounding is half an 8-bit code, 128.5 16-bit codes
    assert np.array_equal((d16 + 128) // 257, d8)


def test_estimated_sigma_is_in_the_images_units(model, rng):
    img8 = scene(rng, 64, 72, depth=8, sigma8=20)
    s8 = fllic.info(fllic.encode(img8, model=model))["sigma"]
    s16 = fllic.info(fllic.encode(img8.astype(np.uint16) * 257, model=model))["sigma"]
    assert s16 == pytest.approx(257 * s8, rel=0.02)


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 3])
def test_alpha_is_carried_bit_exact(model, rng, depth, channels):
    colour = scene(rng, 37, 45, channels=channels, depth=depth)
    alpha = alpha_plane(rng, 37, 45, depth)
    img = np.concatenate([colour.reshape(37, 45, -1), alpha[..., None]], axis=2)
    res = encode_detailed(img, sigma=12 * (257 if depth == 16 else 1), model=model)
    out = fllic.decode(res.data)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert np.array_equal(out[..., -1], alpha) and np.array_equal(out, res.pixels)
    plain = encode_detailed(colour, sigma=12 * (257 if depth == 16 else 1), model=model).pixels
    assert np.array_equal(out[..., :-1].reshape(plain.shape), plain), "alpha does not change the colour"
    meta = fllic.info(res.data)
    assert meta["alpha"] and meta["channels"] == channels + 1 and "A" in meta["sections"]
    assert meta["pixels_crc32"] == f"{pixels_crc32(out):08x}"


def test_opaque_alpha_costs_a_few_bytes(model, rng):
    img = np.dstack([scene(rng, 40, 56, depth=8), np.full((40, 56), 255, np.uint8)])
    assert fllic.info(fllic.encode(img, sigma=10, model=model))["sections"]["A"] < 40


def test_icc_and_exif_are_stored_and_returned(model, rng):
    icc, exif = srgb_icc(), camera_exif()
    data = fllic.encode(scene(rng, 20, 30), sigma=3000, model=model, icc=icc, exif=b"Exif\x00\x00" + exif)
    res = decode_detailed(data)
    assert res.icc == icc and res.exif == exif and res.bit_depth == 16 and not res.has_alpha
    assert fllic.info(data)["icc"] and fllic.info(data)["exif"]
    plain = decode_detailed(fllic.encode(scene(rng, 20, 30), sigma=3000, model=model))
    assert plain.icc is None and plain.exif is None


@pytest.mark.parametrize("kwargs", [{"icc": b"not a profile"}, {"exif": b"not exif at all"}, {"icc": 5}])
def test_malformed_metadata_is_refused(model, rng, kwargs):
    with pytest.raises(fllic.InputError):
        fllic.encode(scene(rng, 8, 8), sigma=2000, model=model, **kwargs)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.int16), np.zeros((8, 8, 5), np.uint16),
                                 np.zeros((8, 8), np.uint32)])
def test_other_dtypes_and_shapes_are_refused(model, bad):
    with pytest.raises(fllic.InputError):
        fllic.encode(bad, sigma=10, model=model)


def test_sigma_range_follows_the_bit_depth(model, rng):
    fllic.encode(scene(rng, 8, 8), sigma=1000, model=model)  # in range at 16 bits (3.9 at 8 bits)
    with pytest.raises(fllic.InputError, match="0 and 255"):
        fllic.encode(scene(rng, 8, 8, depth=8), sigma=1000, model=model)
    with pytest.raises(fllic.InputError, match="0 and 65535"):
        fllic.encode(scene(rng, 8, 8), sigma=70000, model=model)


# -- the container -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rgba16(model):
    rng = np.random.default_rng(7)
    img = np.dstack([scene(rng, 31, 43), alpha_plane(rng, 31, 43)])
    return encode_detailed(img, sigma=4000, model=model, icc=srgb_icc(), exif=camera_exif())


@pytest.mark.parametrize("depth", [0, 1, 7, 12, 24, 32, 255])
def test_bit_depth_other_than_8_or_16_is_refused(rgba16, depth):
    c = fmt.unpack(rgba16.data)
    bad = fmt.pack(fmt.Container(dataclasses.replace(c.header, bit_depth=depth), c.sections))
    with pytest.raises(fllic.FormatError, match="bit depth"):
        fllic.decode(bad)
    assert not fllic.check(bad)


def test_sigma_above_the_peak_is_refused_in_the_header(rgba16):
    c = fmt.unpack(rgba16.data)
    for depth, sigma in ((8, 300.0), (16, 70000.0)):
        bad = fmt.pack(fmt.Container(dataclasses.replace(c.header, bit_depth=depth, sigma=sigma), c.sections))
        with pytest.raises(fllic.FormatError, match="out of range"):
            fmt.unpack(bad)


def test_corrupt_alpha_section_is_a_format_error(rgba16):
    payload = fmt.unpack(rgba16.data).sections["A"]
    plane = 31 * 43 * 2
    flipped = bytearray(payload)
    flipped[len(flipped) // 2] ^= 0x55
    cases = {
        "flipped byte": bytes(flipped),
        "truncated": payload[:-3],
        "unknown method": b"\x07" + payload[1:],
        "empty": b"",
        "too small": b"\x00" + zlib.compress(bytes(plane - 2)),
        "too large": b"\x00" + zlib.compress(bytes(plane + 2)),
        "trailing bytes": payload + b"\x00\x01",
        "zip bomb": b"\x00" + zlib.compress(bytes(64 << 20), 9),
    }
    for name, bad in cases.items():
        with pytest.raises(fllic.FormatError):
            fllic.decode(_repack(rgba16.data, A=bad))
        assert name


def test_alpha_section_must_match_the_channels(rgba16, model, rng):
    with pytest.raises(fllic.FormatError, match="alpha section"):
        fllic.decode(_repack(rgba16.data, A=None))
    plain = fllic.encode(scene(rng, 31, 43), sigma=4000, model=model)
    with pytest.raises(fllic.FormatError, match="alpha section"):
        fllic.decode(_repack(plain, A=fmt.unpack(rgba16.data).sections["A"]))


def test_a_forged_alpha_that_parses_fails_the_pixel_crc(rgba16):
    alpha = rgba16.pixels[..., 3].copy()
    alpha[3, 4] ^= 1
    with pytest.raises(fllic.IntegrityError):
        fllic.decode(_repack(rgba16.data, A=fmt.pack_alpha(alpha, 16)))


@pytest.mark.parametrize("tag, bad", [("ICC", b"x" * 200), ("ICC", b""), ("EXIF", b"GIF89a..."),
                                      ("EXIF", b"II*\x00" + bytes(fmt.MAX_METADATA))])
def test_malformed_metadata_sections_are_format_errors(rgba16, tag, bad):
    with pytest.raises(fllic.FormatError, match=tag):
        fmt.unpack(_repack(rgba16.data, **{tag: bad}))


def test_alpha_codec_round_trips_at_both_depths(rng):
    for depth, dtype in ((8, np.uint8), (16, np.uint16)):
        a = rng.integers(0, 1 << depth, size=(13, 17)).astype(dtype)
        back = fmt.unpack_alpha(fmt.pack_alpha(a, depth), 13, 17, depth)
        assert back.dtype == dtype and np.array_equal(back, a)


def test_golden_style_8_bit_files_keep_their_layout(model, rng):
    """An 8-bit grey/RGB file has only Z and Y, channels 1 or 3, and the pixel CRC of its uint8 bytes."""
    res = encode_detailed(scene(rng, 20, 24, depth=8), sigma=10, model=model)
    c = fmt.unpack(res.data)
    assert list(c.sections) == ["Z", "Y"] and c.header.bit_depth == 8 and c.header.channels == 3
    assert c.header.pixels_crc32 == zlib.crc32(res.pixels.tobytes())


# -- image files -----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_files_are_read_at_full_depth(rng, suffix, channels):
    img = scene(rng, 19, 23, channels=3 if channels >= 3 else 1)
    if channels in (2, 4):
        img = np.dstack([img, alpha_plane(rng, 19, 23)])
    data = encode_image(img, suffix)
    f = read_image_file(data)
    assert f.bit_depth == 16 and f.array.dtype == np.uint16
    assert np.array_equal(f.array, img), "no bit lost: the low byte is read"
    assert (f.alpha is not None) == (channels in (2, 4))
    assert np.array_equal(read_image(data), f.pixels)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_files_written_by_others_are_read(tmp_path, rng, suffix):
    rgb = scene(rng, 21, 25)
    data = imagecodecs.png_encode(rgb) if suffix == ".png" else imagecodecs.tiff_encode(rgb)
    assert np.array_equal(read_image(data), rgb)
    grey = tmp_path / f"grey{suffix}"
    Image.fromarray(rgb[..., 0]).save(grey)  # Pillow's own 16-bit grey
    assert np.array_equal(read_image(grey), rgb[..., 0]) and read_image(grey).dtype == np.uint16


def test_8_bit_alpha_modes_are_read(rng):
    grey = scene(rng, 9, 11, channels=1, depth=8)
    buf = io.BytesIO()
    Image.fromarray(grey).convert("P").save(buf, format="PNG", transparency=int(grey[0, 0]))
    f = read_image_file(buf.getvalue())
    assert f.pixels.shape == (9, 11, 3) and f.alpha is not None and f.alpha[0, 0] == 0
    la = np.dstack([grey, alpha_plane(rng, 9, 11, 8)])
    buf = io.BytesIO()
    Image.fromarray(la).save(buf, format="PNG")
    assert np.array_equal(read_image_file(buf.getvalue()).array, la)


def test_what_cannot_be_read_at_full_depth_is_refused(rng):
    cases = {
        "floating-point": imagecodecs.tiff_encode(np.zeros((6, 7), np.float32)),
        "32-bit": imagecodecs.tiff_encode(np.zeros((6, 7), np.uint32)),
        "signed": imagecodecs.tiff_encode(np.zeros((6, 7), np.int16)),
    }
    buf = io.BytesIO()
    Image.fromarray(scene(rng, 6, 7, channels=1)).save(buf, format="PPM")  # a 16-bit PGM
    cases["PNG or TIFF"] = buf.getvalue()
    for words, data in cases.items():
        with pytest.raises(fllic.InputError, match=words) as e:
            read_image_file(data)
        assert "\n" not in str(e.value)


def test_writing_refuses_what_the_format_cannot_hold(rng):
    deep, rgba = scene(rng, 6, 7), np.dstack([scene(rng, 6, 7, depth=8), alpha_plane(rng, 6, 7, 8)])
    for suffix in (".bmp", ".webp", ".ppm"):
        with pytest.raises(fllic.InputError, match="16-bit.*png or .tif"):
            encode_image(deep, suffix)
    for suffix in (".bmp", ".ppm"):
        with pytest.raises(fllic.InputError, match="alpha.*png, .tif or .webp"):
            encode_image(rgba, suffix)
    with pytest.raises(fllic.InputError, match="16-bit"):
        encode_image(deep, ".jpg", allow_lossy=True)
    webp = read_image_file(encode_image(rgba, ".webp"))
    assert np.array_equal(webp.array, rgba), "WebP keeps alpha and the colour under it"


def test_metadata_a_format_cannot_hold_is_dropped_with_a_warning(rng):
    img = scene(rng, 6, 7, depth=8)
    with pytest.warns(fllic.FllicWarning, match="BMP cannot hold them.*ICC profile and EXIF"):
        encode_image(img, ".bmp", icc=srgb_icc(), exif=camera_exif())
    with pytest.warns(fllic.FllicWarning, match="without EXIF"):
        encode_image(scene(rng, 6, 7), ".tif", icc=srgb_icc(), exif=camera_exif())


@pytest.mark.parametrize("suffix, depth", [(".png", 8), (".png", 16), (".tif", 8), (".webp", 8)])
def test_icc_and_exif_round_trip_through_image_files(rng, suffix, depth):
    icc, exif = srgb_icc(), camera_exif()
    f = read_image_file(encode_image(scene(rng, 9, 10, depth=depth), suffix, icc=icc, exif=exif))
    assert f.icc == icc and exif_fields(f.exif) == ("FllicCam", "Model 16", "2024:05:06 07:08:09")


# -- the command line ----------------------------------------------------------------------
def _one_error_line(err: str) -> bool:
    return err.startswith("fllic: error:") and err.count("\n") == 1 and "Traceback" not in err


def _decode_file(path):
    data = path.read_bytes()
    return imagecodecs.png_decode(data) if path.suffix == ".png" else imagecodecs.tiff_decode(data)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("kind", ["grey", "rgb", "rgba"])
def test_cli_16_bit_files_come_back_16_bit(tmp_path, rng, capsys, suffix, kind):
    img = scene(rng, 29, 35, channels=1 if kind == "grey" else 3)
    if kind == "rgba":
        img = np.dstack([img, alpha_plane(rng, 29, 35)])
    src, coded, out = tmp_path / f"in{suffix}", tmp_path / "x.fllic", tmp_path / f"out{suffix}"
    src.write_bytes(encode_image(img, suffix))
    assert main(["compress", str(src), "-o", str(coded), "--sigma", "3855", "-q"]) == 0
    assert "16-bit" in capsys.readouterr().out
    assert main(["decompress", str(coded), "-o", str(out), "-q"]) == 0
    back = _decode_file(out)
    expected = fllic.decode(coded.read_bytes())
    assert back.dtype == np.uint16 and back.shape == img.shape and np.array_equal(back, expected)
    if kind == "rgba":
        assert np.array_equal(back[..., 3], img[..., 3])
    capsys.readouterr()
    assert main(["info", str(coded), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["bit_depth"] == 16 and meta["sigma"] == 3855 and meta["alpha"] == (kind == "rgba")


def test_cli_rgba_and_la_pngs_keep_their_alpha(tmp_path, rng):
    for channels in (1, 3):
        img = np.dstack([scene(rng, 25, 31, channels=channels, depth=8), alpha_plane(rng, 25, 31, 8)])
        src, coded, out = tmp_path / f"in{channels}.png", tmp_path / f"x{channels}.fllic", tmp_path / f"o{channels}.png"
        Image.fromarray(img).save(src)
        assert main(["compress", str(src), "-o", str(coded), "--sigma", "15", "-q"]) == 0
        assert main(["decompress", str(coded), "-o", str(out), "-q"]) == 0
        with Image.open(out) as im:
            assert im.mode == ("LA" if channels == 1 else "RGBA")
            back = np.asarray(im)
        assert np.array_equal(back[..., -1], img[..., -1]) and np.array_equal(back, fllic.decode(coded.read_bytes()))


@pytest.mark.parametrize("depth", [8, 16])
def test_cli_carries_icc_and_exif_through_png(tmp_path, rng, capsys, depth):
    icc, exif = srgb_icc(), camera_exif()
    src, coded, out = tmp_path / "in.png", tmp_path / "x.fllic", tmp_path / "out.png"
    src.write_bytes(encode_image(scene(rng, 22, 27, depth=depth), ".png", icc=icc, exif=exif))
    assert main(["compress", str(src), "-o", str(coded), "--sigma", "auto", "-q"]) == 0
    capsys.readouterr()
    assert main(["info", str(coded)]) == 0
    assert "ICC profile, EXIF" in capsys.readouterr().out
    assert main(["decompress", str(coded), "-o", str(out), "-q"]) == 0
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == icc
        exif_out = im.getexif()
        assert exif_out[0x010F] == "FllicCam" and exif_out.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"


def test_cli_refuses_outputs_that_cannot_hold_the_image(tmp_path, rng, capsys):
    deep, rgba = tmp_path / "deep.fllic", tmp_path / "rgba.fllic"
    deep.write_bytes(fllic.encode(scene(rng, 20, 24), sigma=3000))
    rgba.write_bytes(fllic.encode(np.dstack([scene(rng, 20, 24, depth=8), alpha_plane(rng, 20, 24, 8)]), sigma=12))
    for coded, suffix, words in ((deep, ".bmp", "16-bit"), (deep, ".webp", "16-bit"), (rgba, ".bmp", "alpha")):
        capsys.readouterr()
        out = tmp_path / f"o{suffix}"
        assert main(["decompress", str(coded), "-o", str(out), "-q"]) == 1
        err = capsys.readouterr().err
        assert _one_error_line(err) and words in err and ".png" in err and not out.exists()
    capsys.readouterr()
    assert main(["decompress", str(deep), "-o", str(tmp_path / "o.bmp.d") + "/", "--format", "bmp", "-q"]) == 1
    assert "16-bit" in capsys.readouterr().out


def test_cli_refuses_a_float_tiff_in_one_line(tmp_path, capsys):
    src = tmp_path / "f.tif"
    src.write_bytes(imagecodecs.tiff_encode(np.zeros((16, 16), np.float32)))
    assert main(["compress", str(src), "-o", str(tmp_path / "f.fllic"), "-q"]) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err) and "floating-point" in err


def test_cli_noise_reports_16_bit_units(tmp_path, rng, capsys):
    img8 = scene(rng, 64, 64, depth=8, sigma8=20)
    p8, p16 = tmp_path / "a.png", tmp_path / "b.png"
    p8.write_bytes(encode_image(img8, ".png"))
    p16.write_bytes(encode_image(img8.astype(np.uint16) * 257, ".png"))
    assert main(["noise", str(p8), "--json"]) == 0 and main(["noise", str(p16), "--json"]) == 0
    a, b = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert b["bit_depth"] == 16 and b["sigma"] == pytest.approx(257 * a["sigma"], rel=0.02)


def test_pillow_plugin_opens_16_bit_grey_and_rgba(tmp_path, rng):
    from fllic.pillow_plugin import register

    register()
    grey, rgba = tmp_path / "g.fllic", tmp_path / "a.fllic"
    grey.write_bytes(fllic.encode(scene(rng, 20, 26, channels=1), sigma=3000, icc=srgb_icc()))
    rgba.write_bytes(fllic.encode(np.dstack([scene(rng, 20, 26, depth=8), alpha_plane(rng, 20, 26, 8)]), sigma=12))
    with Image.open(grey) as im:
        assert im.mode == "I;16" and im.info["icc_profile"] == srgb_icc()
        assert np.array_equal(np.asarray(im), fllic.decode(grey.read_bytes()))
    with Image.open(rgba) as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), fllic.decode(rgba.read_bytes()))
