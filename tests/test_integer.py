"""The exact integer layers: every backend and path gives the same integers, close to the float layer."""

import numpy as np
import pytest
import torch
from torch import nn

from fllic.models import integer as I


@pytest.fixture
def conv():
    torch.manual_seed(0)
    return nn.Conv2d(24, 16, 3, padding=1)


def _activations(shape, seed=0, scale=20000):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-scale, scale + 1, shape, generator=g, dtype=torch.int32)


def test_split8_reconstructs_every_value_in_range():
    a = torch.arange(-I.A_MAX, I.A_MAX + 1, dtype=torch.int32)
    hi, lo = I.split8(a)
    assert hi.dtype == lo.dtype == torch.int8
    assert torch.equal(hi.int() * 256 + lo.int(), a)


def test_pixel_shuffle_and_upsample_match_torch():
    x = torch.arange(2 * 12 * 3 * 5, dtype=torch.int32).reshape(2, 12, 3, 5)
    ref = nn.PixelShuffle(2)(x.float()).int()
    assert torch.equal(I.to_nchw(I.pixel_shuffle(I.to_nhwc(x))), ref)
    ref_up = nn.Upsample(scale_factor=2.0, mode="nearest")(x.float()).int()
    assert torch.equal(I.to_nchw(I.upsample(I.to_nhwc(x))), ref_up)


def test_leaky_is_the_power_of_two_slope():
    a = torch.tensor([-32639, -1000, -10, -1, 0, 1, 5000], dtype=torch.int32)
    assert I.leaky(a).tolist() == [-3264, -100, -1, 0, 0, 1, 5000]


def _float64_reference(ic: I.IntConv, a: torch.Tensor) -> torch.Tensor:
    """The exact sum in float64 (every partial sum < 2^53), rounded and shifted."""
    k = ic.w_int.shape[-1]
    mat = ic.w_int.permute(2, 3, 1, 0).reshape(-1, ic.w_int.shape[0]).double()
    acc = (I.im2col(a.double(), k) @ mat).round().long().reshape(*a.shape[:3], -1)
    return (acc + ic.round_bit) >> ic.shift


@pytest.mark.parametrize("kernel", [1, 3])
def test_int32_int64_and_float64_paths_agree_exactly(kernel):
    torch.manual_seed(kernel)
    conv = nn.Conv2d(24, 16, kernel, padding=kernel // 2)
    ic = I.IntConv.quantize(conv, e_in=10, e_out=9)
    assert ic.narrow  # the nested-floor int32 path is taken
    a = _activations((2, 9, 13, 24))
    narrow = ic._sum_shifted(a).long()
    ic.narrow = False
    wide = ic._sum_shifted(a).long()
    assert torch.equal(narrow, wide) and torch.equal(wide, _float64_reference(ic, a))


def test_weights_respect_the_l1_bound_that_makes_float32_exact():
    torch.manual_seed(3)
    ic = I.IntConv.quantize(nn.Conv2d(200, 8, 3, padding=1), e_in=8, e_out=12)
    assert int(ic.w_int.abs().flatten(1).sum(1).max()) * 128 < 2**24
    with pytest.raises(ValueError, match="L1 bound"):
        I.IntConv(torch.full((1, 4, 3, 3), 5000), torch.zeros(1), torch.full((1,), 10))


def test_large_weights_take_the_int64_path_and_stay_exact():
    conv = nn.Conv2d(8, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(2000.0)
    ic = I.IntConv.quantize(conv, e_in=10, e_out=10)
    assert not ic.narrow
    a = _activations((1, 7, 6, 8), seed=3)
    assert torch.equal(ic._sum_shifted(a).long(), _float64_reference(ic, a))


def test_integer_conv_tracks_the_float_conv(conv):
    e_in, e_out = 12, 11
    x = torch.randn(1, 24, 10, 11)
    ic = I.IntConv.quantize(conv, e_in, e_out)
    a = torch.round(I.to_nhwc(x) * 2.0**e_in).int()
    out = I.to_nchw(ic(a)).double() * 2.0**-e_out
    with torch.no_grad():
        ref = conv(I.to_nchw(a).double().float() * 2.0**-e_in)
    assert (out - ref).abs().max() < 2e-3


def test_conv_result_is_identical_across_thread_counts(conv):
    ic = I.IntConv.quantize(conv, 10, 10)
    a = _activations((1, 64, 48, 24), seed=5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ic(a)
        torch.set_num_threads(2)
        two = ic(a)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


def test_too_many_taps_is_refused():
    with pytest.raises(ValueError, match="exact bound"):
        I.IntConv.quantize(nn.Conv2d(256, 8, 3, padding=1), 10, 10)


def test_saturation_keeps_values_in_range():
    conv = nn.Conv2d(4, 4, 1)
    with torch.no_grad():
        conv.bias.fill_(1e6)
    out = I.IntConv.quantize(conv, 10, 10)(_activations((1, 3, 3, 4)))
    assert int(out.max()) == I.A_MAX and out.dtype == torch.int32
    assert np.isfinite(out.numpy()).all()
