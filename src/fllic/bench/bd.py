"""Bjøntegaard delta metrics (G. Bjøntegaard, VCEG-M33, 2001; VCEG-AL22, 2009).

BD-rate: the average difference in rate between two rate–PSNR curves at equal
PSNR, as a percentage (negative: the test curve needs fewer bits). log10(rate)
is interpolated as a function of PSNR for each curve, both are integrated over
the PSNR interval the two curves share, and the mean difference d of log10
rate gives ``100 * (10**d - 1)``.

BD-PSNR: the average PSNR difference in dB at equal rate, with PSNR
interpolated as a function of log10(rate), over the shared log-rate interval.

Interpolation:

- ``"pchip"`` (default): piecewise cubic Hermite with Fritsch–Carlson slopes
  (the same interpolant as ``scipy.interpolate.PchipInterpolator``), as in
  the common-test-condition spreadsheets since VCEG-AL22. It needs only two
  points per curve (then it is linear), passes through every point and does
  not overshoot. Integrated exactly (two-point Gauss–Legendre per piece).
- ``"poly"``: the original least-squares cubic polynomial of VCEG-M33; it
  needs four points or more per curve.

Points are sorted; points with equal abscissa are averaged.
"""

from __future__ import annotations

import numpy as np

from fllic._errors import FllicError


class BDError(FllicError, ValueError):
    """The curves do not allow a Bjøntegaard delta (too few points, no overlap, bad rates)."""


def _curve(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise BDError("a curve needs two 1-D sequences of equal length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise BDError("a curve has a non-finite point (PSNR of an exact reconstruction?)")
    ux = np.unique(x)
    uy = np.array([y[x == v].mean() for v in ux])
    if len(ux) < 2:
        raise BDError("a curve needs at least two distinct points")
    return ux, uy


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson derivatives at the knots, with scipy's shape-preserving end conditions."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    if n == 2:
        return np.array([delta[0], delta[0]])
    d = np.zeros(n)
    for k in range(1, n - 1):
        a, b = delta[k - 1], delta[k]
        if a * b > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / a + w2 / b)

    def edge(h0, h1, m0, m1):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(e) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(e) > abs(3 * m0):
            return 3 * m0
        return e

    d[0] = edge(h[0], h[1], delta[0], delta[1])
    d[-1] = edge(h[-1], h[-2], delta[-1], delta[-2])
    return d


def pchip_eval(x: np.ndarray, y: np.ndarray, t) -> np.ndarray:
    """The PCHIP interpolant of the knots (x, y) at t (x sorted, t inside [x0, xn])."""
    t = np.asarray(t, np.float64)
    d = pchip_slopes(x, y)
    i = np.clip(np.searchsorted(x, t, side="right") - 1, 0, len(x) - 2)
    h = x[i + 1] - x[i]
    s = (t - x[i]) / h
    h00 = (1 + 2 * s) * (1 - s) ** 2
    h10 = s * (1 - s) ** 2
    h01 = s**2 * (3 - 2 * s)
    h11 = s**2 * (s - 1)
    return h00 * y[i] + h10 * h * d[i] + h01 * y[i + 1] + h11 * h * d[i + 1]


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    if method == "poly":
        if len(x) < 4:
            raise BDError(f"the cubic-polynomial fit needs 4 points per curve, got {len(x)}")
        p = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(p, hi) - np.polyval(p, lo))
    if method != "pchip":
        raise BDError(f"unknown interpolation {method!r}; use 'pchip' or 'poly'")
    # Each piece is a cubic: two-point Gauss-Legendre on [a, b] integrates it exactly.
    edges = np.unique(np.clip(np.concatenate([[lo, hi], x]), lo, hi))
    a, b = edges[:-1], edges[1:]
    mid, half = (a + b) / 2, (b - a) / 2
    g = half / np.sqrt(3.0)
    return float(np.sum(half * (pchip_eval(x, y, mid - g) + pchip_eval(x, y, mid + g))))


def _overlap(x1: np.ndarray, x2: np.ndarray) -> tuple[float, float]:
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not hi > lo:
        raise BDError(f"the curves do not overlap (intervals [{x1.min():.4g}, {x1.max():.4g}] "
                      f"and [{x2.min():.4g}, {x2.max():.4g}])")
    return float(lo), float(hi)


def _log_rate(rate) -> np.ndarray:
    r = np.asarray(rate, np.float64)
    if np.any(~(r > 0)):
        raise BDError("rates must be positive")
    return np.log10(r)


def bd_rate(anchor_rate, anchor_psnr, test_rate, test_psnr, method: str = "pchip") -> float:
    """Average rate difference of test vs anchor at equal PSNR, in percent."""
    xa, ya = _curve(anchor_psnr, _log_rate(anchor_rate))
    xt, yt = _curve(test_psnr, _log_rate(test_rate))
    lo, hi = _overlap(xa, xt)
    diff = (_integral(xt, yt, lo, hi, method) - _integral(xa, ya, lo, hi, method)) / (hi - lo)
    return float((10.0**diff - 1.0) * 100.0)


def bd_psnr(anchor_rate, anchor_psnr, test_rate, test_psnr, method: str = "pchip") -> float:
    """Average PSNR difference of test vs anchor at equal rate, in dB."""
    xa, ya = _curve(_log_rate(anchor_rate), anchor_psnr)
    xt, yt = _curve(_log_rate(test_rate), test_psnr)
    lo, hi = _overlap(xa, xt)
    return float((_integral(xt, yt, lo, hi, method) - _integral(xa, ya, lo, hi, method)) / (hi - lo))


def rate_at_psnr(rate, psnr, target: float) -> float | None:
    """The curve's rate at ``target`` PSNR (PCHIP on log10 rate), or None outside its range."""
    x, y = _curve(psnr, _log_rate(rate))
    if not x[0] <= target <= x[-1]:
        return None
    return float(10.0 ** pchip_eval(x, y, target))
