"""python -m fllic.bench.refine: the encoder refinement's settings, chosen on the validation crops.

The refinement (:mod:`fllic.models.refine`) has three settings: how many
optimisation steps, the learning rate, and whether u is rounded inside the
loss (straight-through) or once at the end. This bench measures them on the
centre crops of the WikipediaPhotos that training holds out (the crops the
quality tables are chosen on), never on a test set: for each
noise level and variant, the mean bits per pixel of the two coded streams,
the PSNR against the clean crop and against the encoder's own estimate (what
the codec codes), and the encoding seconds. Each crop gets seeded AWGN,
rounded and clipped to 8 bits, and is coded at the model's default level.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

SIGMAS = (15.0, 25.0, 50.0)
VALIDATION_PHOTOS = ("045", "046", "047", "048", "049")  # the trainer's held-out photographs (train/data.py)
# (label, steps, learning rate, straight-through); the first is g_a's symbols as they are
VARIANTS = (
    ("plain", 0, 0.0, False),
    ("continuous", 10, 0.03, False),
    ("continuous", 25, 0.03, False),
    ("continuous", 50, 0.03, False),
    ("continuous", 100, 0.03, False),
    ("continuous", 50, 0.01, False),
    ("continuous", 50, 0.1, False),
    ("straight-through", 50, 0.01, True),
    ("straight-through", 50, 0.003, True),
)


def code(model, noisy: np.ndarray, sigma: float, steps: int, lr: float, straight_through: bool):
    """(stream bytes, uint8 pixels, seconds) for one crop, H and W multiples of 64, at the default level."""
    from fllic.codec import _quality_scale
    from fllic.models.int_decoder import pixels_to_uint8

    _, q = _quality_scale(model, None, sigma)
    t0 = time.perf_counter()
    options = {"lr": lr, "straight_through": straight_through} if steps else None
    comp = model.compress(noisy, sigma, q, refine=steps, refine_options=options)
    seconds = time.perf_counter() - t0
    h, w = noisy.shape[:2]
    return sum(map(len, comp.strings)), pixels_to_uint8(comp.pixels, h, w, 3), seconds


def estimate(model, noisy: np.ndarray, sigma: float) -> np.ndarray:
    """The encoder's estimate of the clean crop, float in 8-bit units (what refinement aims at)."""
    from fllic.models.int_decoder import PIX_FRAC
    from fllic.models.refine import estimate_pixels
    from fllic.tiling import LATENT

    whole = (0, noisy.shape[0] // LATENT, 0, noisy.shape[1] // LATENT)
    e = estimate_pixels(model, noisy, whole, sigma)
    return e[0].permute(1, 2, 0).double().numpy() * 2.0**-PIX_FRAC


def measure(model, crops: list[np.ndarray], sigmas=SIGMAS, variants=VARIANTS, progress: bool = True) -> dict:
    """{sigma: {variant key: mean bpp, PSNR, PSNR to the estimate, seconds}} over the crops."""
    from tqdm import tqdm

    from fllic.metrics import psnr
    from fllic.noise import add_noise

    out: dict = {}
    with tqdm(total=len(sigmas) * len(variants) * len(crops), desc="refine", disable=not progress,
              file=sys.stderr) as bar:
        for sigma in sigmas:
            rows: dict = {}
            for k, clean in enumerate(crops):
                noisy = add_noise(clean, sigma, seed=k)
                target = estimate(model, noisy, sigma)
                for label, steps, lr, st in variants:
                    size, pixels, seconds = code(model, noisy, sigma, steps, lr, st)
                    row = rows.setdefault((label, steps, lr), [])
                    row.append((8 * size / clean.shape[0] / clean.shape[1], psnr(pixels, clean),
                                psnr(pixels, target), seconds))
                    bar.update()
            out[sigma] = {key: np.mean(v, axis=0).tolist() for key, v in rows.items()}
    return out


def report(results: dict, header: str) -> str:
    lines = [header, ""]
    for sigma, rows in results.items():
        plain = rows[("plain", 0, 0.0)]
        lines += [f"## σ = {sigma:g}", "",
                  "| variant | steps | lr | bpp | PSNR | PSNR to the estimate | Δ PSNR | Δ bits | encode s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for (label, steps, lr), (bpp, p, pe, sec) in rows.items():
            lr_text = f"{lr:g}" if steps else "–"
            lines.append(f"| {label} | {steps} | {lr_text} | {bpp:.3f} | {p:.2f} | {pe:.2f} | {p - plain[1]:+.2f} | "
                         f"{100 * (bpp / plain[0] - 1):+.1f} % | {sec:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    from fllic.imageio import read_image
    from fllic.models.registry import resolve

    p = argparse.ArgumentParser(prog="python -m fllic.bench.refine", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with WikipediaPhotos")
    p.add_argument("--model", default=None, help="model id or file (default: the default model)")
    p.add_argument("--sigma", type=float, nargs="+", default=list(SIGMAS))
    p.add_argument("--size", type=int, default=384, help="side of the centre crops (a multiple of 64)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="write the record here (markdown)")
    args = p.parse_args(argv)
    if args.size % 64:
        print("error: --size must be a multiple of 64", file=sys.stderr)
        return 2
    folder = args.data / "WikipediaPhotos"
    if not folder.is_dir():
        print(f"error: no WikipediaPhotos folder in {args.data} (pass --data)", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    model = resolve(args.model)
    crops = []
    for stem in VALIDATION_PHOTOS:
        img = read_image(folder / f"{stem}.png")
        i, j = (img.shape[0] - args.size) // 2, (img.shape[1] - args.size) // 2
        crops.append(np.ascontiguousarray(img[i : i + args.size, j : j + args.size]))
    results = measure(model, crops, args.sigma)
    header = (f"# Encoder refinement on the validation crops\n\n`{command('python -m fllic.bench.refine', argv)}`\n\n"
              f"Model `{model.meta.get('id', 'custom')}`, {len(crops)} centre crops of {args.size}² from "
              f"WikipediaPhotos {', '.join(VALIDATION_PHOTOS)} (held out from training), seeded AWGN, the model's "
              f"default level, {args.threads} thread(s). bpp counts the two coded streams (no container header); "
              f"PSNR is against the clean crop, *to the estimate* against the encoder's own estimate; Δ against "
              f"*plain* (g_a's symbols). Means over the crops.")
    emit(report(results, header), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
