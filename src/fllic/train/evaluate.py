"""python -m fllic.train.evaluate: real-byte rate and PSNR of a checkpoint on a dev set.

Used to follow training; the benchmark of record is ``fllic bench``. For each
sigma and q it gives the coded point (bpp from the file's bytes, PSNR), the
model's own estimate g_s(g_a(x)) with ŷ unquantized, and for a v2 model the
trunk's estimate, the input the codec codes: which of the three limits the
PSNR (remote-source coding: estimator, transform, quantization). ``--fit-latents``
adds the estimate with ŷ fitted to the trunk's estimate: what g_s can copy at
best, so the transform's share splits into g_a's and g_s's.
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
from fllic.precision import bf16_native


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
        net.trunk.bf16 = bf16_native()
    return finalize(net, {"id": "checkpoint", "quality_scales": list(quality_scales)}), facts.get("train_steps", "?")


def load_behind(path: Path, base_id: str) -> tuple[object, object]:
    """A CodingModel of the checkpoint's g_a and h_a behind the shipped model ``base_id``'s trunk, decoder part
    and coding tables (what an ``--encoder-only`` run trains: its files decode with that model's decoder), and
    its step."""
    import copy

    from dataclasses import replace

    from fllic.models.fllic_net import FLLIC, CodingModel
    from fllic.models.registry import load
    from fllic.train.export import _float_weights

    config, weights, facts = _float_weights(path)
    base = load(base_id)
    net = copy.deepcopy(base.net)
    ga_blocks = int((config or {}).get("ga_blocks", net.config.ga_blocks))
    if ga_blocks != net.config.ga_blocks:  # a deeper g_a (fllic.train.widen --ga-blocks)
        net.config = replace(net.config, ga_blocks=ga_blocks)
        net.g_a = FLLIC(replace(net.config, trunk=None)).g_a
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


FIT_LR = 1e-2  # Adam on y, cosine to zero over the steps; y's values are a few tenths


def fitted_estimate(model, noisy: np.ndarray, sigma: float, q: float, steps: int) -> np.ndarray:
    """The own estimate with ŷ fitted: y, from g_a's, moved by ``steps`` Adam steps through the float g_s to the
    trunk's estimate (MSE), then decoded through the integer g_s unquantized. Against the plain own estimate it
    tells g_a's share of the transform's loss (latents g_a did not find) from g_s's (no latent decodes closer)."""
    from fllic.codec import _pixels, _to_tensor
    from fllic.models.integer import to_nhwc

    net = model.net
    x, s, qt = _to_tensor(noisy), torch.tensor([float(np.float32(sigma))]), torch.tensor([float(np.float32(q))])
    with torch.no_grad():
        est = net.estimate(x, s)
        y = net.analysis_of_estimate(est, s, qt).requires_grad_(True)
    opt = torch.optim.Adam([y], lr=FIT_LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(net.synthesis(y, s, qt), est)
        (y.grad,) = torch.autograd.grad(loss, y)  # y's gradient only: the networks' own stay untouched
        opt.step()
        sched.step()
    out = model.decoder.synthesis_from_y(to_nhwc(y.detach()).double(), float(sigma), float(q))
    return _pixels(out, noisy.shape[0], noisy.shape[1], 1 if noisy.ndim == 2 else 3)


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
    p.add_argument("--fit-latents", type=int, default=0, metavar="STEPS",
                   help="also the own estimate with ŷ fitted to the trunk's estimate by STEPS Adam steps through g_s")
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
    fitted = f" own estimate, ŷ fitted ({args.fit_latents} steps) |" if args.fit_latents else ""
    print(f"| σ | q | bpp (file bytes) | PSNR coded | own estimate (ŷ unquantized) |{fitted} trunk estimate | noisy |")
    print("|---:|---:|---:|---:|---:|" + "---:|" * (3 if args.fit_latents else 2))
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
                fit = [psnr(fitted_estimate(model, noisy, sigma, q, args.fit_latents), clean)] if args.fit_latents else []
                rows.append((8 * len(res.data) / (h * w), psnr(res.pixels, clean), psnr(own, clean), *fit,
                             psnr(trunk, clean) if trunk is not None else np.nan, psnr(noisy, clean)))
            r = np.array(rows).mean(0)
            cells = [f"{r[0]:.3f}"] + ["–" if np.isnan(v) else f"{v:.2f}" for v in r[1:]]
            print(f"| {sigma:g} | {q:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
