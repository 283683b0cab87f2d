"""The torch-free reference decoder (fllic.decoder) decodes every file exactly as fllic.decode does."""

import ast
import json
import subprocess
import sys
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import fllic
import fllic.decoder as nd
from fllic._errors import FllicError, FllicWarning, FormatError, ModelMismatchError
from fllic.decoder import integer as ni
from fllic.decoder.model import SUFFIX, installed, weights_dir
from fllic.models import integer as ti
from fllic.models.decoder_export import decoder_arrays, export, flat_arrays
from fllic.models.registry import SHIPPED
from tests.conftest import noisy_image

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_FILES = sorted(p.name for p in GOLDEN.glob("*.fllic"))
ROOM = ROOT / "src" / "fllic" / "decoder"


def _sha256(pixels: np.ndarray) -> str:
    from fllic.bench.portable import pixels_sha256

    return pixels_sha256(pixels)


@pytest.fixture(scope="module")
def tiny_npz(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("decoder") / f"tiny-test{SUFFIX}"
    export(tiny_model, path)
    return path


# -- golden files ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_file_decodes_to_the_torch_decoders_pixels_and_its_crc(name):
    data = (GOLDEN / name).read_bytes()
    manifest = json.loads((GOLDEN / "golden.json").read_text())[name]
    ours = nd.decode(data)
    theirs = fllic.decode(data)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert nd.pixels_crc32(ours) == int(fllic.info(data)["pixels_crc32"], 16)
    assert list(ours.shape) == manifest["shape"] and _sha256(ours) == manifest["sha256"]


def test_golden_files_cover_both_format_versions():
    versions = {fllic.info((GOLDEN / n).read_bytes())["format_version"] for n in GOLDEN_FILES}
    assert versions == {2, 3}


# -- generated images, tiny model ----------------------------------------------------------------
def _image(rng, h, w, channels, depth):
    img = noisy_image(rng, h, w, channels=channels)
    if depth == 16:
        img = img.astype(np.uint16) * 257 + rng.integers(0, 257, size=img.shape, dtype=np.uint16)
    return img


@pytest.mark.parametrize("h, w, channels, depth", [
    (37, 31, 3, 8), (31, 37, 1, 8), (37, 31, 4, 8), (29, 41, 2, 8),
    (37, 31, 3, 16), (33, 35, 1, 16), (30, 30, 4, 16), (1, 1, 3, 8),
])
def test_tiny_model_files_decode_identically(tiny_model, tiny_npz, rng, h, w, channels, depth):
    img = _image(rng, h, w, channels, depth)
    res = fllic.codec.encode_detailed(img, sigma=15.0 * (257 if depth == 16 else 1), model=tiny_model)
    ours = nd.decode(res.data, model=str(tiny_npz))
    assert ours.dtype == img.dtype and ours.shape == img.shape
    assert np.array_equal(ours, fllic.decode(res.data, model=tiny_model))
    assert np.array_equal(ours, res.pixels)


@pytest.mark.parametrize("tile", [64, 128, 256])
def test_bands_of_every_height_decode_identically_to_the_torch_decoder(tiny_model, tiny_npz, rng, tile, capsys):
    """The tile side sets the bands of latent rows: 1, 2 and 9 rows of an image 28 latents wide, the bands
    counted on stderr where there are several."""
    res = fllic.codec.encode_detailed(noisy_image(rng, 300, 420), sigma=20, model=tiny_model, tile=128)
    ours = nd.decode_detailed(res.data, model=tiny_npz, tile=tile, progress=True).pixels
    assert np.array_equal(ours, fllic.decode(res.data, model=tiny_model, tile=128))
    assert np.array_equal(ours, res.pixels)
    bands = -(-20 // nd.synthesis.band_rows(28, tile))  # 320 x 448 padded: 20 x 28 latents
    assert f" 0/{bands} " in capsys.readouterr().err


def test_quality_levels_and_metadata(tiny_model, tiny_npz, rng):
    icc = b"\0" * 36 + b"acsp" + b"\0" * 88
    exif = b"II*\x00" + b"\x08\x00\x00\x00" + b"\0" * 6
    for quality in (1, 2):
        data = fllic.encode(noisy_image(rng, 40, 70), sigma=5, model=tiny_model, quality=quality, icc=icc, exif=exif)
        out = nd.decode_detailed(data, model=tiny_npz)
        ref = fllic.decode_detailed(data, model=tiny_model)
        assert np.array_equal(out.pixels, ref.pixels)
        assert (out.icc, out.exif, out.sigma, out.bit_depth, out.has_alpha) == (ref.icc, ref.exif, ref.sigma, 8, False)


def test_a_shipped_model_file_of_16_bits_with_alpha_decodes_identically(rng):
    img = _image(rng, 37, 31, 4, 16)
    res = fllic.codec.encode_detailed(img, sigma=10 * 257.0, quality=3)
    ours = nd.decode(res.data)
    assert ours.dtype == np.uint16 and np.array_equal(ours, res.pixels)


# -- the integer layers against the torch reference ---------------------------------------------
def _near_l1_bound(w: torch.Tensor) -> torch.Tensor:
    """w scaled so that each output channel's sum of |w| is within 1 % of L1_MAX, not above it."""
    l1 = w.abs().flatten(1).sum(1).double().view(-1, 1, 1, 1)
    w = (w.double() * (ti.L1_MAX / l1)).trunc().long()
    assert bool((w.abs().flatten(1).sum(1) > 0.99 * ti.L1_MAX).all())
    return w


def test_convolution_is_exact_at_the_bounds():
    gen = torch.Generator().manual_seed(3)
    w = _near_l1_bound(torch.randint(-3000, 3000, (6, 40, 3, 3), generator=gen))
    conv_t = ti.IntConv(w, torch.randint(-100, 100, (6,), generator=gen), torch.randint(8, 30, (6,), generator=gen))
    a = torch.randint(-ti.A_MAX, ti.A_MAX + 1, (1, 9, 11, 40), generator=gen, dtype=torch.int32)
    exact = _object_conv(a[0].numpy().astype(object), conv_t.w_int.numpy().astype(object))  # Python integers
    for winograd in (4, 2, 0):  # Winograd's F(4x4) and F(2x2) tiles (odd sizes: 9x11) and the per-tap products
        conv_n = ni.Conv(conv_t.w_int.numpy().astype(np.int64), conv_t.bias.numpy().astype(np.int64),
                         conv_t.shift.numpy().astype(np.int64), winograd=winograd)
        assert np.array_equal(conv_n(a[0].numpy().astype(np.int64)), conv_t(a)[0].numpy())
        assert np.array_equal(conv_n.sums(a[0].numpy()), exact.astype(np.int64))


def test_convolution_is_exact_where_every_product_adds_up():
    """The worst case of the float32 pieces and of Winograd's tiles: every tap's input at ±A_MAX with its weight's
    sign, at the L1 bound, alone and tiled (its 4x4 tiles then hold ±A_MAX wherever the transform adds them);
    and inputs above A_MAX (a constant map) take the per-tap float64 products."""
    gen = torch.Generator().manual_seed(5)
    w = _near_l1_bound(torch.randint(-3000, 3000, (4, 30, 3, 3), generator=gen))
    signs = np.sign(w[0].numpy()).transpose(1, 2, 0)  # (3, 3, Cin): output (1, 1) of a 3x3 input sees them all
    big = (1 << 30) - np.random.default_rng(5).integers(1, 1 << 20, signs.shape)  # low bits float32 would lose
    checkerboard = np.where(np.indices((8, 10)).sum(0) % 2, 1, -1)[..., None] * np.tile(signs, (3, 4, 1))[:8, :10]
    for winograd in (4, 2, 0):
        conv = ni.Conv(w.numpy().astype(np.int64), np.zeros(4, np.int64), np.full(4, 20, np.int64), winograd=winograd)
        for a in (ni.A_MAX * signs, -ni.A_MAX * signs, ni.A_MAX * checkerboard, big * signs):
            a = a.astype(np.int64)
            exact = _object_conv(a.astype(object), w.numpy().astype(object)).astype(np.int64)
            assert np.array_equal(conv.sums(a), exact)
    assert np.abs(exact).max() > 1 << 40  # the constant map's sums are beyond Winograd's bound: per tap


def test_bounded_3x3_layers_take_winograds_tiles_and_the_rest_the_per_tap_products(monkeypatch):
    taken = []
    for path in ("_winograd_bands", "_tap_bands"):
        real = getattr(ni.Conv, path)
        monkeypatch.setattr(ni.Conv, path, lambda self, a, *rest, real=real, path=path: taken.append(
            f"{path} {self.winograd}" if path == "_winograd_bands" else path) or real(self, a, *rest))
    rng = np.random.default_rng(0)
    a = rng.integers(-ni.A_MAX, ni.A_MAX + 1, (5, 7, 6)).astype(np.float64)
    three, one = (ni.Conv(rng.integers(-9, 10, (4, 6, k, k)), np.zeros(4), np.full(4, 3)) for k in (3, 1))
    f2 = ni.Conv(three.w_int, three.bias, three.shift, winograd=2)
    three(a), f2(a), one(a)
    a[2, 3, 1] = ni.A_MAX + 1  # a constant map's channel: beyond Winograd's bound
    three(a)
    assert taken == ["_winograd_bands 4", "_winograd_bands 2", "_tap_bands", "_tap_bands"]
    with pytest.raises(ValueError, match="winograd is 4, 2 or 0"):
        ni.Conv(three.w_int, three.bias, three.shift, winograd=3)


def _object_conv(a, w):
    h, wd, _ = a.shape
    p = np.pad(a, ((1, 1), (1, 1), (0, 0)), constant_values=0)
    out = np.zeros((h, wd, w.shape[0]), dtype=object)
    for dy in range(3):
        for dx in range(3):
            out += np.tensordot(p[dy : dy + h, dx : dx + wd], w[:, :, dy, dx].T, axes=1)
    return out


def test_primitives_match_the_torch_reference():
    a = torch.arange(-ti.A_MAX, ti.A_MAX + 1, 7, dtype=torch.int32)
    every = torch.arange(-ti.A_MAX, ti.A_MAX + 1, dtype=torch.int32)  # every saturated value, in both float types
    for held in (np.float64, np.float32):
        assert np.array_equal(ni.leaky(every.numpy().astype(held)), ti.leaky(every.clone()).numpy())
        for shift in (-3, 1, 9):
            assert np.array_equal(ni.floor_shift(every.numpy().astype(held), shift),
                                  ti.shift_round(every.long(), shift).numpy())
    for shift in (-3, 0, 1, 5):
        assert np.array_equal(ni.shift_round(a.numpy(), shift), ti.shift_round(a.long(), shift).numpy())
    sums = np.random.default_rng(1).integers(-(1 << 49), 1 << 49, 4000)  # a convolution's sums, |S| < 2^49
    for shift in (-2, 0, 1, 8, 17, 30):
        assert np.array_equal(ni.floor_shift(sums.astype(np.float64), shift), ni.shift_round(sums, shift))
    per_channel = np.array([1, 9, 30])
    assert np.array_equal(ni.floor_shift(sums[:3000].reshape(-1, 3).astype(np.float64), per_channel),
                          (sums[:3000].reshape(-1, 3) + (1 << (per_channel - 1))) >> per_channel)
    x = torch.arange(2 * 3 * 8).reshape(1, 2, 3, 8)
    assert np.array_equal(ni.pixel_shuffle(x[0].numpy()), ti.pixel_shuffle(x)[0].numpy())
    assert np.array_equal(ni.upsample(x[0].numpy()), ti.upsample(x)[0].numpy())


# -- models and their files ---------------------------------------------------------------------
def test_every_shipped_decoder_has_its_file_within_8_mb():
    from fllic.models.registry import load, weights_path

    for info in SHIPPED:
        whole = weights_path(info).is_file()  # a retired model ships its decoder part only
        if whole and load(info.id).decoder_id != info.id:
            continue  # its files name another model's decoder
        path = weights_dir() / f"{info.id}{SUFFIX}"
        assert path.stat().st_size < 8_000_000
        m = nd.model.load(info.id)
        if whole:
            assert (m.weights_hash, m.decoder_hash) == (load(info.id).hash, load(info.id).decoder_hash)
    assert "fllic-awgn-v7" in installed()


def test_the_exporter_refuses_a_file_over_the_limit(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="over the limit"):
        export(tiny_model, tmp_path / f"x{SUFFIX}", max_bytes=1000)
    assert not (tmp_path / f"x{SUFFIX}").exists()


def test_a_damaged_decoder_file_is_refused(tiny_model, tmp_path):
    arrays = decoder_arrays(tiny_model)
    arrays["decoder.gs_out.bias"] = arrays["decoder.gs_out.bias"] + 1
    path = tmp_path / f"bad{SUFFIX}"
    np.savez_compressed(path, **arrays)
    with pytest.raises(ModelMismatchError, match="damaged"):
        nd.load_file(path)
    path.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelMismatchError, match="damaged"):
        nd.load_file(path)


def test_unknown_or_mismatched_models_are_refused(tiny_model, tiny_npz, rng):
    data = fllic.encode(noisy_image(rng, 20, 20), sigma=5, model=tiny_model)
    with pytest.raises(ModelMismatchError, match="no decoder for model 'tiny-test'"):
        nd.decode(data)
    with pytest.raises(ModelMismatchError, match="weights"):
        nd.decode(data, model="fllic-awgn-v7")
    with pytest.raises(ModelMismatchError, match="no decoder"):
        nd.decode(data, model="../weights/fllic-awgn-v7")
    v3 = (GOLDEN / "camera5_rgb_72x90_q6.fllic").read_bytes()
    with pytest.raises(ModelMismatchError, match="needs the decoder"):
        nd.decode(v3, model=tiny_npz)


def test_damaged_coded_data_raises_or_warns_with_verify_off(tiny_model, tiny_npz, rng):
    res = fllic.codec.encode_detailed(noisy_image(rng, 64, 64), sigma=20, model=tiny_model)
    c = fllic.format.unpack(res.data)
    y = bytearray(c.sections["Y"])
    y[len(y) // 2] ^= 0xFF
    c.sections["Y"] = bytes(y)
    bad = fllic.format.pack(c)
    with pytest.raises(FllicError):
        nd.decode(bad, model=tiny_npz)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = nd.decode(bad, model=tiny_npz, verify=False)
    assert out.shape == res.pixels.shape and any(w.category is FllicWarning for w in caught)


def test_where_the_range_decoder_gives_up_both_decoders_give_the_same_best_effort_image(tiny_model, tiny_npz, rng,
                                                                                        monkeypatch):
    """A Y section the range decoder rejects: the strict decode refuses it in one error; verify=False gives the
    image with those latents at their predicted means, the same pixels from either decoder, with warnings."""
    from fllic.decoder import symbols

    data = fllic.codec.encode_detailed(noisy_image(rng, 64, 64), sigma=20, model=tiny_model).data
    real, calls = symbols._decode, []

    def rejects_every_y_section(*args):  # each decode reads Z, then Y
        calls.append(len(calls))
        if len(calls) % 2 == 0:
            raise ValueError("invalid range-coded data")
        return real(*args)

    monkeypatch.setattr(symbols, "_decode", rejects_every_y_section)
    with pytest.raises(FormatError, match="corrupt entropy-coded data"):
        nd.decode(data, model=tiny_npz)
    with pytest.raises(FormatError, match="corrupt entropy-coded data"):
        fllic.decode(data, model=tiny_model, decoder="torch")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = nd.decode(data, model=tiny_npz, verify=False)
        torch_out = fllic.decode(data, model=tiny_model, decoder="torch", verify=False)
    assert np.array_equal(ref, torch_out) and ref.shape == (64, 64, 3)
    assert sum("best effort" in str(w.message) for w in caught) == 2


# -- independence from torch (and from constriction) ----------------------------------------------
def _blocking(*packages: str) -> str:
    """Python source that makes ``packages`` unimportable, as if they were not installed."""
    return f"""
import sys
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {packages!r}:
            raise ImportError(name + " is not installed")
sys.meta_path.insert(0, _Missing())
"""


@pytest.mark.parametrize("missing", [("torch",), ("torch", "constriction")])
def test_a_golden_file_decodes_with_torch_unimportable(missing):
    """Without torch the reference decoder runs; without constriction too, its range decoder in plain Python."""
    name = "camera5_rgb_72x90_q6.fllic"
    script = _blocking(*missing) + f"""
import zlib
from pathlib import Path
import fllic.decoder
pixels = fllic.decoder.decode(Path({str(GOLDEN / name)!r}).read_bytes())
assert not {set(missing)!r} & set(sys.modules)
print(zlib.crc32(pixels.tobytes()))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == zlib.crc32(fllic.decode((GOLDEN / name).read_bytes()).tobytes())


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_the_decoder_imports_neither_torch_nor_the_encoder():
    banned = ("torch", "fllic.models", "fllic.train", "fllic.codec", "fllic.entropy", "fllic.tiling", "fllic.noise")
    files = sorted(ROOM.glob("*.py"))
    assert len(files) >= 4
    for path in files:
        bad = {n for n in _imports(path) if n.split(".")[0] == "torch" or n.startswith(banned)}
        assert not bad, f"{path.name} imports {bad}"


def test_fllic_decode_falls_back_to_the_reference_decoder_without_torch(tiny_model, tiny_npz, rng, tmp_path):
    img = _image(rng, 37, 31, 4, 16)
    (tmp_path / "tiny.fllic").write_bytes(fllic.encode(img, sigma=3000.0, model=tiny_model))
    golden = GOLDEN / "rgb_65x97_q3.fllic"
    script = _blocking("torch") + f"""
import zlib
from pathlib import Path
import fllic
data = Path({str(golden)!r}).read_bytes()
tiny = Path({str(tmp_path / "tiny.fllic")!r}).read_bytes()
assert fllic.check(data) and fllic.info(data)["model_id"] == "fllic-awgn-v1"
r = fllic.decode_detailed(tiny, model={str(tiny_npz)!r})
assert r.bit_depth == 16 and r.has_alpha
try:
    fllic.decode(data, device="cuda")
except fllic.InputError:
    pass
else:
    raise SystemExit("a cuda decode without torch was not refused")
assert "torch" not in sys.modules
print(zlib.crc32(fllic.decode(data).tobytes()), zlib.crc32(r.pixels.tobytes()))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    want = (zlib.crc32(fllic.decode(golden.read_bytes()).tobytes()),
            zlib.crc32(fllic.decode((tmp_path / "tiny.fllic").read_bytes(), model=tiny_model).tobytes()))
    assert tuple(int(v) for v in out.stdout.split()) == want


def test_the_decoder_choice_gives_the_same_pixels_and_refuses_unknown_ones():
    data = (GOLDEN / GOLDEN_FILES[0]).read_bytes()
    ref = fllic.decode(data, decoder="reference")
    assert np.array_equal(ref, fllic.decode(data, decoder="torch"))
    assert np.array_equal(ref, fllic.decode(data))
    with pytest.raises(fllic.InputError, match="decoder must be one of auto, torch, reference"):
        fllic.decode(data, decoder="fast")


def test_decompress_with_the_reference_decoder_never_imports_torch(tmp_path):
    """What a cold `fllic decompress --decoder reference` saves: PyTorch is never imported, even when installed."""
    name = GOLDEN_FILES[0]
    out = tmp_path / "a.png"
    argv = ["decompress", str(GOLDEN / name), "-o", str(out), "--decoder", "reference", "-q"]
    script = (f"import sys\nfrom fllic.cli import main\nassert main({argv!r}) == 0\n"
              "assert 'torch' not in sys.modules, 'torch was imported'\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(out)), fllic.decode((GOLDEN / name).read_bytes()))


def test_the_reference_decoder_refuses_another_device_in_one_line():
    data = (GOLDEN / GOLDEN_FILES[0]).read_bytes()
    with pytest.raises(fllic.InputError, match="the reference decoder runs on the cpu only"):
        fllic.decode(data, decoder="reference", device="cuda")


def test_the_reference_decoder_names_what_it_reads_when_given_a_whole_model_file(tiny_model_path):
    data = (GOLDEN / GOLDEN_FILES[0]).read_bytes()
    with pytest.raises(fllic.ModelMismatchError, match="reads a model id or a -decoder.npz file"):
        fllic.decode(data, model=str(tiny_model_path), decoder="reference")


def test_byte_planes_join_to_every_int16():
    from fllic.decoder.model import _joined, split_planes

    w = np.arange(-32768, 32768, dtype=np.int16).reshape(256, 256)
    hi, lo = split_planes(w)
    assert hi.dtype == np.int8 and lo.dtype == np.uint8
    joined = _joined(Path("x"), {"decoder.a.w_int.hi": hi, "decoder.a.w_int.lo": lo})
    assert joined["decoder.a.w_int"].dtype == np.int16 and np.array_equal(joined["decoder.a.w_int"], w)
    with pytest.raises(ModelMismatchError, match="byte planes"):
        _joined(Path("x"), {"decoder.a.w_int.hi": hi})


def test_a_decoder_file_reads_the_arrays_it_shares_from_its_base(tiny_model, tmp_path):
    base, shared = tmp_path / f"base-model{SUFFIX}", tmp_path / f"sharing{SUFFIX}"
    whole = export(tiny_model, base)
    small = export(tiny_model, shared, base=base)
    assert small < whole / 4  # only the metadata: every array is the base's
    meta = json.loads(str(np.load(shared)["meta"]))
    assert meta["base"] == "base-model" and "decoder.gs_out.w_int" in meta["base_arrays"]
    model = nd.load_file(shared)
    assert model.decoder_hash == tiny_model.decoder_hash
    assert np.array_equal(model.gs_out.w_int, nd.load_file(base).gs_out.w_int)
    # the base must be beside it, undamaged, and without a base of its own
    with pytest.raises(ValueError, match="names a base of its own"):
        export(tiny_model, tmp_path / f"chain{SUFFIX}", base=shared)
    chain = decoder_arrays(tiny_model, base=base)
    chain["meta"] = np.array(json.dumps({**json.loads(str(chain["meta"])), "base": "sharing"}))
    np.savez_compressed(tmp_path / f"chain{SUFFIX}", **chain)
    with pytest.raises(ModelMismatchError, match="names a base of its own"):
        nd.load_file(tmp_path / f"chain{SUFFIX}")
    base.unlink()
    with pytest.raises(ModelMismatchError, match="copy the two files together"):
        nd.load_file(shared)
    export(tiny_model, base)
    with np.load(base) as npz:
        damaged = {k: npz[k] for k in npz.files}
    damaged["decoder.gs_out.bias"] = damaged["decoder.gs_out.bias"] + 1
    np.savez_compressed(base, **damaged)
    with pytest.raises(ModelMismatchError, match="damaged"):
        nd.load_file(shared)


def test_a_format_1_decoder_file_still_reads(tiny_model, tmp_path):
    arrays = flat_arrays(tiny_model)  # w_int as int16, no planes
    meta = json.loads(str(decoder_arrays(tiny_model)["meta"]))
    path = tmp_path / f"old{SUFFIX}"
    np.savez_compressed(path, meta=np.array(json.dumps({**meta, "format": "fllic-decoder-1"})), **arrays)
    assert nd.load_file(path).decoder_hash == tiny_model.decoder_hash


def test_the_loader_refuses_a_layer_outside_the_exactness_bounds():
    from fllic.decoder.model import _conv

    w = np.ones((2, 3, 3, 3), np.int64)
    good = {"c.w_int": w, "c.shift": np.full(2, 9), "c.bias": np.array([ni.BIAS_MAX, -ni.BIAS_MAX])}
    assert _conv(good, "c").bias.tolist() == [ni.BIAS_MAX, -ni.BIAS_MAX]
    with pytest.raises(ModelMismatchError, match="bias beyond"):
        _conv({**good, "c.bias": np.array([0, ni.BIAS_MAX + 1])}, "c")
    with pytest.raises(ModelMismatchError, match="L1 bound"):
        _conv({**good, "c.w_int": w * ni.L1_MAX}, "c")


def test_band_workers_give_the_same_integers_and_give_blas_its_threads_back(monkeypatch):
    """Bands of rows on two workers, as on a two-core machine, runs from two threads at once: the same integers as
    one band after another, and BLAS's thread count as it was once the runs end."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(7)
    conv = ni.Conv(rng.integers(-200, 200, (8, 5, 3, 3)), rng.integers(-50, 50, 8), rng.integers(4, 12, 8))
    layers = [conv, ni.ResBlock(ni.Conv(rng.integers(-200, 200, (8, 8, 3, 3)), np.zeros(8, np.int64),
                                        np.full(8, 9)), ni.Conv(rng.integers(-200, 200, (8, 8, 1, 1)),
                                                                np.zeros(8, np.int64), np.full(8, 6)), 1)]
    a = rng.integers(-ni.A_MAX, ni.A_MAX + 1, (700, 40, 5))  # several bands of rows
    monkeypatch.setattr(ni, "BAND_ELEMENTS", 4096)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    serial = ni.run(layers, a)
    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    seen, finish, callers_seen = set(), conv._finish, set()
    conv._finish = lambda s: (seen.add(threading.get_ident()), finish(s))[1]

    def call(_):
        callers_seen.add(threading.get_ident())
        return ni.run(layers, a)

    with ThreadPoolExecutor(2) as callers:
        outs = list(callers.map(call, range(4)))
    assert all(np.array_equal(out, serial) for out in outs)
    assert seen - callers_seen  # bands ran on workers (a run that starts while another has them goes in turn)
    assert [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] == before


def _random_layers(rng, c: int = 6):
    def conv(cout, cin, k, shift=9):
        return ni.Conv(rng.integers(-150, 150, (cout, cin, k, k)), rng.integers(-40, 40, cout), np.full(cout, shift))

    return [conv(c, 4, 3), ni.ResBlock(conv(c, c, 3), conv(c, c, 3), 1),
            ni.UpResBlock(conv(4 * c, c, 1), conv(c, c, 3), conv(c, c, 3)), conv(c, c, 1), conv(3, c, 3)]


@pytest.mark.parametrize("band", [1, 2, 3, 7, 40])
def test_a_row_stream_gives_the_whole_images_integers_for_any_bands(band):
    """Convolutions, a ResBlock and an UpResBlock fed bands of rows, odd heights, one row and more than the
    image included: row for row the whole image's output, and each band's rows come out in order."""
    rng = np.random.default_rng(band)
    layers = _random_layers(rng)
    a = rng.integers(-ni.A_MAX, ni.A_MAX + 1, (13, 9, 4))
    a[..., 3] = 1 << 20  # a constant map beyond Winograd's bound: the per-tap products, in bands too
    stream = ni.RowStream(layers)
    rows = [stream(a[r : r + band], last=r + band >= len(a)) for r in range(0, len(a), band)]
    assert np.array_equal(np.concatenate(rows), ni.run(layers, a))
    assert sum(map(len, rows)) == 2 * len(a)  # the UpResBlock doubles the rows



def _narrow_layers(rng):
    """Narrow layers (float32 products and activations) after a 16-bit one: multipliers that are powers of two
    (the float32 rounding) and one that is not (float64), in a ResBlock, an UpResBlock and alone."""
    def narrow(cout, cin, k, pow2=True):
        w = rng.integers(-40, 41, (cout, cin, k, k))
        mult = np.full(cout, 1 << 14) if pow2 else rng.integers(1 << 14, 1 << 15, cout)
        return ni.Conv(w, rng.integers(-40, 40, cout), rng.integers(18, 24, cout), in_shift=12, mult=mult,
                       in_mult=int(rng.integers(128, 256)))

    c = 8
    return [ni.Conv(rng.integers(-150, 150, (c, 4, 3, 3)), rng.integers(-40, 40, c), np.full(c, 9)),
            ni.ResBlock(narrow(c, c, 3), narrow(c, c, 3), 1),
            ni.UpResBlock(narrow(4 * c, c, 1), narrow(c, c, 3), narrow(c, c, 3)), narrow(3, c, 3, pow2=False)]


@pytest.mark.parametrize("band", [1, 2, 5, 40])
def test_a_row_stream_of_narrow_layers_gives_the_whole_images_integers(band):
    rng = np.random.default_rng(100 + band)
    layers = _narrow_layers(rng)
    assert layers[1].conv1._post is not None and layers[-1]._post is None  # both roundings are exercised
    a = rng.integers(-ni.A_MAX, ni.A_MAX + 1, (11, 9, 4))
    stream = ni.RowStream(layers)
    rows = [stream(a[r : r + band], last=r + band >= len(a)) for r in range(0, len(a), band)]
    whole = ni.run(layers, a)
    assert np.array_equal(np.concatenate(rows), whole) and np.abs(whole).max() > 0

def test_a_row_stream_refuses_a_layer_it_cannot_stream():
    with pytest.raises(TypeError, match="no row stream"):
        ni.RowStream([object()])
