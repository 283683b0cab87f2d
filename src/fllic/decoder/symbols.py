"""Decoding the Z and Y sections: range-coded integer symbols under integer tables.

A table k is a vector of 2·L_k integer frequencies summing to 2^16, over the
symbols -(L_k - 1)..(L_k - 1) and one escape symbol for |s| >= L_k. Each
symbol has a group that selects its table (z: its channel; y: its scale-table
index). The stream holds the groups in increasing order, each group's symbols
in raster order of their positions, decoded with constriction's range decoder
(``Categorical(freqs, perfect=False)``, the encoder's models); then, for every
escaped symbol in that same order, its sign (uniform over 2), and its excess
|s| - L_k as two uniform 12-bit halves, high first. Without constriction the
same symbols come from :mod:`fllic.decoder.rangecoder`, which specifies that
range decoder and its models in plain Python.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from fllic._errors import FormatError
from fllic.decoder import rangecoder

ESCAPE_BITS = 24
FREQ_TOTAL = 1 << 16
_LENIENT = contextvars.ContextVar("fllic_lenient_symbols", default=False)
LENIENT_CHUNK = 1024  # symbols decoded at a time in a lenient decode


@contextmanager
def lenient():
    """Within it, a stream that fails to decode gives the symbols decoded before the failure and zeros after it
    (each latent at its predicted mean) instead of a FormatError: a damaged file's best-effort image."""
    token = _LENIENT.set(True)
    try:
        yield
    finally:
        _LENIENT.reset(token)


@dataclass(frozen=True)
class SymbolTables:
    """Integer frequency tables; ``freqs[k]`` has 2·support[k] entries."""

    freqs: tuple[np.ndarray, ...]
    support: np.ndarray

    @classmethod
    def from_flat(cls, flat: np.ndarray, support: np.ndarray) -> "SymbolTables":
        """The tables stored one after the other in ``flat``."""
        flat, support = flat.astype(np.int64), support.astype(np.int64)
        ends = np.cumsum(2 * support)
        if support.size == 0 or support.min() < 1 or ends[-1] != flat.size or flat.min() < 1:
            raise ValueError("coding tables are inconsistent")
        return cls(tuple(np.split(flat, ends[:-1])), support)

    def min_bits(self) -> np.ndarray:
        """Per table, the bits of its likeliest symbol: what any symbol costs at least."""
        return np.array([-np.log2(f.max() / FREQ_TOTAL) for f in self.freqs])


def check_length(name: str, data: bytes, min_bits: float) -> None:
    """Refuse a section shorter than ``min_bits``, before any decoding work.

    A guard against a header that claims a huge image for a small file: every
    symbol costs at least the bits of its table's likeliest symbol.
    """
    if 8 * len(data) + 64 < min_bits:
        raise FormatError(f"the {name} section ({len(data)} bytes) is too short for the image size in the header")


def group_order(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, keys, bounds) of non-negative table indices: ``order`` lists the positions group by group, in
    increasing group and, within a group, raster order; group ``keys[i]`` holds ``order[bounds[i]:bounds[i + 1]]``.

    Table indices are small, so they are sorted as int16 (numpy's stable sort of 16-bit keys is a radix sort)
    and counted, not copied and sorted again: a 24-megapixel image's 18 million y symbols need one index array.
    """
    groups = groups.ravel()
    narrow = groups.astype(np.int16) if groups.size and groups.max() < (1 << 15) else groups
    order = np.argsort(narrow, kind="stable")
    counts = np.bincount(narrow)
    keys = np.flatnonzero(counts)
    return order, keys, np.concatenate([[0], np.cumsum(counts[keys])])


@dataclass(frozen=True)
class RangeCoding:
    """A range decoder and its two entropy models: constriction's, or :mod:`fllic.decoder.rangecoder`'s."""

    decoder: object  # words (uint32) -> an object whose .decode(model, n) gives the next n symbols
    categorical: object  # integer frequencies -> a model
    uniform: object  # n -> a model


PYTHON = RangeCoding(rangecoder.RangeDecoder, rangecoder.categorical, rangecoder.uniform)


def range_coding() -> RangeCoding:
    """constriction's range decoder where it is installed (compiled, so faster), the plain-Python one otherwise."""
    try:
        import constriction
    except ImportError:
        return PYTHON
    model = constriction.stream.model
    return RangeCoding(constriction.stream.queue.RangeDecoder,
                       lambda freqs: model.Categorical(freqs.astype(np.float64), perfect=False), model.Uniform)


def decode(data: bytes, groups: np.ndarray, tables: SymbolTables, coding: RangeCoding | None = None) -> np.ndarray:
    """The integer symbols (int32, shaped like ``groups``) of a Z or Y section, decoded by ``coding``
    (default: :func:`range_coding`; both give the same symbols)."""
    if len(data) % 4:
        raise FormatError("entropy-coded section length is not a multiple of 4 bytes")
    if groups.size and (groups.min() < 0 or groups.max() >= tables.support.size):
        raise FormatError("a symbol's table index is outside the model's tables")
    out = np.zeros(groups.size, np.int32)  # |s| <= support + 2^24 - 1 < 2^31
    try:
        _decode(coding or range_coding(), data, groups, tables, out)
    except (AssertionError, ValueError, OverflowError) as e:  # constriction and rangecoder reject invalid data
        if not _LENIENT.get():
            raise FormatError(f"corrupt entropy-coded data ({e})") from e
    return out.reshape(groups.shape)


def _decode(coding: RangeCoding, data: bytes, groups: np.ndarray, tables: SymbolTables, out: np.ndarray) -> None:
    """The symbols into ``out`` (zeros), group by group; where the stream fails, the rest stay zero and an
    escaped symbol whose excess was not read yet is zero too."""
    dec = coding.decoder(np.frombuffer(data, dtype=np.uint32).copy())
    order, keys, bounds = group_order(groups)
    escaped, escaped_support = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    step = LENIENT_CHUNK if _LENIENT.get() else max(groups.size, 1)  # leniently, a failure costs one chunk
    try:
        for i, k in enumerate(keys.tolist()):
            support, model = int(tables.support[k]), coding.categorical(tables.freqs[k])
            for start in range(bounds[i], bounds[i + 1], step):
                pos = order[start : min(start + step, bounds[i + 1])]
                idx = np.asarray(dec.decode(model, pos.size), dtype=np.int64)
                out[pos] = idx - (support - 1)
                esc = idx == 2 * support - 1
                escaped.append(pos[esc])
                escaped_support.append(np.full(int(esc.sum()), support))
        positions = np.concatenate(escaped)
        if positions.size:
            half = ESCAPE_BITS // 2
            negative = np.asarray(dec.decode(coding.uniform(2), positions.size), dtype=np.int64)
            hi = np.asarray(dec.decode(coding.uniform(1 << half), positions.size), dtype=np.int64)
            lo = np.asarray(dec.decode(coding.uniform(1 << half), positions.size), dtype=np.int64)
            magnitude = np.concatenate(escaped_support) + ((hi << half) | lo)
            out[positions] = np.where(negative == 1, -magnitude, magnitude)
    except (AssertionError, ValueError, OverflowError):
        out[np.concatenate(escaped)] = 0
        raise
