"""python -m fllic.bench.cold: a fresh ``fllic decompress`` by each decoder, across image sizes.

A user's ``fllic decompress`` is one process: Python starts, imports, loads the
decoder and decodes. PyTorch's integer kernels decode faster once imported, but
importing PyTorch costs about a second and a half; the numpy reference decoder
imports in a fraction of that. Which is faster therefore depends on the image's
size, and this bench measures where the two cross: a clean photograph mirrored
to each ``--sizes`` (numpy's symmetric padding), seeded AWGN, coded once, then
decoded by fresh ``fllic decompress --decoder torch`` and ``--decoder reference``
processes, interleaved, ``--repeat`` times each (medians), and by
``--decoder auto``, whose choice the record shows beside them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

DECODERS = ("torch", "reference", "auto")


def mirrored(clean: np.ndarray, width: int, height: int) -> np.ndarray:
    """``clean`` mirrored about its edges (numpy's symmetric padding) to width x height."""
    h, w = clean.shape[:2]
    pad = ((0, max(0, height - h)), (0, max(0, width - w))) + ((0, 0),) * (clean.ndim - 2)
    return np.ascontiguousarray(np.pad(clean, pad, mode="symmetric")[:height, :width])


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT, got {text!r}") from None
    return w, h


def decompress_times(coded: Path, out: Path, threads: int, repeat: int) -> dict:
    """Median wall seconds of fresh ``fllic decompress`` processes, one per decoder, interleaved."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    times = defaultdict(list)
    for _ in range(repeat):
        for decoder in DECODERS:
            cmd = [sys.executable, "-m", "fllic.cli", "decompress", str(coded), "-o", str(out), "--force", "-q",
                   "--decoder", decoder]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            times[decoder].append(time.perf_counter() - t0)
    return {d: float(np.median(t)) for d, t in times.items()}


def fresh_choice(data: bytes) -> str:
    """What decoder="auto" picks for a file in a fresh process (one that has not imported PyTorch)."""
    from fllic import format as fmt

    h = fmt.unpack(data).header
    code = (f"from fllic.codec import auto_decoder; "
            f"print(auto_decoder(named={fmt.decoder_name(h)!r}, pixels={h.height * h.width}))")
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def _row(width: int, height: int, t: dict, chosen: str) -> str:
    mp = width * height / 1e6
    return (f"| {width}x{height} | {mp:.2f} | {t['torch']:.2f} | {t['reference']:.2f} | "
            f"{t['reference'] / t['torch']:.2f}x | {t['auto']:.2f} ({chosen}) |")


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    import fllic
    from fllic.imageio import read_image
    from fllic.noise import add_noise

    p = argparse.ArgumentParser(prog="python -m fllic.bench.cold", description=__doc__.split("\n")[0])
    p.add_argument("--image", type=Path, default=Path("../shared/data/CBSD68/101085.png"),
                   help="a clean photograph (default: CBSD68 image 1, a development image)")
    p.add_argument("--sizes", type=_size, nargs="+", default=[(768, 512), (1024, 768), (1280, 960), (1536, 1024)],
                   metavar="WxH")
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--threads", type=int, default=2, help="OMP threads of the fresh processes")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    args = p.parse_args(argv)
    if not args.image.is_file():
        print(f"error: no image {args.image}", file=sys.stderr)
        return 1
    clean = read_image(args.image)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (w, h) in enumerate(tqdm(args.sizes, desc="sizes", unit="size")):
            coded, out = Path(tmp, f"x{i}.fllic"), Path(tmp, f"out{i}.png")
            data = fllic.encode(add_noise(mirrored(clean, w, h), args.sigma, seed=0), sigma=args.sigma)
            coded.write_bytes(data)
            rows.append(_row(w, h, decompress_times(coded, out, args.threads, args.repeat), fresh_choice(data)))
    lines = ["# A fresh `fllic decompress` by each decoder, across image sizes", "",
             f"`{command('python -m fllic.bench.cold', argv)}`", "",
             f"{args.image.name} mirrored to each size, AWGN σ {args.sigma:g} (seed 0), coded by the default model; "
             f"wall seconds of a fresh process (Python start, imports, decoder load, decode, PNG write), "
             f"{args.threads} threads, medians of {args.repeat} interleaved runs. `auto` is `fllic decompress`'s "
             f"default; its choice in brackets.", "",
             "| size | MP | `--decoder torch` s | `--decoder reference` s | reference / torch | `auto` s |",
             "|---|---:|---:|---:|---:|---:|", *rows]
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
