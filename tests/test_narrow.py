"""Narrow layers: g_s's half and quarter resolutions trained for 10-bit inputs and L1-bounded weights, decoded exactly
(issue 27)."""

import hashlib
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fllic
import fllic.decoder as nd
from fllic._errors import ModelMismatchError
from fllic.bench.portable import ENVIRONMENTS
from fllic.decoder import integer as ni
from fllic.decoder.model import SUFFIX
from fllic.models import integer as I
from fllic.models.decoder_export import export
from fllic.models.fllic_net import FLLIC, FllicConfig, finalize
from fllic.models.layers import NARROW_L1, NARROW_MAX, NarrowConv2d
from tests.conftest import noisy_image


@pytest.fixture(scope="module")
def narrow_model():
    torch.manual_seed(0)
    return finalize(FLLIC(replace(FllicConfig.tiny(), gs_narrow=2)), {"id": "tiny-narrow", "quality_scales": [2.0, 1.0]})


def _trained_layer(cin=16, cout=8, seed=0) -> NarrowConv2d:
    torch.manual_seed(seed)
    conv = NarrowConv2d(cin, cout)
    conv(torch.randn(2, cin, 9, 9) * 3)  # sets the input range (train mode)
    return conv.eval()


# -- the float layer that trains for the narrow layers' grids -----------------------------------------
def test_a_narrow_conv_computes_on_10_bit_inputs_and_l1_bounded_weights_whose_products_share_a_power_of_two():
    conv = _trained_layer()
    x = torch.randn(1, 16, 7, 8) * 3
    s = conv.input_step()
    assert float(s) == pytest.approx(float(conv.input_peak) / NARROW_MAX)  # the input's range, all 10 bits of it
    t = conv.weight_exponents(s)
    k = torch.round(x / s).clamp(-NARROW_MAX, NARROW_MAX)
    j = torch.round(conv.weight.double() * float(s) * 2.0**t)
    l1 = j.abs().sum(dim=(1, 2, 3))
    assert l1.max() <= NARROW_L1 and l1.min() > (NARROW_L1 - 72) / 2  # the finest power-of-two grid within the bound
    with torch.no_grad():  # k · s times j · 2^-t / s: each product's scale is 2^-t[c]
        assert torch.allclose(conv(x), F.conv2d(k, (j * 2.0**-t).float(), conv.bias, padding=1), atol=1e-4)


def test_a_narrow_conv_tracks_its_input_range_in_training_only_and_passes_gradients():
    conv = NarrowConv2d(4, 4)
    conv(torch.full((1, 4, 5, 5), 2.0))
    assert float(conv.input_peak) == 2.0  # the first input sets it, in any mode
    conv(torch.full((1, 4, 5, 5), 4.0))
    assert float(conv.input_peak) == pytest.approx(2.02)  # then a moving average of the batches' peaks
    conv.eval()
    x = torch.full((1, 4, 5, 5), 100.0, requires_grad=True)
    conv(x).sum().backward()
    assert float(conv.input_peak) == pytest.approx(2.02)
    assert conv.weight.grad.abs().sum() > 0 and x.grad is not None  # straight-through (x is clipped: no gradient)


# -- the integer layer: exact at its bounds on every path ----------------------------------------------
def _object_conv(a, w):
    h, wd, _ = a.shape
    p = np.pad(a, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, wd, w.shape[0]), dtype=object)
    for dy in range(3):
        for dx in range(3):
            out += np.tensordot(p[dy : dy + h, dx : dx + wd], w[:, :, dy, dx].T, axes=1)
    return out


IN_MULT, IN_SHIFT = 255, 12  # the extreme layer's input requantization: the largest multiplier


def _extreme_layer(mult=(I.MULT_MAX, 1, 12345)):
    """Weights whose L1 norms reach NARROW_L1 over 1,152 taps (128 channels; channel 0 all of equal magnitude but
    one, channel 1 one large tap), multipliers up to 2^15, and an input that requantizes to ±511 with channel 0's
    signs wherever output (1, 1) reads them. Multipliers that are all powers of two take both decoders' float32
    rounding, with 2^14 at a shift of 9 (t >= r: a sum scaled up past the saturation bound)."""
    gen = torch.Generator().manual_seed(7)
    cin = 128
    w = torch.randint(-20, 21, (3, cin, 3, 3), generator=gen)
    w[0] = torch.where(w[0] >= 0, 28, -28)
    w[0, 0, 0, 0] = 28
    w[0, 0, 0, 0] += NARROW_L1 - int(w[0].abs().sum())  # sum |j| = NARROW_L1 exactly
    w[1] = 0
    w[1, 5, 1, 1] = -NARROW_L1
    mult = torch.tensor(mult)
    conv = I.IntNarrowConv(w, torch.tensor([5, -7, 0]), torch.tensor([20, 1, 9]), IN_MULT, IN_SHIFT, mult)
    signs = np.sign(w[0].numpy()).transpose(1, 2, 0)
    a = np.tile(signs, (2, 2, 1))[:3, :4] * 8300  # · 255 / 2^12 requantizes past ±511: clipped to it
    return conv, a.astype(np.int64)


