"""The denoising trunk: the encoder-side estimator of the clean image.

Remote-source coding (Dobrushin & Tsybakov 1962; Wolf & Ziv 1970) splits the
best coder of a noisy observation into an MMSE estimate followed by a coder of
that estimate. The trunk is the estimate: a residual U-Net in the style of
DRUNet, sized for a 2-core CPU, that predicts the noise and subtracts it. It
runs only in the encoder, where the decoder never pays for it (the FLLIC
paper's "lower compute" claim, Zhang & Wu 2024, Sec. 1).

Data flow (resolutions relative to the image)::

    x, noise map ─ unshuffle 2 ─ head ─ E0 (1/2) ─ down ─ E1 (1/4) ─ down ─ B (1/8)
                                          │                 │                 │
                                          └── + D0 (1/2) ── up ─ + D1 (1/4) ─ up
                                               │
                                             tail ─ shuffle 2 ─> noise estimate;  x_est = x - noise

The noise level enters as a per-pixel map (8-bit units / 50), so the same
trunk serves white noise (a constant map) and signal-dependent noise.

Correlated noise (demosaicing, a camera's JPEG) keeps power at low spatial
frequencies that a trunk trained on white noise leaves in. :func:`two_scale`
runs the trunk a second time on the image averaged over 2x2 pixels, where
that noise is finer-grained, and takes the estimate's coarse band from there
(the multiscale idea of Lebrun, Colom & Morel's Noise Clinic, 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

SIGMA_NORM = 50.0


@dataclass(frozen=True)
class TrunkConfig:
    channels: tuple[int, int, int] = (64, 128, 192)
    blocks: int = 2  # residual blocks per stage
    kind_input: bool = False  # a second map channel: 1 where the noise is correlated (camera, JPEG), 0 for white

    @classmethod
    def tiny(cls) -> "TrunkConfig":
        return cls(channels=(8, 8, 8), blocks=1)


class _Res(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 3, padding=1)
        )
        nn.init.zeros_(self.branch[2].weight)
        nn.init.zeros_(self.branch[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def _stage(ch: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[_Res(ch) for _ in range(n)])


class DenoisingTrunk(nn.Module):
    """x_est = x - f(x, noise map): a plain denoiser with its own ``forward``."""

    downsampling_factor = 8  # inputs are padded to a multiple of this

    def __init__(self, config: TrunkConfig = TrunkConfig()):
        super().__init__()
        self.config = config
        c0, c1, c2 = config.channels
        n = config.blocks
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
        self.head = nn.Conv2d(12 + 1 + config.kind_input, c0, 3, padding=1)
        self.e0, self.e1, self.bottom = _stage(c0, n), _stage(c1, n), _stage(c2, n)
        self.down0, self.down1 = nn.Conv2d(c0, c1, 2, stride=2), nn.Conv2d(c1, c2, 2, stride=2)
        self.up1, self.up0 = nn.ConvTranspose2d(c2, c1, 2, stride=2), nn.ConvTranspose2d(c1, c0, 2, stride=2)
        self.d1, self.d0 = _stage(c1, n), _stage(c0, n)
        self.tail = nn.Conv2d(c0, 12, 3, padding=1)
        self.bf16 = False  # run the convolutions under bf16 autocast (CPU training speed)

    def forward(self, x: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` (N, 3, H, W) in [0, 1], H and W divisible by 8.

        ``noise_map`` is the noise std in 8-bit units, (N,) for white noise or
        (N, 1, H, W) per pixel, optionally with a second channel (N, 2, H, W)
        that is 1 where the noise is correlated (read by ``kind_input`` trunks;
        white when absent). Returns the estimate, in [0, 1] before clipping.
        """
        if self.bf16 and x.device.type == "cpu":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return x - self._noise(x, noise_map).float()
        return x - self._noise(x, noise_map)

    def _noise(self, x: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if noise_map.dim() == 1:
            noise_map = noise_map.view(n, 1, 1, 1).expand(n, 1, h, w)
        maps = nn.functional.avg_pool2d(noise_map.to(x.dtype), 2)
        inputs = [self.unshuffle(x - 0.5), maps[:, :1] / SIGMA_NORM]
        if self.config.kind_input:
            inputs.append(maps[:, 1:2] if maps.shape[1] > 1 else torch.zeros_like(maps[:, :1]))
        f0 = self.e0(self.head(torch.cat(inputs, dim=1)))
        f1 = self.e1(self.down0(f0))
        f2 = self.bottom(self.down1(f1))
        g1 = self.d1(self.up1(f2) + f1)
        g0 = self.d0(self.up0(g1) + f0)
        return self.shuffle(self.tail(g0))


def load_trunk_weights(trunk: DenoisingTrunk, weights: dict[str, torch.Tensor]) -> None:
    """Load weights into ``trunk``; a trunk without the noise-kind input (v2's) gains it with zero weights,
    so it starts out computing exactly what it did (fine-tuning it for camera noise)."""
    weights = {k: v.float() for k, v in weights.items()}
    head = weights.get("head.weight")
    want = trunk.head.weight.shape[1]
    if head is not None and head.shape[1] < want:
        pad = head.new_zeros(head.shape[0], want - head.shape[1], *head.shape[2:])
        weights["head.weight"] = torch.cat([head, pad], dim=1)
    trunk.load_state_dict(weights)


def two_scale(trunk: nn.Module, x: torch.Tensor, noise_map: torch.Tensor, coarse_gain: float) -> torch.Tensor:
    """The trunk's estimate of ``x`` (N, 3, H, W; H, W divisible by 16) with its coarse band from a second pass.

    The fine pass reads ``noise_map`` (N, C, H, W) as given; the coarse pass
    denoises the 2x2 average of ``x`` reading the 2x2 average of the map's std
    times ``coarse_gain`` (the noise kind channel as it is). The result is the
    fine estimate with its own 2x2 average, brought back up, replaced by the
    coarse estimate brought back up (bilinear): a two-level Laplacian pyramid
    whose detail band comes from full resolution. Where the coarse pass
    returns the fine estimate's average, the fine estimate comes back unchanged.
    """
    fine = trunk(x, noise_map)
    coarse_map = F.avg_pool2d(noise_map, 2)
    coarse_map = torch.cat([coarse_map[:, :1] * coarse_gain, coarse_map[:, 1:]], dim=1)
    coarse = trunk(F.avg_pool2d(x, 2), coarse_map)
    return fine + _up(coarse - F.avg_pool2d(fine, 2), fine.shape[-2:])


def _up(t: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)
