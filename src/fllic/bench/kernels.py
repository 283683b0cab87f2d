"""python -m fllic.bench.kernels: kernels for the exact 3x3 convolution, timed side by side on one layer.

Decoding's time is g_s's 3x3 convolutions (results/speed-stages-2threads.md). This bench times, on one layer of
g_s's shape (by default its half-resolution layer for a 768x512 image: 384x256 pixels, 64 channels in and out),
with random integer weights at the exactness bound (every output channel's sum of |w_int| at L1_MAX) and
activations across [-A_MAX, A_MAX]:

- **two 8-bit pieces, float32** (PyTorch's decoder today, fllic.models.integer): each piece convolved by
  oneDNN in float32, every partial sum below 2^24;
- **per-tap float64 products** (the reference decoder's layers before its Winograd tiles, and still those that
  read the constant maps): one BLAS product per tap, every partial sum below 2^48;
- **Winograd F(2x2, 3x3) in float64**, in numpy (the reference decoder's 3x3 layers before F(4x4),
  ``Conv(winograd=2)``, bands of tile rows) and in PyTorch (one batched product): 16 products of the
  transformed tiles instead of 36 per 2x2 outputs;
- **Winograd F(4x4, 3x3) in float64**, in numpy (the reference decoder's 3x3 layers now, fllic.decoder.integer,
  whose docstring gives the bounds that make it exact): 36 products per 6x6 tile giving 4x4 outputs (2.25 per
  output against F(2x2)'s 4), over transforms with more terms;
- **int8 products** (``torch._int_mm``) of the layer's patch matrix: one product timed, and that time times
  the 6 products an exact split needs (activations in three unsigned 7-bit pieces, weights in two signed 8-bit
  pieces: a pair of u7 x s8 products never saturates int16), and the one product a g_s of 8-bit activations
  and weights would need (what that costs in quality: results/int8-narrow.md);
- **a narrow layer** (a g_s trained for them at its half resolution: ``NarrowConv2d``, decoder format 3): the
  same activations requantized to 10 bits by the layer itself, weights whose L1 norm per output channel is at
  most 2^15 - 1, so every sum is below 2^24: one float32 convolution in PyTorch's decoder
  (fllic.models.integer.IntNarrowConv) where a 16-bit layer takes two, and float32 products per tap in the
  reference decoder, each the whole layer.

Each kernel runs the whole layer (the sums, then the rounding shift, the bias and the saturation) and is checked
against the reference decoder's layer, integer for integer; the int8 row times the products alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], np.float64)  # 2G of Winograd F(2, 3)
INT8_PIECES = 6  # 3 activation pieces x 2 weight pieces


def _layer(height: int, width: int, cin: int, cout: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Activations (H, W, Cin) in [-A_MAX, A_MAX] and weights (Cout, Cin, 3, 3) whose rows' L1 is at L1_MAX."""
    from fllic.decoder.integer import A_MAX, L1_MAX

    rng = np.random.default_rng(seed)
    a = rng.integers(-A_MAX, A_MAX + 1, (height, width, cin)).astype(np.float64)
    w = rng.laplace(0, 1, (cout, cin, 3, 3))
    w = np.round(w * (L1_MAX - w[0].size) / np.abs(w).reshape(cout, -1).sum(1).reshape(-1, 1, 1, 1))
    return a, w


def _winograd_tiles(d, th: int, tw: int, sub, stack):
    """The 16 transformed tiles B^T d B (each (rows, tw, C)) of padded ``d`` (rows 2·th + 2), integer adds only."""
    rows = [d[k : k + 2 * th : 2] for k in range(4)]
    out = []
    for r in (sub(rows[0], rows[2]), rows[1] + rows[2], sub(rows[2], rows[1]), sub(rows[1], rows[3])):
        cols = [r[:, k : k + 2 * tw : 2] for k in range(4)]
        out += [sub(cols[0], cols[2]), cols[1] + cols[2], sub(cols[2], cols[1]), sub(cols[1], cols[3])]
    return stack(out)


