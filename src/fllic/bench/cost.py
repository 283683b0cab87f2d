"""Compute cost of the FLLIC network: parameters and multiply–accumulates per pixel.

MACs are counted with forward hooks on every ``nn.Conv2d``: an output of shape
(1, C_out, H', W') costs ``C_out·H'·W' · (C_in/groups)·k_h·k_w`` MACs (bias
adds, activations, resampling and the entropy coder are not counted). Every
layer's output area is proportional to the padded input area, so the count is
taken once on a 64×64 input (the padding multiple) and scaled to the image's
padded size; per pixel means per pixel of the unpadded image, so padding is
charged to the image.

Stages: encoding runs g_a, h_a, h_s and g_s (the encoder reconstructs the
image to store its CRC); decoding runs h_s and g_s. The pure denoiser
(``fllicdn``) runs g_a and g_s.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("g_a", "h_a", "h_s", "g_s")
ENCODE_STAGES = {"codec": ("g_a", "h_a", "h_s", "g_s"), "denoiser": ("g_a", "g_s")}
DECODE_STAGES = {"codec": ("h_s", "g_s"), "denoiser": ()}
_BASE = 64


@dataclass
class NetworkCost:
    """Per-stage parameters and MACs on a 64×64 padded input."""

    params: dict[str, int]
    macs_64: dict[str, int]
    total_params: int  # the stages plus the z step sizes and the factorized density

    def macs_per_pixel(self, stages, height: int, width: int) -> float:
        ph, pw = -(-height // _BASE) * _BASE, -(-width // _BASE) * _BASE
        scale = (ph * pw) / (_BASE * _BASE)
        return sum(self.macs_64[s] for s in stages) * scale / (height * width)

    def parameters(self, network: str) -> int:
        """All parameters for the codec; those of g_a and g_s for the pure denoiser."""
        if network == "codec":
            return self.total_params
        return sum(self.params[s] for s in ENCODE_STAGES[network])


def network_cost(coding_model) -> NetworkCost:
    """Count parameters and conv MACs of each stage of a CodingModel's network."""
    import torch
    from torch import nn

    net = coding_model.net
    macs = dict.fromkeys(STAGES, 0)
    handles = []

    def hook_for(stage):
        def hook(module, inputs, output):
            k = module.kernel_size[0] * module.kernel_size[1]
            macs[stage] += output.numel() // output.shape[0] * (module.in_channels // module.groups) * k

        return hook

    for stage in STAGES:
        for module in getattr(net, stage).modules():
            if isinstance(module, nn.Conv2d):
                handles.append(module.register_forward_hook(hook_for(stage)))
    try:
        with torch.no_grad():
            x = torch.zeros(1, 3, _BASE, _BASE)
            s, q = torch.tensor([25.0]), torch.tensor([1.0])
            y = net.analysis(x, s, q)
            z = net.h_a(y)
            net.entropy_params(z, s, q)
            net.synthesis(y, s, q)
    finally:
        for h in handles:
            h.remove()
    params = {stage: sum(p.numel() for p in getattr(net, stage).parameters()) for stage in STAGES}
    return NetworkCost(params, macs, sum(p.numel() for p in net.parameters()))
