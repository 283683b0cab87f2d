"""The encoder's float analysis in bf16 where the CPU computes bf16 natively.

The trunk and g_a only choose the symbols: the decoder's pixels are exact whatever they compute, and the format
already lets an encoder's bytes differ between machines (docs/format.md). On a CPU with AVX-512 BF16 or AMX they
run under PyTorch's bf16 autocast; h_a, the integer h_s and g_s, the refinement and the noise estimate stay in
float32 or integers. On Kodak24 the default points move within the bounds results/bf16-kodak24.md records.
``float32()`` (``fllic compress --float32``) keeps float32 throughout. Both run on channels-last weights
(:func:`channels_last`): oneDNN's convolutions then read and write NHWC without reordering every tensor.
"""

from __future__ import annotations

import contextvars
import os
from contextlib import contextmanager

_FLOAT32 = contextvars.ContextVar("fllic_float32", default=False)
# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA) under which its bf16 convolutions still run natively
BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512",
             "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "ALL", "DEFAULT"}


def bf16_native() -> bool:
    """Whether this CPU runs bf16 convolutions natively (AVX-512 BF16 or AMX), and oneDNN may use them: under
    ``ONEDNN_MAX_CPU_ISA=AVX2`` (or any cap below AVX512_CORE_BF16) its bf16 is emulated, many times slower."""
    import torch

    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").strip().upper()
    if cap not in BF16_ISAS:
        return False
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


def channels_last(net, on: bool = True) -> None:
    """The trunk's and g_a's weights in channels-last memory (``on``; else contiguous again), in place, so that
    their convolutions run on NHWC tensors throughout: on a CPU with AVX-512 BF16 the bf16 trunk takes 0.29x and
    g_a 0.39x the time, with outputs equal to the bit; in float32 0.75x and 0.82x, within float32's rounding
    (results/channels-last-kodak24.md). The weights' values, and so the model's hash, are unchanged."""
    import torch

    layout = torch.channels_last if on else torch.contiguous_format
    for part in (net.trunk, net.g_a):
        if part is not None:
            part.to(memory_format=layout)