def _winograd_out(m, o) -> None:
    """4·S into ``o`` (rows, 2, tw, 2, Cout) from the products ``m`` (4, 4, rows, tw, Cout): A^T m A."""
    t0, t1 = m[0] + m[1] + m[2], m[1] - m[2] - m[3]
    o[:, 0, :, 0], o[:, 0, :, 1] = t0[0] + t0[1] + t0[2], t0[1] - t0[2] - t0[3]
    o[:, 1, :, 0], o[:, 1, :, 1] = t1[0] + t1[1] + t1[2], t1[1] - t1[2] - t1[3]


def winograd_torch(a, w: np.ndarray):
    """S of a 3x3 convolution (zero padding) by Winograd F(2x2, 3x3) in PyTorch's float64, the whole layer in
    one batched product (the reference decoder's tiles, fllic.decoder.integer, in PyTorch); even H and W."""
    import torch
    import torch.nn.functional as F

    a = torch.as_tensor(a)
    h, wd, c = a.shape
    u = torch.from_numpy(np.einsum("ik,ockl,jl->ijco", G2, w, G2).reshape(16, c, -1).copy())
    th, tw = h // 2, wd // 2
    v = _winograd_tiles(F.pad(a, (0, 0, 1, 1, 1, 1)), th, tw, torch.sub, lambda x: torch.stack(x).reshape(16, -1, c))
    out = torch.empty((h, wd, u.shape[2]), dtype=torch.float64)
    _winograd_out(torch.bmm(v, u).reshape(4, 4, th, tw, -1), out.view(th, 2, tw, 2, -1))
    return out.mul_(0.25)


SHIFT = 12  # the layer's rounding shift: its outputs span [-A_MAX, A_MAX], some saturated


def _timed(fn, repeat: int) -> tuple[float, object]:
    out = fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat, out


def _finish_torch(s, conv):
    """The reference decoder's rounding shift, bias and saturation (fllic.decoder.integer.Conv) on float64 S."""
    import torch

    from fllic.decoder.integer import A_MAX

    return s.add_(torch.from_numpy(conv._half)).mul_(torch.from_numpy(conv._scale)).floor_() \
        .add_(torch.from_numpy(conv._bias)).clamp_(-A_MAX, A_MAX)


