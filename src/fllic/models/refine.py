"""Encoder-side refinement: latent symbols chosen for the decoder, not by g_a alone.

g_a is amortised: one pass maps any image to its latents, and those are not
the best symbols the decoder could be handed (the amortisation gap). The
decoder reads only symbols, so the encoder is free to search for better ones.
With ẑ fixed, and with it μ, Δ_y and every symbol's scale t, it minimises
over continuous symbols u

    J(u) = λ(q) · mean ‖g_s(μ + Δ_y·u) − e‖² + R(u) / pixels,   λ(q) = λ0 / q²,

the codec's own training loss (train/loop.py) for this one image, and
then rounds u. Here e is the encoder's estimate of the clean image, which is
what the codec was trained to code (the trunk's output; for a model without a
trunk, the input). Nothing here sees a clean pixel, so the weakly supervised
models refine the same way. This is Campos et al., "Content adaptive
optimization for neural image compression" (CVPR workshops 2019), and Yang,
Bamler & Mandt, "Improving inference for neural image compression" (NeurIPS
2020), applied to the symbols of FLLIC's content-adaptive quantizer.

- **g_s is the decoder's own.** :func:`soft_synthesis` runs the integer
  decoder's layers in floating point, with the same integer weights, shifts
  and biases but without their rounding, so the gradient is that of the
  network that will decode the file. Nothing else changes: the decoder, the
  file format, and the stored pixels, which the exact integer decoder computes
  from the rounded symbols as always.
- **Continuous, then rounded.** Optimising continuous u and rounding once at
  the end beat straight-through rounding inside the loop on the held-out
  validation crops: +0.20 against +0.10 dB at σ 15, and at σ 50 the
  straight-through loop spent up to 16 % more bits (``python -m
  fllic.bench.refine``, results/refine-validation.md).
- **Large images** are refined tile by tile, each tile of the latent grid with a
  halo of REFINE_HALO latents: its symbols move with its neighbours' held fixed, against the
  estimate of the tile's own pixels. Memory stays bounded by the tile: μ, Δ_y and t are made a
  window at a time from the integer parameters, and a window of more than CHECKPOINT_PIXELS
  recomputes each g_s layer's activations in the backward pass instead of keeping them (the same
  gradients; a refined 6000x4000 encode in 1.17x the time, results/large_refine_bounded_v8.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from fllic import tiling
from fllic.entropy.density import gaussian_likelihood, scale_table
from fllic.models import integer as I
from fllic.models.int_decoder import PIX_FRAC, STEP_FRAC, IntParams, _const

LEARNING_RATE = 0.03  # Adam, in units of one quantization step
REFINE_HALO = 10  # latents of context around each refined window (more than g_s's receptive field of 8)
CHECKPOINT_PIXELS = 1 << 20  # windows above this many pixels recompute g_s's activations in the backward pass
TRAINED_LAMBDA = 0.04  # λ0 of every shipped model's training (docs/models.md); meta["lmbda"] overrides
_SLOPE = I.LEAKY_MULT / 2**I.LEAKY_SHIFT
_PEAK = 255 << PIX_FRAC


def _conv(conv: I.IntConv, a: torch.Tensor) -> torch.Tensor:
    weight = conv.weight * torch.pow(2.0, -conv.shift.float()).view(-1, 1, 1, 1)
    if isinstance(conv, I.IntNarrowConv):  # the narrow input unrounded (clipped), the output multiplier
        a = (a * (float(conv.in_mult) * 2.0 ** -float(conv.in_shift))).clamp(-I.NARROW_MAX, I.NARROW_MAX)
        weight = weight * conv.mult.float().view(-1, 1, 1, 1)
    return F.conv2d(a, weight, conv.bias.float(), padding=weight.shape[-1] // 2)


def _layer(layer, a: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, I.IntResBlock):
        return a * 2.0**-layer.skip_shift + _conv(layer.conv2, F.leaky_relu(_conv(layer.conv1, a), _SLOPE))
    if isinstance(layer, I.IntUpResBlock):
        branch = F.leaky_relu(_conv(layer.conv_a, a), _SLOPE)
        return F.pixel_shuffle(_conv(layer.skip, a), 2) + _conv(layer.conv_b, F.interpolate(branch, scale_factor=2.0))
    return _conv(layer, a)


def soft_synthesis(decoder, y: torch.Tensor, sigma: float, q: float) -> torch.Tensor:
    """The integer g_s in floating point: pixels (N, 3, H, W) at 2^-PIX_FRAC from y (N, m, h, w) at 2^-e_y.

    Differentiable; it differs from :meth:`IntegerDecoder.synthesis` only by the
    integer layers' rounding (a few hundredths of a level on average).
    """
    n, _, h, w = y.shape
    e_y = decoder.exps["y"]
    maps = [torch.full((n, 1, h, w), float(v), device=y.device)
            for v in (_const(sigma / 50.0, e_y), int(decoder.logq_y[decoder.level(q)]))]
    a = torch.cat([y, *maps], dim=1)
    recompute = torch.is_grad_enabled() and y.requires_grad and 256 * h * w > CHECKPOINT_PIXELS
    for layer in decoder.gs:
        a = checkpoint(_layer, layer, a, use_reentrant=False) if recompute else _layer(layer, a)
    return F.pixel_shuffle(_conv(decoder.gs_out, a), 2).clamp(0, _PEAK)


def refine_symbols(model, x, u: torch.Tensor, p: IntParams, sigma: float, q: float, steps: int,
                   tile: int = tiling.DEFAULT_TILE, progress: bool = False,
                   noise_map: np.ndarray | None = None, lr: float = LEARNING_RATE,
                   straight_through: bool = False) -> torch.Tensor:
    """Continuous symbols u (1, h, w, m), NHWC as ``CodingModel.compress`` computes them, refined.

    ``x`` is the padded noisy image as compress takes it, ``p`` the integer
    coding parameters from ẑ, and ``steps`` the number of Adam steps per tile
    at learning rate ``lr``. Returns float64 symbols for compress to round; the
    caller codes them as usual. ``straight_through`` rounds u inside J with a
    straight-through gradient instead (the alternative that
    ``python -m fllic.bench.refine`` compares).
    """
    u = u.clone()
    _, hl, wl, _ = u.shape
    tiles = list(tiling.windows(hl, wl, max(1, tile // tiling.LATENT), REFINE_HALO))
    with tiling.progress_bar(len(tiles) * steps, "refine", progress, unit="step") as bar:
        for core, win in tiles:
            target = estimate_pixels(model, x, core, sigma, noise_map)
            inner = _inner(core, win)
            refined = _refine_window(_Terms.of(model, p, q, win), _nchw(u[:, win[0] : win[1], win[2] : win[3]]), target,
                                     inner, sigma, q, steps, bar, lr, straight_through)
            u[:, core[0] : core[1], core[2] : core[3]] = refined[:, inner[0] : inner[1], inner[2] : inner[3]]
    return u  # the halo's symbols are written only by their own tile


def loss(model, x, u: torch.Tensor, p: IntParams, sigma: float, q: float, noise_map=None) -> float:
    """J(u) over the whole image for symbols u (1, h, w, m), rounded as they will be coded."""
    _, hl, wl, _ = u.shape
    whole = (0, hl, 0, wl)
    terms = _Terms.of(model, p, q, whole)
    with torch.no_grad():
        return float(_objective(terms, _nchw(torch.round(u)), estimate_pixels(model, x, whole, sigma, noise_map),
                                whole, sigma, q))


@dataclass
class _Terms:
    """What J needs besides u over one window, in g_s's input units (NCHW float): μ, Δ_y, the symbol scale t
    and λ(q)."""

    decoder: object
    mu: torch.Tensor
    step: torch.Tensor
    t: torch.Tensor
    lmbda: float

    @classmethod
    def of(cls, model, p: IntParams, q: float, win) -> "_Terms":
        """The terms of the window ``win`` (rows, then columns, in latents), made from the whole latent's
        integer parameters ``p`` for that window alone: no whole-image float64 copy."""
        e = model.decoder.exps
        cut = lambda a: a[:, win[0] : win[1], win[2] : win[3]]  # noqa: E731
        index = cut(p.index)
        return cls(model.decoder, _nchw(cut(p.mu).double() * 2.0 ** (e["y"] - e["mu"])),
                   _nchw(cut(p.step).double() * 2.0 ** (e["y"] - STEP_FRAC)),
                   _nchw(scale_table().to(index.device)[index.long()]),
                   float(model.meta.get("lmbda", TRAINED_LAMBDA)) / q**2)


def _nchw(a: torch.Tensor) -> torch.Tensor:
    return a.permute(0, 3, 1, 2).float()


def _inner(core, win) -> tuple[int, int, int, int]:
    """The core's latent rows and columns inside its window."""
    return core[0] - win[0], core[1] - win[0], core[2] - win[2], core[3] - win[2]


