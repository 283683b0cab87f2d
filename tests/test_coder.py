import numpy as np

from fllic.entropy import coder
from fllic.entropy.density import FactorizedDensity, scale_table
from fllic.entropy.tables import FREQ_TOTAL, factorized_tables, gaussian_tables


def test_gaussian_tables_are_integer_and_normalised():
    t = gaussian_tables()
    assert len(t.freqs) == len(scale_table())
    for f, s in zip(t.freqs, t.support):
        assert f.size == 2 * s and f.min() >= 1 and f.sum() == FREQ_TOTAL


def test_grouped_round_trip_with_escapes(rng):
    t = gaussian_tables()
    groups = rng.integers(0, len(t.freqs), 5000)
    symbols = np.rint(rng.normal(0, 3 * scale_table().numpy()[groups])).astype(np.int64)
    symbols[[3, 99, 4000]] = [123456, -9999, 40]
    symbols[[5, 6]] = [-t.support[groups[5]], t.support[groups[6]]]  # exactly at the escape edge
    symbols = coder.clamp_symbols(symbols, t, groups)
    data = coder.encode(symbols, groups, t)
    assert np.array_equal(coder.decode(data, groups, t), symbols)


def test_rate_matches_the_model(rng):
    """On symbols drawn from the modelled Gaussian, the real size is close to the entropy."""
    t = gaussian_tables()
    k = 40
    groups = np.full(20000, k)
    scale = float(scale_table()[k])
    symbols = np.rint(rng.normal(0, scale, groups.size)).astype(np.int64)
    f = t.freqs[k] / FREQ_TOTAL
    s = t.support[k]
    entropy = -np.log2(f[np.clip(symbols + s - 1, 0, 2 * s - 1)]).sum()
    real = 8 * len(coder.encode(symbols, groups, t))
    assert abs(real - entropy) / entropy < 0.01


def test_factorized_tables_cover_each_channel():
    t = factorized_tables(FactorizedDensity(5))
    assert len(t.freqs) == 5 and all(f.sum() == FREQ_TOTAL for f in t.freqs)


def test_empty_stream_round_trip():
    t = gaussian_tables()
    g = np.zeros(0, np.int64)
    assert coder.decode(coder.encode(g, g, t), g, t).size == 0


def test_without_constriction_encoding_fails_in_one_line_and_decoding_goes_on(monkeypatch):
    import sys

    import pytest

    from fllic._errors import DependencyError

    t = gaussian_tables()
    g = np.zeros(7, np.int64)
    data = coder.encode(np.arange(-3, 4), g, t)
    monkeypatch.setitem(sys.modules, "constriction", None)  # import constriction now raises ImportError
    with pytest.raises(DependencyError, match="pip install constriction"):
        coder.encode(np.arange(-3, 4), g, t)
    assert np.array_equal(coder.decode(data, g, t), np.arange(-3, 4))
