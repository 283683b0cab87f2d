"""python -m fllic.train.narrow: what narrower integers in g_s would cost, before anyone trains for them.

Issue 27's int8 lever. The exact decoder's activations are 16-bit and its weights int16, so one exact
int8 product of a layer takes six (three unsigned 7-bit activation pieces times two signed 8-bit weight
pieces, ``python -m fllic.bench.kernels``); a g_s whose activations and weights were 8-bit would take one.
What that would cost in quality is measured here before any training for it: g_s's convolutions run in
float with their weights rounded to W bits (symmetric, a scale per output channel) and their inputs to A
bits (symmetric, one scale per layer from the largest |activation| on separate calibration images), on ŷ
as the codec quantizes it, against the same g_s unrounded. Post-training rounding is the worst case:
quantization-aware training recovers part of it.

The variants round every convolution of g_s, or only those at its half resolution (its last stage, where most
of the decoder's multiply-adds are: ``fllic.models.layers.NarrowConv2d`` trains these for 8 bits), or those and
the quarter resolution's too (the next stage: 96 channels, 1x1 skip included); and those with power-of-two
steps, for inputs and weights, or for weights alone (``NarrowConv2d``'s grids: its input step is the peak over
127, its weights' steps powers of two relative to it); and those layers with 8-bit inputs alone, one step per
layer or one per input channel (the weights 16-bit, so every sum still stays below 2^24 in float32), or 9 or 10
bits (one float32 product then needs the weights' L1 norm below 2^16 or 2^15), and 10 bits with the weights
rounded under that bound.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from fllic.bench._record import command
from fllic.bench.splits import split
from fllic.codec import _to_tensor
from fllic.imageio import read_image
from fllic.metrics import psnr
from fllic.models.integer import channel_shifts
from fllic.noise import add_noise
from fllic.train.evaluate import load_checkpoint

CALIBRATION_IMAGES = 3  # the development images after --limit: the scales never see the measured ones


def coded_latents(net, noisy: np.ndarray, sigma: float, q: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ŷ, σ, q) as the codec quantizes y: z rounded by its steps, y to μ plus whole steps Δ_y."""
    s, qt = torch.tensor([float(sigma)]), torch.tensor([float(q)])
    with torch.no_grad():
        y = net.analysis(_to_tensor(noisy), s, qt)
        z_hat = torch.round(net.h_a(y) / net.step_z()) * net.step_z()
        p = net.entropy_params(z_hat, s, qt)
        return p.mu + torch.round((y - p.mu) / p.step) * p.step, s, qt


class Narrowed:
    """g_s's convolutions with weights rounded to ``weight_bits`` and inputs to ``act_bits`` (module docstring).
    ``mode``: "calibrate" records each layer's largest |input| and rounds nothing, "off" leaves g_s as it is, "on"
    rounds with the recorded scales. ``pow2``: "inputs", "weights" or "both" take the finest power-of-two step
    that holds their peak instead of the peak over the largest integer. ``per_channel``: each input channel its
    own step (an exact decoder folds the steps into the weights). ``weight_bits`` 0: the weights as the exact
    decoder's 16-bit layers round them (a power of two per output channel), under the L1 bound that keeps every sum
    of ``act_bits`` inputs below 2^24 in float32."""

    def __init__(self, net, act_bits: int, weight_bits: int, layers: str = "all", pow2: str = "",
                 per_channel: bool = False):
        self.convs = stage_convs(net, layers)
        self.act_bits, self.weight_bits, self.peak, self.mode = act_bits, weight_bits, {}, "calibrate"
        self.pow2, self.per_channel = (pow2 in ("inputs", "both"), pow2 in ("weights", "both")), per_channel
        self.weights = {c: c.weight.detach().clone() for c in self.convs}
        for c in self.convs:
            c.register_forward_pre_hook(self._input)

    def _input(self, conv, inputs):
        a = inputs[0]
        if self.mode == "calibrate":
            peak = a.detach().abs().amax(dim=(0, 2, 3), keepdim=True) if self.per_channel else a.detach().abs().amax()
            self.peak[conv] = torch.maximum(self.peak[conv], peak) if conv in self.peak else peak
        if self.mode != "on":
            return None
        return (_rounded(a, self.peak[conv], self.act_bits, self.pow2[0]),)

    def rounding(self, on: bool) -> None:
        """Weights rounded with the inputs (``on``), or g_s as it is; either ends the calibration."""
        self.mode = "on" if on else "off"
        for c, w in self.weights.items():
            peak = w.abs().amax(dim=(1, 2, 3), keepdim=True)
            if not on:
                c.weight.data = w.clone()
            elif self.weight_bits == 0:
                c.weight.data = _l1_rounded(w, (1 << (25 - self.act_bits)) - 1)
            else:
                c.weight.data = _rounded(w, peak, self.weight_bits, self.pow2[1])


def _l1_rounded(w: torch.Tensor, l1_max: int) -> torch.Tensor:
    """w rounded as ``IntConv.quantize`` rounds a layer's weights, for an L1 bound of ``l1_max`` in the integers:
    each output channel on the finest power-of-two grid whose integers' L1 norm stays within it."""
    shift = channel_shifts(w, l1_max).view(-1, 1, 1, 1)
    return torch.round(w * torch.pow(2.0, shift)) * torch.pow(2.0, -shift)


