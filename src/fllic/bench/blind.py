"""python -m fllic.bench.blind: blind coding of camera noise (issue 9's protocol).

Each clean image goes through the camera pipeline (:mod:`fllic.noise.camera`,
Brooks et al.'s unprocessing) with seeded camera settings at a fixed
shot-noise factor (default 1e-3, the middle of the log-uniform range the
unprocessing paper samples; read noise from its log-linear relation). Then,
with no sigma given:

- fllic at its default quality with sigma from ``--sigma auto``
  (``estimate_level``: PCA for white noise, the noise-level function's RMS for
  correlated noise), and with the PCA estimate alone (fllic 0.1's behaviour);
- CBM3D with sigma from the same estimator as fllic's auto mode, followed by
  JPEG-XL lossless (bpp) — the classical pipeline a user would run blind.

PSNR against the clean image; bpp from the files' bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit, png_files


def _cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    out = bm3d.bm3d_rgb(noisy.astype(np.float64) / 255.0, sigma / 255.0)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _jxl_bpp(img: np.ndarray) -> float:
    import imagecodecs

    return 8.0 * len(imagecodecs.jpegxl_encode(img, lossless=True, effort=7)) / (img.shape[0] * img.shape[1])


def run(files: list[Path], shot: float, model, with_cbm3d: bool) -> list[dict]:
    from tqdm import tqdm

    from fllic.codec import encode_detailed
    from fllic.imageio import read_image
    from fllic.metrics import psnr
    from fllic.noise import estimate_level
    from fllic.noise.camera import camera_noise, sample_params

    rows = []
    for k, f in enumerate(tqdm(files, desc=f"camera noise, shot {shot:g}", unit="image")):
        clean = read_image(f)
        clean = clean[: clean.shape[0] // 2 * 2, : clean.shape[1] // 2 * 2]
        noisy, _ = camera_noise(clean, np.random.default_rng(10_000 + k), sample_params(np.random.default_rng(k), shot=shot))
        level = estimate_level(noisy)
        row = {"image": f.name, "noisy_psnr": psnr(noisy, clean), "sigma_auto": level.sigma, "kind": level.kind,
               "sigma_pca": level.pca}
        for name, sigma in (("auto", level.sigma), ("pca", level.pca)):
            res = encode_detailed(noisy, sigma=sigma, model=model)
            row[f"fllic_{name}_psnr"] = psnr(res.pixels, clean)
            row[f"fllic_{name}_bpp"] = 8.0 * len(res.data) / (clean.shape[0] * clean.shape[1])
        if with_cbm3d:
            den = _cbm3d(noisy, level.sigma)
            row["cbm3d_psnr"], row["cbm3d_jxl_bpp"] = psnr(den, clean), _jxl_bpp(den)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    from fllic.models.registry import resolve

    p = argparse.ArgumentParser(prog="python -m fllic.bench.blind", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"), help="folder of clean RGB images")
    p.add_argument("--shot", type=float, default=1e-3, help="shot-noise factor of the camera pipeline")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--model", default=None, help="shipped model id or exported .pt file")
    p.add_argument("--no-cbm3d", dest="cbm3d", action="store_false", help="skip the CBM3D cascade (slow)")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    files = png_files(args.data, args.limit)
    if not files:
        return 1
    model = resolve(args.model)
    rows = run(files, args.shot, model, args.cbm3d)
    mean = lambda key: float(np.mean([r[key] for r in rows]))
    lines = ["# Blind coding of camera noise", "", f"`{command('python -m fllic.bench.blind', argv)}`", "",
             f"{len(rows)} images of {args.data.name} through the camera pipeline at shot {args.shot:g}, model "
             f"`{model.meta.get('id')}`, default quality, no sigma given. Auto took the noise for correlated in "
             f"{sum(r['kind'] == 'correlated' for r in rows)} of {len(rows)} images (mean sigma: auto "
             f"{mean('sigma_auto'):.2f}, PCA {mean('sigma_pca'):.2f}).", "",
             "| method | PSNR (dB) | bpp |", "|---|---:|---:|",
             f"| noisy input | {mean('noisy_psnr'):.2f} | – |",
             f"| fllic, `--sigma auto` | {mean('fllic_auto_psnr'):.2f} | {mean('fllic_auto_bpp'):.3f} |",
             f"| fllic, the PCA estimate alone (0.1's blind mode) | {mean('fllic_pca_psnr'):.2f} | {mean('fllic_pca_bpp'):.3f} |"]
    if args.cbm3d:
        lines.append(f"| CBM3D (sigma from auto) → JPEG-XL lossless | {mean('cbm3d_psnr'):.2f} | {mean('cbm3d_jxl_bpp'):.3f} |")
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
