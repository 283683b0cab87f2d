"""python -m fllic.bench.seams: does tiling show? Tiled against untiled coding of real photos.

Decoding is tiled exactly (identical pixels for any tile size, by the halo);
encoding runs g_a per tile in floating point, so its latents differ slightly
near tile edges. For each image this codes the noisy photo untiled and with
small tiles (many seams), and reports the PSNR of each against the clean image,
their difference, the bpp of each, and the largest pixel difference; it writes
the absolute difference image, amplified, so block edges would be visible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit


def main(argv: list[str] | None = None) -> int:
    from fllic.codec import decode, encode_detailed
    from fllic.imageio import read_image, write_image
    from fllic.metrics import psnr
    from fllic.noise import add_noise

    p = argparse.ArgumentParser(prog="python -m fllic.bench.seams", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"), help="folder of clean PNG images")
    p.add_argument("--limit", type=int, default=4, help="how many images")
    p.add_argument("--sigma", type=float, default=25.0, help="noise std in 8-bit units")
    p.add_argument("--tile", type=int, default=192, help="the small tile side in pixels")
    p.add_argument("--diff", type=Path, default=None, help="write the first image's |tiled - untiled| x 16 here (PNG)")
    p.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    args = p.parse_args(argv)
    lines = [f"# Tiled against untiled coding, sigma {args.sigma:g}, tiles of {args.tile} px", "",
             f"`{command('python -m fllic.bench.seams', argv)}`", "",
             "| image | PSNR untiled | PSNR tiled | ΔPSNR | bpp untiled | bpp tiled | max |Δpixel| | tiled decode exact |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for k, f in enumerate(sorted(args.data.glob("*.png"))[: args.limit]):
        clean = read_image(f)
        noisy = add_noise(clean, args.sigma, seed=k)
        whole = encode_detailed(noisy, sigma=args.sigma, tile=1 << 16)
        tiled = encode_detailed(noisy, sigma=args.sigma, tile=args.tile)
        exact = np.array_equal(decode(tiled.data, tile=args.tile), tiled.pixels)
        diff = np.abs(tiled.pixels.astype(int) - whole.pixels.astype(int))
        bpp = lambda r: 8 * len(r.data) / (clean.shape[0] * clean.shape[1])  # noqa: E731
        a, b = psnr(whole.pixels, clean), psnr(tiled.pixels, clean)
        lines.append(f"| {f.name} | {a:.3f} | {b:.3f} | {b - a:+.3f} | {bpp(whole):.4f} | {bpp(tiled):.4f} | "
                     f"{diff.max()} | {'yes' if exact else 'NO'} |")
        if k == 0 and args.diff is not None:
            write_image(args.diff, np.clip(diff * 16, 0, 255).astype(np.uint8))
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