def _rounded(x: torch.Tensor, peak, bits: int, pow2: bool = False) -> torch.Tensor:
    top = 2 ** (bits - 1) - 1
    scale = torch.as_tensor(peak).clamp(min=1e-12) / top
    if pow2:  # the finest power of two that holds the peak
        scale = torch.pow(2.0, torch.ceil(torch.log2(scale)))
    return torch.round(x / scale).clamp(-top - 1, top) * scale


def synthesised(net, y_hat, s, qt, h: int, w: int) -> np.ndarray:
    """g_s's image of ŷ as 8-bit pixels, cropped to the image."""
    with torch.no_grad():
        x = net.synthesis(y_hat, s, qt).clamp(0, 1)[0, :, :h, :w]
    return np.rint(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def stage_convs(net, layers: str) -> list:
    """g_s's convolutions: "all", those at its "half" resolution, or at its half and "quarter" resolutions."""
    g_s = net.g_s
    if layers == "all":
        return [m for m in g_s.modules() if isinstance(m, torch.nn.Conv2d)]
    blocks = list(g_s)[7:-2]  # the ResBlocks after the Up-ResBlock into half resolution, before the last conv
    half = [g_s[6].branch[3], *(c for b in blocks for c in (b.branch[0], b.branch[2])), g_s[-2]]
    if layers == "half":
        return half
    if layers != "quarter":
        raise ValueError(f"layers are all, half or quarter, not {layers!r}")
    up_quarter, block, up_half = g_s[4], g_s[5], g_s[6]  # the Up-ResBlock into 1/4, its ResBlock, and out
    return [up_quarter.branch[3], block.branch[0], block.branch[2], up_half.branch[0], up_half.skip[0]] + half


VARIANTS = ((16, 8, "all", "", False), (8, 16, "all", "", False), (8, 8, "all", "", False), (8, 8, "half", "", False),
            (8, 8, "quarter", "", False), (8, 8, "quarter", "both", False), (8, 8, "quarter", "weights", False),
            (8, 16, "quarter", "", False), (8, 16, "quarter", "", True), (9, 16, "quarter", "", False),
            (10, 16, "quarter", "", False), (10, 0, "quarter", "", False))  # (bits, bits, layers, power of 2, per channel)


def measure(model, files: list[Path], calibration: list[Path], sigmas, qs) -> list[str]:
    """Markdown rows: per σ and q, float g_s's PSNR and each variant's loss against it, means over ``files``."""
    net = model.net
    rows = []
    for sigma in sigmas:
        for q in qs:
            coded = lambda paths, seed: [(read_image(f), seed + i) for i, f in enumerate(paths)]
            measured = [(clean, coded_latents(net, add_noise(clean, sigma, seed=s), sigma, q))
                        for clean, s in coded(files, 0)]
            scaled = [coded_latents(net, add_noise(clean, sigma, seed=s), sigma, q) for clean, s in coded(calibration, 100)]
            losses = []
            for act, wb, layers, pow2, per_channel in VARIANTS:
                narrow = Narrowed(net, act, wb, layers, pow2, per_channel)
                for latents, (clean, _) in zip(scaled, coded(calibration, 100)):
                    synthesised(net, *latents, *clean.shape[:2])
                pairs = []
                for clean, latents in measured:
                    narrow.rounding(False)
                    ref = psnr(synthesised(net, *latents, *clean.shape[:2]), clean)
                    narrow.rounding(True)
                    pairs.append((ref, psnr(synthesised(net, *latents, *clean.shape[:2]), clean)))
                    narrow.rounding(False)
                _remove_hooks(net)
                losses.append(np.mean(pairs, axis=0))
            rows.append(f"| {sigma:g} | {q:g} | {losses[0][0]:.2f} | "
                        + " | ".join(f"{ref - rounded:.2f}" for ref, rounded in losses) + " |")
            print(rows[-1], flush=True)
    return rows


def _remove_hooks(net) -> None:
    for m in net.g_s.modules():
        m._forward_pre_hooks.clear()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.narrow", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a float resume point or training checkpoint")
    p.add_argument("--data", type=Path, default=Path("../shared/data/CBSD68"))
    p.add_argument("--limit", type=int, default=6, help="the first N images of the development half")
    p.add_argument("--sigma", type=float, nargs="+", default=[15, 25])
    p.add_argument("--q", type=float, nargs="+", default=[1.0, 0.25])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="write the table here as markdown")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, step = load_checkpoint(args.checkpoint, args.q)
    model.net.eval()
    dev = split(sorted(args.data.glob("*.png")), "dev")  # never a test image
    files, calibration = dev[: args.limit], dev[args.limit: args.limit + CALIBRATION_IMAGES]
    head = [f"# g_s with narrower integers: post-training rounding, {len(files)} development images of "
            f"{args.data.name}", "", f"`{command('python -m fllic.train.narrow', argv)}`", "",
            "| σ | q | float g_s, dB | loss: 16-bit act., 8-bit weights | 8-bit act., 16-bit weights "
            "| 8-bit both | 8-bit both, half resolution only | 8-bit both, half and quarter resolution "
            "| the same, power-of-two steps | the same, weights' steps alone powers of two "
            "| 8-bit act., 16-bit weights, half and quarter | the same, a step per input channel "
            "| 9-bit act., 16-bit weights, half and quarter | 10-bit act., the same "
            "| 10-bit act., weights under L1 2^15, half and quarter |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(head), flush=True)
    rows = measure(model, files, calibration, args.sigma, args.q)
    if args.out is not None:
        args.out.write_text("\n".join(head + rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
