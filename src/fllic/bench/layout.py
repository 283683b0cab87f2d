"""python -m fllic.bench.layout: the encoder's analysis on channels-last weights against the plain layout.

:func:`fllic.precision.channels_last` keeps the trunk's and g_a's weights in channels-last memory. This bench
measures what that buys and what it moves, one process, both layouts of the same model side by side:

1. the trunk and g_a alone on a WIDTHxHEIGHT input, in bf16 (where the CPU computes it natively) and in float32,
   the two layouts timed in turn (medians of ``--repeat``), with the largest difference of their outputs;
2. every image of ``--data`` noised at each sigma (seeded AWGN, rounded and clipped) and coded at the model's
   default level in both layouts, in bf16 and in float32: how many files are identical byte for byte, the mean
   PSNR and bits where they are not, and whether each file decodes to its encoder's pixels.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

LAYOUTS = ("plain", "channels-last")


def _models(model_id: str | None) -> dict:
    """The model in each layout: as loaded (channels-last), and a copy with its weights made contiguous again."""
    from fllic.models.registry import DEFAULT_MODEL, load
    from fllic.precision import channels_last

    last = load(model_id or DEFAULT_MODEL)
    plain = copy.deepcopy(last)
    channels_last(plain.net, on=False)
    return {"plain": plain, "channels-last": last}


def stage_times(models: dict, width: int, height: int, repeat: int, bf16: bool) -> list[str]:
    """Table rows: the trunk and g_a in each layout, seconds (medians) and their ratio, and the outputs' largest
    difference."""
    import torch

    from fllic import precision

    gen = torch.Generator().manual_seed(0)
    x, s, q = torch.rand(1, 3, height, width, generator=gen), torch.tensor([25.0]), torch.tensor([1.0])
    stages = {"trunk": lambda net: net.trunk(x, s), "g_a": lambda net: net.analysis_of_estimate(x, s, q)}
    rows = []
    for name, run in stages.items():
        times, outs = {k: [] for k in LAYOUTS}, {}
        with torch.no_grad(), precision.float32(not bf16), precision.analysis("cpu"):
            for _ in range(repeat + 1):  # the first pass of each a warm-up
                for layout in LAYOUTS:
                    t0 = time.perf_counter()
                    outs[layout] = run(models[layout].net).float()
                    times[layout].append(time.perf_counter() - t0)
        plain, last = (float(np.median(times[k][1:])) for k in LAYOUTS)
        diff = float((outs["plain"] - outs["channels-last"]).abs().max())
        rows.append(f"| {name} | {'bf16' if bf16 else 'float32'} | {plain:.3f} | {last:.3f} | {last / plain:.2f}x | "
                    f"{diff:.2g} |")
    return rows


def code_image(models: dict, clean: np.ndarray, noisy: np.ndarray, sigma: float, float32: bool) -> dict:
    """Each layout's file, PSNR, bpp and exactness for one image."""
    import fllic
    from fllic.metrics import psnr

    out = {}
    for layout in LAYOUTS:
        res = fllic.codec.encode_detailed(noisy, sigma=sigma, model=models[layout], float32=float32)
        out[layout] = {"data": res.data, "psnr": psnr(res.pixels, clean), "bpp": 8 * len(res.data) / clean[..., 0].size,
                       "exact": bool(np.array_equal(fllic.decode(res.data, model=models[layout]), res.pixels))}
    return out


def file_rows(rows: dict[tuple[float, str], list[dict]]) -> list[str]:
    """Table rows: per sigma and precision, identical files, both layouts' mean points, exactness."""
    lines = []
    for (sigma, prec), items in rows.items():
        same = sum(r["plain"]["data"] == r["channels-last"]["data"] for r in items)
        p, c = ({k: float(np.mean([r[layout][k] for r in items])) for k in ("psnr", "bpp")} for layout in LAYOUTS)
        exact = all(r[layout]["exact"] for r in items for layout in LAYOUTS)
        lines.append(f"| {sigma:g} | {prec} | {same} / {len(items)} | {p['psnr']:.3f}, {p['bpp']:.4f} | "
                     f"{c['psnr']:.3f}, {c['bpp']:.4f} | {c['psnr'] - p['psnr']:+.4f} | "
                     f"{100 * (c['bpp'] / p['bpp'] - 1):+.3f} % | {'yes' if exact else 'NO'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.layout", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"))
    p.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0, 50.0])
    p.add_argument("--limit", type=int, default=None, help="the first N images")
    p.add_argument("--size", type=int, nargs=2, default=[768, 512], metavar=("WIDTH", "HEIGHT"),
                   help="the stage timings' input")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--model", default=None, help="a shipped model id (default: the default model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    args = p.parse_args(argv)
    import torch
    from tqdm import tqdm

    from fllic import precision
    from fllic.bench.runner import list_images, make_noisy
    from fllic.imageio import read_image

    models = _models(args.model)
    precisions = (["bf16"] if precision.bf16_native() else []) + ["float32"]
    stage = [row for prec in precisions for row in stage_times(models, *args.size, args.repeat, prec == "bf16")]
    images = list_images(args.data, args.limit)
    rows: dict[tuple[float, str], list[dict]] = {(s, prec): [] for s in args.sigmas for prec in precisions}
    for path in tqdm(images, desc="images", file=sys.stderr):
        clean = read_image(path)
        for sigma in args.sigmas:
            noisy = make_noisy(clean, sigma, "awgn", args.seed)
            for prec in precisions:
                rows[(sigma, prec)].append(code_image(models, clean, noisy, sigma, prec == "float32"))
    exact = all(r[layout]["exact"] for items in rows.values() for r in items for layout in LAYOUTS)
    w, h = args.size
    threads = torch.get_num_threads()
    text = "\n".join([
        f"# The encoder's analysis on channels-last weights against the plain layout: {args.data.name}", "",
        f"`{command('python -m fllic.bench.layout', argv)}`", "",
        f"Model {models['plain'].meta.get('id', 'custom')}; torch {torch.__version__}, {threads} "
        f"thread{'s' * (threads != 1)}. The trunk and g_a alone on a {w}x{h} input (seeded uniform noise, σ 25, q 1), each layout in "
        f"turn, medians of {args.repeat} after a warm-up:", "",
        "| stage | precision | plain, s | channels-last, s | channels-last / plain | largest output difference |",
        "|---|---|---:|---:|---:|---:|", *stage, "",
        f"{len(images)} image{'s' * (len(images) != 1)}, AWGN (seed {args.seed}, rounded and clipped), sigma given, coded at the default level "
        "in both layouts; identical: files equal byte for byte; exact: every file decodes to its encoder's pixels.", "",
        "| σ | precision | identical files | plain: dB, bpp | channels-last: dB, bpp | Δ dB | Δ bits | exact |",
        "|---:|---|---|---|---|---:|---:|---|", *file_rows(rows), ""])
    emit(text, args.out)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
