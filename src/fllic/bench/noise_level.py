"""python -m fllic.bench.noise_level: accuracy of the blind noise-level estimators.

For every image of each data set and each sigma, seeded AWGN is added
(rounded and clipped to 8 bits, as a file stores it) and the noise level is
estimated blind, by the PCA estimator that ``fllic compress`` uses and by the
MAD estimator of fllic 0.1; the table gives the mean absolute error, the bias
(mean signed error) and the worst error per sigma, in 8-bit units.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command

SIGMAS = (5.0, 10.0, 15.0, 25.0, 35.0, 50.0)


def errors(files: list[Path], sigma: float, estimator) -> np.ndarray:
    from fllic.imageio import read_image
    from fllic.noise import add_noise

    return np.array([estimator(add_noise(read_image(f), sigma, seed=k)) - sigma for k, f in enumerate(files)])


def main(argv: list[str] | None = None) -> int:
    from fllic.noise import estimate_sigma, estimate_sigma_mad

    p = argparse.ArgumentParser(prog="python -m fllic.bench.noise_level", description=__doc__)
    p.add_argument("--data", type=Path, nargs="+", default=[Path("../shared/data/Kodak24"), Path("../shared/data/CBSD68")],
                   help="folders of clean images")
    p.add_argument("--sigma", type=float, nargs="+", default=list(SIGMAS), help="noise levels (8-bit units)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each folder")
    p.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    args = p.parse_args(argv)
    lines = ["# Blind noise-level estimation, AWGN", "",
             f"`{command('python -m fllic.bench.noise_level', argv)}`", "",
             "Errors in 8-bit units: estimate minus the true sigma. PCA is fllic's estimator (the default of "
             "`fllic compress`); MAD is fllic 0.1's.", "",
             "| set | images | σ | PCA MAE | PCA bias | PCA worst | MAD MAE | MAD bias |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for folder in args.data:
        files = sorted(folder.glob("*.png"))[: args.limit]
        if not files:
            print(f"error: no PNG images in {folder}", file=sys.stderr)
            return 1
        for s in args.sigma:
            e, m = errors(files, s, estimate_sigma), errors(files, s, estimate_sigma_mad)
            lines.append(f"| {folder.name} | {len(files)} | {s:g} | {np.abs(e).mean():.2f} | {e.mean():+.2f} | "
                         f"{np.abs(e).max():.2f} | {np.abs(m).mean():.2f} | {m.mean():+.2f} |")
            print(lines[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
