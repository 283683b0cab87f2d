"""Issue 29's last two capacity levers, as float training trials grown from a trained codec.

- ``finer-latent``: a second latent ŷ2 at 1/8 resolution, coded after ŷ (the paper's hyperprior
  codec, Zhang & Wu 2024 Fig. 2, with one more, finer level). The encoder reads g_a's 1/8 features
  and g_s's 1/8 features of ŷ, so ŷ2 carries what ŷ misses; its Gaussian's μ, σ and step come
  from g_s's 1/8 features, as ŷ's come from h_s; g_s adds a convolution of ŷ2 to its 1/8 features.
- ``mixer``: two attention-free blocks (a depthwise 7x7 convolution, then a pointwise MLP, as in
  ConvNeXt) at g_s's half resolution, where the codec loses the trunk's estimate.

Both start as the trained codec exactly: ŷ2's symbols start at zero (its encoder's last layer
shrunk, μ2 zero) and a zero ŷ2 adds nothing; the mixer's last pointwise layer starts at zero.
They are trials: trained in float, measured in float with hard rounding and the entropy model's
bits (:func:`coded_point`), beside the control measured the same way. Nothing here has an integer
decoder or a file format; a lever that pays would get both.

``python -m fllic.train.trials --checkpoint C [C ...] --data ../shared/data/CBSD68`` prints each
checkpoint's rate and PSNR on development images and the BD-rate of each against the first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fllic.entropy.density import SCALE_MIN
from fllic.models.fllic_net import (
    FLLIC,
    STEP_LOG_RANGE,
    FllicConfig,
    ForwardOutput,
    Likelihoods,
    _cond_maps,
    quantize,
)
from fllic.models.layers import conv1x1, conv3x3

FINER_CHANNELS = 32  # ŷ2's channels at 1/8 resolution: half a value per pixel beside ŷ's 0.75
MIXER_EXPANSION = 4
MIXER_BLOCKS = 2
_SHRINK = 0.01  # the finer encoder's last layer at init: |y2| far below half a step, so ŷ2 starts at zero
INIT_LOG_STEP_Y2 = float(np.log(0.05))
INIT_LOG_SIGMA_Y2 = float(np.log(5e-4))  # σ2 / step2 below SCALE_MIN at every q ≥ 0.1: a zero ŷ2 starts at ~0 bits


GS_EIGHTH = 4  # g_s's layers up to its 1/8-resolution features: conv, ResBlock, Up-ResBlock, ResBlock


def _ga_split(config: FllicConfig) -> int:
    """g_a's layers up to its 1/8-resolution features: conv, its ResBlocks, Down, Res, Down, Res."""
    return config.ga_blocks + 5


class FinerLatent(nn.Module):
    """ŷ2's encoder, entropy parameters and injection into g_s, at 1/8 resolution."""

    def __init__(self, c: FllicConfig, k: int = FINER_CHANNELS):
        super().__init__()
        self.a = nn.Sequential(conv3x3(2 * c.n3, c.n3), nn.LeakyReLU(0.1, inplace=True), conv3x3(c.n3, k))
        self.params = conv3x3(c.n3, 3 * k)
        self.inject = conv3x3(k, c.n3)
        with torch.no_grad():
            self.a[-1].weight.mul_(_SHRINK)
            self.a[-1].bias.zero_()
            self.params.weight.zero_()
            bias = self.params.bias.view(3, k)
            bias[0].zero_()
            bias[1].fill_(INIT_LOG_SIGMA_Y2)
            bias[2].fill_(INIT_LOG_STEP_Y2)
            self.inject.weight.mul_(0.1)  # not zero: ŷ2's first symbols need a gradient through it
            self.inject.bias.zero_()


class FinerLatentFLLIC(FLLIC):
    """A second latent ŷ2 at 1/8 resolution (issue 29: "a second latent at a finer scale")."""

    new_prefixes = ("finer.",)

    def __init__(self, config: FllicConfig = FllicConfig()):
        super().__init__(config)
        self.finer = FinerLatent(config)

    def forward_from_estimate(self, x_est, sigma, q, hard: bool = False) -> ForwardOutput:
        a, s = _ga_split(self.config), GS_EIGHTH
        f8 = self._transform(self.g_a[:a], _cond_maps(self.g_a_in(x_est - 0.5), sigma, q))
        y = self._transform(self.g_a[a:], f8)
        z_hat, z_lik = self.hyper(y, hard)
        p = self.entropy_params(z_hat, sigma, q)
        y_hat, y_lik = quantize(y, p.mu, p.step, p.t, hard)
        s8 = self._transform(self.g_s[:s], _cond_maps(y_hat, sigma, q))
        y2 = self._transform(self.finer.a, torch.cat([f8, s8], dim=1))
        mu2, log_sigma2, log_step2 = self._transform(self.finer.params, s8).chunk(3, dim=1)
        step2 = torch.exp(log_step2.clamp(*STEP_LOG_RANGE)) * q.view(-1, 1, 1, 1)
        t2 = (torch.exp(log_sigma2.clamp(*STEP_LOG_RANGE)) / step2).clamp(min=SCALE_MIN)
        y2_hat, y2_lik = quantize(y2, mu2, step2, t2, hard)
        x_hat = self._transform(self.g_s[s:], s8 + self._transform(self.finer.inject, y2_hat)) + 0.5
        # ŷ2's bits ride with ẑ's: bits() sums every likelihood of both fields.
        z_all = torch.cat([z_lik.flatten(1), y2_lik.flatten(1)], dim=1)
        return ForwardOutput(x_hat=x_hat, likelihoods=Likelihoods(y=y_lik, z=z_all), y_hat=y_hat, z_hat=z_hat)


