"""Exact integer layers: the decoder's networks in integer arithmetic.

Ballé, Johnston & Minnen, "Integer networks for data compression with
latent-variable models" (ICLR 2019): whatever decides a symbol or an output
pixel must be computed identically by encoder and decoder, on any machine.
Here every such value is an integer, and every operation on it is exact, so
the result cannot depend on the thread count, the instruction set, the BLAS
or oneDNN kernel, or the device.

Representation
    An activation is an int32 tensor in NHWC layout with |a| <= A_MAX, read as
    a * 2^-e for a per-tensor exponent e chosen at export (calibration). A
    weight is w_int[c] * 2^-r[c] * 2^(e_in - e_out): a power-of-two scale per
    output channel, so that the layer's rescaling is a shift by r[c].

Convolution (the bounds that make it exact)
    out = floor((sum_k w_int a_int + 2^(r-1)) / 2^r) + b, per output channel
    c, with b the bias in output units. The activation is split into 8-bit
    pieces, a = 256 a_hi + a_lo with both in [-128, 127], and each piece is
    convolved with w_int in float32 on integer values. Every partial sum of
    output channel c is then an integer of magnitude at most
    128 · sum_k |w_int[c, k]| <= 128 · L1_MAX = 2^24 - 2^7, because export
    chooses r[c] so that the channel's L1 norm is at most L1_MAX: float32
    holds every integer below 2^24, so each sum is exact whatever the
    summation order, blocking, FMA use, thread count or instruction set, as
    long as the kernel computes a sum of the products (a direct or GEMM
    convolution; PyTorch's CPU convolution never uses Winograd or FFT). On
    other devices the same sums run as float64 GEMMs (exact below 2^53).
    The two partial sums combine by nested floors,
        floor((256 P_hi + P_lo + 2^(r-1)) / 2^r)
            = floor((P_hi + floor((P_lo + 2^(r-1)) / 2^8)) / 2^(r-8)),
    an identity for integers and r >= 8 in which no term exceeds 2^31
    (|P| < 2^24, r <= 30); a layer with some r < 8 combines them in int64.
    (Integer GEMMs, ``torch._int_mm``, are not used: under
    ``ONEDNN_MAX_CPU_ISA=AVX2`` they saturate int16 intermediates and return
    wrong sums.)

Narrow layers (IntNarrowConv: g_s's half and quarter resolutions in a model trained for them, issue 27)
    k = clamp(floor((a · m + 2^(s-1)) / 2^s), -511, 511) requantizes the input to 10 bits (m = in_mult <= 255,
    1 <= s = in_shift <= 23: every term an integer below 2^24, exact in float32), and the weights j of each output
    channel are integers with sum |j| <= NARROW_L1 = 2^15 - 1, so every partial sum of
    |S| = |sum_k j k| <= 511 · NARROW_L1 < 2^24: one float32 convolution gives S exactly, on every ISA and in
    any summation order (the two pieces above collapse to one). Then
        out = floor((S · M[c] + 2^(r-1)) / 2^r) + b,   1 <= M[c] <= MULT_MAX = 2^15,
    exact in float64 (|S · M| < 2^39), and in float32 where M is a power of two (IntNarrowConv.forward): the
    multiplier carries a scale that is not a power of two (the output's 255 per unit), so the weights keep all
    the precision their L1 bound allows. (An int8 GEMM, ``torch._int_mm``, would need 8-bit inputs and weights,
    which cost g_s 0.12-0.22 dB before training and 9-12 % of the bits after it: results/int8-narrow.md and
    results/training/v8-trials.md.)

Nonlinearity
    LeakyReLU with slope 0.1 as (a * 6554 + 2^15) >> 16 for a < 0
    (slope 0.100006), exact and identical everywhere: |a · 6554| < 2^28.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fllic.decoder.integer import IN_MULT_MAX, IN_SHIFT_MAX, MULT_MAX, NARROW_L1, NARROW_MAX  # the format's bounds

A_MAX = (1 << 15) - 129  # the 8-bit pieces of a value in [-A_MAX, A_MAX] are in [-128, 127]
LEAKY_MULT, LEAKY_SHIFT = 6554, 16  # 0.1 ≈ 6554 / 2^16
MAX_TAPS = 1 << 11  # 3x3 kernels over up to 227 channels
L1_MAX = (1 << 17) - 1  # per output channel: 128 · L1 < 2^24 (module docstring)
W_INT_MAX = (1 << 15) - 1  # stored as int16
MAX_SHIFT = 30
HEADROOM = 2.0  # activation ranges are calibrated at twice the largest value seen
MULT_BITS = 14  # export picks r so that M is in [2^14, 2^15]
IN_MULT_BITS = 8  # a narrow layer's input multiplier, in [128, 255] at export (IN_MULT_MAX = 2^8 - 1)


# -- integer primitives -------------------------------------------------------------
def saturate(a: torch.Tensor) -> torch.Tensor:
    return a.clamp_(-A_MAX, A_MAX)


def shift_round(a: torch.Tensor, shift: int) -> torch.Tensor:
    """a * 2^-shift rounded half up (shift > 0), or exactly a * 2^|shift| (shift <= 0)."""
    if shift <= 0:
        return a << -shift
    return (a + (1 << (shift - 1))).bitwise_right_shift_(shift)  # in place on the new sum


def leaky(a: torch.Tensor) -> torch.Tensor:
    """Integer LeakyReLU(0.1)."""
    t = (a * LEAKY_MULT).add_(1 << (LEAKY_SHIFT - 1)).bitwise_right_shift_(LEAKY_SHIFT)
    return torch.maximum(a, t, out=t)


def split8(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hi, lo) int8 with a = 256 hi + lo and lo in [-128, 127], for |a| <= A_MAX."""
    hi = (a + 128) >> 8
    return hi.to(torch.int8), (a - (hi << 8)).to(torch.int8)


