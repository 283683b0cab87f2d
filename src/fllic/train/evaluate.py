"""python -m fllic.train.evaluate: real-byte rate and PSNR of a checkpoint on a dev set.

Used to follow training; the benchmark of record is ``fllic bench``. For each
sigma and q it gives the coded point (bpp from the file's bytes, PSNR), the
model's own estimate g_s(g_a(x)) with ŷ unquantized, and for a v2 model the
trunk's estimate, the input the codec codes: which of the three limits the
PSNR (remote-source coding: estimator, transform, quantization).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fllic.baselines.denoisers import trunk_pixels
from fllic.bench.splits import split
from fllic.codec import decode, encode_detailed
from fllic.imageio import read_image
from fllic.metrics import psnr
from fllic.models.fllic_net import FLLIC, FllicConfig, finalize
from fllic.noise import add_noise


def load_checkpoint(path: Path, quality_scales, trunk: Path | None = None) -> object:
    """A CodingModel (synthetic calibration) from a training checkpoint or a float resume point, and its step;
    ``trunk`` replaces its denoising trunk (as ``export --trunk``)."""
    from fllic.train.export import _float_weights, _with_trunk

    config, weights, facts = _float_weights(path)
    if trunk is not None:
        config, weights = _with_trunk(config, weights, trunk)
    if config.get("trunk") is not None:
        config = {**config, "trunk": tuple(config["trunk"])}
    net = FLLIC(FllicConfig(**config))
    net.load_state_dict({k: v.float() for k, v in weights.items()})
    if net.trunk is not None:  # bf16 where the CPU computes it natively (AVX-512 BF16, AMX); emulated, it crawls
        net.trunk.bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return finalize(net, {"id": "checkpoint", "quality_scales": list(quality_scales)}), facts.get("train_steps", "?")


def load_behind(path: Path, base_id: str) -> tuple[object, object]:
    """A CodingModel of the checkpoint's g_a and h_a behind the shipped model ``base_id``'s trunk, decoder part
    and coding tables (what an ``--encoder-only`` run trains: its files decode with that model's decoder), and
    its step."""
    import copy

    from fllic.models.fllic_net import CodingModel
    from fllic.models.registry import load
    from fllic.train.export import _float_weights

    _, weights, facts = _float_weights(path)
    base = load(base_id)
    net = copy.deepcopy(base.net)
    net.g_a.load_state_dict({k[4:]: v.float() for k, v in weights.items() if k.startswith("g_a.")})
    net.h_a.load_state_dict({k[4:]: v.float() for k, v in weights.items() if k.startswith("h_a.")})
    meta = {**base.meta, "id": "checkpoint", "decoder_id": base.decoder_id}
    return CodingModel(net.eval(), base.tables, base.decoder, meta), facts.get("train_steps", "?")


def _estimates(model, noisy: np.ndarray, sigma: float, q: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(own estimate with ŷ unquantized, trunk estimate or None) as uint8 images."""
    from fllic.codec import _pixels, _to_tensor

    h, w = noisy.shape[:2]
    c = 1 if noisy.ndim == 2 else 3
    x = _to_tensor(noisy)
    own = _pixels(model.estimate(x, float(np.float32(sigma)), float(np.float32(q))), h, w, c)
    if model.net.trunk is None:
        return own, None
    return own, trunk_pixels(model.net, noisy, float(sigma))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.evaluate", description=__doc__)
    p.add_argument("--checkpoint", type=Path, default=Path.home() / ".cache" / "fllic" / "train" / "checkpoint.pt")
    p.add_argument("--data", type=Path, default=Path("../shared/data/CBSD68"))
    p.add_argument("--limit", type=int, default=6, help="the first N images of the development half")
    p.add_argument("--sigma", type=float, nargs="+", default=[15, 25, 50])
    p.add_argument("--q", type=float, nargs="+", default=[1.0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--trunk", type=Path, default=None, help="replace the checkpoint's denoising trunk with this one")
    p.add_argument("--behind", default=None,
                   help="a shipped model id: the checkpoint's g_a and h_a behind that model's trunk, decoder part and "
                        "coding tables (an --encoder-only run), coded at its levels --levels")
    p.add_argument("--levels", type=int, nargs="+", default=[5], help="with --behind: the model's quality levels")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.behind:
        model, step = load_behind(args.checkpoint, args.behind)
        args.q = [float(np.float32(model.meta["quality_scales"][level - 1])) for level in args.levels]
    else:
        model, step = load_checkpoint(args.checkpoint, args.q, args.trunk)
        args.levels = list(range(1, len(args.q) + 1))
    files = split(sorted(args.data.glob("*.png")), "dev")[: args.limit]  # never a test image
    t_start = time.time()
    print(f"# {args.checkpoint}: step {step}, {len(files)} images from {args.data}, seeded AWGN")
    print("| σ | q | bpp (file bytes) | PSNR coded | own estimate (ŷ unquantized) | trunk estimate | noisy |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for sigma in args.sigma:
        for level, q in zip(args.levels, args.q):
            rows = []
            for i, f in enumerate(files):
                clean = read_image(f)
                noisy = add_noise(clean, sigma, seed=i)
                res = encode_detailed(noisy, sigma=sigma, model=model, quality=level)
                if not np.array_equal(decode(res.data, model=model), res.pixels):
                    raise SystemExit("decode mismatch")
                h, w = clean.shape[:2]
                own, trunk = _estimates(model, noisy, sigma, q)
                rows.append((8 * len(res.data) / (h * w), psnr(res.pixels, clean), psnr(own, clean),
                             psnr(trunk, clean) if trunk is not None else np.nan, psnr(noisy, clean)))
            r = np.array(rows).mean(0)
            trunk = "–" if np.isnan(r[3]) else f"{r[3]:.2f}"
            print(f"| {sigma:g} | {q:g} | {r[0]:.3f} | {r[1]:.2f} | {r[2]:.2f} | {trunk} | {r[4]:.2f} |", flush=True)
    print(f"\n({time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
