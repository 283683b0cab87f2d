"""Adapter to constriction's range coder for grouped integer symbols.

Symbols are coded group by group (one table per group: a scale-table index
for y, a channel for z), each group in raster order. Values outside a table's
support are coded as its escape symbol, followed at the end of the stream by
a sign and a 24-bit magnitude from uniform models.
"""

from __future__ import annotations

import numpy as np

from fllic._errors import DependencyError
from fllic.decoder import symbols
from fllic.entropy.tables import SymbolTables

ESCAPE_BITS = 24
MAX_ABS_SYMBOL = (1 << ESCAPE_BITS) - 1


def _cs():
    try:
        import constriction
    except ImportError:
        raise DependencyError("encoding needs constriction, which is not installed: pip install constriction (wheels "
                              "for Linux x86_64, macOS and Windows; elsewhere it builds with a Rust toolchain)") from None
    return constriction


class _Models:
    """Lazily built constriction models for one SymbolTables."""

    def __init__(self, tables: SymbolTables):
        self.tables = tables
        self._cache: dict[int, object] = {}

    def __getitem__(self, k: int):
        if k not in self._cache:
            probs = self.tables.freqs[k].astype(np.float64)
            self._cache[k] = _cs().stream.model.Categorical(probs, perfect=False)
        return self._cache[k]


def _groups(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if groups.size and groups.min() < 0:
        raise ValueError("table indices must not be negative")
    return symbols.group_order(groups)


def clamp_symbols(symbols: np.ndarray, tables: SymbolTables, groups: np.ndarray,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Symbols limited to what the escape code can carry (into ``out``, which may be ``symbols``)."""
    limit = (tables.support.astype(np.int64) - 1 + MAX_ABS_SYMBOL).astype(np.int32)[groups]  # < 2^25
    return np.clip(symbols, -limit, limit, out=out)


def encode(symbols: np.ndarray, groups: np.ndarray, tables: SymbolTables) -> bytes:
    """Range-code integer ``symbols``; ``groups[i]`` selects the table of ``symbols[i]``."""
    cs = _cs()
    symbols, groups = np.asarray(symbols, np.int64).ravel(), np.asarray(groups).ravel()  # no copies
    models = _Models(tables)
    enc = cs.stream.queue.RangeEncoder()
    order, keys, bounds = _groups(groups)
    negative, excess = [], []
    for i, k in enumerate(keys.tolist()):
        vals = symbols[order[bounds[i] : bounds[i + 1]]]
        support = int(tables.support[k])
        idx = vals + (support - 1)
        esc = np.abs(vals) >= support
        idx[esc] = 2 * support - 1
        enc.encode(idx.astype(np.int32), models[k])
        negative.append(vals[esc] < 0)
        excess.append(np.abs(vals[esc]) - support)
    if negative:
        _encode_escapes(enc, np.concatenate(negative), np.concatenate(excess))
    return enc.get_compressed().tobytes()


def _encode_escapes(enc, negative: np.ndarray, mag: np.ndarray) -> None:
    """Signs and excess magnitudes |s| - support of the escaped symbols."""
    if mag.size == 0:
        return
    model = _cs().stream.model
    if mag.max() > MAX_ABS_SYMBOL:
        raise ValueError("symbol magnitude exceeds the escape code; clamp_symbols() first")
    enc.encode(negative.astype(np.int32), model.Uniform(2))
    half = ESCAPE_BITS // 2
    enc.encode((mag >> half).astype(np.int32), model.Uniform(1 << half))
    enc.encode((mag & ((1 << half) - 1)).astype(np.int32), model.Uniform(1 << half))


def decode(data: bytes, groups: np.ndarray, tables: SymbolTables) -> np.ndarray:
    """Inverse of :func:`encode` (flat int32); ``groups`` must be the encoder's, rebuilt by the decoder.
    The reference decoder's :func:`fllic.decoder.symbols.decode`: one stream format, one decoding routine."""
    return symbols.decode(data, np.asarray(groups).ravel(), tables)
