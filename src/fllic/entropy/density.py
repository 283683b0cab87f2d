"""Differentiable likelihoods used in training, and the discrete tables they become.

Both the Gaussian conditional (for y) and the factorized density (for z) are
evaluated on integer *symbols*: a latent v with step size Δ is coded as
s = round((v - μ) / Δ), and the likelihood of s integrates the density over
the bin [s - 1/2, s + 1/2] (FLLIC's content-adaptive quantization, Sec. 3).
"""

from __future__ import annotations

import math

import torch
from torch import nn

LIKELIHOOD_BOUND = 1e-9
SCALE_MIN = 0.11
SCALE_MAX = 64.0
SCALE_LEVELS = 64


def scale_table() -> torch.Tensor:
    """Log-spaced symbol-domain standard deviations, as in Ballé et al. (2018)."""
    return torch.exp(torch.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


def scale_index(t: torch.Tensor) -> torch.Tensor:
    """Index of the smallest table scale >= t: the grid both coder ends quantize to."""
    step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_LEVELS - 1)
    idx = torch.ceil((torch.log(t.clamp(min=SCALE_MIN)) - math.log(SCALE_MIN)) / step - 1e-4)
    return idx.clamp(0, SCALE_LEVELS - 1).to(torch.int64)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * (0.5 ** 0.5))


def gaussian_likelihood(u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """P(bin around u) under N(0, t^2); uses the lower tail for accuracy."""
    a = (0.5 - u.abs()) / t
    b = (-0.5 - u.abs()) / t
    return (_std_normal_cdf(a) - _std_normal_cdf(b)).clamp(min=LIKELIHOOD_BOUND)


class FactorizedDensity(nn.Module):
    """A learned per-channel density over integer symbols: a mixture of logistics.

    This plays the role of Ballé et al.'s non-parametric factorized prior for
    the hyper-latents z; its CDF is exact, so bin probabilities are exact too.
    """

    def __init__(self, channels: int, mixtures: int = 3):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(channels, mixtures))
        self.loc = nn.Parameter(torch.linspace(-1.0, 1.0, mixtures).repeat(channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(channels, mixtures))

    def cdf(self, s: torch.Tensor) -> torch.Tensor:
        """CDF at s, shaped (N, C, H, W); mixes per channel."""
        w = torch.softmax(self.logits, dim=-1)[None, :, None, None, :]
        loc = self.loc[None, :, None, None, :]
        scale = torch.exp(self.log_scale)[None, :, None, None, :]
        return (w * torch.sigmoid((s.unsqueeze(-1) - loc) / scale)).sum(-1)

    def likelihood(self, s: torch.Tensor) -> torch.Tensor:
        return (self.cdf(s + 0.5) - self.cdf(s - 0.5)).clamp(min=LIKELIHOOD_BOUND)

    @torch.no_grad()
    def channel_pmfs(self, support: int) -> torch.Tensor:
        """Bin probabilities of symbols -support..support for every channel, (C, 2*support+1)."""
        c = self.logits.shape[0]
        s = torch.arange(-support, support + 1, dtype=torch.float64)
        grid = s.view(1, 1, 1, -1).expand(1, c, 1, -1).to(self.loc.dtype)
        return self.likelihood(grid)[0, :, 0, :].double()