@pytest.mark.parametrize("mult", [(I.MULT_MAX, 1, 12345), (I.MULT_MAX, 1, 1 << 14)], ids=["float64", "powers of two"])
def test_a_narrow_layer_is_exact_at_its_bounds_in_both_decoders(mult):
    conv, a = _extreme_layer(mult)
    assert (conv._post is None) == (mult[2] == 12345)
    k = np.clip((a * IN_MULT + (1 << (IN_SHIFT - 1))) >> IN_SHIFT, -NARROW_MAX, NARROW_MAX).astype(object)
    sums = _object_conv(k, conv.w_int.numpy().astype(object))
    assert abs(sums[1, 1, 0]) == NARROW_MAX * NARROW_L1 and abs(sums[1, 1, 0]) < 2**24
    mult, shift, bias = (t.numpy().astype(object) for t in (conv.mult, conv.shift, conv.bias))
    want = np.clip((sums * mult + (1 << (shift - 1))) // (1 << shift) + bias, -I.A_MAX, I.A_MAX).astype(np.int64)
    got = conv(torch.from_numpy(a)[None].int())[0].numpy()
    conv.float64_gemm = True
    assert np.array_equal(got, want) and np.array_equal(conv(torch.from_numpy(a)[None].int())[0].numpy(), want)
    ref = ni.Conv(conv.w_int.numpy().astype(np.int64), conv.bias.numpy(), conv.shift.numpy(), in_shift=IN_SHIFT,
                  mult=conv.mult.numpy(), in_mult=IN_MULT)
    assert ref.winograd == 0 and ref.taps.dtype == np.float32  # float32 products per tap, every sum below 2^24
    assert (ref._post is None) == (conv._post is None)
    assert np.array_equal(ref(a), want) and np.array_equal(ref.sums(a), sums.astype(np.float64))


_ISA_SCRIPT = """
import hashlib, sys, torch
sys.path.insert(0, {root!r})
from tests.test_narrow import _extreme_layer
conv, a = _extreme_layer()
x = torch.from_numpy(a)[None].int().repeat(1, 8, 8, 1)
print(hashlib.sha256(conv(x).numpy().tobytes()).hexdigest())
"""


@pytest.mark.parametrize("env", ["default", "1 thread", "oneDNN AVX2", "oneDNN SSE41"])
def test_a_narrow_layer_gives_the_same_integers_under_every_isa_and_thread_count(env):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", _ISA_SCRIPT.format(root=root)], capture_output=True, text=True,
                         env={**__import__("os").environ, **ENVIRONMENTS[env]}, check=True).stdout.strip()
    conv, a = _extreme_layer()
    ref = ni.Conv(conv.w_int.numpy().astype(np.int64), conv.bias.numpy(), conv.shift.numpy(), in_shift=IN_SHIFT,
                  mult=conv.mult.numpy(), in_mult=IN_MULT)
    want = ref(np.tile(a, (8, 8, 1))).astype(np.int32)
    assert out == hashlib.sha256(want.tobytes()).hexdigest()


def test_an_exported_narrow_layer_tracks_the_float_layer():
    conv = _trained_layer(cin=24, cout=12, seed=3)
    e_in, e_out = 12, 11
    x = torch.randn(1, 24, 10, 11) * 3
    ic = I.quantize_conv(conv, e_in, e_out)
    assert isinstance(ic, I.IntNarrowConv) and ic.w_int.abs().flatten(1).sum(1).max() <= NARROW_L1
    a = torch.round(I.to_nhwc(x) * 2.0**e_in).int()
    out = I.to_nchw(ic(a)).double() * 2.0**-e_out
    with torch.no_grad():
        ref = conv(I.to_nchw(a).float() * 2.0**-e_in)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()  # the input's rounding ties differ, little else


