"""Building blocks of the FLLIC transforms (Zhang & Wu 2024, Fig. 2).

ResBlock, Down-ResBlock and Up-ResBlock follow the paper's figure: two 3x3
convolutions with a resampling step between them, around a skip connection.
Skips that change resolution are linear (pixel (un)shuffle and a 1x1 conv) so
the network starts close to an invertible linear transform, and each residual
branch starts small: this converges quickly on a CPU budget.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fllic.decoder.integer import NARROW_L1, NARROW_MAX  # a narrow layer's input and weight bounds (the format's)

_BRANCH_INIT_GAIN = 0.1
NARROW_PEAK_MOMENTUM = 0.99  # training: the input's peak follows the batches' largest |value|


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


def round_to_step(x: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """x on the grid k · step, k an integer in [-NARROW_MAX, NARROW_MAX], straight-through inside the range."""
    return round_ste(x / step).clamp(-NARROW_MAX, NARROW_MAX) * step


class NarrowConv2d(nn.Conv2d):
    """A convolution (3x3 or 1x1) trained for the exact decoder's narrow layers: its input rounded to 10 bits, its
    weights to integers under an L1 bound, both in the forward pass.

    Issue 27's lever. The input is rounded to k · s with |k| <= NARROW_MAX = 511 and s = ``input_peak`` / 511,
    the peak following the training batches' largest |input|; each output channel's weights to j · 2^-t[c] / s,
    on the finest such grid whose integers' L1 norm stays within NARROW_L1 = 2^15 - 1, straight-through. So
    every sum of products j · k is an integer below 511 · 2^15 < 2^24, one exact float32 convolution in the
    decoder (:class:`fllic.models.integer.IntNarrowConv`), where a 16-bit layer takes two; every product has
    the scale 2^-t[c] whatever s is, so the decoder rescales each output channel by a shift, and s is one 8-bit
    multiplier on the layer's input. Rounding g_s's half and quarter resolutions so before any training costs
    0.01-0.02 dB, 8-bit inputs and weights 0.12-0.22 dB (results/int8-narrow.md).
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        self.register_buffer("input_peak", torch.zeros(()))  # 0: not yet seen (the first input sets it)

    def input_step(self) -> torch.Tensor:
        return self.input_peak.clamp(min=1e-12) / NARROW_MAX

    def weight_exponents(self, step: torch.Tensor) -> torch.Tensor:
        """t[c], (Cout, 1, 1, 1): the largest t with sum|w[c]| · step · 2^t <= NARROW_L1 - taps / 2, so that the
        rounded integers' L1 norm (at most taps / 2 more) stays within NARROW_L1."""
        w = self.weight.detach().double()
        l1 = w.abs().sum(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)
        room = NARROW_L1 - w[0].numel() / 2
        return torch.floor(torch.log2(room / (l1 * float(step))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or float(self.input_peak) == 0.0:  # an untrained layer: its first input sets the range
            self._track_peak(x)
        step = self.input_step()
        w_step = (torch.pow(2.0, -self.weight_exponents(step)) / float(step)).float()
        x = round_to_step(x.float(), step)
        return F.conv2d(x, round_ste(self.weight / w_step) * w_step, self.bias, padding=self.padding)

    @torch.no_grad()
    def _track_peak(self, x: torch.Tensor) -> None:
        peak = x.detach().abs().amax().float()
        if float(self.input_peak) == 0.0:
            self.input_peak.copy_(peak)
        else:
            self.input_peak.mul_(NARROW_PEAK_MOMENTUM).add_(peak, alpha=1 - NARROW_PEAK_MOMENTUM)


def _conv3x3(cin: int, cout: int, narrow: bool) -> nn.Conv2d:
    return NarrowConv2d(cin, cout) if narrow else conv3x3(cin, cout)


def _shrink(conv: nn.Conv2d, gain: float = _BRANCH_INIT_GAIN) -> nn.Conv2d:
    with torch.no_grad():
        conv.weight.mul_(gain)
        conv.bias.zero_()
    return conv


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


class ResBlock(nn.Module):
    """x + conv(act(conv(x))), the paper's ResBlock; ``narrow``: both convolutions narrow (NarrowConv2d)."""

    def __init__(self, ch: int, narrow: bool = False):
        super().__init__()
        self.branch = nn.Sequential(_conv3x3(ch, ch, narrow), _act(), _shrink(_conv3x3(ch, ch, narrow)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class DownResBlock(nn.Module):
    """Halves the resolution: conv, stride-2 downsample, conv, plus a linear skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.branch = nn.Sequential(
            conv3x3(cin, cout, stride=2), _act(), _shrink(conv3x3(cout, cout))
        )
        self.skip = nn.Sequential(nn.PixelUnshuffle(2), conv1x1(4 * cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.branch(x)


class UpResBlock(nn.Module):
    """Doubles the resolution: conv, nearest upsample, conv, plus a linear sub-pixel skip. Narrow convolutions
    (NarrowConv2d): with ``narrow_in`` those at the input's resolution (the first and the skip), with
    ``narrow_out`` the one at the doubled resolution."""

    def __init__(self, cin: int, cout: int, narrow_in: bool = False, narrow_out: bool = False):
        super().__init__()
        self.branch = nn.Sequential(
            _conv3x3(cin, cout, narrow_in), _act(), nn.Upsample(scale_factor=2.0, mode="nearest"),
            _shrink(_conv3x3(cout, cout, narrow_out)),
        )
        skip = NarrowConv2d(cin, 4 * cout, kernel=1) if narrow_in else conv1x1(cin, 4 * cout)
        self.skip = nn.Sequential(skip, nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.branch(x)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()
