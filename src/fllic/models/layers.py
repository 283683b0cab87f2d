"""Building blocks of the FLLIC transforms (Zhang & Wu 2024, Fig. 2).

ResBlock, Down-ResBlock and Up-ResBlock follow the paper's figure: two 3x3
convolutions with a resampling step between them, around a skip connection.
Skips that change resolution are linear (pixel (un)shuffle and a 1x1 conv) so
the network starts close to an invertible linear transform, and each residual
branch starts small: this converges quickly on a CPU budget.
"""

from __future__ import annotations

import torch
from torch import nn

_BRANCH_INIT_GAIN = 0.1


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


def _shrink(conv: nn.Conv2d, gain: float = _BRANCH_INIT_GAIN) -> nn.Conv2d:
    with torch.no_grad():
        conv.weight.mul_(gain)
        conv.bias.zero_()
    return conv


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


class ResBlock(nn.Module):
    """x + conv(act(conv(x))), the paper's ResBlock."""

    def __init__(self, ch: int):
        super().__init__()
        self.branch = nn.Sequential(conv3x3(ch, ch), _act(), _shrink(conv3x3(ch, ch)))

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
    """Doubles the resolution: conv, nearest upsample, conv, plus a linear sub-pixel skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.branch = nn.Sequential(
            conv3x3(cin, cout), _act(), nn.Upsample(scale_factor=2.0, mode="nearest"),
            _shrink(conv3x3(cout, cout)),
        )
        self.skip = nn.Sequential(conv1x1(cin, 4 * cout), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.branch(x)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()