def im2col(a: torch.Tensor, k: int) -> torch.Tensor:
    """(N, H, W, C) -> (N·H·W, k·k·C), zero padding, taps (ky, kx) outer and channels inner."""
    n, h, w, c = a.shape
    if k == 1:
        return a.reshape(n * h * w, c)
    p = k // 2
    padded = F.pad(a, (0, 0, p, p, p, p))
    cols = [padded[:, dy : dy + h, dx : dx + w, :] for dy in range(k) for dx in range(k)]
    return torch.cat(cols, dim=3).reshape(n * h * w, k * k * c)


def pixel_shuffle(a: torch.Tensor) -> torch.Tensor:
    """nn.PixelShuffle(2) on NHWC: out[2h+i, 2w+j, c] = in[h, w, 4c + 2i + j]."""
    n, h, w, c4 = a.shape
    c = c4 // 4
    return a.reshape(n, h, w, c, 2, 2).permute(0, 1, 4, 2, 5, 3).reshape(n, 2 * h, 2 * w, c)


def upsample(a: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling by 2 on NHWC."""
    return a.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)


def _piece_sums(a: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(P_hi, P_lo), int32 NHWC: the convolutions of a's two 8-bit pieces with w_int, in float32.

    Exact: every partial sum is an integer below 2^24 (module docstring).
    """
    n = a.shape[0]
    pieces = torch.empty((2 * n, *a.shape[1:]), dtype=torch.float32, device=a.device)
    hi, lo = pieces[:n], pieces[n:]
    # hi = floor((a + 128) / 256), lo = a - 256 hi: integers below 2^16, exact in float32
    lo.copy_(a)
    torch.add(lo, 128, out=hi).mul_(1.0 / 256).floor_()
    lo.sub_(hi, alpha=256)
    out = F.conv2d(pieces.permute(0, 3, 1, 2), weight, padding=weight.shape[-1] // 2)  # channels-last memory
    out = out.permute(0, 2, 3, 1).to(torch.int32)
    return out[:n], out[n:]


# -- layers ---------------------------------------------------------------------------
class IntConv(nn.Module):
    """A k×k convolution (stride 1, zero padding k//2) in exact integer arithmetic."""

    def __init__(self, w_int: torch.Tensor, bias: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        if bool((w_int.abs().flatten(1).sum(1) > L1_MAX).any()):
            raise ValueError("integer weights exceed the L1 bound that makes the convolution exact")
        self.register_buffer("w_int", w_int.to(torch.int32))  # (Cout, Cin, k, k)
        self.register_buffer("bias", bias.to(torch.int32))  # in output units
        self.register_buffer("shift", shift.to(torch.int32))
        self.register_buffer("weight", w_int.to(torch.float32), persistent=False)
        self.register_buffer("round_bit", (1 << (self.shift - 1)).to(torch.int32), persistent=False)
        self.narrow = bool((self.shift >= 8).all())  # the int32 nested-floor path applies
        self.register_buffer("narrow_shift", (self.shift - 8).clamp(min=0), persistent=False)
        self.float64_gemm = False  # the other devices' path; settable on the CPU to test it

    @classmethod
    def quantize(cls, conv: nn.Conv2d, e_in: int, e_out: int, in_gain: torch.Tensor | None = None,
                 out_gain: float = 1.0, out_offset: float = 0.0) -> "IntConv":
        """Quantize ``conv`` for input exponent ``e_in`` and output exponent ``e_out``.

        The integer layer computes out_gain·(conv(in_gain·x) + out_offset), with
        ``in_gain`` an optional per-input-channel factor folded into the weights.
        Each output channel gets the finest power-of-two scale whose integer
        weights stay within L1_MAX (and W_INT_MAX).
        """
        w = conv.weight.detach().double() * out_gain
        if in_gain is not None:
            w = w * in_gain.double().view(1, -1, 1, 1)
        b = (conv.bias.detach().double() + out_offset) * out_gain
        if w[0].numel() > MAX_TAPS:
            raise ValueError(f"a conv over {w[0].numel()} taps exceeds the exact bound of {MAX_TAPS}")
        w = w * 2.0 ** (e_out - e_in)  # now out = sum w·a_int in output units
        shift = channel_shifts(w).clamp(1, MAX_SHIFT)
        w_int = torch.round(w * torch.pow(2.0, shift).view(-1, 1, 1, 1))
        bias = torch.round(b * 2.0**e_out).clamp(-A_MAX, A_MAX)
        return cls(w_int, bias, shift)

    def _sum_shifted(self, a: torch.Tensor) -> torch.Tensor:
        """floor((sum w·a + 2^(r-1)) / 2^r), exactly, as int32 or int64 NHWC."""
        if a.device.type != "cpu" or self.float64_gemm:  # exact: every partial sum < 2^41 < 2^53
            return (self._gemm_sums(a) + self.round_bit) >> self.shift
        p_hi, p_lo = _piece_sums(a, self.weight)
        if self.narrow:  # nested floors, every term below 2^31 (module docstring); in place
            t = p_lo.add_(self.round_bit).bitwise_right_shift_(8)
            return p_hi.add_(t).bitwise_right_shift_(self.narrow_shift)
        return ((p_hi.long() << 8) + p_lo.long() + self.round_bit) >> self.shift

    def _gemm_sums(self, a: torch.Tensor) -> torch.Tensor:
        """sum w·a as int64 NHWC by one float64 GEMM over a's patches (other devices), exact below 2^53."""
        n, h, w, _ = a.shape
        mat = self.w_int.permute(2, 3, 1, 0).reshape(-1, self.w_int.shape[0]).to(a.device, torch.float64)
        return (im2col(a.double(), self.weight.shape[-1]) @ mat).round_().long().reshape(n, h, w, -1)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return saturate(self._sum_shifted(a).add_(self.bias)).to(torch.int32)


class IntNarrowConv(IntConv):
    """A narrow convolution (``fllic.models.layers.NarrowConv2d``), exactly: the input requantized to 10 bits by
    ``in_mult`` and ``in_shift``, weights under an L1 bound, and an output multiplier per channel (module
    docstring)."""

    def __init__(self, w_int: torch.Tensor, bias: torch.Tensor, shift: torch.Tensor, in_mult, in_shift,
                 mult: torch.Tensor):
        check_narrow(w_int, mult, int(in_mult), int(in_shift), bias)
        super().__init__(w_int, bias, shift)
        self.register_buffer("in_mult", torch.as_tensor(in_mult, dtype=torch.int64))
        self.register_buffer("in_shift", torch.as_tensor(in_shift, dtype=torch.int64))
        self.register_buffer("mult", mult.to(torch.int64))
        self._in_mult, self._in_shift = int(in_mult), int(in_shift)
        t = torch.log2(self.mult.double())
        pow2 = bool((t == torch.round(t)).all())  # M = 2^t: the output is a rounding shift of S
        self._post = torch.pow(2.0, t - self.shift.double()).float() if pow2 else None
        self.register_buffer("_bias_f", self.bias.to(torch.float32), persistent=False)

    @classmethod
    def quantize(cls, conv: nn.Conv2d, e_in: int, e_out: int, out_gain: float = 1.0,
                 out_offset: float = 0.0) -> "IntNarrowConv":
        """Integers of the NarrowConv2d ``conv`` for input exponent ``e_in`` and output exponent ``e_out``: its
        grids as it rounds them in training, out_gain·(conv(x) + out_offset) in output units."""
        in_mult, in_shift = input_requantizer(float(conv.input_step()), e_in)
        step = torch.tensor(2.0 ** (in_shift - e_in) / in_mult, dtype=torch.float64)  # the step in_mult gives k
        t = conv.weight_exponents(step)
        with torch.no_grad():  # the forward pass's rounding, on the decoder's own step
            j = torch.round(conv.weight.double() * step * torch.pow(2.0, t))
        scale = out_gain * torch.pow(2.0, e_out - t.flatten().double())  # S · scale is the output in its units
        shift = (MULT_BITS - torch.floor(torch.log2(scale))).clamp(1, MAX_SHIFT)
        mult = torch.round(scale * torch.pow(2.0, shift))
        mult[j.flatten(1).abs().sum(1) == 0] = 1  # a channel of zero weights: S = 0 whatever its scale
        bias = torch.round((conv.bias.detach().double() + out_offset) * out_gain * 2.0**e_out).clamp(-A_MAX, A_MAX)
        return cls(j, bias, shift, in_mult, in_shift, mult)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """saturate(floor((S · M + 2^(r-1)) / 2^r) + b), int32 NHWC. On the CPU every step holds integers in
        float32 exactly: k from |a · in_mult| < 2^23 (then clipped); S below 2^24; with M = 2^t, the output is
        floor(S · 2^(t-r) + 1/2), and S · 2^(t-r) + 1/2 needs at most 24 significant bits when t < r (when
        t >= r it is an integer, exact below 2^23, and saturates beyond, as |b| <= A_MAX: check_narrow). Other
        multipliers take float64 (|S · M| < 2^39)."""
        if a.device.type != "cpu" or self.float64_gemm:
            return super().forward(a)
        s = self._sums(self._narrowed(a))
        if self._post is None:
            s = torch.floor((s.double() * self.mult + self.round_bit) * torch.pow(2.0, -self.shift.double()))
            return saturate(s.add_(self.bias)).to(torch.int32)
        s.mul_(self._post).add_(0.5).floor_().add_(self._bias_f)
        return s.clamp_(-A_MAX, A_MAX).to(torch.int32)

    def _narrowed(self, a: torch.Tensor) -> torch.Tensor:
        """k = clip(floor((a · in_mult + 2^(in_shift-1)) · 2^-in_shift), ±511) in float32 NHWC, as
        floor(a · (in_mult · 2^-in_shift) + 1/2) in two passes: exact, since in_mult · 2^-in_shift is a float32,
        a · in_mult an integer below 2^23, and a · in_mult · 2^-in_shift + 1/2 has at most 24 significant bits
        (from 2^(23-in_shift) down to 2^-in_shift)."""
        k = a.to(torch.float32).mul_(self._in_mult * 2.0**-self._in_shift).add_(0.5)  # |a| < 2^15: exact
        return k.floor_().clamp_(-NARROW_MAX, NARROW_MAX)

    def _sums(self, k: torch.Tensor) -> torch.Tensor:
        """S over the 10-bit input ``k`` (float32 NHWC) by one float32 convolution, float32 NHWC: every partial
        sum an integer below 2^24 (module docstring)."""
        s = F.conv2d(k.permute(0, 3, 1, 2), self.weight, padding=self.weight.shape[-1] // 2)
        return s.permute(0, 2, 3, 1)  # channels-last memory: a contiguous NHWC view

    def _sum_shifted(self, a: torch.Tensor) -> torch.Tensor:
        """floor((S · M + 2^(r-1)) / 2^r) as int64 NHWC, S by float64 GEMM (other devices; exact, |S| < 2^24)."""
        k = shift_round(a.long() * self._in_mult, self._in_shift).clamp_(-NARROW_MAX, NARROW_MAX)
        return (self._gemm_sums(k) * self.mult + self.round_bit) >> self.shift


def input_requantizer(step: float, e_in: int) -> tuple[int, int]:
    """(in_mult, in_shift): in_mult / 2^in_shift within 1/256 of 2^-e_in / step, in_mult in [128, 255], so that
    k = a · in_mult / 2^in_shift is an input a (at 2^-e_in) in units of ``step``."""
    ratio = 2.0**-e_in / step
    shift = IN_MULT_BITS - 1 - math.floor(math.log2(ratio))
    mult = round(ratio * 2.0**shift)
    if mult > IN_MULT_MAX:  # rounded up to 256
        mult, shift = round(ratio * 2.0 ** (shift - 1)), shift - 1
    if not 1 <= shift <= IN_SHIFT_MAX:
        raise ValueError(f"a narrow layer's input step {step:g} at exponent {e_in} needs a shift of {shift}, "
                         f"outside 1..{IN_SHIFT_MAX}")
    return mult, shift


def check_narrow(w_int: torch.Tensor, mult: torch.Tensor, in_mult: int = 1, in_shift: int = 1,
                 bias: torch.Tensor | None = None) -> None:
    """ValueError unless a narrow layer's weights, multipliers and bias are within its exact bounds (the bias
    within ±A_MAX, as export clamps it: what keeps the float32 rounding exact, IntNarrowConv.forward)."""
    if bias is not None and bool((bias.abs() > A_MAX).any()):
        raise ValueError(f"a narrow layer's bias is beyond ±{A_MAX}")
    if bool((w_int.abs().flatten(1).sum(1) > NARROW_L1).any()):
        raise ValueError(f"a narrow layer's weights exceed its exact bound (sum |j| <= {NARROW_L1} per channel)")
    if bool(((mult < 1) | (mult > MULT_MAX)).any()):
        raise ValueError(f"a narrow layer's output multiplier is outside 1..{MULT_MAX}")
    if not (1 <= in_mult <= IN_MULT_MAX and 1 <= in_shift <= IN_SHIFT_MAX):
        raise ValueError(f"a narrow layer's input multiplier or shift is outside 1..{IN_MULT_MAX}, 1..{IN_SHIFT_MAX}")


def quantize_conv(conv: nn.Conv2d, e_in: int, e_out: int, **kw) -> IntConv:
    """The integer layer of ``conv``: narrow where it was trained so (NarrowConv2d), else 16-bit."""
    from fllic.models.layers import NarrowConv2d

    return (IntNarrowConv if isinstance(conv, NarrowConv2d) else IntConv).quantize(conv, e_in, e_out, **kw)


def channel_shifts(w: torch.Tensor, l1_max: int = L1_MAX) -> torch.Tensor:
    """r[c], (Cout,): the largest power-of-two scale 2^r[c] whose integer weights round(w[c] · 2^r[c]) keep their
    L1 norm within ``l1_max`` and each within W_INT_MAX, with room for rounding up."""
    l1 = w.abs().flatten(1).sum(1).clamp(min=1e-30)
    peak = w.abs().flatten(1).amax(1).clamp(min=1e-30)
    return torch.floor(torch.log2(torch.minimum((l1_max - w[0].numel()) / l1, W_INT_MAX / peak)))


class IntResBlock(nn.Module):
    """x + conv2(leaky(conv1(x))): the ResBlock, with the sum at its own exponent."""

    def __init__(self, conv1: IntConv, conv2: IntConv, skip_shift: int):
        super().__init__()
        self.conv1, self.conv2, self.skip_shift = conv1, conv2, int(skip_shift)
        self.register_buffer("residual_shift", torch.tensor(int(skip_shift)))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return saturate(self.conv2(leaky(self.conv1(a))).add_(shift_round(a, self.skip_shift)))


class IntUpResBlock(nn.Module):
    """shuffle(conv1x1(x)) + conv_b(upsample(leaky(conv_a(x)))): the Up-ResBlock."""

    def __init__(self, skip: IntConv, conv_a: IntConv, conv_b: IntConv):
        super().__init__()
        self.skip, self.conv_a, self.conv_b = skip, conv_a, conv_b

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return saturate(self.conv_b(upsample(leaky(self.conv_a(a)))).add_(pixel_shuffle(self.skip(a))))


# -- calibration: exponents from the float network's activations ----------------------
def exponent_for(max_abs: float) -> int:
    """The largest e with HEADROOM · max_abs · 2^e <= A_MAX."""
    return int(math.floor(math.log2(A_MAX / (HEADROOM * max(max_abs, 1e-6)))))


def quantize_sequence(modules, x: torch.Tensor, e_in: int) -> tuple[list[nn.Module], torch.Tensor, int]:
    """Integer versions of float ResBlocks, Up-ResBlocks and 3×3 convs, applied in order.

    ``x`` is a float calibration batch (NCHW) entering the first module at
    exponent ``e_in``; returns the integer layers, the float output and its exponent.
    """
    from fllic.models.layers import ResBlock, UpResBlock

    layers = []
    for mod in modules:
        with torch.no_grad():
            y = mod(x)
        e_out = exponent_for(float(y.abs().max()))
        if isinstance(mod, ResBlock):
            conv1, _, conv2 = mod.branch
            with torch.no_grad():
                t = conv1(x)
            e_t = exponent_for(float(t.abs().max()))
            layers.append(IntResBlock(quantize_conv(conv1, e_in, e_t), quantize_conv(conv2, e_t, e_out), e_in - e_out))
        elif isinstance(mod, UpResBlock):
            conv_a, _, _, conv_b = mod.branch
            with torch.no_grad():
                t = conv_a(x)
            e_t = exponent_for(float(t.abs().max()))
            layers.append(IntUpResBlock(quantize_conv(mod.skip[0], e_in, e_out),
                                        quantize_conv(conv_a, e_in, e_t), quantize_conv(conv_b, e_t, e_out)))
        elif isinstance(mod, nn.Conv2d):
            layers.append(quantize_conv(mod, e_in, e_out))
        else:
            raise TypeError(f"no integer form for {type(mod).__name__}")
        x, e_in = y, e_out
    return layers, x, e_in


def to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


def to_nchw(a: torch.Tensor) -> torch.Tensor:
    return a.permute(0, 3, 1, 2).contiguous()