class MixerBlock(nn.Module):
    """x + pw2(gelu(pw1(dw7(x)))): an attention-free block (ConvNeXt's, without its normalisation)."""

    def __init__(self, ch: int, expansion: int = MIXER_EXPANSION):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(ch, ch, 7, padding=3, groups=ch), conv1x1(ch, expansion * ch),
                                    nn.GELU(), conv1x1(expansion * ch, ch))
        with torch.no_grad():
            self.branch[-1].weight.zero_()
            self.branch[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class MixerFLLIC(FLLIC):
    """Attention-free blocks at g_s's half resolution (issue 29: "attention-free blocks that run fast on CPUs")."""

    new_prefixes = ("mixer.",)

    def __init__(self, config: FllicConfig = FllicConfig()):
        super().__init__(config)
        self.mixer = nn.Sequential(*(MixerBlock(config.gs_width) for _ in range(MIXER_BLOCKS)))

    def synthesis(self, y_hat, sigma, q):
        head = len(self.g_s) - 2 - self.config.gs_blocks  # up to g_s's Up-ResBlock into half resolution
        h = self._transform(self.g_s[:head], _cond_maps(y_hat, sigma, q))
        return self._transform(self.g_s[head:], self._transform(self.mixer, h)) + 0.5


TRIALS = {"control": FLLIC, "finer-latent": FinerLatentFLLIC, "mixer": MixerFLLIC}


def build(trial: str, config: FllicConfig) -> FLLIC:
    if trial not in TRIALS:
        raise ValueError(f"no trial {trial!r}: one of {', '.join(TRIALS)}")
    return TRIALS[trial](config)


# -- measuring ------------------------------------------------------------------------
def load_trial(path: Path) -> FLLIC:
    """A trial network from a training checkpoint (its config and ``trial``; a plain run is the control)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    config = dict(state["config"])
    if config.get("trunk") is not None:
        config["trunk"] = tuple(config["trunk"])
    net = build(state.get("trial") or "control", FllicConfig(**config))
    net.load_state_dict(state["model"])
    return net.eval()


@torch.no_grad()
def coded_point(net: FLLIC, noisy: np.ndarray, clean: np.ndarray, sigma: float, q: float) -> tuple[float, float]:
    """(bpp, PSNR) of one image: hard-rounded symbols, their bits under the entropy model, g_s's pixels."""
    from fllic.codec import _to_tensor
    from fllic.metrics import psnr

    x = _to_tensor(noisy)
    s, qt = torch.tensor([float(sigma)]), torch.tensor([float(q)])
    out = net.forward_from_estimate(net.estimate(x, s).float().clamp(0, 1), s, qt, hard=True)
    bits = sum(float(-torch.log2(lik).sum()) for lik in (out.likelihoods.y, out.likelihoods.z))
    h, w = clean.shape[:2]
    pixels = np.rint(out.x_hat.clamp(0, 1)[0].permute(1, 2, 0).numpy()[:h, :w] * 255.0)
    if clean.ndim == 2:  # a grey image decodes to its channels' mean
        pixels = np.rint(pixels.mean(axis=2))
    return bits / (h * w), psnr(pixels.astype(np.uint8), clean)


def main(argv: list[str] | None = None) -> int:
    from fllic.bench.bd import BDError, bd_rate
    from fllic.bench.splits import split
    from fllic.imageio import read_image
    from fllic.noise import add_noise
    from fllic.precision import bf16_native

    p = argparse.ArgumentParser(prog="python -m fllic.train.trials", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, nargs="+", required=True, help="the first is the reference (the control)")
    p.add_argument("--data", type=Path, default=Path("../shared/data/CBSD68"))
    p.add_argument("--limit", type=int, default=6, help="the first N images of the development half")
    p.add_argument("--sigma", type=float, nargs="+", default=[15, 25])
    p.add_argument("--q", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = split(sorted(args.data.glob("*.png")), "dev")[: args.limit]  # never a test image
    nets = [load_trial(c) for c in args.checkpoint]
    for net in nets:
        if net.trunk is not None:
            net.trunk.bf16 = bf16_native()
    print(f"# {len(files)} development images of {args.data}, seeded AWGN; bpp from the entropy model's bits, "
          "hard-rounded symbols, float g_s")
    names = [c.parent.name if c.name == "checkpoint.pt" else c.stem for c in args.checkpoint]
    print("| σ | q | " + " | ".join(f"{name}: bpp, PSNR" for name in names) + " |")
    print("|---:|---:|" + "---|" * len(nets))
    for sigma in args.sigma:
        curves = [[] for _ in nets]
        for q in args.q:
            cells = []
            for net, curve in zip(nets, curves):
                points = []
                for i, f in enumerate(files):
                    clean = read_image(f)
                    points.append(coded_point(net, add_noise(clean, sigma, seed=i), clean, sigma, q))
                bpp, db = np.mean(points, axis=0)
                curve.append((bpp, db))
                cells.append(f"{bpp:.3f}, {db:.2f} dB")
            print(f"| {sigma:g} | {q:g} | " + " | ".join(cells) + " |", flush=True)
        ref = np.array(curves[0])
        for name, curve in zip(names[1:], curves[1:]):
            cur = np.array(curve)
            try:
                bd = f"{bd_rate(ref[:, 0], ref[:, 1], cur[:, 0], cur[:, 1]):+.2f} %"
            except BDError as e:
                bd = f"none ({e})"
            print(f"σ {sigma:g}: {name} against {names[0]}: BD-rate {bd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
