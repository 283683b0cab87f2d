"""python -m fllic.train.evaluate: real-byte rate and PSNR of a checkpoint on a dev set.

Used to follow training; the benchmark of record is ``fllic bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fllic.codec import decode, encode_detailed
from fllic.imageio import read_image
from fllic.metrics import psnr
from fllic.models.fllic_net import FLLIC, FllicConfig, finalize
from fllic.noise import add_noise


def load_checkpoint(path: Path, quality_scales) -> object:
    state = torch.load(path, map_location="cpu")
    net = FLLIC(FllicConfig(**state["config"]))
    net.load_state_dict(state["model"])
    return finalize(net, {"id": "checkpoint", "quality_scales": list(quality_scales)}), state["step"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.evaluate", description=__doc__)
    p.add_argument("--checkpoint", type=Path, default=Path.home() / ".cache" / "fllic" / "train" / "checkpoint.pt")
    p.add_argument("--data", type=Path, default=Path("../shared/data/CBSD68"))
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--sigma", type=float, nargs="+", default=[15, 25, 50])
    p.add_argument("--q", type=float, nargs="+", default=[1.0])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, step = load_checkpoint(args.checkpoint, args.q)
    files = sorted(args.data.glob("*.png"))[: args.limit]
    print(f"checkpoint step {step}, {len(files)} images from {args.data}")
    for sigma in args.sigma:
        for level, q in enumerate(args.q, start=1):
            rows = []
            t0 = time.time()
            for i, f in enumerate(files):
                clean = read_image(f)
                noisy = add_noise(clean, sigma, seed=i)
                res = encode_detailed(noisy, sigma=sigma, model=model, quality=level)
                if not np.array_equal(decode(res.data, model=model), res.pixels):
                    raise SystemExit("decode mismatch")
                h, w = clean.shape[:2]
                rows.append((8 * len(res.data) / (h * w), psnr(res.pixels, clean), psnr(noisy, clean)))
            r = np.array(rows).mean(0)
            print(f"sigma {sigma:4.0f} q {q:4.2f}: {r[0]:.3f} bpp, PSNR {r[1]:.2f} dB (noisy {r[2]:.2f}), {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
