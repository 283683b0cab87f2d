"""python -m fllic.bench.throughput: batch compression throughput, in megapixels per second.

Compresses the same noisy images (seeded AWGN) three ways: in one process
(``--jobs 1``), in two worker processes (``--jobs 2``), and on a local Dask
distributed cluster of two single-threaded worker processes started here (the
same path as ``--scheduler ADDRESS`` on a real cluster). Each run starts from
an empty output folder; the table is written as Markdown (``--out``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from fllic.bench._record import command, emit


def _noisy_inputs(data: Path, limit: int, sigma: float, folder: Path) -> list[Path]:
    from fllic.imageio import read_image, write_image
    from fllic.noise import add_noise

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, f in enumerate(sorted(data.glob("*.png"))[:limit]):
        path = folder / f.name
        write_image(path, add_noise(read_image(f), sigma, seed=k))
        out.append(path)
    return out


def _timed(inputs: list[Path], out: Path, sigma: float, workers: int, scheduler: str | None, threads: int = 0) -> dict:
    from fllic import batch

    shutil.rmtree(out, ignore_errors=True)
    opts = batch.Options(mode="compress", sigma=sigma, threads=threads)
    jobs = batch.plan(inputs, out, opts)
    summary = batch.run(jobs, opts, workers=workers, scheduler=scheduler, progress=False)
    mp = sum(o.pixels for o in summary.outcomes) / 1e6
    return {"files": len(jobs), "failed": summary.count("failed"), "mp": mp, "seconds": summary.seconds,
            "mp_s": mp / summary.seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.throughput", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"), help="folder of clean PNG images")
    p.add_argument("--limit", type=int, default=8, help="how many images")
    p.add_argument("--sigma", type=float, default=25.0, help="noise std in 8-bit units")
    p.add_argument("--workdir", type=Path, default=Path("fllic-throughput"), help="scratch folder")
    p.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    args = p.parse_args(argv)
    inputs = _noisy_inputs(args.data, args.limit, args.sigma, args.workdir / "in")
    if not inputs:
        print(f"error: no PNG images in {args.data}", file=sys.stderr)
        return 1
    rows = {"1 local job": _timed(inputs, args.workdir / "o1", args.sigma, 1, None),
            "2 local jobs": _timed(inputs, args.workdir / "o2", args.sigma, 2, None)}
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rows["local Dask cluster, 2 workers"] = _timed(inputs, args.workdir / "od", args.sigma, 1, cluster.scheduler_address,
                                                          threads=1)
    lines = [f"# Batch throughput: {len(inputs)} images of {args.data.name}, sigma {args.sigma:g}", "",
             f"`{command('python -m fllic.bench.throughput', argv)}`", "",
             "| runner | files | failed | megapixels | seconds | MP/s |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {k} | {r['files']} | {r['failed']} | {r['mp']:.2f} | {r['seconds']:.1f} | {r['mp_s']:.3f} |"
              for k, r in rows.items()]
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
