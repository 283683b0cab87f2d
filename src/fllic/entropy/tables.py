"""Integer coding tables, finalised once when a model is exported.

Every table is a vector of integer frequencies over the symbols -(L-1)..(L-1)
plus one escape symbol for |s| >= L. Integers make the decoder's tables the
encoder's, bit for bit, on any machine: no erf or float rounding is re-run
at coding time (the desync CompressAI users hit, and TFC's answer to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fllic.entropy.density import FactorizedDensity, scale_table

FREQ_TOTAL = 1 << 16
TAIL_STDS = 8.0
MAX_Z_SUPPORT = 256
TAIL_MASS = 1e-7


@dataclass(frozen=True)
class SymbolTables:
    """Frequencies for a family of discrete models; ``freqs[k]`` has 2*support[k] entries."""

    freqs: tuple[np.ndarray, ...]
    support: np.ndarray

    def to_state(self) -> dict[str, torch.Tensor]:
        return {
            "support": torch.from_numpy(self.support.astype(np.int64)),
            "freqs": torch.from_numpy(np.concatenate(self.freqs).astype(np.int64)),
        }

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "SymbolTables":
        support = state["support"].numpy().astype(np.int64)
        flat = state["freqs"].numpy().astype(np.int64)
        ends = np.cumsum(2 * support)
        if ends[-1] != flat.size:
            raise ValueError("coding tables are inconsistent")
        return cls(tuple(np.split(flat, ends[:-1])), support)


@dataclass(frozen=True)
class CodingTables:
    y: SymbolTables  # one table per entry of the scale table
    z: SymbolTables  # one table per hyper-latent channel

    def to_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"y": self.y.to_state(), "z": self.z.to_state()}

    @classmethod
    def from_state(cls, state: dict) -> "CodingTables":
        return cls(y=SymbolTables.from_state(state["y"]), z=SymbolTables.from_state(state["z"]))


def quantize_pmf(pmf: np.ndarray, total: int = FREQ_TOTAL) -> np.ndarray:
    """Integer frequencies >= 1 summing to ``total``, close to ``pmf``."""
    pmf = np.maximum(pmf.astype(np.float64), 0.0)
    freqs = np.maximum(1, np.floor(pmf / pmf.sum() * (total - pmf.size)).astype(np.int64))
    freqs[np.argmax(freqs)] += total - freqs.sum()
    return freqs


def _gaussian_pmf(t: float, support: int) -> np.ndarray:
    cdf = lambda v: 0.5 * math.erfc(-v / (t * math.sqrt(2.0)))
    vals = np.arange(-(support - 1), support)
    body = np.array([cdf(v + 0.5) - cdf(v - 0.5) for v in vals])
    return np.append(body, 2.0 * (1.0 - cdf(support - 0.5)))


def gaussian_tables() -> SymbolTables:
    """Tables of the discretized N(0, t²) for every t of the scale table."""
    supports, freqs = [], []
    for t in scale_table().tolist():
        support = max(2, math.ceil(TAIL_STDS * t) + 1)
        supports.append(support)
        freqs.append(quantize_pmf(_gaussian_pmf(t, support)))
    return SymbolTables(tuple(freqs), np.array(supports, dtype=np.int64))


def factorized_tables(density: FactorizedDensity) -> SymbolTables:
    """Per-channel tables of the learned density of z, each trimmed to its own tail."""
    pmfs = density.channel_pmfs(MAX_Z_SUPPORT).numpy()
    supports, freqs = [], []
    for pmf in pmfs:
        centre = MAX_Z_SUPPORT
        cum_out = [1.0 - pmf[centre - s + 1 : centre + s].sum() for s in range(2, MAX_Z_SUPPORT + 1)]
        support = next((s for s, out in zip(range(2, MAX_Z_SUPPORT + 1), cum_out) if out < TAIL_MASS), MAX_Z_SUPPORT)
        body = pmf[centre - support + 1 : centre + support]
        supports.append(support)
        freqs.append(quantize_pmf(np.append(body, max(1.0 - body.sum(), 0.0))))
    return SymbolTables(tuple(freqs), np.array(supports, dtype=np.int64))