def test_narrow_layers_outside_their_bounds_are_refused():
    w = torch.zeros(2, 4, 3, 3, dtype=torch.int64)
    w[:, :, 1, 1] = NARROW_L1 // 4
    over = w.clone()
    over[1, 0, 0, 0] = NARROW_L1 - int(w[1].abs().sum()) + 1
    with pytest.raises(ValueError, match="narrow layer's weights"):
        I.IntNarrowConv(over, torch.zeros(2), torch.full((2,), 9), 200, 4, torch.ones(2))
    with pytest.raises(ValueError, match="output multiplier"):
        I.IntNarrowConv(w, torch.zeros(2), torch.full((2,), 9), 200, 4, torch.tensor([1, I.MULT_MAX + 1]))
    for in_mult, in_shift in ((256, 4), (200, 0), (200, 24)):
        with pytest.raises(ValueError, match="input multiplier or shift"):
            I.IntNarrowConv(w, torch.zeros(2), torch.full((2,), 9), in_mult, in_shift, torch.ones(2))
    with pytest.raises(ValueError, match="bias"):
        I.IntNarrowConv(w, torch.tensor([0, -I.A_MAX - 1]), torch.full((2,), 9), 200, 4, torch.ones(2))
    from fllic.decoder.model import _conv

    good = {"c.w_int": w.numpy(), "c.shift": np.full(2, 9), "c.bias": np.zeros(2, np.int64),
            "c.in_mult": np.array(200), "c.in_shift": np.array(4), "c.mult": np.array([1, 2])}
    assert (_conv(good, "c").in_mult, _conv(good, "c").in_shift) == (200, 4)
    for bad in ({"c.w_int": over.numpy()}, {"c.mult": np.array([0, 2])}, {"c.in_shift": np.array(24)},
                {"c.in_mult": np.array(256)}, {"c.mult": np.array([1, 2, 3])}, {"c.bias": np.array([0, 32640])}):
        with pytest.raises(ModelMismatchError, match="narrow layer"):
            _conv({**good, **bad}, "c")


# -- a model with narrow layers ---------------------------------------------------------------------
def test_a_model_with_narrow_layers_decodes_identically_in_both_decoders(narrow_model, tmp_path):
    gs_out = narrow_model.decoder.gs_out
    assert isinstance(gs_out, I.IntNarrowConv) and int(gs_out.mult.max()) > 1  # 255 per unit: a multiplier
    path = tmp_path / f"tiny-narrow{SUFFIX}"
    export(narrow_model, path)
    with np.load(path) as npz:
        assert json.loads(str(npz["meta"]))["format"] == "fllic-decoder-3"
    rng = np.random.default_rng(4)
    for h, w, channels in ((45, 61, 3), (33, 40, 1)):
        res = fllic.codec.encode_detailed(noisy_image(rng, h, w, channels=channels), sigma=15, model=narrow_model)
        ours = nd.decode(res.data, model=str(path))
        assert np.array_equal(ours, res.pixels) and np.array_equal(ours, fllic.decode(res.data, model=narrow_model))


def test_a_model_without_narrow_layers_still_writes_format_2(tiny_model, tmp_path):
    path = tmp_path / f"tiny-test{SUFFIX}"
    export(tiny_model, path)
    with np.load(path) as npz:
        assert json.loads(str(npz["meta"]))["format"] == "fllic-decoder-2"
    assert not any(isinstance(m, I.IntNarrowConv) for m in tiny_model.decoder.modules())


def test_a_model_saved_with_narrow_layers_loads_them_back(narrow_model, tmp_path):
    path = tmp_path / "narrow.pt"
    narrow_model.save(path)
    loaded = fllic.models.fllic_net.CodingModel.load(path)
    assert loaded.net.config.gs_narrow == 2 and loaded.decoder_hash == narrow_model.decoder_hash
    img = noisy_image(np.random.default_rng(5), 40, 48)
    res = fllic.codec.encode_detailed(img, sigma=20, model=narrow_model)
    assert np.array_equal(fllic.decode(res.data, model=loaded), res.pixels)


def test_the_input_requantizer_is_the_step_to_within_a_part_in_256():
    rng = np.random.default_rng(0)
    for _ in range(200):
        step, e_in = float(np.exp(rng.uniform(-8, 2))), int(rng.integers(4, 20))
        try:
            m, s = I.input_requantizer(step, e_in)
        except ValueError:  # the shift it needs (one less where the multiplier rounds up to 256) is out of range
            needed = 7 - np.floor(np.log2(2.0**-e_in / step))
            assert needed > I.IN_SHIFT_MAX or needed <= 1
            continue
        ratio = 2.0**-e_in / step
        assert 128 <= m <= 255 and 1 <= s <= I.IN_SHIFT_MAX and abs(m - ratio * 2.0**s) <= 0.5


def test_narrow_layers_decode_identically_band_by_band(narrow_model, tmp_path):
    path = tmp_path / f"tiny-narrow{SUFFIX}"
    export(narrow_model, path)
    res = fllic.codec.encode_detailed(noisy_image(np.random.default_rng(6), 300, 130), sigma=20, model=narrow_model)
    for tile in (64, 128):  # bands of 1 and 2 latent rows through the reference decoder's row stream
        assert np.array_equal(nd.decode_detailed(res.data, model=path, tile=tile).pixels, res.pixels)
