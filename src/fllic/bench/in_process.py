"""python -m fllic.bench.in_process: each decoder's time in a process that has already imported PyTorch.

A fresh ``fllic decompress`` pays PyTorch's import, so there the reference decoder (numpy) is the faster choice
(results/decode-cold.md). A program that encodes, or imports PyTorch for anything else, has paid it already:
this bench decodes the same files by both decoders in one such process, interleaved, so ``decoder="auto"`` can
choose by measurement (fllic.codec.auto_decoder). A development image (CBSD68's first) mirrored to each size,
AWGN σ 25 (seed 0), coded by the default model at its default level.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from fllic.bench._record import command

DECODERS = ("torch", "reference")


def _tiled(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``img`` mirrored into tiles until it covers width x height, cropped."""
    row = np.concatenate([img, img[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = (-(-height // block.shape[0]), -(-width // block.shape[1])) + (1,) * (img.ndim - 2)
    return np.tile(block, reps)[:height, :width]


def measure(image: Path, sizes, repeat: int) -> list[tuple[str, float, float]]:
    """(size, torch seconds, reference seconds): medians of ``repeat`` interleaved decodes after a warm-up each."""
    import fllic
    from fllic.imageio import read_image
    from fllic.noise import add_noise

    img, rows = read_image(image), []
    for width, height in sizes:
        data = fllic.encode(add_noise(_tiled(img, width, height), 25, seed=0), sigma=25)
        times = {d: [] for d in DECODERS}
        for d in DECODERS:
            fllic.decode(data, decoder=d)
        for _ in range(repeat):
            for d in DECODERS:
                start = time.perf_counter()
                fllic.decode(data, decoder=d)
                times[d].append(time.perf_counter() - start)
        rows.append((f"{width}x{height}", *(statistics.median(times[d]) for d in DECODERS)))
        print(rows[-1], flush=True)
    return rows


def _row(size: str, torch_s: float, reference_s: float) -> str:
    width, height = (int(v) for v in size.split("x"))
    return f"| {size} | {width * height / 1e6:.2f} | {torch_s:.2f} | {reference_s:.2f} | {torch_s / reference_s:.2f}x |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.in_process", description=__doc__.split("\n\n")[0])
    p.add_argument("--image", type=Path, default=Path("../shared/data/CBSD68/101085.png"),
                   help="the scene, mirrored to each size (default: a development image)")
    p.add_argument("--sizes", nargs="+", default=["768x512", "1024x1024", "2048x1536", "3072x2048"],
                   help="WIDTHxHEIGHT")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    rows = measure(args.image, sizes, args.repeat)
    lines = ["# Each decoder in a process that has imported PyTorch", "",
             f"`{command('python -m fllic.bench.in_process', argv)}`", "",
             f"{args.image.name} mirrored to each size, AWGN σ 25 (seed 0), the default model at its default level; "
             f"{args.threads} threads; medians of {args.repeat} interleaved decodes after a warm-up each, in one run.",
             "", "| size | MP | PyTorch's decoder, s | reference decoder, s | PyTorch / reference |",
             "|---|---:|---:|---:|---:|", *(_row(size, t, r) for size, t, r in rows)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
