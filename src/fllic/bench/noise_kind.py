"""python -m fllic.bench.noise_kind: white or correlated, on small crops (choosing the two thresholds).

Centre crops (``--crop``, default 256) of the development half of CBSD68
(images 1-34 by name; ``--every`` 2 takes every other), grey and colour, with
white noise at several sigmas, and the same crops through the two camera
pipelines (Brooks et al.'s with optional JPEG, and the in-camera JPEG engine)
at two shot-noise factors. For each noisy crop the two features
:func:`fllic.noise.estimate_level` decides on: the scale ratio (PCA reading
at half resolution over full) and the spread (noise-level function's RMS over
the PCA reading). The table counts, for a grid of thresholds, the white crops taken for
correlated and the camera crops taken for white. The shipped pair keeps the
scale ratio at 0.6 (full-size raw-converted camera noise reads 0.6-0.8 there,
results/blind_camera_auto.md) and takes the lowest spread that takes no white
crop at sigma 5 or more for correlated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

SIGMAS = (2.0, 5.0, 10.0, 20.0, 35.0, 50.0)
SHOTS = (1e-3, 4e-3)
RATIOS = (0.6, 0.7, 0.8, 0.9, 1.0)
SPREADS = (1.0, 1.5, 1.75, 2.0, 2.5, 3.0)


def features(img: np.ndarray) -> tuple[float, float]:
    """(scale ratio, spread) of a noisy image, as estimate_level computes them."""
    from fllic.noise.estimate import PATCH, _half_resolution, estimate_nlf, estimate_sigma

    pca = estimate_sigma(img)
    half = _half_resolution(img)
    ratio = estimate_sigma(half) / pca if pca > 0 and min(half.shape[:2]) >= 4 * PATCH else 0.0
    nlf = estimate_nlf(img)
    rms = float(np.sqrt(np.average(nlf.sigma**2, weights=nlf.patches))) if nlf.sigma.size else pca
    return ratio, rms / max(pca, 1e-6)


def measure(files: list[Path], crop: int) -> tuple[list[tuple], list[tuple]]:
    """(white rows (sigma, grey, ratio, spread), camera rows (pipeline, shot, ratio, spread))."""
    from tqdm import tqdm

    from fllic.bench.real import centre_crop
    from fllic.noise.camera import camera_noise, isp_noise, sample_params
    from fllic.imageio import read_image

    white, camera = [], []
    for k, f in enumerate(tqdm(files, desc="crops", unit="image")):
        c = centre_crop(read_image(f), crop)
        rng = np.random.default_rng(k)
        for sigma in SIGMAS:
            for grey in (False, True):
                x = c.mean(2) if grey else c.astype(np.float64)
                noisy = np.clip(np.rint(x + rng.normal(0, sigma, x.shape)), 0, 255)
                white.append((sigma, grey, *features(noisy)))
        for shot in SHOTS:
            noisy, _ = camera_noise(c, rng, sample_params(rng, shot=shot, jpeg=bool(k % 2)))
            camera.append(("Brooks", shot, *features(noisy)))
            noisy, _, _ = isp_noise(c, rng, sample_params(rng, shot=shot))
            camera.append(("in-camera", shot, *features(noisy)))
    return white, camera


def grid(white: list[tuple], camera: list[tuple]) -> list[str]:
    lines = ["| scale ratio above | spread above | white taken for correlated | of which σ ≥ 5 | camera taken for white |",
             "|---:|---:|---:|---:|---:|"]
    for a in RATIOS:
        for b in SPREADS:
            says = lambda t: t[2] > a and t[3] > b
            wrong = [t for t in white if says(t)]
            lines.append(f"| {a:g} | {b:g} | {len(wrong)} of {len(white)} | {sum(t[0] >= 5 for t in wrong)} | "
                         f"{sum(not says(t) for t in camera)} of {len(camera)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.noise_kind", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/CBSD68"), help="folder of clean PNGs")
    p.add_argument("--first", type=int, default=34, help="the development images: the first N by name")
    p.add_argument("--every", type=int, default=2, help="take every Nth of them")
    p.add_argument("--crop", type=int, default=256, help="side of the centre crop")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    files = sorted(args.data.glob("*.png"))[: args.first : args.every]
    if not files:
        print(f"error: no PNG images in {args.data}", file=sys.stderr)
        return 1
    white, camera = measure(files, args.crop)
    lines = ["# White or correlated noise on small crops", "", f"`{command('python -m fllic.bench.noise_kind', argv)}`",
             "", f"{len(files)} development images ({args.data.name}, every {args.every} of the first {args.first} "
             f"by name), their centre {args.crop}x{args.crop} crop, grey and colour, white noise at σ "
             + ", ".join(f"{s:g}" for s in SIGMAS) + f" ({len(white)} crops); the same crops through the Brooks "
             f"pipeline (JPEG 75-100 on every other) and the in-camera JPEG engine at shot "
             + " and ".join(f"{s:g}" for s in SHOTS) + f" ({len(camera)} crops). Correlated when both features are "
             "above their thresholds.", ""] + grid(white, camera)
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
