"""The range decoder of the Z and Y sections, in plain Python: the specification, and the fallback without constriction.

fllic writes its entropy-coded sections with constriction's queue range coder
(``constriction.stream.queue.RangeEncoder``: 32-bit words, a 64-bit state,
24-bit probabilities) under two entropy models, ``Categorical(f,
perfect=False)`` over integer frequencies and ``Uniform(n)``. This module
decodes them without constriction, bit for bit as constriction does
(tests/test_rangecoder.py decodes random streams of constriction's with both),
so the reference decoder runs wherever numpy does, constriction's compiled
wheels or not (Linux on arm64 has none).

A model is its left cumulatives c_0 = 0 < c_1 < ... < c_n = 2^24: symbol s
takes the interval [c_s, c_{s+1}).

    Categorical(f_0 .. f_{n-1}), integer frequencies summing to F:
        c_s = floor(C_s · (2^24 - n) / F) + s,   C_s = f_0 + ... + f_{s-1}
        (constriction's fast quantization, computed there in float64; exact
        here because C_s · (2^24 - n) < 2^53 and F = 2^16 is a power of two)
    Uniform(n):
        p = floor(2^24 / n); c_s = s · p for s < n, and c_n = 2^24 (the last
        symbol takes what the others leave)

The decoder's state is (lower, range, point), 64-bit unsigned; it starts at
lower = 0, range = 2^64 - 1, point = the first two words, big-endian (words
past the end of the data read as 0). One symbol:

    scale = range >> 24
    q = ((point - lower) mod 2^64) // scale       (q >= 2^24: invalid data)
    s = the symbol with c_s <= q < c_{s+1}
    lower = (lower + scale · c_s) mod 2^64,  range = scale · (c_{s+1} - c_s)
    if range < 2^32:
        lower = (lower · 2^32) mod 2^64,  range = range · 2^32
        point = (point · 2^32) mod 2^64 + the next word
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

PRECISION = 24
WORD_BITS = 32
MASK = (1 << 64) - 1
TOTAL = 1 << PRECISION


@dataclass(frozen=True)
class Model:
    """An entropy model as its left cumulatives ``cdf`` (n + 1 integers, 0 first, 2^24 last)."""

    cdf: tuple[int, ...]


def categorical(freqs: np.ndarray) -> Model:
    """constriction's ``Categorical(freqs, perfect=False)`` for integer frequencies summing to a power of two."""
    f = [int(v) for v in freqs]
    n, norm = len(f), sum(f)
    if n < 2 or min(f) < 1 or norm & (norm - 1) or norm * TOTAL >= 1 << 53:
        raise ValueError("a categorical model needs 2 or more positive integer frequencies summing to 2^k, k < 29")
    free, cdf, cum = TOTAL - n, [], 0
    for s, v in enumerate(f):
        cdf.append(cum * free // norm + s)
        cum += v
    return Model((*cdf, TOTAL))


def uniform(n: int) -> Model:
    """constriction's ``Uniform(n)``."""
    if not 2 <= n <= TOTAL:
        raise ValueError(f"a uniform model needs 2 to 2^{PRECISION} symbols, got {n}")
    p = TOTAL // n
    return Model((*range(0, n * p, p), TOTAL))


class RangeDecoder:
    """Decodes the symbols of a range-coded stream of 32-bit words (module docstring)."""

    def __init__(self, words: np.ndarray):
        self.words = [int(w) for w in np.asarray(words, dtype=np.uint32)]
        self.pos = 2
        first = self.words[:2] + [0] * (2 - len(self.words[:2]))
        self.point = (first[0] << WORD_BITS | first[1]) if self.words else 0
        self.lower, self.range = 0, MASK

    def decode(self, model: Model, n: int) -> np.ndarray:
        """The next ``n`` symbols under ``model``, int64."""
        cdf, words = model.cdf, self.words
        lower, rng, point, pos = self.lower, self.range, self.point, self.pos
        out = [0] * n
        for i in range(n):
            scale = rng >> PRECISION
            q = ((point - lower) & MASK) // scale
            if q >= TOTAL:
                raise ValueError("invalid range-coded data")
            s = bisect_right(cdf, q) - 1
            left = cdf[s]
            lower = (lower + scale * left) & MASK
            rng = scale * (cdf[s + 1] - left)
            if rng >> WORD_BITS == 0:
                lower = (lower << WORD_BITS) & MASK
                rng <<= WORD_BITS
                point = ((point << WORD_BITS) & MASK) | (words[pos] if pos < len(words) else 0)
                pos += 1
            out[i] = s
        self.lower, self.range, self.point, self.pos = lower, rng, point, pos
        return np.array(out, dtype=np.int64)
