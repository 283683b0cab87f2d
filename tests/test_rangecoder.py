"""The plain-Python range decoder decodes constriction's streams symbol for symbol (fllic.decoder.rangecoder)."""

import numpy as np
import pytest

constriction = pytest.importorskip("constriction")

from fllic._errors import FormatError  # noqa: E402
from fllic.decoder import rangecoder as rc  # noqa: E402
from fllic.decoder import symbols  # noqa: E402
from fllic.entropy import coder  # noqa: E402
from fllic.entropy.tables import SymbolTables  # noqa: E402


def _frequencies(rng, n: int) -> np.ndarray:
    """n positive integer frequencies summing to 2^16, skewed as coding tables are (many at 1)."""
    w = rng.gamma(0.3, size=n) + 1e-12
    f = np.maximum(1, np.floor(w / w.sum() * (symbols.FREQ_TOTAL - n))).astype(np.int64)
    f[np.argmax(f)] += symbols.FREQ_TOTAL - f.sum()
    return f


def _stream(rng):
    """A constriction range-coded stream of several runs of symbols, and (model, symbols) per run."""
    enc, runs = constriction.stream.queue.RangeEncoder(), []
    for _ in range(int(rng.integers(1, 6))):
        if rng.random() < 0.7:
            f = _frequencies(rng, int(rng.integers(2, 700)))
            syms = rng.choice(f.size, size=int(rng.integers(1, 2000)), p=f / f.sum()).astype(np.int32)
            enc.encode(syms, constriction.stream.model.Categorical(f.astype(np.float64), perfect=False))
            runs.append((rc.categorical(f), syms))
        else:
            n = int(rng.choice([2, 3, 7, 4096, 100_000]))
            syms = rng.integers(0, n, size=int(rng.integers(1, 300))).astype(np.int32)
            enc.encode(syms, constriction.stream.model.Uniform(n))
            runs.append((rc.uniform(n), syms))
    return enc.get_compressed(), runs


@pytest.mark.parametrize("seed", range(8))
def test_constrictions_streams_decode_symbol_for_symbol(seed):
    rng = np.random.default_rng(seed)
    for _ in range(10):
        words, runs = _stream(rng)
        dec = rc.RangeDecoder(words)
        for model, syms in runs:
            assert np.array_equal(dec.decode(model, syms.size), syms)


def test_arbitrary_words_give_constrictions_symbols():
    """Damaged data decodes to whatever constriction makes of it, symbol for symbol, not to an error of our own."""
    rng = np.random.default_rng(1)
    f = _frequencies(rng, 40)
    for n_words in (0, 1, 2, 3, 50):
        words = rng.integers(0, 1 << 32, n_words, dtype=np.uint64).astype(np.uint32)
        theirs = constriction.stream.queue.RangeDecoder(words.copy())
        ours = rc.RangeDecoder(words)
        model = constriction.stream.model.Categorical(f.astype(np.float64), perfect=False)
        assert np.array_equal(ours.decode(rc.categorical(f), 500), theirs.decode(model, 500))
        uniform = constriction.stream.model.Uniform(4096)
        assert np.array_equal(ours.decode(rc.uniform(4096), 20), theirs.decode(uniform, 20))


def test_models_are_the_cumulatives_the_docstring_gives():
    f = np.array([1, 3, 65532])
    assert rc.categorical(f).cdf == (0, (1 * (rc.TOTAL - 3) >> 16) + 1, (4 * (rc.TOTAL - 3) >> 16) + 2, rc.TOTAL)
    assert rc.uniform(3).cdf == (0, 5592405, 11184810, rc.TOTAL)
    for bad in ([5], [0, 65536], [3, 4]):
        with pytest.raises(ValueError):
            rc.categorical(np.array(bad))
    with pytest.raises(ValueError):
        rc.uniform(1)


def test_fllics_sections_decode_alike_with_either_range_decoder():
    """fllic's own streams (escapes included) through symbols.decode with constriction and with plain Python."""
    rng = np.random.default_rng(2)
    support = np.array([3, 9, 40])
    tables = SymbolTables(tuple(_frequencies(rng, 2 * int(s)) for s in support), support)
    groups = rng.integers(0, 3, (5, 17, 11))
    values = np.rint(rng.laplace(0, 6, groups.shape)).astype(np.int64)
    values.flat[:4] = [50_000, -70, 9, -(1 << 20)]  # escaped symbols of every table
    data = coder.encode(values, groups, tables)
    ours = symbols.decode(data, groups, tables, symbols.PYTHON)
    assert np.array_equal(ours, values) and np.array_equal(symbols.decode(data, groups, tables), values)
    with pytest.raises(FormatError):
        symbols.decode(data[:-1], groups, tables, symbols.PYTHON)


def _a_byte_that_breaks_the_stream(data: bytes, groups, tables) -> bytes:
    """``data`` with the first single-byte change that makes decoding fail."""
    for at in range(len(data)):
        bad = bytearray(data)
        bad[at] ^= 0xFF
        try:
            symbols.decode(bytes(bad), groups, tables)
        except FormatError:
            return bytes(bad)
    raise AssertionError("no single-byte change broke the stream")


def test_a_broken_stream_decodes_leniently_to_what_came_before_and_zeros_after(monkeypatch):
    """symbols.lenient() (a best-effort decode): the chunks before the failure are kept, the stream's last group,
    decoded at or after it, is zero; both range decoders agree; outside it the same stream is refused again."""
    monkeypatch.setattr(symbols, "LENIENT_CHUNK", 16)
    rng = np.random.default_rng(5)
    support = np.array([3, 2])
    tables = SymbolTables(tuple(_frequencies(rng, 2 * int(s)) for s in support), support)
    groups = rng.integers(0, 2, 600)
    values = np.where(groups == 0, rng.integers(-2, 3, 600), rng.integers(-1, 2, 600))
    bad = _a_byte_that_breaks_the_stream(coder.encode(values, groups, tables), groups, tables)
    with symbols.lenient():
        out = symbols.decode(bad, groups, tables)
        assert np.array_equal(symbols.decode(bad, groups, tables, symbols.PYTHON), out)
    assert out.shape == groups.shape and out.dtype == np.int32
    assert not out[groups == 1].any() and out[groups == 0].any()
    with pytest.raises(FormatError):
        symbols.decode(bad, groups, tables)