def measure(height: int, width: int, cin: int, cout: int, repeat: int) -> list[tuple[str, float, bool | None]]:
    """(kernel, seconds, exact?) for each kernel on one whole layer (the sums, the rounding shift, the bias and
    the saturation); exact: the same integers as the reference decoder's layer."""
    import torch
    from threadpoolctl import threadpool_limits

    from fllic.decoder.integer import Conv
    from fllic.models.integer import IntConv

    a, w = _layer(height, width, cin, cout)
    bias = np.random.default_rng(1).integers(-1000, 1001, cout)
    conv4, conv, per_tap = (Conv(w, bias, np.full(cout, SHIFT), winograd=winograd) for winograd in (4, 2, 0))
    layer = IntConv(torch.from_numpy(w), torch.from_numpy(bias), torch.full((cout,), SHIFT))
    a_t, a_int = torch.from_numpy(a), torch.from_numpy(a).to(torch.int32)[None]
    kernels = (("two 8-bit pieces, float32 (PyTorch's decoder)", lambda: layer(a_int)[0]),
               ("per-tap float64 products (the reference decoder before its Winograd tiles)", lambda: per_tap(a)),
               ("Winograd F(2x2, 3x3), float64, PyTorch", lambda: _finish_torch(winograd_torch(a_t, w), conv)),
               ("Winograd F(2x2, 3x3), float64, numpy (the reference decoder before F(4x4))", lambda: conv(a)),
               ("Winograd F(4x4, 3x3), float64, numpy (the reference decoder)", lambda: conv4(a)))
    rows = []
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        ref = per_tap(a)
        for name, fn in kernels:
            seconds, out = _timed(fn, repeat)
            rows.append((name, seconds, bool(np.array_equal(np.asarray(out, np.float64), ref))))
        patches = torch.randint(0, 128, (height * width, 9 * cin), dtype=torch.int8)
        weights8 = torch.randint(-128, 128, (9 * cin, cout), dtype=torch.int8)
        seconds, _ = _timed(lambda: torch._int_mm(patches, weights8), max(1, repeat // 3))
        rows.append((f"int8 products (torch._int_mm), x{INT8_PIECES} pieces", INT8_PIECES * seconds, None))
        rows.append(("int8 products, one piece (a g_s of 8-bit activations and weights)", seconds, None))
        rows += _narrow_rows(a, cout, repeat)
    return rows


NARROW_IN_MULT, NARROW_IN_SHIFT = 255, 14  # the narrow layer's input: the 16-bit activations times 255 / 2^14


def _narrow_rows(a: np.ndarray, cout: int, repeat: int) -> list[tuple[str, float, bool]]:
    """The narrow layer's kernels on the same activations (module docstring), checked against the reference's."""
    import torch

    from fllic.decoder.integer import Conv
    from fllic.models.integer import NARROW_L1, IntNarrowConv

    rng = np.random.default_rng(2)
    w = rng.laplace(0, 1, (cout, a.shape[2], 3, 3))
    j = np.round(w * (NARROW_L1 - w[0].size) / np.abs(w).reshape(cout, -1).sum(1).reshape(-1, 1, 1, 1))
    bias, mult = rng.integers(-1000, 1001, cout), np.full(cout, 1 << 14)
    ref = Conv(j, bias, np.full(cout, SHIFT + 8), in_shift=NARROW_IN_SHIFT, mult=mult, in_mult=NARROW_IN_MULT)
    float32 = IntNarrowConv(torch.from_numpy(j), torch.from_numpy(bias), torch.full((cout,), SHIFT + 8),
                            NARROW_IN_MULT, NARROW_IN_SHIFT, torch.from_numpy(mult))
    a_int = torch.from_numpy(a).to(torch.int32)[None]
    want = ref(a)
    rows = []
    for name, fn in (("narrow layer, one float32 convolution (PyTorch's decoder)", lambda: float32(a_int)[0]),
                     ("narrow layer, float32 per-tap products, numpy (the reference decoder)", lambda: ref(a))):
        seconds, out = _timed(fn, repeat)
        rows.append((name, seconds, bool(np.array_equal(np.asarray(out, np.float64), want))))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.kernels", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, nargs=2, default=[384, 256], metavar=("WIDTH", "HEIGHT"),
                   help="the layer's pixels (multiples of 4; default: g_s's half resolution of a 768x512 image)")
    p.add_argument("--channels", type=int, nargs=2, default=[64, 64], metavar=("IN", "OUT"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    args = p.parse_args(argv)
    import platform

    import torch

    torch.set_num_threads(args.threads)
    (width, height), (cin, cout) = args.size, args.channels
    rows = measure(height, width, cin, cout, args.repeat)
    base = rows[0][1]
    lines = [f"# Exact 3x3 convolution kernels: {width}x{height} pixels, {cin} -> {cout} channels", "",
             f"`{command('python -m fllic.bench.kernels', argv)}`", "",
             f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), numpy {np.__version__}; "
             f"mean of {args.repeat} runs after a warm-up, in one run; the whole layer (sums, rounding shift, bias, "
             f"saturation). Integer-exact: the layer's output equals the reference decoder's, integer for integer "
             f"(the int8 row times its products alone).", "",
             "| kernel | seconds | time against today's PyTorch kernel | integer-exact |", "|---|---:|---:|---|",
             *(f"| {name} | {s:.3f} | {s / base:.2f}x | {'-' if exact is None else 'yes' if exact else 'NO'} |"
               for name, s, exact in rows)]
    emit("\n".join(lines) + "\n", args.out)
    return 0 if all(exact is not False for _, _, exact in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
