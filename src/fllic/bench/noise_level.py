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

from fllic.bench._record import command, png_files

SIGMAS = (5.0, 10.0, 15.0, 25.0, 35.0, 50.0)
CAMERA_SHOTS = (1e-3, 4e-3)  # the middle of the unprocessing paper's shot-noise range, and a darker scene


def true_nlf(clean: np.ndarray, params, noisy: np.ndarray, centres: np.ndarray, half_width: float = 8.0) -> np.ndarray:
    """The true noise std near each intensity: noisy minus the noise-free pipeline output, binned by clean intensity."""
    from fllic.noise.camera import noise_free

    ideal = noise_free(clean, params).astype(np.float64)
    diff, level = noisy.astype(np.float64) - ideal, ideal.mean(2)
    return np.array([diff[np.abs(level - c) < half_width].std() for c in centres])


def camera_rows(files: list[Path], shot: float) -> list[str]:
    """Per-image NLF errors under the camera pipeline (seeded camera settings at a fixed shot noise)."""
    from fllic.imageio import read_image
    from fllic.noise import estimate_nlf, estimate_sigma
    from fllic.noise.camera import camera_noise, sample_params

    abs_err, rel_err, pca_ratio = [], [], []
    for k, f in enumerate(files):
        clean = read_image(f)
        clean = clean[: clean.shape[0] // 2 * 2, : clean.shape[1] // 2 * 2]
        params = sample_params(np.random.default_rng(k), shot=shot)
        noisy, _ = camera_noise(clean, np.random.default_rng(10_000 + k), params)
        nlf = estimate_nlf(noisy)
        truth = true_nlf(clean, params, noisy, nlf.intensity)
        abs_err += list(np.abs(nlf.sigma - truth)); rel_err += list(np.abs(nlf.sigma - truth) / truth)
        pca_ratio.append(estimate_sigma(noisy) / float(np.sqrt(np.mean(truth**2))))
    return [f"| {files[0].parent.name} | {len(files)} | {shot:g} | {len(abs_err)} | {np.mean(abs_err):.2f} | "
            f"{100 * np.mean(rel_err):.1f} % | {np.mean(pca_ratio):.2f} |"]


def errors(files: list[Path], sigma: float, estimator) -> np.ndarray:
    from fllic.imageio import read_image
    from fllic.noise import add_noise

    return np.array([estimator(add_noise(read_image(f), sigma, seed=k)) - sigma for k, f in enumerate(files)])


def main(argv: list[str] | None = None) -> int:
    from fllic.noise import estimate_level, estimate_sigma, estimate_sigma_mad

    p = argparse.ArgumentParser(prog="python -m fllic.bench.noise_level", description=__doc__)
    p.add_argument("--data", type=Path, nargs="+", default=[Path("../shared/data/Kodak24"), Path("../shared/data/CBSD68")],
                   help="folders of clean images")
    p.add_argument("--sigma", type=float, nargs="+", default=list(SIGMAS), help="noise levels (8-bit units)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each folder")
    p.add_argument("--test-half", nargs="*", default=["CBSD68", "BSD68"], metavar="SET",
                   help="sets of which only the test half is measured: images 35 on by name (default: CBSD68 BSD68; "
                        "images 1-34 are the development half, where the estimator's constants were chosen)")
    p.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    p.add_argument("--camera", action="store_true",
                   help="instead: the noise-level function under the camera pipeline, against the true one")
    args = p.parse_args(argv)
    if args.camera:
        return _camera(args, argv)
    lines = ["# Blind noise-level estimation, AWGN", "",
             f"`{command('python -m fllic.bench.noise_level', argv)}`", "",
             "Errors in 8-bit units: estimate minus the true sigma. Auto is what `fllic compress --sigma auto` "
             "uses (`estimate_level`: PCA, or the noise-level function's RMS when the noise looks correlated); "
             "PCA is the weak-texture PCA estimator alone; MAD is fllic 0.1's. 'switched' counts the images "
             "that auto took for correlated noise.", "",
             "| set | images | σ | auto MAE | switched | PCA MAE | PCA bias | PCA worst | MAD MAE | MAD bias |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for folder in args.data:
        files = png_files(folder, args.limit)
        if not files:
            return 1
        if folder.name in args.test_half:
            files = files[34:]
        for s in args.sigma:
            e, m = errors(files, s, estimate_sigma), errors(files, s, estimate_sigma_mad)
            a = errors(files, s, lambda img: estimate_level(img).sigma)
            switched = int(np.sum(np.abs(a - e) > 1e-9))
            name = f"{folder.name} (test half)" if folder.name in args.test_half else folder.name
            lines.append(f"| {name} | {len(files)} | {s:g} | {np.abs(a).mean():.2f} | {switched} | "
                         f"{np.abs(e).mean():.2f} | {e.mean():+.2f} | {np.abs(e).max():.2f} | {np.abs(m).mean():.2f} | "
                         f"{m.mean():+.2f} |")
            print(lines[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


def _camera(args, argv) -> int:
    lines = ["# Blind noise-level function under the camera pipeline", "",
             f"`{command('python -m fllic.bench.noise_level', argv)}`", "",
             "Each image goes through `fllic.noise.camera` (Brooks et al.'s unprocessing) with seeded camera "
             "settings at a fixed shot-noise factor (variance per unit of raw intensity; read noise from the "
             "log-linear relation). The true noise-level function is the std of the noisy image minus the "
             "noise-free pipeline output, near each intensity where `estimate_nlf` measured one (±8 levels). "
             "Errors in 8-bit units over every (image, bin). The last column is the AWGN estimator "
             "(`estimate_sigma`, PCA) over the true RMS noise std: what it reads on correlated camera noise.", "",
             "| set | images | shot | bins | NLF MAE | NLF mean relative error | PCA σ / true RMS σ |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for folder in args.data:
        files = png_files(folder, args.limit)
        if not files:
            return 1
        for shot in CAMERA_SHOTS:
            lines += camera_rows(files, shot)
            print(lines[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
