"""python -m fllic.bench.heap: the coding call's heap (:func:`fllic._heap.reusing`) against glibc's default and
against fllic 0.20's large-image setting.

The heap's settings are a process's, so every measurement runs in a fresh child process for each setting, in
turn, in one run: glibc's default; fllic 0.20's setting for images from 4 MP (one arena, every block from 1 MB
mapped on its own, the heap trimmed at once: memory given back as soon as a band is done); and ``reusing()``
(blocks up to 32 MB kept in an untrimmed heap during the call):

1. an element-wise step of PyTorch writing a new int32 result (``a >> 3``), and one in place (``a.clamp_``)
   for reference, on tensors of 1 to 64 MB: nanoseconds per value, medians after a warm-up;
2. PyTorch's integer g_s (the shipped decoder, seeded random symbols) on a 768x512 image, whole, and on a strip
   WIDTH pixels wide and 128 tall streamed in the codec's bands (``fllic.tiling.synthesis``): seconds per
   megapixel of the first call in the process and the median of the next ones, with the pixels' identity.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fllic._heap import M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
from fllic.bench._record import command, emit

SIZES_MB = (1, 4, 16, 64)
HEAPS = ("glibc's default", "fllic 0.20's large-image setting", "fllic._heap.reusing")
BOUND_0_20 = ((M_ARENA_MAX, 1), (M_TRIM_THRESHOLD, 0), (M_MMAP_THRESHOLD, 1 << 20))


def _elementwise(repeat: int) -> dict:
    import torch

    out = {}
    for mb in SIZES_MB:
        a = torch.randint(-(1 << 14), 1 << 14, (mb << 18,), dtype=torch.int32)
        for name, step in (("new", lambda: a >> 3), ("in place", lambda: a.clamp_(-(1 << 14), 1 << 14))):
            step()
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            out[f"{mb} {name}"] = statistics.median(times) / a.numel() * 1e9
    return out


def _synthesis(width: int, repeat: int) -> dict:
    import torch

    from fllic import tiling
    from fllic.models import decoding
    from fllic.models.registry import DEFAULT_MODEL

    d = decoding.load(DEFAULT_MODEL).decoder
    q = float(d.q_scales[3])
    out = {}
    for name, (rows, cols) in (("768x512, whole", (8, 12)), (f"{width}x128, streamed", (2, width // 64))):
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            z = torch.randint(-2, 3, (1, int(d.step_z.numel()), rows, cols), dtype=torch.int32, generator=gen)
            p = d.entropy_params(z, 25.0, q)
            u = torch.randint(-3, 4, p.mu.shape, dtype=torch.int32, generator=gen)
            times = []
            for _ in range(repeat + 1):  # the first the process's first
                t0 = time.perf_counter()
                x = tiling.synthesis(d, u, p, 25.0, q, tiling.DEFAULT_TILE)
                times.append(time.perf_counter() - t0)
        mp = x.shape[1] * x.shape[2] / 1e6
        out[name] = (times[0] / mp, statistics.median(times[1:]) / mp, hashlib.sha256(x.numpy().tobytes()).hexdigest())
    return out


def _child(heap: str, width: int, repeat: int) -> dict:
    from contextlib import nullcontext

    from fllic._heap import _set, reusing

    if heap == HEAPS[1]:
        _set(BOUND_0_20)
    with reusing() if heap == HEAPS[2] else nullcontext():
        return {"synthesis": _synthesis(width, repeat), "elementwise": _elementwise(repeat)}


def _run(heap: str, width: int, repeat: int, threads: int) -> dict:
    args = [sys.executable, "-m", "fllic.bench.heap", "--child", str(HEAPS.index(heap)),
            "--width", str(width), "--repeat", str(repeat), "--threads", str(threads)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "child failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(runs: dict, width: int, repeat: int, threads: int, argv) -> str:
    import torch

    base = runs[HEAPS[0]]
    names = " | ".join(HEAPS)
    lines = [f"# Heap: {', '.join(HEAPS)}, {threads} thread(s)", "",
             f"`{command('python -m fllic.bench.heap', argv)}`", "",
             f"torch {torch.__version__}; each setting in a fresh process, in one run (fllic 0.20's setting: one "
             "arena, blocks from 1 MB mapped on their own, the heap trimmed at once).", "",
             f"Integer g_s (PyTorch's decoder), seconds per megapixel: the process's first call, and the median of "
             f"the {repeat} after it; times against glibc's default.", "",
             f"| image | call | {names} | identical pixels |", "|---|---|" + "---:|" * len(HEAPS) + "---|"]
    for key, first in base["synthesis"].items():
        same = all(runs[h]["synthesis"][key][2] == first[2] for h in HEAPS)
        for k, call in ((0, "first"), (1, "later (median)")):
            cells = " | ".join(f"{runs[h]['synthesis'][key][k]:.3f} ({runs[h]['synthesis'][key][k] / first[k]:.2f}x)"
                               for h in HEAPS)
            lines.append(f"| {key} | {call} | {cells} | {'yes' if same else 'NO'} |")
    lines += ["", f"One PyTorch step on int32 tensors, nanoseconds per value (medians of {repeat} after a warm-up):",
              "",
              f"| step | tensor (MB) | {names} |", "|---|---:|" + "---:|" * len(HEAPS)]
    for key in base["elementwise"]:
        mb, name = key.split(" ", 1)
        step = "a >> 3 (a new result)" if name == "new" else "a.clamp_ (in place)"
        lines.append(f"| {step} | {mb} | " + " | ".join(f"{runs[h]['elementwise'][key]:.3f}" for h in HEAPS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.heap", description=__doc__)
    p.add_argument("--width", type=int, default=6016, help="the streamed strip's width in pixels, a multiple of 64")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    p.add_argument("--child", type=int, choices=range(len(HEAPS)), default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.child is not None:
        print(json.dumps(_child(HEAPS[args.child], args.width, args.repeat)))
        return 0
    runs = {heap: _run(heap, args.width, args.repeat, args.threads) for heap in HEAPS}
    emit(report(runs, args.width, args.repeat, args.threads, argv), args.out)
    same = all(runs[h]["synthesis"][k][2] == v[2] for h in HEAPS for k, v in runs[HEAPS[0]]["synthesis"].items())
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
