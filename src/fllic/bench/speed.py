"""python -m fllic.bench.speed: encode + decode wall time of the shipped codec.

Measures, per image, the seconds of ``encode`` and of ``decode`` (after one
warm-up call that loads the model: *warm*), on the noisy image at one sigma,
with torch using ``--threads`` threads; then the *cold* time a user sees, a
fresh ``fllic compress`` and ``fllic decompress`` process on the first image
(Python start, imports, model load and the work). Run it on an otherwise
idle machine. ``--refine`` times the encoder's refinement (``fllic compress
--refine``) instead of plain encoding. ``--against MODEL`` times decoding
instead, side by side: every image coded by both models, their decodes
interleaved (``--repeat`` each, medians), and the ratio of each image's decode
time to ``--model``'s; ``--decoder reference`` decodes both with the numpy
reference decoder instead of PyTorch's (an exported .pt's decoder file is
written for it).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch

    from fllic.codec import REFINE_STEPS, decode, encode_detailed
    from fllic.imageio import read_image
    from fllic.models.registry import resolve
    from fllic.noise import add_noise

    p = argparse.ArgumentParser(prog="python -m fllic.bench.speed", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"))
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=None)
    p.add_argument("--refine", action="store_true", help="encode with the encoder's refinement (fllic compress --refine)")
    p.add_argument("--against", default=None, metavar="MODEL",
                   help="time decoding with this model (shipped id or exported .pt) beside --model's, same images, same run")
    p.add_argument("--quality", type=int, default=None, help="code at this level (default: the model's default "
                   "point; with --against, each model's)")
    p.add_argument("--repeat", type=int, default=3, help="with --against: interleaved decodes per model and image")
    p.add_argument("--decoder", choices=["torch", "reference"], default="torch",
                   help="with --against: the decoder both models' files are timed with")
    args = p.parse_args(argv)
    refine = REFINE_STEPS if args.refine else 0
    torch.set_num_threads(args.threads)
    model = resolve(args.model)
    files = sorted(args.data.glob("*.png"))[: args.limit]
    if not files:
        print(f"error: no PNG images in {args.data}", file=sys.stderr)
        return 1
    if args.against is not None:
        return _side_by_side(files, model, resolve(args.against), args)
    warm = add_noise(read_image(files[0]), args.sigma, seed=0)
    decode(encode_detailed(warm, sigma=args.sigma, model=model, refine=min(refine, 1)).data, model=model)
    print(f"# fllic speed: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, sigma {args.sigma:g}, model {model.meta.get('id')}"
          + (f", refined ({refine} steps)" if refine else "") + (f", level {args.quality}" if args.quality else ""))
    print("| image | size | encode s | decode s | total s |")
    print("|---|---|---|---|---|")
    totals = []
    for i, f in enumerate(files):
        noisy = add_noise(read_image(f), args.sigma, seed=i)
        t0 = time.perf_counter()
        res = encode_detailed(noisy, sigma=args.sigma, model=model, quality=args.quality, refine=refine)
        t1 = time.perf_counter()
        out = decode(res.data, model=model)
        t2 = time.perf_counter()
        if not np.array_equal(out, res.pixels):
            print("error: decode differs from the encoder's reconstruction", file=sys.stderr)
            return 1
        totals.append(t2 - t0)
        print(f"| {f.name} | {noisy.shape[1]}x{noisy.shape[0]} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t2 - t0:.2f} |")
    print(f"\nwarm encode + decode: median {np.median(totals):.2f} s, max {np.max(totals):.2f} s per image")
    cold = _cold(warm, args)
    print(f"cold (fresh processes, {files[0].name}): fllic compress {cold[0]:.2f} s, fllic decompress {cold[1]:.2f} s")
    return 0


def _decode_seconds(data: bytes, model, expected: np.ndarray, decoder: str = "auto") -> float:
    from fllic.codec import decode

    t0 = time.perf_counter()
    out = decode(data, model=model, decoder=decoder)
    seconds = time.perf_counter() - t0
    if not np.array_equal(out, expected):
        raise SystemExit("error: decode differs from the encoder's reconstruction")
    return seconds


def _decode_target(model, decoder: str):
    """What ``decode(model=...)`` takes for ``decoder``: the model itself for PyTorch's decoder; for the reference
    decoder, its DecoderModel, read once (a shipped model's installed decoder file, else the model's decoder
    file, written for it), so that neither model's decodes read a file."""
    if decoder == "torch":
        return model
    import tempfile

    from fllic.decoder.model import SUFFIX, installed, load, load_file
    from fllic.models.decoder_export import export

    if model.meta.get("id") in installed():
        return load(model.meta["id"])
    with tempfile.TemporaryDirectory(prefix="fllic-speed-") as tmp:  # read whole, so the file need not outlive it
        path = Path(tmp) / f"{model.meta.get('id', 'custom')}{SUFFIX}"
        export(model, path)
        return load_file(path)


