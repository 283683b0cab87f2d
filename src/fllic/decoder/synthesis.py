"""ẑ → h_s → (μ, Δ_y, scale index) → ŷ → g_s → pixels, in exact integers.

The decoder side of a FLLIC hyperprior (Ballé et al., "Variational image
compression with a scale hyperprior", ICLR 2018) run as an integer network
(Ballé, Johnston & Minnen, ICLR 2019), so that the encoder's copy and every
decoder agree bit for bit. Arrays are HWC (height, width, channels), int64; inside h_s and g_s the
activations are integers held in float64 (fllic.decoder.integer).

Fixed-point formats (value = int · 2^-exponent; the exponents are the model's)
    z symbols                 integers; Δ_z at 2^-Z_FRAC
    ẑ, h_s input              2^-e_z
    μ                         2^-e_mu
    log σ_y, log Δ_y          2^-e_l, clamped to [round(-8 · 2^e_l), round(4 · 2^e_l)]
    Δ_y                       2^-STEP_FRAC: exp_lut[log Δ_y - lo] · q at 2^-Q_FRAC, rounded
    y symbols u               integers, |u| <= U_MAX
    ŷ = μ + u · Δ_y, g_s input 2^-e_y
    sigma / 50 maps           2^-e_z (h_s), 2^-e_y (g_s); the log q map at 2^-e_y
    output pixels             2^-PIX_FRAC of 8-bit units, clamped to [0, 255 · 2^PIX_FRAC]
Bounds (int64): |z| <= A_MAX < 2^15 times Δ_z · 2^Z_FRAC (below 2^40 for any
Δ_z < 2^20); exp_lut < e^4 · 2^28 < 2^34 times q · 2^Q_FRAC <= 2^18 (q <= 64)
is below 2^52, so Δ_y < 2^40 and |u · Δ_y| < 2^20 · 2^40; |μ| · 2^(STEP_FRAC -
e_mu) < 2^15 · 2^28. Every sum stays below 2^62.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fllic._errors import FormatError
from fllic.decoder import integer as I
from fllic.decoder.model import DecoderModel

Z_FRAC = 20
STEP_FRAC = 28
PIX_FRAC = 6
Q_FRAC = 12
U_MAX = 1 << 20
LOG_CLAMP = (-8.0, 4.0)
SIGMA_NORM = 50.0
LATENT = 16  # pixels per latent


@dataclass
class EntropyParams:
    """Per-latent coding parameters of y, (h, w, m) each: μ at 2^-e_mu (int32), Δ_y at 2^-STEP_FRAC (int64),
    table index (int32)."""

    mu: np.ndarray
    step: np.ndarray
    index: np.ndarray

    def window(self, rows: slice, cols: slice) -> "EntropyParams":
        return EntropyParams(self.mu[rows, cols], self.step[rows, cols], self.index[rows, cols])


def const(v: float, e: int) -> int:
    """round(v · 2^e), half up, in IEEE float64: one multiplication by a power of two, exact."""
    return int(math.floor(float(v) * 2.0**e + 0.5))


def level(model: DecoderModel, q: float) -> int:
    """The quality level whose step scale is ``q`` (the header's step scale, a float32)."""
    hits = np.flatnonzero(model.q_scales == np.float32(q))
    if hits.size == 0:
        raise FormatError(f"step scale {q} is not one of the model's quality levels "
                          f"{model.q_scales.tolist()}: the file is damaged or needs another model")
    return int(hits[0])


def constant_map(like: np.ndarray, value: int) -> np.ndarray:
    """One channel holding ``value`` over like's height and width."""
    return np.full((*like.shape[:2], 1), value, dtype=np.int64)


def z_hat(model: DecoderModel, z_sym: np.ndarray) -> np.ndarray:
    """ẑ at 2^-e_z from the (h, w, nz) symbols: round(z · Δ_z), saturated."""
    z = np.clip(z_sym, -I.A_MAX, I.A_MAX) * model.step_z
    return I.saturate(I.shift_round(z, Z_FRAC - model.exps["z"]))


def entropy_params(model: DecoderModel, z_sym: np.ndarray, sigma: float, q: float) -> EntropyParams:
    """h_s(ẑ, sigma / 50) → μ, Δ_y and the scale-table index of every latent.

    The index is #{k : log(σ_y / Δ_y) - log q > T_k} at 2^-e_l (the thresholds
    T_k stored with the model): the Gaussian table N(0, t²) of the scale table
    nearest above σ_y / (q · Δ_y).
    """
    e = model.exps
    zh = z_hat(model, z_sym)
    h = I.run(model.hs, np.concatenate([zh, constant_map(zh, const(sigma / SIGMA_NORM, e["z"]))], axis=2))
    mu, log_sigma, log_step = (conv(h).astype(np.int64) for conv in model.hs_out)
    lo, hi = (const(v, e["l"]) for v in LOG_CLAMP)
    log_sigma, log_step = np.clip(log_sigma, lo, hi), np.clip(log_step, lo, hi)
    step = I.shift_round(model.exp_lut[log_step - lo] * const(q, Q_FRAC), Q_FRAC)
    index = np.searchsorted(model.thresholds, log_sigma - log_step - model.logq_l[level(model, q)], side="left")
    return EntropyParams(mu.astype(np.int32), step, index.astype(np.int32))  # |mu| <= A_MAX: int32, half the memory


def y_hat(model: DecoderModel, u: np.ndarray, p: EntropyParams) -> np.ndarray:
    """ŷ = μ + u · Δ_y at 2^-e_y, rounded half up from 2^-STEP_FRAC, saturated."""
    e = model.exps
    u = np.clip(u, -U_MAX, U_MAX).astype(np.int64)
    exact = (p.mu.astype(np.int64) << (STEP_FRAC - e["mu"])) + u * p.step
    return I.saturate(I.shift_round(exact, STEP_FRAC - e["y"]))


def g_s_input(model: DecoderModel, yh: np.ndarray, sigma: float, q: float) -> np.ndarray:
    """ŷ with g_s's constant maps, sigma / 50 and log q, as channels beside it."""
    e = model.exps
    return np.concatenate([yh, constant_map(yh, const(sigma / SIGMA_NORM, e["y"])),
                           constant_map(yh, int(model.logq_y[level(model, q)]))], axis=2)


def to_pixels(a: np.ndarray) -> np.ndarray:
    """g_s's last layer's output → pixels at 2^-PIX_FRAC, clamped to [0, 255 · 2^PIX_FRAC]."""
    return np.clip(I.pixel_shuffle(a), 0, 255 << PIX_FRAC).astype(np.int64)


def g_s(model: DecoderModel, yh: np.ndarray, sigma: float, q: float) -> np.ndarray:
    """g_s(ŷ, sigma / 50, log q): pixels (2h·8, 2w·8, 3) at 2^-PIX_FRAC, clamped to [0, 255 · 2^PIX_FRAC]."""
    return to_pixels(model.gs_out(I.run(model.gs, g_s_input(model, yh, sigma, q))))


def synthesis(model: DecoderModel, u: np.ndarray, p: EntropyParams, sigma: float, q: float) -> np.ndarray:
    """Pixels of the y symbols ``u`` (h, w, m), the whole image at once."""
    return g_s(model, y_hat(model, u, p), sigma, q)


def band_rows(width: int, tile: int) -> int:
    """Latent rows per band of :func:`streamed_synthesis` for latents ``width`` wide: about a ``tile``-pixel
    square's latents, so that ``tile`` bounds memory as a tile's side would."""
    return max(1, (tile // LATENT) ** 2 // max(1, width))


def streamed_synthesis(model: DecoderModel, u: np.ndarray, p: EntropyParams, sigma: float, q: float,
                       tile: int, progress: bool = False) -> np.ndarray:
    """Pixels (16h, 16w, 3) as int16, g_s run on bands of latent rows (:func:`band_rows`) by
    :class:`fllic.decoder.integer.RowStream`: identical to the whole image's, each pixel computed once
    (no tile halo), in memory of a few bands. Pixels are at most 255 · 2^6 < 2^15. ``progress``: a bar of
    the bands on stderr, where there is more than one."""
    hl, wl, _ = u.shape
    out = np.empty((hl * LATENT, wl * LATENT, 3), dtype=np.int16)
    stream, done = I.RowStream([*model.gs, model.gs_out]), 0
    with I.band_threads():
        for r0, r1 in _counted(spans(hl, band_rows(wl, tile)), progress):
            rows = slice(r0, r1)
            yh = y_hat(model, u[rows], p.window(rows, slice(None)))
            pixels = to_pixels(stream(g_s_input(model, yh, sigma, q), last=r1 == hl))
            out[done : done + len(pixels)] = pixels
            done += len(pixels)
    return out


def _counted(items: list, progress: bool):
    """``items``, with a tqdm bar on stderr while they are consumed where ``progress`` and there are several."""
    if not progress or len(items) <= 1:
        return items
    import sys

    from tqdm import tqdm

    return tqdm(items, desc="synthesis", unit="band", file=sys.stderr, leave=False)


def spans(n: int, tile: int):
    """[start, stop) ranges of at most ``tile`` covering 0..n."""
    return [(s, min(n, s + tile)) for s in range(0, n, tile)]
