"""python -m fllic.bench.bias: the decoded image's mean colour error, per channel.

A uniform shift per channel costs MSE for nothing (v1 decoded blue about 0.5
levels too bright). For each sigma: the mean over images of
mean(decoded - clean) per channel, in 8-bit levels, at the model's default
quality, with seeded AWGN; for a model with a denoising trunk (v2), the same for
the trunk's estimate alone, which tells the estimator's bias from the codec's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit, png_files


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from fllic.baselines.denoisers import trunk_pixels
    from fllic.codec import encode_detailed
    from fllic.imageio import read_image
    from fllic.models.registry import resolve
    from fllic.noise import add_noise

    p = argparse.ArgumentParser(prog="python -m fllic.bench.bias", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"), help="folder of clean RGB images")
    p.add_argument("--sigma", type=float, nargs="+", default=[15.0, 25.0, 50.0])
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--model", default=None, help="shipped model id or exported .pt file")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    files = png_files(args.data, args.limit)
    if not files:
        return 1
    model = resolve(args.model)
    lines = ["# Mean colour error of the decoded image", "", f"`{command('python -m fllic.bench.bias', argv)}`", "",
             f"Model `{model.meta.get('id')}`, default quality, {len(files)} images of {args.data.name}; "
             "mean(decoded − clean) in 8-bit levels.", "",
             "| σ | image | red | green | blue |", "|---:|---|---:|---:|---:|"]
    trunk = model.net.trunk is not None
    for s in args.sigma:
        errs, trunk_errs = [], []
        for k, f in enumerate(tqdm(files, desc=f"sigma {s:g}", unit="image")):
            clean = read_image(f)
            noisy = add_noise(clean, s, seed=k)
            res = encode_detailed(noisy, sigma=s, model=model)
            errs.append(_mean_error(res.pixels, clean))
            if trunk:
                trunk_errs.append(_mean_error(trunk_pixels(model.net, noisy, s), clean))
        for name, e in (("decoded", errs), ("trunk estimate", trunk_errs)):
            if e:
                e = np.mean(e, axis=0)
                lines.append(f"| {s:g} | {name} | {e[0]:+.3f} | {e[1]:+.3f} | {e[2]:+.3f} |")
    emit("\n".join(lines) + "\n", args.out)
    return 0


def _mean_error(pixels: np.ndarray, clean: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float64) - clean).reshape(-1, 3).mean(0)


if __name__ == "__main__":
    sys.exit(main())
