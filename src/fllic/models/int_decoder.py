"""FLLIC's decoder side in exact integers: ẑ → h_s → (μ, Δ_y, scale index) → ŷ → g_s → pixels.

Everything that decides a symbol (the scale index of each y, the μ and step
of its bin) or an output pixel is computed here, from integers only, with the
layers of :mod:`fllic.models.integer`. The encoder runs the same code for its
own copy, so both ends agree bit for bit on every machine. Built once, at
export, from the float network and a calibration batch; stored in the model file.

Fixed-point formats (value = int · 2^-exponent)
    ẑ, h_s input              e_z   (calibrated); Δ_z as an integer at 2^-Z_FRAC
    μ                         e_mu  (calibrated)
    log σ_y, log Δ_y          e_l   (calibrated, covering the clamp range [-8, 4])
    Δ_y = exp(log Δ_y)·q      2^-STEP_FRAC, from a lookup table of exp over e_l's grid
    ŷ = μ + u·Δ_y, g_s input  e_y   (calibrated)
    output pixels             2^-PIX_FRAC, in 8-bit units
Bounds: |u| <= U_MAX, Δ_y < e^4·4·2^STEP_FRAC < 2^36, so |u·Δ_y| < 2^56 (int64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fllic.decoder.synthesis import spans
from fllic.entropy.density import SCALE_LEVELS, SCALE_MAX, SCALE_MIN
from fllic.models import integer as I

Z_FRAC = 20
STEP_FRAC = 28
PIX_FRAC = 6
Q_FRAC = 12
U_MAX = 1 << 20
LOG_CLAMP = (-8.0, 4.0)  # the float model's STEP_LOG_RANGE
PARAMS_CHUNK = 1 << 20  # values of μ (of Δ_y, of the index) computed at once: a large image's int64 maps in chunks


@dataclass
class IntParams:
    """Per-symbol coding parameters of y, as integers (NHWC)."""

    mu: torch.Tensor  # at 2^-e_mu, int32 (saturated: |mu| <= A_MAX)
    step: torch.Tensor  # at 2^-STEP_FRAC, int64
    index: torch.Tensor  # scale-table index, int32

    def mu_float(self, e_mu: int) -> torch.Tensor:
        return self.mu.double() * 2.0**-e_mu

    def step_float(self) -> torch.Tensor:
        return self.step.double() * 2.0**-STEP_FRAC


def _const(v: float, e: int) -> int:
    """round(v · 2^e) in IEEE float64: one multiplication by a power of two, exact."""
    return int(math.floor(float(v) * 2.0**e + 0.5))


class IntegerDecoder(nn.Module):
    """h_s and g_s of a FLLIC network, quantized to exact integer layers."""

    def __init__(self, exps: dict[str, int], step_z: torch.Tensor, hs: list[nn.Module],
                 hs_out: list[nn.Module], gs: list[nn.Module], gs_out: nn.Module,
                 exp_lut: torch.Tensor, thresholds: torch.Tensor, q_scales: torch.Tensor,
                 logq_l: torch.Tensor, logq_y: torch.Tensor):
        super().__init__()
        self.exps = dict(exps)
        self.register_buffer("step_z", step_z.to(torch.int64))
        self.hs, self.hs_out = nn.ModuleList(hs), nn.ModuleList(hs_out)
        self.gs, self.gs_out = nn.ModuleList(gs), gs_out
        for name, t in (("exp_lut", exp_lut), ("thresholds", thresholds), ("logq_l", logq_l), ("logq_y", logq_y)):
            self.register_buffer(name, t.to(torch.int64))
        self.register_buffer("q_scales", q_scales.to(torch.float32))

    # -- the decoder's computation ----------------------------------------------------
    def level(self, q: float) -> int:
        """The quality level whose step scale is ``q`` (the header's step_scale)."""
        hits = (self.q_scales == float(np.float32(q))).nonzero()
        if hits.numel() == 0:
            raise ValueError(f"step scale {q} is not one of the model's quality levels {self.q_scales.tolist()}")
        return int(hits[0, 0])

    def entropy_params(self, z_sym: torch.Tensor, sigma: float, q: float) -> IntParams:
        """μ, Δ_y and the scale index from the integer symbols of z, (1, nz, h, w) NCHW."""
        e = self.exps
        zh = I.shift_round(I.to_nhwc(z_sym.long()).clamp(-I.A_MAX, I.A_MAX) * self.step_z, Z_FRAC - e["z"])
        zh = I.saturate(zh).to(torch.int32)
        h = torch.cat([zh, self._map(zh, _const(sigma / 50.0, e["z"]))], dim=3)
        for layer in self.hs:
            h = layer(h)
        n, rows, cols, _ = h.shape
        m = int(self.hs_out[0].w_int.shape[0])
        p = IntParams(h.new_empty((n, rows, cols, m)), h.new_empty((n, rows, cols, m), dtype=torch.int64),
                      h.new_empty((n, rows, cols, m)))
        level = self.level(q)
        for r0, r1 in spans(rows, max(1, PARAMS_CHUNK // (cols * m))):
            self._params_of_rows(h, r0, r1, _const(q, Q_FRAC), self.logq_l[level], p)
        return p

    def _params_of_rows(self, h: torch.Tensor, r0: int, r1: int, q_int: int, logq: torch.Tensor,
                        p: IntParams) -> None:
        """Rows r0:r1 of ``p`` from h_s's last activation ``h``: its 3x3 output convolutions on those rows and
        the row on each side (their zero padding at the image's edges, as for the whole image), so that a
        large image's int64 maps exist a chunk at a time. ``q_int`` is q at 2^-Q_FRAC, ``logq`` log q at 2^-e_l."""
        a0, a1 = max(0, r0 - 1), min(h.shape[1], r1 + 1)
        part = h[:, a0:a1]
        mu, log_sigma, log_step = (conv(part)[:, r0 - a0 : r1 - a0] for conv in self.hs_out)  # int32
        lo, hi = (_const(v, self.exps["l"]) for v in LOG_CLAMP)
        log_sigma, log_step = log_sigma.long().clamp_(lo, hi), log_step.long().clamp_(lo, hi)
        p.mu[:, r0:r1] = mu
        p.step[:, r0:r1] = I.shift_round(self.exp_lut[log_step - lo] * q_int, Q_FRAC)
        excess = log_sigma.sub_(log_step).sub_(logq).contiguous()
        p.index[:, r0:r1] = torch.searchsorted(self.thresholds, excess, out_int32=True)

    def synthesis(self, u: torch.Tensor, p: IntParams, sigma: float, q: float) -> torch.Tensor:
        """Pixels (1, H, W, 3) at 2^-PIX_FRAC, clamped to [0, 255], from the y symbols u (NHWC)."""
        return self._g_s(self._y_hat(u, p), sigma, q)

    def _y_hat(self, u: torch.Tensor, p: IntParams) -> torch.Tensor:
        """ŷ = μ + u · Δ_y at 2^-e_y, rounded half up from 2^-STEP_FRAC (int64, not yet saturated)."""
        e = self.exps
        u = u.long().clamp(-U_MAX, U_MAX)
        return I.shift_round((p.mu.long() << (STEP_FRAC - e["mu"])) + u * p.step, STEP_FRAC - e["y"])

    def streamed_synthesis(self, u: torch.Tensor, p: IntParams, sigma: float, q: float, band: int,
                           progress: bool = False) -> torch.Tensor:
        """Pixels (1, 16h, 16w, 3) as int16, as :meth:`synthesis` gives them, g_s run on ``band`` latent rows at
        a time by :class:`fllic.models.int_rows.RowStream`: each pixel computed once, in memory of a few bands.
        Pixels at 2^-PIX_FRAC are at most 255 · 2^6 < 2^15."""
        from fllic.models.int_rows import RowStream
        from fllic.tiling import LATENT, progress_bar, spans

        _, hl, wl, _ = u.shape
        out = torch.empty((1, hl * LATENT, wl * LATENT, 3), dtype=torch.int16, device=u.device)
        stream, done, bands = RowStream([*self.gs, self.gs_out]), 0, list(spans(hl, band))
        with progress_bar(len(bands), "synthesis", progress, unit="band") as bar:
            for r0, r1 in bands:
                rows = (slice(None), slice(r0, r1))
                y_hat = self._y_hat(u[rows], IntParams(p.mu[rows], p.step[rows], p.index[rows]))
                pixels = _pixels(stream(self._g_s_input(y_hat, sigma, q), last=r1 == hl))
                out[:, done : done + pixels.shape[1]] = pixels
                done += pixels.shape[1]
                bar.update()
        return out

    def synthesis_from_y(self, y: torch.Tensor, sigma: float, q: float) -> torch.Tensor:
        """Pixels from an unquantized float y (NHWC): the model's own estimate, for evaluation."""
        return self._g_s(torch.round(y.double() * 2.0 ** self.exps["y"]).long(), sigma, q)

    def _g_s(self, y_hat: torch.Tensor, sigma: float, q: float) -> torch.Tensor:
        a = self._g_s_input(y_hat, sigma, q)
        for layer in self.gs:
            a = layer(a)
        return _pixels(self.gs_out(a))

    def _g_s_input(self, y_hat: torch.Tensor, sigma: float, q: float) -> torch.Tensor:
        """ŷ, saturated, with g_s's constant maps σ / 50 and log q beside it (int32 NHWC)."""
        y_hat = I.saturate(y_hat).to(torch.int32)
        return torch.cat([y_hat, self._map(y_hat, _const(sigma / 50.0, self.exps["y"])),
                          self._map(y_hat, int(self.logq_y[self.level(q)]))], dim=3)

    @staticmethod
    def _map(like: torch.Tensor, value: int) -> torch.Tensor:
        return torch.full((*like.shape[:3], 1), value, dtype=torch.int32, device=like.device)

    # -- export -------------------------------------------------------------------------
    def to_state(self) -> dict:
        state = {k: v for k, v in self.state_dict().items()}
        state["exps"] = torch.tensor([self.exps[k] for k in _EXP_KEYS], dtype=torch.int64)
        return state


_EXP_KEYS = ("z", "mu", "l", "y")


def _pixels(a: torch.Tensor) -> torch.Tensor:
    """g_s's last layer's output → pixels at 2^-PIX_FRAC, clamped to [0, 255 · 2^PIX_FRAC]."""
    return I.pixel_shuffle(a).clamp_(0, 255 << PIX_FRAC)


def pixels_to_uint8(x: torch.Tensor, height: int, width: int, channels: int) -> np.ndarray:
    """Crop (1, H, W, 3) fixed-point pixels and round them to uint8; grey averages the channels."""
    x = x[0, :height, :width]
    if channels == 1:
        out = (x.to(torch.int32).sum(dim=2) + 3 * (1 << (PIX_FRAC - 1))) // (3 << PIX_FRAC)
    else:  # x + 2^(F-1) <= 255 · 2^F + 2^(F-1) < 2^15: exact in int16 (streamed pixels) as in int32
        out = (x + (1 << (PIX_FRAC - 1))).bitwise_right_shift_(PIX_FRAC)
    return out.to(torch.uint8).cpu().numpy()


def _hs_inputs(net, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float h_s input, its output chunks and g_s input over a calibration batch."""
    x, sigma, q = batch
    with torch.no_grad():
        y = net.analysis(x, sigma, q)
        z_hat = torch.round(net.h_a(y) / net.step_z()) * net.step_z()
        p = net.entropy_params(z_hat, sigma, q)
        y_hat = p.mu + torch.round((y - p.mu) / p.step) * p.step
    from fllic.models.fllic_net import _cond_maps

    return _cond_maps(z_hat, sigma, None), y_hat, _cond_maps(y_hat, sigma, q)


def build(net, batch, q_scales) -> IntegerDecoder:
    """Quantize ``net``'s h_s and g_s, calibrating exponents on ``batch`` = (x, sigma, q)."""
    hs_in, y_hat, gs_in = _hs_inputs(net, batch)
    c = net.config
    e_z = I.exponent_for(float(hs_in.abs().max()))
    step_z = torch.round(net.step_z().detach().flatten().double() * 2.0**Z_FRAC)
    hs, h, e_h = I.quantize_sequence(list(net.h_s)[:-1], hs_in, e_z)
    last = net.h_s[-1]
    with torch.no_grad():
        mu, log_sigma, log_step = last(h).chunk(3, dim=1)
    e_mu = I.exponent_for(float(mu.abs().max()))
    e_l = I.exponent_for(max(float(log_sigma.abs().max()), float(log_step.abs().max()), 8.0))
    hs_out = [I.IntConv.quantize(_slice_conv(last, k, c.m), e_h, e) for k, e in enumerate((e_mu, e_l, e_l))]
    e_y = I.exponent_for(float(gs_in.abs().max()))
    if max(e_mu, e_y) > STEP_FRAC:
        raise ValueError("μ or ŷ needs more fractional bits than the step format carries")
    gs, g, e_g = I.quantize_sequence(list(net.g_s)[:-2], gs_in, e_y)
    with torch.no_grad():
        net.g_s[-2](g)  # an untrained narrow layer takes its input range from its first input
    gs_out = I.quantize_conv(net.g_s[-2], e_g, PIX_FRAC, out_gain=255.0, out_offset=0.5)
    lo, hi = (_const(v, e_l) for v in LOG_CLAMP)
    grid = torch.arange(lo, hi + 1, dtype=torch.float64) * 2.0**-e_l
    exp_lut = torch.round(torch.exp(grid) * 2.0**STEP_FRAC)
    q32 = torch.tensor([float(np.float32(v)) for v in q_scales], dtype=torch.float64)
    return IntegerDecoder(
        {"z": e_z, "mu": e_mu, "l": e_l, "y": e_y}, step_z, hs, hs_out, gs, gs_out, exp_lut,
        _index_thresholds(e_l), q32, torch.round(torch.log(q32) * 2.0**e_l), torch.round(torch.log(q32) * 2.0**e_y),
    )


def _index_thresholds(e_l: int) -> torch.Tensor:
    """T_k with index = #{k : L > T_k}, L = log(σ_y/Δ_y) at 2^-e_l: the float model's scale_index."""
    step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_LEVELS - 1)
    k = torch.arange(SCALE_LEVELS - 1, dtype=torch.float64)
    return torch.floor((math.log(SCALE_MIN) + (k + 1e-4) * step) * 2.0**e_l)


def _slice_conv(conv: nn.Conv2d, k: int, m: int) -> nn.Conv2d:
    """The k-th third of a conv's output channels, as a conv of its own."""
    part = nn.Conv2d(conv.in_channels, m, conv.kernel_size, padding=conv.padding)
    with torch.no_grad():
        part.weight.copy_(conv.weight[k * m : (k + 1) * m])
        part.bias.copy_(conv.bias[k * m : (k + 1) * m])
    return part


def from_state(state: dict) -> IntegerDecoder:
    """Rebuild an IntegerDecoder from :meth:`IntegerDecoder.to_state`."""
    exps = dict(zip(_EXP_KEYS, (int(v) for v in state["exps"])))
    conv = lambda prefix: _conv_from_state(state, prefix)  # noqa: E731
    hs = [_block_from_state(state, f"hs.{i}") for i in range(_count(state, "hs."))]
    gs = [_block_from_state(state, f"gs.{i}") for i in range(_count(state, "gs."))]
    return IntegerDecoder(
        exps, state["step_z"], hs, [conv(f"hs_out.{k}") for k in range(3)], gs, conv("gs_out"),
        state["exp_lut"], state["thresholds"], state["q_scales"], state["logq_l"], state["logq_y"],
    )


def _count(state: dict, prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})


def _conv_from_state(state: dict, prefix: str) -> I.IntConv:
    w, b, shift = (state[f"{prefix}.{k}"] for k in ("w_int", "bias", "shift"))
    if f"{prefix}.in_shift" in state:  # a narrow layer
        return I.IntNarrowConv(w, b, shift, int(state[f"{prefix}.in_mult"]), int(state[f"{prefix}.in_shift"]),
                               state[f"{prefix}.mult"])
    return I.IntConv(w, b, shift)


def _block_from_state(state: dict, prefix: str) -> nn.Module:
    if f"{prefix}.residual_shift" in state:
        return I.IntResBlock(_conv_from_state(state, f"{prefix}.conv1"), _conv_from_state(state, f"{prefix}.conv2"),
                             int(state[f"{prefix}.residual_shift"]))
    if f"{prefix}.conv_a.w_int" in state:
        return I.IntUpResBlock(*(_conv_from_state(state, f"{prefix}.{n}") for n in ("skip", "conv_a", "conv_b")))
    return _conv_from_state(state, prefix)
