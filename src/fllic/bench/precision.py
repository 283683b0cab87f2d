"""python -m fllic.bench.precision: the encoder's analysis in bf16 against float32, at the default points.

Issue 27 lets the trunk and g_a run in bf16 where the CPU computes it natively (fllic.precision) if a test set's
default points move by at most 0.02 dB and 0.5 % of the bits. Each image is noised (the bench's seeded AWGN,
rounded and clipped), coded blind-free at the given sigma and the model's default level, once in float32 and once
in bf16, in the same process; the record gives each sigma's mean PSNR against the clean image and mean bits per
pixel (real file bytes) both ways, the differences, the largest per-image change, whether each file decodes
exactly to the encoder's pixels, and the encode time of bf16 against float32 in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

MAX_DB, MAX_BITS = 0.02, 0.005  # issue 27's bounds on the default points' moves


def code_both(clean: np.ndarray, noisy: np.ndarray, sigma: float) -> dict:
    """PSNR, bpp, seconds and exactness of one image coded in float32 and in bf16."""
    import fllic
    from fllic.metrics import psnr

    out = {}
    for name, f32 in (("float32", True), ("bf16", False)):
        t0 = time.perf_counter()
        res = fllic.codec.encode_detailed(noisy, sigma=sigma, float32=f32)
        seconds = time.perf_counter() - t0
        out[name] = {"psnr": psnr(res.pixels, clean), "bpp": 8 * len(res.data) / clean[..., 0].size,
                     "seconds": seconds, "exact": bool(np.array_equal(fllic.decode(res.data), res.pixels))}
    return out


def _table(rows: dict[float, list[dict]]) -> list[str]:
    lines = ["| σ | float32: dB, bpp | bf16: dB, bpp | Δ dB | Δ bits | largest per-image Δ dB, Δ bits | "
             "bf16 encode time / float32 | exact |", "|---:|---|---|---:|---:|---|---:|---|"]
    for sigma, items in rows.items():
        f, b = _means(items, "float32"), _means(items, "bf16")
        worst_db = max((r["bf16"]["psnr"] - r["float32"]["psnr"] for r in items), key=abs)
        worst_bits = max((r["bf16"]["bpp"] / r["float32"]["bpp"] - 1 for r in items), key=abs)
        exact = all(r[k]["exact"] for r in items for k in ("float32", "bf16"))
        lines.append(f"| {sigma:g} | {f['psnr']:.3f}, {f['bpp']:.4f} | {b['psnr']:.3f}, {b['bpp']:.4f} | "
                     f"{b['psnr'] - f['psnr']:+.4f} | {100 * (b['bpp'] / f['bpp'] - 1):+.3f} % | "
                     f"{worst_db:+.3f}, {100 * worst_bits:+.2f} % | {b['seconds'] / f['seconds']:.2f}x | "
                     f"{'yes' if exact else 'NO'} |")
    return lines


def within(rows: dict[float, list[dict]]) -> bool:
    """Whether every sigma's mean point moved within MAX_DB and MAX_BITS."""
    for items in rows.values():
        f, b = _means(items, "float32", ("psnr", "bpp")), _means(items, "bf16", ("psnr", "bpp"))
        if abs(b["psnr"] - f["psnr"]) > MAX_DB or abs(b["bpp"] / f["bpp"] - 1) > MAX_BITS:
            return False
    return True


def _means(items: list[dict], precision: str, keys=("psnr", "bpp", "seconds")) -> dict:
    """The means of ``keys`` over the images coded at ``precision``."""
    return {k: float(np.mean([r[precision][k] for r in items])) for k in keys}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.precision", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"))
    p.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0, 50.0])
    p.add_argument("--limit", type=int, default=None, help="the first N images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    args = p.parse_args(argv)
    import torch
    from tqdm import tqdm

    from fllic import precision
    from fllic.bench.runner import list_images, make_noisy
    from fllic.imageio import read_image

    if not precision.bf16_native():
        print("error: this CPU has no native bf16 (AVX-512 BF16 or AMX): the encoder keeps float32", file=sys.stderr)
        return 1
    images = list_images(args.data, args.limit)
    first = read_image(images[0])
    code_both(first, make_noisy(first, args.sigmas[0], "awgn", args.seed), args.sigmas[0])  # a warm-up: loading
    rows: dict[float, list[dict]] = {s: [] for s in args.sigmas}
    for path in tqdm(images, desc="images", file=sys.stderr):
        clean = read_image(path)
        for sigma in args.sigmas:
            rows[sigma].append(code_both(clean, make_noisy(clean, sigma, "awgn", args.seed), sigma))
    ok = within(rows)
    text = "\n".join([
        f"# The encoder's analysis in bf16 against float32: {args.data.name}, default points", "",
        f"`{command('python -m fllic.bench.precision', argv)}`", "",
        f"{len(images)} images, AWGN (seed {args.seed}, rounded and clipped), sigma given, the default model at its "
        f"default level; torch {torch.__version__}, {torch.get_num_threads()} threads. Means over the images; Δ is "
        "bf16 minus float32; exact: every file decodes to the encoder's pixels.", "",
        *_table(rows), "",
        f"Within issue 27's bounds ({MAX_DB} dB and {100 * MAX_BITS:g} % of the bits at every sigma): "
        f"{'yes' if ok else 'NO'}.", ""])
    emit(text, args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
