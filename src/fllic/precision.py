"""The encoder's float analysis in bf16 where the CPU computes bf16 natively.

The trunk and g_a only choose the symbols: the decoder's pixels are exact whatever they compute, and the format
already lets an encoder's bytes differ between machines (docs/format.md). On a CPU with AVX-512 BF16 or AMX they
run under PyTorch's bf16 autocast; h_a, the integer h_s and g_s, the refinement and the noise estimate stay in
float32 or integers. On Kodak24 the default points move within the bounds results/bf16-kodak24.md records.
``float32()`` (``fllic compress --float32``) keeps float32 throughout.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

_FLOAT32 = contextvars.ContextVar("fllic_float32", default=False)


def bf16_native() -> bool:
    """Whether this CPU runs bf16 convolutions natively (AVX-512 BF16 or AMX)."""
    import torch

    cpu = torch.cpu
    return any(bool(getattr(cpu, name, lambda: False)()) for name in ("_is_avx512_bf16_supported",
                                                                      "_is_amx_tile_supported"))


def bf16_in_use(device) -> bool:
    """Whether the encoder's analysis on ``device`` runs in bf16: on a CPU that has it, unless float32 is asked."""
    return getattr(device, "type", str(device)) == "cpu" and not _FLOAT32.get() and bf16_native()


@contextmanager
def float32(on: bool = True):
    """Within it, the encoder's analysis keeps float32 (``on``) or takes bf16 where the CPU has it."""
    token = _FLOAT32.set(on)
    try:
        yield
    finally:
        _FLOAT32.reset(token)


def analysis(device):
    """The autocast context the trunk and g_a run in on ``device``."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_in_use(device))
