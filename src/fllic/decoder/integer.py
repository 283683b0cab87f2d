"""The integer layers of h_s and g_s, in numpy: exact on every machine.

Ballé, Johnston & Minnen, "Integer networks for data compression with
latent-variable models" (ICLR 2019): whatever decides a symbol or a pixel must
be computed identically by encoder and decoder. Every value here is an integer
and every operation on it is exact, so the result is the one the format
defines, whatever the BLAS, thread count or summation order.

Representation
    An activation is an array of integers in HWC layout, read as a · 2^-e for
    a per-tensor exponent e fixed by the model file. Between layers it is
    saturated to |a| <= A_MAX. The layers hold these integers in float64
    arrays: every value a layer makes, sums included, is an integer below
    2^53 in magnitude, which float64 holds exactly, and each operation on it
    here (a sum, a product of integers, a multiplication by a power of two, a
    floor) gives the exact integer result; so no conversion is needed between
    the matrix products and the rest. A convolution's weight is w_int[c] · 2^-r[c] ·
    2^(e_in - e_out): an integer kernel and a rounding shift r[c] in 1..30 per
    output channel c.

Convolution (the bound that makes it exact)
    out[c] = floor((S[c] + 2^(r[c]-1)) / 2^r[c]) + b[c],   S[c] = sum_k w_int[c, k] · a_k,
    then saturated to [-A_MAX, A_MAX]. The model file guarantees
    sum_k |w_int[c, k]| <= L1_MAX < 2^17 for every channel (the loader checks it),
    and every input is below 2^31 in magnitude (saturated activations, and the
    constant maps of sigma / 50 <= 5.1 and log q at exponents of at most 28,
    which the loader also checks), so every partial sum of S, in any order, is
    an integer of magnitude below 2^48. S is computed by float64 matrix
    products, one per kernel tap: float64 holds every integer below 2^53, so each
    product and each partial sum is exact whatever the BLAS's blocking, FMA
    use or summation order. The rounding shift is floor((S + 2^(r-1)) · 2^-r),
    exact for the same reason (|S + 2^(r-1)| < 2^49, and scaling by 2^-r only
    moves the exponent), and the loader bounds |b| below 2^31.

Winograd F(2x2, 3x3) (Lavin and Gray, "Fast algorithms for convolutional neural networks", CVPR 2016)
    A 3x3 layer whose input is within [-A_MAX, A_MAX] (every layer but those that read the constant maps)
    computes S in 4x4 input tiles, each giving 2x2 outputs: 16 products per tile instead of 36, over
    V = B^T d B and U = (2G) g (2G)^T, whose transforms have integer entries (2G for G), so
    4·S = A^T (sum over input channels of U ⊙ V) A. Bounds: |V| <= 4 A_MAX < 2^17; every entry of
    (2G) g (2G)^T sums the kernel's taps with factors of at most 4, so over an output channel's inputs
    sum |U| <= 4 L1_MAX < 2^19; every partial sum of the products is an integer below 2^36 and every sum of
    the output transform (9 terms) below 2^40 < 2^53, so each is exact in float64 in any order, and 4·S, an
    integer multiple of 4, divides by 4 exactly. The same integers as the per-tap products, fewer operations.

Winograd F(4x4, 3x3), the same algorithm in 6x6 input tiles giving 4x4 outputs: 36 products per tile, 2.25
    per output against F(2x2)'s 4, over transforms with more terms, U = (24G) g (24G)^T with 24G integer.
    |V_ij| <= |B^T_i|_1 |B^T_j|_1 A_MAX (rows of B^T sum to at most 10 in magnitude) and, over an output
    channel's inputs, sum |U_ij| <= max|24G_i| max|24G_j| L1_MAX (entries of 24G at most 24), so every partial
    sum of the products is at most c_i c_j L1_MAX A_MAX with c_i = max|24G_i| · |B^T_i|_1 (60, 40, 40, 24, 24,
    240); the output transform weights them by A^T's entries, whose rows give sum_i |A^T_ri| c_i <= 704, so
    every sum it makes is at most 704^2 · L1_MAX · A_MAX < 2^51.
    So every partial sum is an exact integer in float64 in any order, and 576·S divides by 576 exactly (a
    correctly rounded quotient that is an integer). This is the 3x3 layers' default; F(2x2) stays for
    comparison (``Conv(winograd=2)``).

Narrow layers (format fllic-decoder-3: g_s's last stages in a model trained for them)
    The input is requantized first, k = clip(floor((a · m + 2^(s-1)) · 2^-s), -511, 511) for in_mult m <= 255
    and in_shift 1 <= s <= 23 (|a · m| < 2^23: every term an integer below 2^24, exact in float32), the weights
    of each output channel are integers with sum |j| <= NARROW_L1 = 2^15 - 1, and
    out[c] = floor((S[c] · M[c] + 2^(r[c]-1)) / 2^r[c]) + b[c] with 1 <= M[c] <= 2^15. Every product and every
    partial sum of S is then an integer below 511 · NARROW_L1 < 2^24, so S runs as float32 products per tap,
    exact in any order (results/kernels.md), and |S · M| < 2^39 is exact in float64. Where every M is a power of
    two the rounding stays in float32 too (Conv._finish), and a narrow layer pads its input and holds its output
    in float32 (integers of at most A_MAX): half the memory traffic of float64.

Nonlinearity
    LeakyReLU with slope 0.1 as max(a, floor((a · 6554 + 2^15) / 2^16)), slope 6554 / 2^16.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

A_MAX = (1 << 15) - 129  # activations' saturation bound
L1_MAX = (1 << 17) - 1  # bound on each output channel's sum of |w_int|
MAX_SHIFT = 30
LEAKY_MULT, LEAKY_SHIFT = 6554, 16  # 0.1 ≈ 6554 / 2^16
BIAS_MAX = (1 << 31) - 1  # bound on |b|, checked by the loader
NARROW_MAX = 511  # a narrow layer's inputs (10 bits)
NARROW_L1 = (1 << 15) - 1  # a narrow layer's weights, per output channel: 511 · NARROW_L1 < 2^24
MULT_MAX = 1 << 15  # a narrow layer's output multiplier
IN_MULT_MAX, IN_SHIFT_MAX = 255, 23  # a narrow layer's input multiplier and shift
BAND_ELEMENTS = 1 << 18  # a convolution's float64 accumulator holds this many entries at a time (2 MB: it stays in cache)
WINOGRAD_BAND_ELEMENTS = 1 << 17  # a band of F(2x2) tiles' transformed inputs (1 MB)
WINOGRAD4_BAND_ELEMENTS = 1 << 18  # a band of F(4x4) tiles' transformed inputs (2 MB)
G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], np.float64)  # 2G of Winograd F(2x2, 3x3)
G24 = np.array([[6, 0, 0], [-4, -4, -4], [-4, 4, -4], [1, 2, 4], [1, -2, 4], [0, 0, 24]], np.float64)  # 24G, F(4x4)


# -- integer primitives ------------------------------------------------------------------
def saturate(a: np.ndarray) -> np.ndarray:
    """a clipped to [-A_MAX, A_MAX]."""
    return np.clip(a, -A_MAX, A_MAX)


def shift_round(a: np.ndarray, shift: int) -> np.ndarray:
    """a · 2^-shift rounded half up (shift > 0), or exactly a · 2^-shift (shift <= 0); int64."""
    a = np.asarray(a, dtype=np.int64)
    if shift <= 0:
        return a << -shift
    return (a + (1 << (shift - 1))) >> shift


def floor_shift(a: np.ndarray, shift) -> np.ndarray:
    """:func:`shift_round` on integers held in float64 (|a| < 2^52), per channel where ``shift`` is an array:
    floor((a + 2^(shift-1)) · 2^-shift) for shift > 0, a · 2^-shift otherwise; exact (module docstring)."""
    shift = np.asarray(shift, dtype=np.float64)
    if shift.ndim == 0 and shift <= 0:
        return a * 2.0 ** -shift
    t = np.add(a, 2.0 ** (shift - 1), dtype=np.float64)
    t *= 2.0 ** -shift
    return np.floor(t, out=t)


def leaky(a: np.ndarray) -> np.ndarray:
    """Integer LeakyReLU(0.1): max(a, floor((a · 6554 + 2^15) / 2^16)), as max(a, floor(a · (6554 · 2^-16) + 1/2))
    in float64 whatever a's type (a narrow layer's float32 band): for |a| < 2^31, a · 6554 · 2^-16 is a multiple
    of 2^-15 below 2^28 (6554 = 2 · 3277), so it and its sum with 1/2 are exact, in one new array."""
    t = np.multiply(a, LEAKY_MULT * 2.0**-LEAKY_SHIFT, dtype=np.float64)
    t += 0.5
    np.floor(t, out=t)
    return np.maximum(a, t, out=t)


def saturated_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """saturate(a + b) in one new array (a block's skip and its branch)."""
    t = np.add(a, b, dtype=np.float64)
    return np.clip(t, -A_MAX, A_MAX, out=t)


def pixel_shuffle(a: np.ndarray) -> np.ndarray:
    """PixelShuffle(2) on HWC: out[2h + i, 2w + j, c] = in[h, w, 4c + 2i + j]."""
    h, w, c4 = a.shape
    c = c4 // 4
    return a.reshape(h, w, c, 2, 2).transpose(0, 3, 1, 4, 2).reshape(2 * h, 2 * w, c)


def upsample(a: np.ndarray) -> np.ndarray:
    """Nearest-neighbour upsampling by 2 on HWC."""
    return a.repeat(2, axis=0).repeat(2, axis=1)


# -- layers ----------------------------------------------------------------------------
@dataclass
class Conv:
    """A k×k convolution, stride 1, zero padding k//2, in exact integer arithmetic.

    ``w_int`` (Cout, Cin, k, k), ``bias`` (Cout,) in output units and ``shift``
    (Cout,) in 1..30, as the model file stores them (module docstring).
    """

    w_int: np.ndarray
    bias: np.ndarray
    shift: np.ndarray
    winograd: int = 4  # a bounded 3x3 layer's Winograd output tile: F(4x4) or F(2x2); 0, the per-tap products
    in_shift: int | None = None  # a narrow layer: its input's requantizing shift and multiplier, and
    mult: np.ndarray | None = None  # its output multiplier per channel (module docstring)
    in_mult: int = 1

    def __post_init__(self):
        cout, cin, k, _ = self.w_int.shape
        self.k = k
        narrow = self.in_shift is not None  # float32 per-tap products, every partial sum below 2^24
        taps = self.w_int.transpose(2, 3, 1, 0).reshape(k * k, cin, cout)
        self.taps = np.ascontiguousarray(taps, np.float32 if narrow else np.float64)
        if narrow:
            self.winograd = 0
        if k == 3 and self.winograd not in (0, 2, 4):
            raise ValueError(f"winograd is 4, 2 or 0 (per-tap products), got {self.winograd!r}")
        if k == 3 and self.winograd:  # U = (tG) g (tG)^T per tile position, (16 or 36, Cin, Cout): integers
            g = G24 if self.winograd == 4 else G2
            w = np.asarray(self.w_int, np.float64)
            u = np.tensordot(np.tensordot(g, w, axes=(1, 2)), g, axes=(3, 1))  # (i, Cout, Cin, j): two GEMMs
            self._u = np.ascontiguousarray(u.transpose(0, 3, 2, 1)).reshape(len(g) ** 2, cin, cout)
        self._half = 2.0 ** (np.asarray(self.shift, np.float64) - 1)  # the rounding shift's terms, per channel
        self._scale = 2.0 ** -np.asarray(self.shift, np.float64)
        self._bias = np.asarray(self.bias, np.float64)
        self._mult = None if self.mult is None else np.asarray(self.mult, np.float64)
        self._post = None  # a narrow layer whose multipliers are powers of two: 2^(t - r) per channel, float32
        if narrow and np.all(np.exp2(np.round(np.log2(self._mult))) == self._mult):
            self._post = np.exp2(np.log2(self._mult) - np.asarray(self.shift, np.float64)).astype(np.float32)
            self._bias32 = self._bias.astype(np.float32)  # |b| <= A_MAX (the loader checks it): exact
        self.dtype = np.float32 if narrow else np.float64  # what the layer's input is padded in, its output held in

    def narrowed(self, a: np.ndarray) -> np.ndarray:
        """A narrow layer's input, clip(floor((a · m + 2^(s-1)) · 2^-s), ±511) for in_mult m and in_shift s, in a
        new float32 array, exact: |a · m| < 2^23 and 2^(s-1) <= 2^22, so every value is an integer below 2^24;
        any other layer's, a itself. The layers apply it a band at a time, while the band is in cache."""
        if self.in_shift is None:
            return a
        k = np.multiply(a, self.in_mult, dtype=np.float32)
        k += np.float32(2.0 ** (self.in_shift - 1))
        k *= np.float32(2.0**-self.in_shift)
        np.floor(k, out=k)
        return np.clip(k, -NARROW_MAX, NARROW_MAX, out=k)

    def sums(self, a: np.ndarray) -> np.ndarray:
        """S = sum_k w_int · a_k per output pixel and channel (a narrow layer's a requantized), exactly, as integers in
        float64 (H, W, Cout)."""
        return self._bands(a, lambda acc: acc.astype(np.float64))

    def __call__(self, a: np.ndarray, then=None, rows: tuple[int, int] | None = None) -> np.ndarray:
        """saturate(floor((S + 2^(r-1)) · 2^-r) + b), integers in float64, band by band while S is in cache;
        ``then(band, window)``, an elementwise step after the layer (a LeakyReLU, a block's skip), runs on each
        band of the output as it is made, on the band workers too; ``window`` is the band's (rows, columns) slices.
        ``rows``: the zero rows padded above and below (k // 2 each by default, the same height out; fewer for a
        band of a taller image, :class:`RowStream`)."""
        return self._bands(a, self._finish, then, rows)

    def _finish(self, s: np.ndarray) -> np.ndarray:
        """saturate(floor((s [· M] + 2^(r-1)) · 2^-r) + b), in place (a narrow layer's float32 sums in float64,
        unless its multipliers are powers of two).

        A narrow layer whose every M is a power of two, 2^t, stays in float32: floor(S · 2^(t-r) + 1/2) + b. For
        t < r, S · 2^(t-r) + 1/2 has at most 24 significant bits (|S| < 2^24, its lowest bit 2^(t-r) <= 1/2), so
        it, its floor and the floor plus b (|b| <= A_MAX, which the loader checks) are exact below 2^24; beyond
        2^23 (t >= r) the value saturates whatever float32 rounds, as in PyTorch's decoder (fllic.models.integer)."""
        if self._post is not None:
            s *= self._post
            s += np.float32(0.5)
            np.floor(s, out=s)
            s += self._bias32
            return np.clip(s, -A_MAX, A_MAX, out=s)
        if self._mult is not None:
            s = s.astype(np.float64)
            s *= self._mult
        s += self._half
        s *= self._scale
        np.floor(s, out=s)
        s += self._bias
        return np.clip(s, -A_MAX, A_MAX, out=s)

    def _bands(self, a: np.ndarray, finish, then=None, rows: tuple[int, int] | None = None) -> np.ndarray:
        """``finish`` applied to S, then ``then``: by Winograd's tiles where the bounds allow (module docstring),
        else by :meth:`_tap_bands`; the same integers either way. ``rows``: zero rows above and below."""
        keep = then or (lambda band, window: band)
        top, bottom = (self.k // 2,) * 2 if rows is None else rows
        if a.shape[0] + top + bottom < self.k:
            return np.empty((0, *a.shape[1:2], self.taps.shape[2]))
        if self.k == 3 and self.winograd and a.size and max(a.max(), -a.min()) <= A_MAX:
            return self._winograd_bands(a, finish, keep, top, bottom)
        return self._tap_bands(a, finish, keep, top, bottom)

    def _winograd_bands(self, a: np.ndarray, finish, then, top: int = 1, bottom: int = 1) -> np.ndarray:
        """``finish`` applied to S computed by Winograd F(t x t, 3x3), t = ``winograd`` (2 or 4), a band of tile
        rows at a time (a size that is not a multiple of t gets zero rows or columns more, their outputs
        dropped). Exact: module docstring."""
        t = self.winograd
        inputs, outputs, divisor, budget = _WINOGRAD[t]
        _, w, c = a.shape
        h = a.shape[0] + top + bottom - 2  # output rows
        cout = self._u.shape[2]
        th, tw = -(-h // t), -(-w // t)
        padded = np.pad(np.asarray(a, np.float64), ((top, bottom + t * th - h), (1, 1 + t * tw - w), (0, 0)))
        out = np.empty((h, w, cout))
        cols = min(tw, max(1, budget // ((t + 2) ** 2 * max(c, cout))))  # a wide image's rows in pieces
        band = max(1, budget // ((t + 2) ** 2 * cols * max(c, cout)))

        def one(corner: tuple[int, int]) -> None:
            t0, x0 = corner
            n, m = min(th, t0 + band) - t0, min(tw, x0 + cols) - x0
            v = inputs(padded[t * t0 : t * (t0 + n) + 2, t * x0 : t * (x0 + m) + 2], n, m)
            s = outputs(np.matmul(v, self._u).reshape(t + 2, t + 2, n, m, cout))
            s /= divisor  # an integer multiple of the divisor: the quotient is exact
            window = slice(t * t0, min(h, t * (t0 + n))), slice(t * x0, min(w, t * (x0 + m)))
            size = (window[0].stop - window[0].start, window[1].stop - window[1].start)
            out[window] = then(finish(s.reshape(t * n, t * m, cout))[: size[0], : size[1]], window)

        _each(one, [(t0, x0) for t0 in range(0, th, band) for x0 in range(0, tw, cols)])
        return out

    def _tap_bands(self, a: np.ndarray, finish, then, top: int | None = None, bottom: int | None = None) -> np.ndarray:
        """``finish`` applied to S, computed a band of rows at a time.

        One matrix product per tap (ky, kx), accumulated in float64: the input,
        zero-padded and flattened row by row, read from the tap's offset is a
        contiguous view whose row y·(W + 2p) + x holds the tap's input for output
        (y, x), so no patch matrix is built; the 2p extra columns per row are
        computed and dropped. Exact: every partial sum, in any order, is an
        integer below 2^48 < 2^53 (module docstring).
        """
        _, w, c = a.shape
        p, k, cout = self.k // 2, self.k, self.taps.shape[2]
        top, bottom = p if top is None else top, p if bottom is None else bottom
        h = a.shape[0] + top + bottom - 2 * p  # output rows
        wp = w + 2 * p
        flat = _padded(a, top, bottom + 1, p, self.dtype).reshape(-1, c)  # a spare row
        out = np.empty((h, w, cout), self.dtype)
        band = max(1, BAND_ELEMENTS // (wp * max(c, cout)))

        def one(r0: int) -> None:
            n = min(h, r0 + band) - r0
            rows = self.narrowed(flat[r0 * wp:(r0 + n + k - 1) * wp + k - 1])  # the band's input rows
            acc = rows[:n * wp] @ self.taps[0]
            for t in range(1, k * k):
                start = (t // k) * wp + t % k
                acc += rows[start:start + n * wp] @ self.taps[t]
            out[r0:r0 + n] = then(finish(acc).reshape(n, wp, cout)[:, :w], (slice(r0, r0 + n), slice(None)))

        _each(one, range(0, h, band))
        return out


def _padded(a: np.ndarray, top: int, bottom: int, side: int, dtype) -> np.ndarray:
    """``a`` (H, W, C) in ``dtype`` with zero rows above and below and ``side`` zero columns each side, copied
    a band of rows at a time on the band workers (integers: exact in float32 for a narrow layer's |a| <= A_MAX)."""
    h, w, c = a.shape
    out = np.zeros((top + h + bottom, w + 2 * side, c), dtype)
    rows = max(1, BAND_ELEMENTS // max(1, w * c))

    def one(r0: int) -> None:
        r1 = min(h, r0 + rows)
        out[top + r0 : top + r1, side : side + w] = a[r0:r1]

    _each(one, range(0, h, rows))
    return out


def _winograd_inputs(d: np.ndarray, n: int, tw: int) -> np.ndarray:
    """V = B^T d B of the n x tw tiles (4x4, stride 2) of ``d`` (2n + 2 rows), as (16, n·tw, C): integer adds."""
    c = d.shape[2]
    rows = [d[k : k + 2 * n : 2] for k in range(4)]
    v = np.empty((16, n, tw, c))
    for i, r in enumerate((rows[0] - rows[2], rows[1] + rows[2], rows[2] - rows[1], rows[1] - rows[3])):
        cols = [r[:, k : k + 2 * tw : 2] for k in range(4)]
        np.subtract(cols[0], cols[2], out=v[4 * i])
        np.add(cols[1], cols[2], out=v[4 * i + 1])
        np.subtract(cols[2], cols[1], out=v[4 * i + 2])
        np.subtract(cols[1], cols[3], out=v[4 * i + 3])
    return v.reshape(16, n * tw, c)


def _winograd_outputs(m: np.ndarray) -> np.ndarray:
    """4·S = A^T m A per tile, (n, 2, tw, 2, Cout), from the products ``m`` (4, 4, n, tw, Cout)."""
    t0, t1 = m[0] + m[1] + m[2], m[1] - m[2] - m[3]
    s = np.empty((m.shape[2], 2, m.shape[3], 2, m.shape[4]))
    s[:, 0, :, 0], s[:, 0, :, 1] = t0[0] + t0[1] + t0[2], t0[1] - t0[2] - t0[3]
    s[:, 1, :, 0], s[:, 1, :, 1] = t1[0] + t1[1] + t1[2], t1[1] - t1[2] - t1[3]
    return s


def _bt6(d, out, t1, t2) -> None:
    """out[0..5] = B^T d of F(4x4, 3x3) along the six arrays ``d``: integer adds and small multiples."""
    d0, d1, d2, d3, d4, d5 = d
    np.subtract(d4, d2, out=t1)
    np.subtract(d0, d2, out=out[0])
    out[0] *= 4
    out[0] += t1  # 4 d0 - 5 d2 + d4
    np.subtract(d3, d1, out=t2)
    t2 *= 2
    np.add(t1, t2, out=out[3])  # -2 d1 - d2 + 2 d3 + d4
    np.subtract(t1, t2, out=out[4])
    np.subtract(d5, d3, out=out[5])
    out[5] -= 2 * t2  # 4 d1 - 5 d3 + d5
    np.subtract(d4, 4 * d2, out=t1)
    np.subtract(d3, 4 * d1, out=t2)
    np.add(t1, t2, out=out[1])  # -4 d1 - 4 d2 + d3 + d4
    np.subtract(t1, t2, out=out[2])


def _at6(m, out) -> None:
    """out[0..3] = A^T m of F(4x4, 3x3) along the six arrays ``m``."""
    p, q, r, s = m[1] + m[2], m[1] - m[2], m[3] + m[4], m[3] - m[4]
    np.add(p, r, out=out[0])
    out[0] += m[0]
    np.add(q, 2 * s, out=out[1])
    np.add(p, 4 * r, out=out[2])
    np.add(q, 8 * s, out=out[3])
    out[3] += m[5]


def _winograd4_inputs(d: np.ndarray, n: int, tw: int) -> np.ndarray:
    """V = B^T d B of the n x tw tiles (6x6, stride 4) of ``d`` (4n + 2 rows, 4tw + 2 columns), (36, n·tw, C)."""
    c = d.shape[2]
    shape = (n, d.shape[1], c)
    rows = np.empty((6, *shape))
    _bt6([d[k : k + 4 * n : 4] for k in range(6)], rows, np.empty(shape), np.empty(shape))
    v, t = np.empty((6, 6, n, tw, c)), (np.empty((n, tw, c)), np.empty((n, tw, c)))
    for i in range(6):
        _bt6([rows[i][:, k : k + 4 * tw : 4] for k in range(6)], v[i], *t)
    return v.reshape(36, n * tw, c)


def _winograd4_outputs(m: np.ndarray) -> np.ndarray:
    """576·S = A^T m A per tile, (n, 4, tw, 4, Cout), from the products ``m`` (6, 6, n, tw, Cout)."""
    col = np.empty((4, *m.shape[1:]))
    _at6(m, col)
    s = np.empty((4, 4, *m.shape[2:]))
    for r in range(4):
        _at6(col[r], s[r])
    return np.ascontiguousarray(s.transpose(2, 0, 3, 1, 4))


# t: (the tiles' input transform, output transform, the output's scale, a band's budget of elements)
_WINOGRAD = {2: (_winograd_inputs, _winograd_outputs, 4.0, WINOGRAD_BAND_ELEMENTS),
             4: (_winograd4_inputs, _winograd4_outputs, 576.0, WINOGRAD4_BAND_ELEMENTS)}


@dataclass
class ResBlock:
    """x + conv2(leaky(conv1(x))), the skip rescaled by 2^-skip_shift to the block's output exponent."""

    conv1: Conv
    conv2: Conv
    skip_shift: int

    def __call__(self, a: np.ndarray) -> np.ndarray:
        t = self.conv1(a, then=lambda band, window: leaky(band))
        return self.conv2(t, then=lambda band, window: saturated_sum(floor_shift(a[window], self.skip_shift), band))


@dataclass
class UpResBlock:
    """pixel_shuffle(skip(x)) + conv_b(upsample(leaky(conv_a(x)))): twice the resolution."""

    skip: Conv
    conv_a: Conv
    conv_b: Conv

    def __call__(self, a: np.ndarray) -> np.ndarray:
        skip = pixel_shuffle(self.skip(a))
        t = upsample(self.conv_a(a, then=lambda band, window: leaky(band)))
        return self.conv_b(t, then=lambda band, window: saturated_sum(skip[window], band))


def run(layers, a: np.ndarray) -> np.ndarray:
    """The layers applied in order to the integers ``a``; integers in float64."""
    a = np.asarray(a, np.float64)
    with band_threads():
        for layer in layers:
            a = layer(a)
    return a


# -- row streams -----------------------------------------------------------------------------
class RowStream:
    """Layers run on an image that arrives a band of rows at a time, each output row computed once.

    A k×k convolution's output row y reads its input rows y - k//2 .. y + k//2. So each convolution keeps the
    last 2·(k//2) rows it was given and makes the output rows they and the new rows complete, zero rows
    standing for the padding above the image's first row and below its last, as for the whole image; a
    block's skip waits in a queue for the rows its convolutions make. ``stream(rows, last)`` returns the next
    output rows: in order, they are the whole image's output, integer for integer, for whatever bands it is
    given, and each layer holds only a few rows besides the band (its receptive field, without a tile's halo
    of recomputed rows). Upsampling layers double the rows they give."""

    def __init__(self, layers):
        self.stages = [_stage(layer) for layer in layers]

    def __call__(self, rows: np.ndarray, last: bool) -> np.ndarray:
        rows = np.asarray(rows, np.float64)
        for stage in self.stages:
            rows = stage(rows, last)
        return rows


class _ConvRows:
    """A Conv on a stream of rows (:class:`RowStream`): ``then(band, window)`` with a window of this call's output."""

    def __init__(self, conv: Conv, then=None):
        self.conv, self.then, self.p = conv, then, conv.k // 2
        self.held = None  # the last 2p rows given; None before the first band

    def out_rows(self, given: int, last: bool) -> int:
        """How many rows the next call makes from ``given`` new rows."""
        held = self.p if self.held is None else len(self.held)
        return max(0, held + given + (self.p if last else 0) - 2 * self.p)

    def __call__(self, rows: np.ndarray, last: bool, then=None) -> np.ndarray:
        if self.held is None:  # the first band: the zero rows above it are the convolution's own padding
            a, top = rows, self.p
            above = np.zeros((self.p, *rows.shape[1:]), rows.dtype)
            held = np.concatenate([above, rows[max(0, len(rows) - 2 * self.p):]])
        else:
            a, top = np.concatenate([self.held, rows]), 0
            held = a
        self.held = held[max(0, len(held) - 2 * self.p):].copy()  # a copy: the band itself is freed after the call
        return self.conv(a, then=then or self.then, rows=(top, self.p if last else 0))


class _Queue:
    """Rows waiting for the convolutions beside them to catch up."""

    def __init__(self):
        self.rows = None

    def put(self, rows: np.ndarray) -> None:
        self.rows = rows if self.rows is None else np.concatenate([self.rows, rows])

    def take(self, n: int) -> np.ndarray:
        taken, self.rows = self.rows[:n], self.rows[n:].copy()  # the rest copied: the taken rows are freed with it
        return taken


class _ResRows:
    """A ResBlock on a stream of rows: its input waits until conv2 makes the rows it is added to."""

    def __init__(self, block: ResBlock):
        self.block, self.skip = block, _Queue()
        self.conv1 = _ConvRows(block.conv1, then=lambda band, window: leaky(band))
        self.conv2 = _ConvRows(block.conv2)

    def __call__(self, rows: np.ndarray, last: bool) -> np.ndarray:
        self.skip.put(rows)
        t = self.conv1(rows, last)
        skip = self.skip.take(self.conv2.out_rows(len(t), last))
        shift = self.block.skip_shift
        return self.conv2(t, last, then=lambda band, w: saturated_sum(floor_shift(skip[w], shift), band))


class _UpResRows:
    """An UpResBlock on a stream of rows: the pixel-shuffled skip waits for conv_b's rows."""

    def __init__(self, block: UpResBlock):
        self.block, self.skip = block, _Queue()
        self.conv_a = _ConvRows(block.conv_a, then=lambda band, window: leaky(band))
        self.conv_b = _ConvRows(block.conv_b)

    def __call__(self, rows: np.ndarray, last: bool) -> np.ndarray:
        self.skip.put(pixel_shuffle(self.block.skip(rows)))
        t = upsample(self.conv_a(rows, last))
        skip = self.skip.take(self.conv_b.out_rows(len(t), last))
        return self.conv_b(t, last, then=lambda band, w: saturated_sum(skip[w], band))


def _stage(layer):
    if isinstance(layer, Conv):
        return _ConvRows(layer)
    if isinstance(layer, ResBlock):
        return _ResRows(layer)
    if isinstance(layer, UpResBlock):
        return _UpResRows(layer)
    raise TypeError(f"no row stream for {type(layer).__name__}")


# -- threads ---------------------------------------------------------------------------------
_local = threading.local()  # .pool: this thread's band workers while its :func:`run` holds them
_workers = threading.Lock()  # held by the one run whose bands are on workers, BLAS then on one thread


def _each(fn, items) -> None:
    """fn(item) for each item: on this thread's band workers while :func:`run` holds them, else in turn."""
    pool = getattr(_local, "pool", None)
    if pool is not None:
        for _ in pool.map(fn, items):
            pass
    else:
        for item in items:
            fn(item)


def threads() -> int:
    """The reference decoder's threads: OMP_NUM_THREADS or OPENBLAS_NUM_THREADS where set, else the CPUs this
    process may use."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if os.environ.get(name, "").isdigit() and int(os.environ[name]) > 0:
            return int(os.environ[name])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def band_threads():
    """Bands of rows on ``threads()`` workers, each matrix product on one BLAS thread: a 64-channel layer's
    products are too small for BLAS's own threads to share well, and the rounding and saturation after them
    run on the workers too. One run at a time does so (BLAS's thread count is the process's); a run that
    starts meanwhile computes its bands in turn. Exactness does not depend on it: each band is computed alone."""
    n = threads()
    if n < 2 or not _has_threadpoolctl() or not _workers.acquire(blocking=False):  # held: by another run, or
        yield  # by an outer run of this thread, whose workers this one then shares
        return
    try:
        from threadpoolctl import threadpool_limits

        with ThreadPoolExecutor(n) as pool, threadpool_limits(1, user_api="blas"):
            _local.pool = pool
            try:
                yield
            finally:
                _local.pool = None
    finally:
        _workers.release()


def _has_threadpoolctl() -> bool:
    return importlib.util.find_spec("threadpoolctl") is not None
