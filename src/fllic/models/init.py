"""Start FLLIC as a wavelet transform coder, so training begins from a working codec.

The linear skips of g_a are set to an orthonormal Haar wavelet-packet transform
that keeps, at every Down-ResBlock, the sub-bands with the most expected energy;
the skips of g_s are set to its transpose, and every residual branch starts at
zero. At step 0 the network is therefore a truncated orthonormal transform and
its inverse: a plain transform coder that training then turns into a denoiser.
"""

from __future__ import annotations

import torch
from torch import nn

# Expected energy gain of each Haar band (LL, LH, HL, HH) on natural images: a proxy
# used only to choose which sub-bands the truncated transform keeps.
_BAND_GAIN = (4.0, 0.1, 0.1, 0.03)
_HAAR = 0.5 * torch.tensor(
    [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]
)


def _haar_rows(energy: torch.Tensor, cout: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (cout, 4·cin) over pixel-unshuffled channels, and the energies they keep."""
    cin = energy.numel()
    rows, gains = [], []
    for c in range(cin):
        for b in range(4):
            row = torch.zeros(4 * cin)
            row[4 * c : 4 * c + 4] = _HAAR[b]
            rows.append(row)
            gains.append(float(energy[c]) * _BAND_GAIN[b])
    order = sorted(range(len(rows)), key=lambda k: -gains[k])[:cout]
    weight = torch.zeros(cout, 4 * cin)
    kept = torch.zeros(cout)
    for o, k in enumerate(order):
        weight[o], kept[o] = rows[k], gains[k]
    return weight, kept


def _set_center(conv: nn.Conv2d, matrix: torch.Tensor) -> None:
    """A 3x3 conv that applies ``matrix`` (out × in, possibly smaller) at its centre tap."""
    conv.weight.zero_()
    conv.bias.zero_()
    o, i = matrix.shape
    conv.weight[:o, :i, 1, 1] = matrix


def _zero_last(branch: nn.Sequential) -> None:
    last = [m for m in branch if isinstance(m, nn.Conv2d)][-1]
    last.weight.zero_()
    last.bias.zero_()


@torch.no_grad()
def haar_init_(net) -> None:
    """Initialise ``net`` (an FLLIC) in place; see the module docstring."""
    from fllic.models.layers import DownResBlock, ResBlock, UpResBlock

    for block in list(net.g_a) + list(net.g_s) + list(net.h_a) + list(net.h_s):
        if isinstance(block, (ResBlock, DownResBlock, UpResBlock)):
            _zero_last(block.branch)

    # g_a: the first conv takes the 3 colour planes, pixel-unshuffled by 2 (12 channels).
    first = net.g_a[0]
    w0, energy = _haar_rows(torch.ones(3), min(12, first.out_channels))
    _set_center(first, w0)
    energy = torch.cat([energy, torch.zeros(first.out_channels - energy.numel())])
    downs = [b for b in net.g_a if isinstance(b, DownResBlock)]
    mats = []
    for down in downs:
        conv = down.skip[1]
        w, kept = _haar_rows(energy, conv.out_channels)
        conv.weight.copy_(w.view(*w.shape, 1, 1))
        conv.bias.zero_()
        mats.append(w)
        energy = kept

    # g_s mirrors g_a: identity in, transposed skips on the way up, transposed first conv out.
    _set_center(net.g_s[0], torch.eye(net.g_s[0].out_channels))
    ups = [b for b in net.g_s if isinstance(b, UpResBlock)]
    for up, w in zip(ups, reversed(mats)):
        conv = up.skip[0]  # a g_s wider than g_a at half resolution (gs_n1): its extra channels start at zero
        conv.weight.zero_()
        conv.weight[: w.shape[1], :, 0, 0] = w.t()
        conv.bias.zero_()
    _set_center(net.g_s[-2], w0.t())
