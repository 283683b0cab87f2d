"""python -m fllic.bench.blind: blind coding of camera noise (issue 9's protocol).

Each clean image goes through the camera pipeline (:mod:`fllic.noise.camera`,
Brooks et al.'s unprocessing) with seeded camera settings at a fixed
shot-noise factor (default 1e-3, the middle of the log-uniform range the
unprocessing paper samples; read noise from its log-linear relation),
optionally then JPEG. With no sigma given:

- fllic blind, exactly as ``fllic compress`` runs it (``--sigma auto``: the
  noise level from ``estimate_level``, the model chosen for the noise kind,
  for correlated noise the camera model with its per-pixel noise map), unless
  ``--model`` names one;
- the default AWGN model at auto's sigma (what auto mode did before the camera model);
- fllic 0.1's blind mode: the default AWGN model with the PCA estimate alone;
- CBM3D with sigma from the same estimator as fllic's auto mode, followed by
  JPEG-XL lossless (bpp) — the classical pipeline a user would run blind.

PSNR against the pipeline's noise-free output (the reference a clean capture
gives; demosaicing alone puts it 27.6 dB, on average over Kodak24, from the input image), and
against the input image for comparison with earlier records; bpp from the
files' bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit, png_files


def _cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """CBM3D at ``sigma`` through the bench's disk cache (``fllic bench``'s, keyed by the image)."""
    from fllic.baselines._base import Context
    from fllic.baselines.denoisers import Cbm3d, default_cache_dir

    return Cbm3d(Context(sigma, None, default_cache_dir()))(noisy)[0]


def _jxl_bpp(img: np.ndarray) -> float:
    import imagecodecs

    return 8.0 * len(imagecodecs.jpegxl_encode(img, lossless=True, effort=7)) / (img.shape[0] * img.shape[1])


def run(files: list[Path], shot: float, model, with_cbm3d: bool, jpeg: int | None = None) -> list[dict]:
    from tqdm import tqdm

    from fllic.codec import encode_detailed
    from fllic.imageio import read_image
    from fllic.metrics import psnr
    from fllic.models.registry import DEFAULT_MODEL
    from fllic.noise import estimate_level
    from fllic.noise.camera import camera_noise, jpeg_bytes, noise_free, sample_params

    rows = []
    for k, f in enumerate(tqdm(files, desc=f"camera noise, shot {shot:g}", unit="image")):
        clean = read_image(f)
        clean = clean[: clean.shape[0] // 2 * 2, : clean.shape[1] // 2 * 2]
        params = sample_params(np.random.default_rng(k), shot=shot)
        noisy, _ = camera_noise(clean, np.random.default_rng(10_000 + k), params)
        ref = noise_free(clean, params)
        row = {"image": f.name}
        if jpeg is not None:  # the camera's file: its bytes are the size to beat
            data = jpeg_bytes(noisy, jpeg)
            noisy = read_image(data)
            row["source_bpp"] = 8.0 * len(data) / (clean.shape[0] * clean.shape[1])
        level = estimate_level(noisy)
        row.update({"noisy_psnr": psnr(noisy, ref), "noisy_psnr_clean": psnr(noisy, clean),
                    "sigma_auto": level.sigma, "kind": level.kind, "sigma_pca": level.pca})
        runs = (("auto", None, model), ("awgn", level.sigma, DEFAULT_MODEL), ("pca", level.pca, DEFAULT_MODEL))
        for name, sigma, m in runs:
            res = encode_detailed(noisy, sigma=sigma, model=m)
            row[f"fllic_{name}_psnr"], row[f"fllic_{name}_psnr_clean"] = psnr(res.pixels, ref), psnr(res.pixels, clean)
            row[f"fllic_{name}_bpp"] = 8.0 * len(res.data) / (clean.shape[0] * clean.shape[1])
        if with_cbm3d:
            den = _cbm3d(noisy, level.sigma)
            row["cbm3d_psnr"], row["cbm3d_psnr_clean"] = psnr(den, ref), psnr(den, clean)
            row["cbm3d_jxl_bpp"] = _jxl_bpp(den)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    from fllic.models.registry import DEFAULT_MODEL

    p = argparse.ArgumentParser(prog="python -m fllic.bench.blind", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"), help="folder of clean RGB images")
    p.add_argument("--shot", type=float, default=1e-3, help="shot-noise factor of the camera pipeline")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--model", default=None, help="shipped model id or exported .pt file")
    p.add_argument("--jpeg", type=int, default=None, metavar="Q",
                   help="store the noisy image as JPEG at quality Q first, as cameras do (the file size is reported)")
    p.add_argument("--no-cbm3d", dest="cbm3d", action="store_false", help="skip the CBM3D cascade (slow)")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    files = png_files(args.data, args.limit)
    if not files:
        return 1
    rows = run(files, args.shot, args.model, args.cbm3d, args.jpeg)
    mean = lambda key: float(np.mean([r[key] for r in rows]))
    source = f", then JPEG at quality {args.jpeg}" if args.jpeg else ""
    auto = f"`{args.model}`" if args.model else "chosen by auto mode"
    lines = ["# Blind coding of camera noise", "", f"`{command('python -m fllic.bench.blind', argv)}`", "",
             f"{len(rows)} images of {args.data.name} through the camera pipeline at shot {args.shot:g}{source}; "
             f"default quality, no sigma given, model {auto}. The noise was taken for correlated in "
             f"{sum(r['kind'] == 'correlated' for r in rows)} of {len(rows)} images (mean sigma: auto "
             f"{mean('sigma_auto'):.2f}, PCA {mean('sigma_pca'):.2f}). PSNR against the pipeline's noise-free "
             "output (the reference), and against the clean input image.", "",
             "| method | PSNR vs reference (dB) | PSNR vs input image (dB) | bpp |", "|---|---:|---:|---:|",
             f"| noisy input | {mean('noisy_psnr'):.2f} | {mean('noisy_psnr_clean'):.2f} | "
             + (f"{mean('source_bpp'):.3f} (the JPEG file) |" if args.jpeg else "– |"),
             f"| fllic, `--sigma auto` | {mean('fllic_auto_psnr'):.2f} | {mean('fllic_auto_psnr_clean'):.2f} | "
             f"{mean('fllic_auto_bpp'):.3f} |",
             f"| the AWGN model `{DEFAULT_MODEL}` at auto's sigma | {mean('fllic_awgn_psnr'):.2f} | "
             f"{mean('fllic_awgn_psnr_clean'):.2f} | {mean('fllic_awgn_bpp'):.3f} |",
             f"| fllic 0.1's blind mode (default model, PCA sigma) | {mean('fllic_pca_psnr'):.2f} | "
             f"{mean('fllic_pca_psnr_clean'):.2f} | {mean('fllic_pca_bpp'):.3f} |"]
    if args.cbm3d:
        lines.append(f"| CBM3D (sigma from auto) → JPEG-XL lossless | {mean('cbm3d_psnr'):.2f} | "
                     f"{mean('cbm3d_psnr_clean'):.2f} | {mean('cbm3d_jxl_bpp'):.3f} |")
    emit("\n".join(lines) + "\n", args.out)
    return 0

if __name__ == "__main__":
    sys.exit(main())
