"""The ``fllic bench`` subcommand: a thin wrapper over :func:`fllic.bench.run_bench`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    from fllic.bench.runner import DEFAULT_DATA, DEFAULT_SIGMAS
    from fllic.noise import NOISE_MODELS

    p = sub.add_parser(
        "bench", help="compare fllic with lossless, near-lossless and cascade baselines",
        description="Noise every image of DIR at each sigma, code it with every method, check each decode, "
                    "and write results.json, report.md, cost.md and rate-distortion plots to --out.",
    )
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help=f"folder of clean 8-bit images (default: {DEFAULT_DATA}, where it exists)")
    p.add_argument("--sigma", type=float, nargs="+", default=list(DEFAULT_SIGMAS), metavar="S",
                   help="noise levels in 8-bit units (default: 15 25 50)")
    p.add_argument("--noise", default="awgn", choices=sorted(NOISE_MODELS), help="noise model (default: awgn)")
    p.add_argument("--methods", nargs="+", default=["all"], metavar="NAME",
                   help="method or group names (default: all); see --list-methods")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (sorted by name)")
    p.add_argument("--half", choices=("dev", "test"), default=None,
                   help="one half of the set by name: dev (images 1-34 of CBSD68/BSD68, where levels and constants are "
                        "chosen) or test (35-68, what records report)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run N (image, sigma) tasks in parallel processes (default: 1; timings are cleanest with 1)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (default: results/<data folder name>)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="noise seed (default: 0)")
    p.add_argument("--model", default=None, metavar="M",
                   help="shipped model id or exported .pt file (default: the shipped model)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="denoiser cache folder (default: $XDG_CACHE_HOME/fllic/bench or ~/.cache/fllic/bench)")
    p.add_argument("--no-cache", action="store_true", help="recompute denoiser outputs and keep none")
    p.add_argument("--force", action="store_true", help="overwrite an existing results.json in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-methods", action="store_true", help="print the methods each group runs, then exit")
    p.set_defaults(func=run)


def _data_dir(args) -> Path:
    from fllic.bench.runner import DEFAULT_DATA, BenchError

    if args.data is not None:
        return args.data
    if DEFAULT_DATA.is_dir():
        return DEFAULT_DATA
    raise BenchError(f"no --data given and {DEFAULT_DATA} does not exist here; pass --data DIR, a folder of images")


def _list_methods(args) -> int:
    from fllic.baselines import GROUPS, Context, describe, expand

    for s in args.sigma:
        ctx = Context(s, args.model)
        print(f"sigma {s:g}:")
        for g in GROUPS:
            print(f"  {g:14s} {' '.join(expand([g], ctx))}")
    print(describe())
    return 0


def run(args: argparse.Namespace) -> int:
    from fllic.baselines import default_cache_dir
    from fllic.bench.runner import BenchConfig, run_bench

    if args.list_methods:
        return _list_methods(args)
    import importlib.util

    for module in ("pytorch_msssim", "matplotlib"):  # before any work, and before worker processes start
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"No module named '{module}'", name=module)
    data = _data_dir(args)
    out = args.out if args.out is not None else Path("results") / data.resolve().name.lower()
    cache = None if args.no_cache else (args.cache if args.cache is not None else default_cache_dir())
    cfg = BenchConfig(
        data=data, out=out, sigmas=tuple(args.sigma), noise=args.noise, methods=tuple(args.methods),
        limit=args.limit, half=args.half, jobs=args.jobs, seed=args.seed, model=args.model, cache_dir=cache,
        force=args.force, progress=not args.no_progress,
    )
    summary = run_bench(cfg)
    print(f"wrote {out / 'report.md'}, {out / 'results.json'}, {out / 'cost.md'} and "
          f"{len(summary['by_sigma'])} plot(s) for {len(summary['images'])} image(s)")
    return 0