def estimate_pixels(model, x, core, sigma: float, noise_map=None) -> torch.Tensor:
    """The encoder's estimate e of a latent region's pixels, (1, 3, h, w) at 2^-PIX_FRAC, from a window with a halo.

    ``core`` is (r0, r1, c0, c1) in latents (16 pixels); ``x`` the padded image as compress takes it.
    """
    r0, r1, c0, c1 = (v * tiling.LATENT for v in core)
    height, width = (x.shape[2], x.shape[3]) if isinstance(x, torch.Tensor) else x.shape[:2]
    halo = tiling.ANALYSIS_HALO
    a0, a1, b0, b1 = max(0, r0 - halo), min(height, r1 + halo), max(0, c0 - halo), min(width, c1 + halo)
    device = model.device
    level = tiling.noise_window(noise_map, a0, a1, b0, b1, device)
    with torch.no_grad():
        e = model.net.estimate(tiling.pixel_window(x, a0, a1, b0, b1).to(device),
                               torch.full((1,), float(sigma), device=device), level)
    return e[:, :, r0 - a0 : r1 - a0, c0 - b0 : c1 - b0].clamp(0, 1) * _PEAK


def _objective(terms: _Terms, u: torch.Tensor, target: torch.Tensor, inner, sigma: float, q: float) -> torch.Tensor:
    """J(u) on the inner latents' pixels and symbols of one window (NCHW)."""
    r0, r1, c0, c1 = inner
    s = tiling.LATENT
    x_hat = soft_synthesis(terms.decoder, terms.mu + u * terms.step, sigma, q)[:, :, r0 * s : r1 * s, c0 * s : c1 * s]
    mse = ((x_hat - target) * 2.0**-PIX_FRAC).pow(2).mean()
    bits = -torch.log2(gaussian_likelihood(u[:, :, r0:r1, c0:c1], terms.t[:, :, r0:r1, c0:c1])).sum()
    return terms.lmbda * mse + bits / (target.shape[2] * target.shape[3])


def _refine_window(terms: _Terms, u, target, inner, sigma, q, steps, bar, lr, straight_through) -> torch.Tensor:
    """Adam on J over one window's symbols (NCHW), only the inner ones moving; NHWC float64 out."""
    r0, r1, c0, c1 = inner
    mask = torch.zeros_like(u[:, :1])
    mask[:, :, r0:r1, c0:c1] = 1
    u = u.clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=False)
            coded = u + (torch.round(u) - u).detach() if straight_through else u
            _objective(terms, coded, target, inner, sigma, q).backward()
            u.grad.mul_(mask)  # the halo's symbols belong to other tiles
            opt.step()
            bar.update()
    return u.detach().permute(0, 2, 3, 1).double()
