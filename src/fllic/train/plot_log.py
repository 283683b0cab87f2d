"""python -m fllic.train.plot_log LOG -o PNG: training curves (PSNR and bpp against step).

A denoiser trainer's log (python -m fllic.train.denoiser) gives one panel, its
training PSNR against step; with ``--validation``, the held-out validation PSNR
per sigma against step, the curve of the estimator.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_LINE = re.compile(r"step (\d+) loss ([\d.]+) bpp ([\d.]+) psnr\(q<1.2\)(?:-to-estimate)? ([\d.]+) lr ([\d.e+-]+)")


def parse(path: Path) -> list[tuple[int, float, float, float, float]]:
    rows = {}
    for line in path.read_text().splitlines():
        m = _LINE.match(line)
        if m:
            step = int(m.group(1))
            rows[step] = (step, *(float(g) for g in m.groups()[1:]))
    return [rows[k] for k in sorted(rows)]


_TRUNK = re.compile(r"step (\d+) mse ([\d.e+-]+) psnr ([\d.]+)")


def parse_trunk(path: Path) -> list[tuple[int, float]]:
    """[(step, training psnr), ...] from a denoiser log's step lines."""
    rows = {int(m.group(1)): float(m.group(3)) for m in map(_TRUNK.match, path.read_text().splitlines()) if m}
    return sorted(rows.items())


def plot_trunk(log: Path, out: Path, smooth: int) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = np.array(parse_trunk(log))
    if rows.size == 0:
        print(f"error: no training lines in {log}", file=sys.stderr)
        return 1
    k = max(1, min(smooth, len(rows)))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rows[k - 1 :, 0], np.convolve(rows[:, 1], np.ones(k) / k, mode="valid"))
    ax.set(xlabel="step", ylabel=f"training PSNR (dB), mean of {k} log lines",
           title="denoising trunk (sigma ~ U[0, 55] per patch)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


_VAL = re.compile(r"val (\d+) (.*)")


def parse_validation(path: Path) -> dict[str, list[tuple[int, float]]]:
    """{'sigma15': [(step, psnr), ...], ...} from a denoiser log's validation lines."""
    curves: dict[str, dict[int, float]] = {}
    for line in path.read_text().splitlines():
        m = _VAL.match(line)
        if m:
            fields = m.group(2).split()
            for name, value in zip(fields[::2], fields[1::2]):
                curves.setdefault(name, {})[int(m.group(1))] = float(value)
    return {k: sorted(v.items()) for k, v in curves.items()}


def plot_validation(log: Path, out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = parse_validation(log)
    if not curves:
        print(f"error: no validation lines in {log}", file=sys.stderr)
        return 1
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", label=name.replace("sigma", "σ "))
    ax.set(xlabel="step", ylabel="validation PSNR (dB)", title="denoising trunk, held-out WikipediaPhotos crops")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    p = argparse.ArgumentParser(prog="python -m fllic.train.plot_log", description=__doc__)
    p.add_argument("log", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--smooth", type=int, default=10, help="moving-average window, in log lines")
    p.add_argument("--validation", action="store_true", help="plot a denoiser log's validation PSNR per sigma")
    args = p.parse_args(argv)
    if args.validation:
        return plot_validation(args.log, args.output)
    rows = np.array(parse(args.log))
    if rows.size == 0 and parse_trunk(args.log):
        return plot_trunk(args.log, args.output, args.smooth)
    to_estimate = "psnr(q<1.2)-to-estimate" in args.log.read_text()  # --code-estimate: PSNR to the trunk's estimate
    if rows.size == 0:
        print(f"error: no training lines in {args.log}", file=sys.stderr)
        return 1
    k = max(1, min(args.smooth, len(rows)))
    smooth = lambda v: np.convolve(v, np.ones(k) / k, mode="valid")
    steps = rows[k - 1 :, 0]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(steps, smooth(rows[:, 3]))
    a.set(xlabel="step", ylabel=f"training PSNR{' to the estimate' if to_estimate else ''}, q < 1.2 (dB)",
          title="distortion (sigma ~ U[0, 55])")
    b.plot(steps, smooth(rows[:, 2]), color="tab:red")
    b.set(xlabel="step", ylabel="estimated bpp (all q)", title="rate")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
