"""python -m fllic.bench.reference: how far a mean-of-shots reference can be trusted at edges.

A real photograph's reference (PolyU-dev's ``NAME_mean.*``) is the mean of
many shots of a static scene. Where the shots are not perfectly aligned, or
the mean is smoother than one shot, the photograph differs from its reference
at edges by more than its noise, and a PSNR against that reference rewards
smoothing the edges. Two measurements, on the centre crops the real bench
uses, beside a control whose reference is exact (the development half of
CBSD68 with camera-JPEG-like noise, :func:`fllic.bench.textured.textured_set`):

- the residual's (photograph minus reference) variance in the 10 % of pixels
  with the strongest reference gradient over that in the 20 % with the
  weakest (8-pixel windows): noise that grows with intensity gives a few;
- the PSNR gain of a plain Gaussian blur of the photograph, at each of
  ``--blurs`` pixels, against the reference: what smoothing alone earns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

BLURS = (0.5, 0.8, 1.2)


def edge_ratio(noisy: np.ndarray, ref: np.ndarray, window: int = 8) -> float:
    """The residual's mean local variance where the reference's gradient is strongest (top 10 %) over where it
    is weakest (bottom 20 %)."""
    from scipy.ndimage import sobel, uniform_filter

    grey_n, grey_r = noisy.astype(np.float64).mean(2), ref.astype(np.float64).mean(2)
    energy = uniform_filter((grey_n - grey_r) ** 2, window)
    gradient = uniform_filter(np.hypot(sobel(grey_r, 0), sobel(grey_r, 1)), window)
    lo, hi = np.quantile(gradient, [0.2, 0.9])
    return float(energy[gradient >= hi].mean() / max(energy[gradient <= lo].mean(), 1e-9))


def blur_gains(noisy: np.ndarray, ref: np.ndarray, blurs) -> list[float]:
    """PSNR gain (dB) over the photograph of its Gaussian blur at each std (pixels), rounded to 8 bits."""
    from scipy.ndimage import gaussian_filter

    from fllic.metrics import psnr

    base = psnr(noisy, ref)
    out = []
    for s in blurs:
        blurred = gaussian_filter(noisy.astype(np.float64), (s, s, 0))
        out.append(psnr(np.clip(np.rint(blurred), 0, 255).astype(np.uint8), ref) - base)
    return out


def rows(items, blurs) -> list[tuple[str, float, list[float]]]:
    """(name, edge ratio, blur gains) of each (name, noisy, reference, bytes) item."""
    return [(name, edge_ratio(noisy, ref), blur_gains(noisy, ref, blurs)) for name, noisy, ref, _ in items]


def table(sets: dict[str, list], blurs, per_photo: list[tuple[str, float, list[float]]]) -> list[str]:
    """Each photograph of ``per_photo``, then each set's median ratio and mean blur gains."""
    head = ["edges / flat residual variance"] + [f"blur {s:g} px" for s in blurs]
    lines = ["| images | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for name, ratio, gains in per_photo:
        lines.append(f"| {name} | {ratio:.1f} | " + " | ".join(f"{g:+.2f}" for g in gains) + " |")
    for name, rs in sets.items():
        ratios = np.array([r[1] for r in rs])
        gains = np.array([r[2] for r in rs]).mean(0)
        lines.append(f"| **{name} ({len(rs)}): median ratio, mean gains** | {np.median(ratios):.1f} | "
                     + " | ".join(f"{g:+.2f}" for g in gains) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from fllic.bench.textured import _real_set, textured_set

    p = argparse.ArgumentParser(prog="python -m fllic.bench.reference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the data folder (PolyU-dev, CBSD68)")
    p.add_argument("--crop", type=int, default=512, help="side of PolyU-dev's centre crops, pixels")
    p.add_argument("--blurs", type=float, nargs="+", default=list(BLURS), help="Gaussian stds, pixels")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    real = _real_set(args.data / "PolyU-dev", args.crop)
    if not real:
        print(f"error: no PolyU-dev pairs under {args.data}; pass --data", file=sys.stderr)
        return 1
    sets = {"PolyU-dev": rows(real, args.blurs),
            "control: CBSD68 1-34 with camera-JPEG-like noise": rows(textured_set(args.data, 1), args.blurs)}
    lines = ["# How far the mean-of-shots reference can be trusted at edges", "",
             f"`{command('python -m fllic.bench.reference', argv)}`", "",
             f"PolyU-dev: the centre {args.crop}x{args.crop} crop of each real photograph against its mean-of-shots "
             "reference. Control: the development half of CBSD68, one draw each of camera-JPEG-like noise "
             "(`fllic.noise.camera.shaped_noise`), against the clean image (an exact reference). Residual: the "
             "photograph minus its reference, grey; its local variance (8-pixel windows) where the reference's "
             "gradient is in its top 10 % over where it is in its bottom 20 %. Blur: the PSNR gain (dB) of a "
             "Gaussian blur of the photograph against the reference.", ""]
    lines += table(sets, args.blurs, sets["PolyU-dev"])
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
