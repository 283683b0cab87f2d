"""The integer g_s on a stream of rows: PyTorch's decoder without a tile halo.

A k×k convolution's output row y reads its input rows y - k//2 .. y + k//2. So each
convolution here keeps the last 2·(k//2) rows it was given and makes the output rows
that they and the new rows complete; the zero rows above the image's first row and
below its last are the convolution's own zero padding, as for the whole image; a
block's skip waits in a queue for the rows its convolutions make. Fed the latent rows
band by band, the stream gives the whole image's pixels, integer for integer, each
computed once, where a tile of 64 latents would need a halo of g_s's reach, 8 latents on
each side, and compute (80/64)² = 1.56x its own pixels. The reference decoder's
:class:`fllic.decoder.integer.RowStream` is the same stream in numpy; this one runs the
layers of :mod:`fllic.models.integer` (NHWC int32 tensors), on any device.
"""

from __future__ import annotations

import torch

from fllic.models import integer as I


class RowStream:
    """Integer layers (IntConv, IntResBlock, IntUpResBlock) run on an image that arrives a band of rows at a time;
    ``stream(rows, last)`` returns the next output rows (NHWC, rows along dim 1)."""

    def __init__(self, layers):
        self.stages = [_stage(layer) for layer in layers]

    def __call__(self, rows: torch.Tensor, last: bool) -> torch.Tensor:
        for stage in self.stages:
            rows = stage(rows, last)
        return rows


class _ConvRows:
    """An IntConv on a stream of rows."""

    def __init__(self, conv: I.IntConv):
        self.conv, self.p = conv, conv.w_int.shape[-1] // 2
        self.held = None  # the last 2p rows given (the zero rows above the image among them); None at first

    def out_rows(self, given: int, last: bool) -> int:
        """How many rows the next call makes from ``given`` new rows."""
        held = self.p if self.held is None else self.held.shape[1]
        return max(0, held + given + (self.p if last else 0) - 2 * self.p)

    def __call__(self, rows: torch.Tensor, last: bool) -> torch.Tensor:
        p, n = self.p, self.out_rows(rows.shape[1], last)
        if p == 0:
            return _apply(self.conv, rows)
        first = self.held is None
        if first:  # the convolution's own padding stands for the zero rows above
            above = rows.new_zeros((rows.shape[0], p, *rows.shape[2:]))
            a, start, held = rows, 0, torch.cat([above, rows[:, max(0, rows.shape[1] - 2 * p):]], dim=1)
        else:
            a = held = torch.cat([self.held, rows], dim=1)
            start = p  # rows whose neighbours are all here begin after the held rows' first p
        self.held = held[:, max(0, held.shape[1] - 2 * p):].clone()  # a copy: the band is freed after the call
        if n == 0:
            return _apply(self.conv, rows[:, :0])
        return self.conv(a)[:, start : start + n]


class _Queue:
    """Rows waiting for the convolutions beside them to catch up."""

    def __init__(self):
        self.rows = None

    def put(self, rows: torch.Tensor) -> None:
        self.rows = rows if self.rows is None else torch.cat([self.rows, rows], dim=1)

    def take(self, n: int) -> torch.Tensor:
        taken, self.rows = self.rows[:, :n], self.rows[:, n:].clone()  # the taken rows are freed with them
        return taken


class _ResRows:
    """An IntResBlock on a stream of rows: its input waits until conv2 makes the rows it is added to."""

    def __init__(self, block: I.IntResBlock):
        self.shift, self.skip = block.skip_shift, _Queue()
        self.conv1, self.conv2 = _ConvRows(block.conv1), _ConvRows(block.conv2)

    def __call__(self, rows: torch.Tensor, last: bool) -> torch.Tensor:
        self.skip.put(rows)
        t = self.conv2(I.leaky(self.conv1(rows, last)), last)
        return I.saturate(t.add_(I.shift_round(self.skip.take(t.shape[1]), self.shift)))


class _UpResRows:
    """An IntUpResBlock on a stream of rows: the pixel-shuffled skip waits for conv_b's rows."""

    def __init__(self, block: I.IntUpResBlock):
        self.block, self.skip = block, _Queue()
        self.conv_a, self.conv_b = _ConvRows(block.conv_a), _ConvRows(block.conv_b)

    def __call__(self, rows: torch.Tensor, last: bool) -> torch.Tensor:
        self.skip.put(I.pixel_shuffle(_apply(self.block.skip, rows)))
        t = self.conv_b(I.upsample(I.leaky(self.conv_a(rows, last))), last)
        return I.saturate(t.add_(self.skip.take(t.shape[1])))


def _apply(conv: I.IntConv, rows: torch.Tensor) -> torch.Tensor:
    """conv(rows), where a band of no rows (a stage that is still filling) gives no rows."""
    if rows.shape[1] == 0:
        return rows.new_zeros((rows.shape[0], 0, rows.shape[2], conv.w_int.shape[0]))
    return conv(rows)


def _stage(layer):
    if isinstance(layer, I.IntConv):
        return _ConvRows(layer)
    if isinstance(layer, I.IntResBlock):
        return _ResRows(layer)
    if isinstance(layer, I.IntUpResBlock):
        return _UpResRows(layer)
    raise TypeError(f"no row stream for {type(layer).__name__}")
