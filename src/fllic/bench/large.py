"""python -m fllic.bench.large: time and peak memory of coding one large image.

Makes a WIDTHxHEIGHT RGB scene (a clean photograph resized with Lanczos
filtering, plus seeded AWGN), then encodes it and decodes it in two fresh
processes, each reporting its wall time and peak resident memory
(``ru_maxrss``), and checks that the decode equals the encoder's pixels.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from fllic.bench._record import command, emit


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child_encode(src: Path, out: Path, sigma: float, tile: int) -> dict:
    import numpy as np

    import fllic
    from fllic.imageio import read_image

    img = read_image(src)
    t0 = time.perf_counter()
    res = fllic.codec.encode_detailed(img, sigma=sigma, tile=tile, progress=True, max_pixels=1 << 28)
    seconds = time.perf_counter() - t0
    out.write_bytes(res.data)
    np.save(out.with_suffix(".npy"), res.pixels)
    return {"seconds": seconds, "peak_mb": _peak_mb(), "bytes": len(res.data)}


def _child_decode(path: Path, tile: int) -> dict:
    import numpy as np

    import fllic

    t0 = time.perf_counter()
    pixels = fllic.decode(path.read_bytes(), tile=tile, progress=True, max_pixels=1 << 28)
    seconds = time.perf_counter() - t0
    same = bool(np.array_equal(pixels, np.load(path.with_suffix(".npy"))))
    return {"seconds": seconds, "peak_mb": _peak_mb(), "identical": same}


def _run(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "fllic.bench.large", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "child failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_scene(source: Path, width: int, height: int, sigma: float, out: Path) -> None:
    import numpy as np
    from PIL import Image

    from fllic.imageio import write_image
    from fllic.noise import add_noise

    with Image.open(source) as im:
        clean = np.asarray(im.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
    write_image(out, add_noise(clean, sigma, seed=0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.large", description=__doc__)
    p.add_argument("--source", type=Path, default=Path("../shared/data/Kodak24/kodim23.png"), help="clean photograph to enlarge")
    p.add_argument("--size", type=int, nargs=2, default=[6000, 4000], metavar=("WIDTH", "HEIGHT"))
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--tile", type=int, default=768, help="tile side in pixels")
    p.add_argument("--workdir", type=Path, default=Path("fllic-large"))
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    p.add_argument("--child-encode", nargs=2, type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-decode", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_encode is not None:
        print(json.dumps(_child_encode(*args.child_encode, args.sigma, args.tile)))
        return 0
    if args.child_decode is not None:
        print(json.dumps(_child_decode(args.child_decode, args.tile)))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    noisy, coded = args.workdir / "noisy.png", args.workdir / "large.fllic"
    make_scene(args.source, *args.size, args.sigma, noisy)
    common = ["--sigma", str(args.sigma), "--tile", str(args.tile)]
    enc = _run(["--child-encode", str(noisy), str(coded), *common])
    dec = _run(["--child-decode", str(coded), *common])
    w, h = args.size
    mp = w * h / 1e6
    import torch

    lines = [
        f"# Large image: {w}x{h} RGB, sigma {args.sigma:g}, tiles of {args.tile} px", "",
        f"`{command('python -m fllic.bench.large', argv)}`", "",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; peak memory is the process's maximum resident set.", "",
        "| step | seconds | MP/s | peak memory (MB) |", "|---|---:|---:|---:|",
        f"| encode | {enc['seconds']:.1f} | {mp / enc['seconds']:.2f} | {enc['peak_mb']:.0f} |",
        f"| decode | {dec['seconds']:.1f} | {mp / dec['seconds']:.2f} | {dec['peak_mb']:.0f} |", "",
        f"File: {enc['bytes']} bytes, {8 * enc['bytes'] / (w * h):.3f} bpp. "
        f"Decode identical to the encoder's pixels: {'yes' if dec['identical'] else 'NO'}.",
    ]
    emit("\n".join(lines) + "\n", args.out)
    return 0 if dec["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