def _side_by_side(files: list[Path], base, other, args) -> int:
    """Decode seconds of two models on the same noisy images, interleaved so that drift hits both alike."""
    import torch

    from fllic.codec import encode_detailed
    from fllic.imageio import read_image
    from fllic.noise import add_noise

    ids = base.meta.get("id"), other.meta.get("id")
    targets = [_decode_target(m, args.decoder) for m in (base, other)]
    print(f"# fllic decode speed, side by side: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, {args.decoder} decoder, sigma {args.sigma:g}, "
          f"{'each model at its default level' if args.quality is None else f'level {args.quality}'}, "
          f"medians of {args.repeat} interleaved decodes after one warm-up each")
    print(f"| image | size | {ids[0]}: bpp, decode s | {ids[1]}: bpp, decode s | decode time, {ids[1]} / {ids[0]} |")
    print("|---|---|---:|---:|---:|")
    ratios = []
    for i, f in enumerate(files):
        noisy = add_noise(read_image(f), args.sigma, seed=i)
        coded = [encode_detailed(noisy, sigma=args.sigma, model=m, quality=args.quality) for m in (base, other)]
        for m, res in zip(targets, coded):
            _decode_seconds(res.data, m, res.pixels, args.decoder)  # warm-up
        times = [[], []]
        for _ in range(args.repeat):
            for k, (m, res) in enumerate(zip(targets, coded)):
                times[k].append(_decode_seconds(res.data, m, res.pixels, args.decoder))
        t = [float(np.median(ts)) for ts in times]
        bpp = [8 * len(res.data) / (noisy.shape[0] * noisy.shape[1]) for res in coded]
        ratios.append(t[1] / t[0])
        print(f"| {f.name} | {noisy.shape[1]}x{noisy.shape[0]} | {bpp[0]:.3f}, {t[0]:.2f} | {bpp[1]:.3f}, {t[1]:.2f} | "
              f"{ratios[-1]:.2f}x |")
    print(f"\ndecode time, {ids[1]} against {ids[0]}: median {np.median(ratios):.2f}x over {len(ratios)} images")
    return 0


def _cold(noisy: np.ndarray, args) -> tuple[float, float]:
    """Wall seconds of a fresh ``fllic compress`` and ``fllic decompress`` process."""
    import os
    import subprocess
    import tempfile

    from PIL import Image

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    model = [] if args.model is None else ["--model", str(args.model)]
    with tempfile.TemporaryDirectory() as tmp:
        src, coded, out = Path(tmp, "noisy.png"), Path(tmp, "x.fllic"), Path(tmp, "out.png")
        Image.fromarray(noisy).save(src)
        times = []
        refine = (["--refine"] if args.refine else []) + ([] if args.quality is None else ["--quality", str(args.quality)])
        for cmd in (["compress", str(src), "-o", str(coded), "--sigma", str(args.sigma)] + model + refine,
                    ["decompress", str(coded), "-o", str(out)] + model):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fllic.cli", *cmd], check=True, env=env, capture_output=True)
            times.append(time.perf_counter() - t0)
    return times[0], times[1]


if __name__ == "__main__":
    sys.exit(main())
