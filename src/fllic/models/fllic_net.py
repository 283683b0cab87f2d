"""The supervised FLLIC network (Zhang & Wu 2024, Sec. 3 and Fig. 2).

Data flow::

    x_noisy, sigma ─[trunk]─> x_est ──g_a──> y ──h_a──> z
                                       │ ẑ = Δ_z ⊙ round(z / Δ_z)          (factorized density)
                                       ▼
                      h_s(ẑ, sigma) ──> μ, σ, Δ_y       (Δ_y is the content-adaptive step map)
    ŷ = μ + q·Δ_y ⊙ round((y - μ) / (q·Δ_y))            (Gaussian conditional on each bin)
    x_hat = g_s(ŷ, sigma, q)                            (the denoised image)

q is a global scale on the step map: the rate knob (one model, several quality
points). sigma, the noise level, conditions g_a, h_s and g_s, so one model
serves sigma 0 to 50. The optional trunk (v2, :mod:`fllic.models.trunk`) is an
encoder-side denoiser; without it g_a reads the noisy image itself (v1).
h_s and g_s run as exact integer networks when coding (int_decoder.py).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from fllic import precision, tiling
from fllic._errors import ModelMismatchError
from fllic._heap import release
from fllic.entropy import coder
from fllic.entropy.density import (
    SCALE_MIN,
    FactorizedDensity,
    gaussian_likelihood,
    scale_table,
)
from fllic.entropy.tables import CodingTables, factorized_tables, gaussian_tables
from fllic.models.hashing import weights_hash
from fllic.models.init import haar_init_
from fllic.models.layers import DownResBlock, NarrowConv2d, ResBlock, UpResBlock, conv3x3, round_ste

SIGMA_NORM = 50.0
ESTIMATE_CACHE_PIXELS = 1 << 22  # images up to 4 megapixels keep their trunk estimate between levels
ESTIMATE_BAND = 1 << 20  # symbols per band of the estimated-bits sum
STEP_LOG_RANGE = (-8.0, 4.0)
# At initialisation (a Haar transform coder, see init.py) y has a std of about 0.7
# on images in [-0.5, 0.5]: steps start fine enough for information to flow through ŷ.
INIT_LOG_STEP_Y = math.log(0.04)
INIT_LOG_SIGMA_Y = math.log(0.3)
INIT_LOG_STEP_Z = math.log(0.005)


@dataclass
class Likelihoods:
    y: torch.Tensor
    z: torch.Tensor


@dataclass
class ForwardOutput:
    """What forward() returns for training."""

    x_hat: torch.Tensor
    likelihoods: Likelihoods
    y_hat: torch.Tensor
    z_hat: torch.Tensor


@dataclass
class EntropyParams:
    """Per-symbol coding parameters of y, everything the decoder rebuilds from ẑ."""

    mu: torch.Tensor
    step: torch.Tensor
    t: torch.Tensor  # symbol-domain standard deviation sigma_y / step


@dataclass(frozen=True)
class FllicConfig:
    n1: int = 64
    n2: int = 96
    n3: int = 96
    m: int = 128
    nh: int = 64
    nz: int = 32
    # v2: the encoder-side denoising trunk's channels per scale (None: no trunk, as in v1)
    trunk: tuple[int, int, int] | None = None
    trunk_blocks: int = 2
    trunk_kind: bool = False  # the trunk reads a noise-kind map beside the level (the camera model)
    gs_blocks: int = 2  # ResBlocks at g_s's last, half resolution (issue 29's depth lever; v1-v7: 2)
    ga_blocks: int = 2  # ResBlocks at g_a's first, half resolution (an encoder-only depth lever; v1-v7: 2)
    gs_narrow: int = 0  # g_s's last resolutions trained as narrow layers: 1 half, 2 half and quarter (v1-v7: 0)
    gs_n1: int = 0  # g_s's half-resolution channels, where they differ from g_a's n1 (issue 29's width lever; 0: n1)

    @property
    def gs_width(self) -> int:
        """Channels at g_s's last, half resolution."""
        return self.gs_n1 or self.n1

    @classmethod
    def tiny(cls, trunk: bool = False) -> "FllicConfig":
        return cls(n1=8, n2=8, n3=8, m=8, nh=8, nz=4, trunk=(8, 8, 8) if trunk else None, trunk_blocks=1)


def _cond_maps(x: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor | None) -> torch.Tensor:
    n, _, h, w = x.shape
    maps = [(sigma.view(n, 1, 1, 1) / SIGMA_NORM).expand(n, 1, h, w)]
    if q is not None:
        maps.append(torch.log(q).view(n, 1, 1, 1).expand(n, 1, h, w))
    return torch.cat([x] + [m.to(x.dtype) for m in maps], dim=1)


class FLLIC(nn.Module):
    """Hyperprior codec with content-adaptive quantization and noise-level conditioning."""

    downsampling_factor = 64  # g_a (16) times h_a (4): inputs are padded to this

    def __init__(self, config: FllicConfig = FllicConfig()):
        super().__init__()
        c = config
        if c.gs_narrow not in (0, 1, 2):
            raise ValueError(f"g_s's narrow stages are 0, 1 (half resolution) or 2 (and quarter), not {c.gs_narrow}")
        half, quarter = c.gs_narrow >= 1, c.gs_narrow >= 2
        self.config = c
        self.g_a_in = nn.PixelUnshuffle(2)
        self.g_a = nn.Sequential(
            conv3x3(12 + 2, c.n1), *(ResBlock(c.n1) for _ in range(c.ga_blocks)),
            DownResBlock(c.n1, c.n2), ResBlock(c.n2),
            DownResBlock(c.n2, c.n3), ResBlock(c.n3),
            DownResBlock(c.n3, c.m),
        )
        self.h_a = nn.Sequential(
            conv3x3(c.m, c.nh), ResBlock(c.nh), DownResBlock(c.nh, c.nh),
            ResBlock(c.nh), DownResBlock(c.nh, c.nz),
        )
        self.h_s = nn.Sequential(
            conv3x3(c.nz + 1, c.nh), ResBlock(c.nh), UpResBlock(c.nh, c.nh),
            ResBlock(c.nh), UpResBlock(c.nh, c.nh), ResBlock(c.nh), conv3x3(c.nh, 3 * c.m),
        )
        self.g_s = nn.Sequential(
            conv3x3(c.m + 2, c.m), ResBlock(c.m),
            UpResBlock(c.m, c.n3), ResBlock(c.n3),
            UpResBlock(c.n3, c.n2, narrow_out=quarter), ResBlock(c.n2, quarter),
            UpResBlock(c.n2, c.gs_width, narrow_in=quarter, narrow_out=half),
            *(ResBlock(c.gs_width, half) for _ in range(c.gs_blocks)),
            NarrowConv2d(c.gs_width, 12) if half else conv3x3(c.gs_width, 12), nn.PixelShuffle(2),
        )
        self.trunk = None
        self.coarse_gain: float | None = None  # the trunk's second, half-resolution pass (CodingModel sets it)
        self.bf16 = False  # training: g_a, h_a, h_s and g_s under bf16 autocast on the CPU, their outputs float32
        if c.trunk is not None:
            from fllic.models.trunk import DenoisingTrunk, TrunkConfig

            self.trunk = DenoisingTrunk(TrunkConfig(tuple(c.trunk), c.trunk_blocks, c.trunk_kind))
        self.log_step_z = nn.Parameter(torch.full((c.nz,), INIT_LOG_STEP_Z))
        self.z_density = FactorizedDensity(c.nz)
        with torch.no_grad():
            bias = self.h_s[-1].bias.view(3, c.m)
            bias[1].fill_(INIT_LOG_SIGMA_Y)
            bias[2].fill_(INIT_LOG_STEP_Y)
        haar_init_(self)

    # -- pieces shared by forward() and the coder ---------------------------------
    def estimate(self, x: torch.Tensor, sigma: torch.Tensor, noise_map: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's estimate of the clean image: the trunk's output (v2), or x itself (v1).

        ``noise_map`` (N, 1, H, W), the noise std per pixel in 8-bit units,
        conditions the trunk in place of the constant ``sigma`` (camera noise).
        With a map and ``coarse_gain`` set (a model's ``meta["coarse_gain"]``),
        the trunk runs at two scales (:func:`fllic.models.trunk.two_scale`).
        """
        if self.trunk is None:
            return x
        if noise_map is None or self.coarse_gain is None:
            return self.trunk(x, sigma if noise_map is None else noise_map)
        from fllic.models.trunk import two_scale

        return two_scale(self.trunk, x, noise_map, self.coarse_gain)

    def analysis(self, x: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor,
                 noise_map: torch.Tensor | None = None) -> torch.Tensor:
        """y = g_a(estimate(x) | sigma, q); x in [0, 1], (N, 3, H, W) with H, W divisible by 64.

        With a trunk, g_a codes the trunk's estimate: remote-source coding's
        estimate-then-code split, with the estimation paid only by the encoder.
        The decoder sees only the scalar ``sigma``; a ``noise_map`` reaches the trunk alone.
        """
        return self.analysis_of_estimate(self.estimate(x, sigma, noise_map), sigma, q)

    def analysis_of_estimate(self, x_est: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """y = g_a(x_est | sigma, q), for an estimate already computed."""
        return self._transform(self.g_a, _cond_maps(self.g_a_in(x_est - 0.5), sigma, q))

    def _transform(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``net(x)``; with ``bf16`` on a CPU its convolutions run in bf16 (AVX-512 BF16, AMX: about half a
        training step's time) and the output returns to float32, so rates and the loss stay float32."""
        if self.bf16 and x.device.type == "cpu":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x).float()
        return net(x)

    def step_z(self) -> torch.Tensor:
        return torch.exp(self.log_step_z).view(1, -1, 1, 1)

    def entropy_params(self, z_hat: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor) -> EntropyParams:
        """μ, Δ_y and the symbol-domain scale t from ẑ: the decoder's side of the model."""
        mu, log_sigma_y, log_step = self._transform(self.h_s, _cond_maps(z_hat, sigma, None)).chunk(3, dim=1)
        step = torch.exp(log_step.clamp(*STEP_LOG_RANGE)) * q.view(-1, 1, 1, 1)
        t = (torch.exp(log_sigma_y.clamp(*STEP_LOG_RANGE)) / step).clamp(min=SCALE_MIN)
        return EntropyParams(mu=mu, step=step, t=t)

    def synthesis(self, y_hat: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """x_hat = g_s(ŷ | sigma, q), in [0, 1] before clipping."""
        return self._transform(self.g_s, _cond_maps(y_hat, sigma, q)) + 0.5

    # -- training ----------------------------------------------------------------
    def forward(self, x: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor) -> ForwardOutput:
        """Relaxed quantization: additive uniform noise for the rates, straight-through for ŷ."""
        return self.forward_from_estimate(self.estimate(x, sigma), sigma, q)

    def forward_from_estimate(self, x_est: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor,
                              hard: bool = False) -> ForwardOutput:
        """forward() for an estimate already computed (the weakly supervised trainer shares it). ``hard``: the
        likelihoods of the rounded symbols, what coding them costs, in place of training's noisy relaxation."""
        y = self.analysis_of_estimate(x_est, sigma, q)
        z_hat, z_lik = self.hyper(y, hard)
        p = self.entropy_params(z_hat, sigma, q)
        y_hat, y_lik = quantize(y, p.mu, p.step, p.t, hard)
        return ForwardOutput(x_hat=self.synthesis(y_hat, sigma, q), likelihoods=Likelihoods(y=y_lik, z=z_lik),
                             y_hat=y_hat, z_hat=z_hat)

    def hyper(self, y: torch.Tensor, hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(ẑ, its likelihoods) from y: ẑ straight-through, likelihoods of the rounded or the noisy symbols."""
        z_sym = self._transform(self.h_a, y) / self.step_z()
        z_in = torch.round(z_sym) if hard else z_sym + torch.empty_like(z_sym).uniform_(-0.5, 0.5)
        return round_ste(z_sym) * self.step_z(), self.z_density.likelihood(z_in)


def quantize(y: torch.Tensor, mu: torch.Tensor, step: torch.Tensor, t: torch.Tensor,
             hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(ŷ, likelihoods): ŷ = μ + step·round((y − μ)/step), straight-through; the likelihoods under N(0, t²) of the
    rounded symbols (``hard``) or of the noisy ones (training's relaxation: additive uniform noise)."""
    u = (y - mu) / step
    u_in = torch.round(u) if hard else u + torch.empty_like(u).uniform_(-0.5, 0.5)
    return mu + round_ste(u) * step, gaussian_likelihood(u_in, t)


def bits(likelihoods: Likelihoods) -> torch.Tensor:
    """Total estimated bits per batch element."""
    return sum(-torch.log2(l).flatten(1).sum(1) for l in (likelihoods.y, likelihoods.z))


# -- coding ------------------------------------------------------------------------
DECODER_PREFIXES = ("h_s.", "g_s.")
MAX_FILE_BYTES = 7_500_000  # every shipped file stays under 8 MB
TRUNK_PREFIX = "trunk."


@dataclass
class Compressed:
    """What compress() returns: the two streams, the z grid, and the decoded pixels."""

    strings: tuple[bytes, bytes]  # (z, y)
    z_shape: tuple[int, int]
    pixels: torch.Tensor  # (1, H, W, 3) fixed point, exactly what decompress() returns
    estimated_bits: float


def encoder_state(net: FLLIC) -> dict[str, torch.Tensor]:
    """The float parameters coding uses: g_a, h_a and the z model (h_s and g_s run as integers)."""
    return {k: v for k, v in net.state_dict().items() if not k.startswith(DECODER_PREFIXES)}


class CodingModel:
    """A FLLIC network with finalised coding tables and its exact integer decoder.

    Build one with :func:`finalize` (after training) or :meth:`load` (from an
    exported file). The encoder's g_a and h_a run in floating point; ẑ → h_s →
    (μ, Δ_y, scale index) → g_s → pixels run in exact integers
    (:mod:`fllic.models.int_decoder`) at both ends, so a file decodes to the
    same pixels on every machine. Tables are never rebuilt at coding time, and
    a network whose weights changed after finalisation is refused.
    """

    def __init__(self, net: FLLIC, tables: CodingTables, decoder, meta: dict | None = None):
        self.net = net.eval()
        precision.channels_last(self.net)  # the encoder's analysis on NHWC tensors (fllic.precision)
        self.tables = tables
        self.decoder = decoder
        self.meta = dict(meta or {})
        gain = self.meta.get("coarse_gain")
        self.net.coarse_gain = None if gain is None else float(gain)
        self.hash = self._hash()
        self.device = torch.device("cpu")
        self.trunk_file: str | None = None  # the trunk file a loaded model refers to (save keeps sharing it)
        self.encoder_file: str | None = None  # likewise its encoder file, where it has one
        self.decoder_file: str | None = None  # and its decoder file, where the model file holds no copy
        self._estimates: tuple[bytes, dict] | None = None  # the last image's trunk estimates, by window

    def default_quality(self, sigma: float, grey: bool = False, refined: bool = False) -> int:
        """The quality level used when none is asked for: the model's σ-dependent default.

        ``meta["default_quality"]`` lists ``[sigma_max, level]`` pairs in
        increasing sigma_max, chosen at export on a validation split; the first
        whose sigma_max ≥ sigma applies. Without it, the finest level. A grey
        image takes ``meta["default_quality_grey"]`` where the model has one
        (the same rule, measured on grey versions of the validation crops).
        Refined coding (``refined``) takes ``default_quality_refine`` (and its
        ``_grey`` twin), where the model has them, before those: the first
        table the model has of refine_grey, refine, grey and plain.
        """
        levels = len(self.meta.get("quality_scales", [1.0]))
        keys = [f"default_quality{r}{g}" for r in (("_refine", "") if refined else ("",))
                for g in (("_grey", "") if grey else ("",))]
        table = next((self.meta[key] for key in keys if self.meta.get(key)), [])
        for sigma_max, level in table:
            if sigma <= sigma_max:
                return int(level)
        return levels

    def _hash(self) -> bytes:
        return weights_hash(encoder_state(self.net), self.tables.to_state(), self.decoder.to_state())

    @property
    def decoder_hash(self) -> bytes:
        """The hash of what decoding reads (coding tables and integer decoder), the encoder left out: two
        models with the same decoder part, such as a model and its adaptation to a camera, share it."""
        return weights_hash({}, self.tables.to_state(), self.decoder.to_state())

    @property
    def decoder_id(self) -> str:
        """The shipped model whose decoder part this model's files need: its own id, or its base's."""
        return self.meta.get("decoder_id") or self.meta.get("id", "custom")

    def _check_fresh(self) -> None:
        if self._hash() != self.hash:
            raise ModelMismatchError("the network changed after its coding tables were finalised; call finalize() again")

    def to(self, device) -> "CodingModel":
        """Run the network on ``device`` (cpu or cuda); pixels are identical on every device."""
        self.device = torch.device(device)
        self.net.to(self.device)
        self.decoder.to(self.device)
        return self

    @torch.no_grad()
    def compress(self, x, sigma: float, q: float, tile: int = tiling.DEFAULT_TILE,
                 progress: bool = False, noise_map: np.ndarray | None = None, refine: int = 0,
                 refine_options: dict | None = None) -> Compressed:
        """Code a noisy image, H and W divisible by 64, ``tile`` pixels at a time.

        ``x``: an (H, W, 3) uint8 or uint16 array (normalised by its peak), or a (1, 3, H, W) float tensor in [0, 1].
        ``noise_map``: (H, W) noise std per pixel in 8-bit units for the trunk (``meta["noise_map"]`` models).
        ``refine``: that many optimisation steps choose the y symbols for the decoder
        (:mod:`fllic.models.refine`); 0 takes g_a's latents as they are. ``refine_options``:
        further keywords of :func:`fllic.models.refine.refine_symbols` (its learning rate).
        """
        from fllic.models.integer import to_nhwc

        self._check_fresh()
        s, qt = _scalar(sigma, self.device), _scalar(q, self.device)
        with precision.analysis(self.device):  # the trunk and g_a in bf16 where the CPU has it (fllic.precision)
            estimates = self._estimates_for(x, sigma, noise_map, tile)
            y = to_nhwc(tiling.analysis(self.net, x, s, qt, tile, progress, noise_map, estimates)).double()
        release(y.shape[1] * y.shape[2] * tiling.LATENT**2)  # a large image's tiles are done
        z_sym = torch.round(self.net.h_a(y.permute(0, 3, 1, 2).float()) / self.net.step_z()).cpu()
        z_groups = _channel_groups(tuple(z_sym.shape))
        z_sym = _clamp(z_sym, self.tables.z, z_groups)
        p = self.decoder.entropy_params(z_sym.to(self.device), sigma, q)
        y_groups = p.index.cpu().numpy()
        u = y.sub_(p.mu_float(self.decoder.exps["mu"])).div_(p.step_float())  # in place: (y - μ) / Δ_y
        del y
        if refine:
            from fllic.models.refine import refine_symbols

            u = refine_symbols(self, x, u, p, sigma, q, refine, tile, progress, noise_map, **(refine_options or {}))
        u = _clamp(u.round_().cpu(), self.tables.y, y_groups)
        strings = (coder.encode(z_sym.numpy(), z_groups, self.tables.z),
                   coder.encode(u.numpy(), y_groups, self.tables.y))
        u = u.to(torch.int32)  # |u| < 2^25 after clamping: half the memory while synthesis runs
        est = self._estimated_bits(u, p.index.cpu(), z_sym)
        release(u.shape[1] * u.shape[2] * tiling.LATENT**2)  # the coder's buffers are freed: g_s's bands start afresh
        pixels = tiling.synthesis(self.decoder, u.to(self.device), p, sigma, q, tile, progress).cpu()
        return Compressed(strings, tuple(z_sym.shape[2:]), pixels, est)

    def _estimated_bits(self, u: torch.Tensor, index: torch.Tensor, z_sym: torch.Tensor) -> float:
        """The model's estimate of the coded bits, -log2 of the symbols' likelihoods; y a band of latent rows
        at a time, so that a large image's float temporaries stay small."""
        table, bits = scale_table(), 0.0
        rows = max(1, ESTIMATE_BAND // max(1, u[0, 0].numel()))
        for r in range(0, u.shape[1], rows):
            t = table[index[:, r : r + rows].long()]
            bits -= float(torch.log2(gaussian_likelihood(u[:, r : r + rows], t)).sum())
        return bits - float(torch.log2(self.net.z_density.likelihood(z_sym.to(self.device))).sum())

    def _estimates_for(self, x, sigma: float, noise_map, tile: int) -> dict | None:
        """The trunk-estimate cache of this image, sigma, map and tiling (fresh for another one): coding one
        image at several levels (a size cap stepping down, a rate sweep) runs the trunk once. Images above
        :data:`ESTIMATE_CACHE_PIXELS` keep none, to bound memory."""
        if isinstance(x, torch.Tensor) or x.shape[0] * x.shape[1] > ESTIMATE_CACHE_PIXELS:
            return None
        h = hashlib.sha256(np.ascontiguousarray(x).data)
        h.update(repr((x.shape, x.dtype.str, float(sigma), tile, str(self.device))).encode())
        if noise_map is not None:
            h.update(np.ascontiguousarray(noise_map, np.float32).data)
        key = h.digest()
        if self._estimates is None or self._estimates[0] != key:
            self._estimates = (key, {})
        return self._estimates[1]

    def check_stream_lengths(self, strings: tuple[bytes, bytes], z_shape: tuple[int, int]) -> None:
        """Refuse streams too short to hold a z_shape grid's symbols (:func:`fllic.models.decoding.check_stream_lengths`)."""
        from fllic.models.decoding import check_stream_lengths

        check_stream_lengths(self.tables, self.net.config.m, strings, z_shape)

    def decompress(self, strings: tuple[bytes, bytes], z_shape: tuple[int, int], sigma: float, q: float,
                   tile: int = tiling.DEFAULT_TILE, progress: bool = False) -> torch.Tensor:
        """Pixels (1, 64·zh, 64·zw, 3) in fixed point, from the z and y streams; the same for any ``tile``.

        The decoder part alone does it (:func:`fllic.models.decoding.decompress`), as a decoder file does."""
        from fllic.models.decoding import decompress

        self._check_fresh()
        return decompress(self.decoder, self.tables, strings, z_shape, sigma, q, tile, progress, self.device)

    @torch.no_grad()
    def estimate(self, x: torch.Tensor, sigma: float, q: float, noise_map: np.ndarray | None = None) -> torch.Tensor:
        """The model's own estimate, g_s(y) with y unquantized, through the integer g_s: (1, H, W, 3) pixels."""
        from fllic.models.integer import to_nhwc

        s, qt = _scalar(sigma, self.device), _scalar(q, self.device)
        level = None if noise_map is None else torch.from_numpy(np.asarray(noise_map, np.float32))[None].to(self.device)
        y = to_nhwc(self.net.analysis(x.to(self.device), s, qt, level)).double()
        return self.decoder.synthesis_from_y(y, sigma, q).cpu()

    # -- export ----------------------------------------------------------------------
    def save(self, path, shared_trunk: str | None = None, max_bytes: int = MAX_FILE_BYTES,
             shared_encoder: str | None = None, decoder_file: str | None = None) -> None:
        """Write the encoder's weights (float16), the integer decoder, tables and metadata.

        A v2 model's denoising trunk goes to a file of its own beside ``path``
        (``<stem>-trunk.pt``), which keeps every shipped file under 8 MB; the
        decoder never needs it. ``shared_trunk`` names a trunk file already beside
        ``path`` (another model's) holding the same trunk: the model refers to it
        instead of writing a copy. When the encoder's float weights and the integer
        decoder together would pass ``max_bytes``, g_a, h_a and the z density go to
        ``<stem>-encoder.pt`` beside it; ``shared_encoder`` names another model's encoder
        file beside ``path`` holding the same weights, referred to instead (a model that
        differs from another only in its decoder side, such as its quality levels).
        ``decoder_file`` names the model's decoder file beside ``path``
        (``<id>-decoder.npz``, fllic.models.decoder_export), which must read back to
        this model's decoder hash: the file then holds no copy of the integer decoder
        and the tables, which decoding reads from there anyway.
        """
        from pathlib import Path

        path = Path(path)
        if shared_trunk is None and self.trunk_file not in (None, trunk_path(path).name):
            shared_trunk = self.trunk_file  # re-saving a loaded model (new metadata) keeps its shared trunk
        own_encoder = path.with_name(f"{path.stem}-encoder{path.suffix}")
        if shared_encoder is None and self.encoder_file not in (None, own_encoder.name):
            shared_encoder = self.encoder_file  # and its shared encoder
        half = {k: v.half() if v.is_floating_point() else v for k, v in encoder_state(self.net).items()}
        weights = {k: v for k, v in half.items() if not k.startswith(TRUNK_PREFIX)}
        trunk = {k: v for k, v in half.items() if k.startswith(TRUNK_PREFIX)}
        decoder = {k: v.to(torch.int16) if k.endswith("w_int") else v for k, v in self.decoder.to_state().items()}
        state = {"format": 2, "config": asdict(self.net.config), "state_dict": weights, "decoder": decoder,
                 "tables": self.tables.to_state(), "meta": self.meta}
        if decoder_file is not None:
            _read_decoder_file(path.parent / decoder_file, self.decoder_hash)  # refuses one of another decoder
        elif self.decoder_file is not None and _holds(path.parent / self.decoder_file, self.decoder_hash):
            decoder_file = self.decoder_file  # re-saving a loaded model keeps its decoder file, if it still fits
        if decoder_file is not None:
            decoder = {}  # the decoder file holds it: nothing of it counts against max_bytes below
            del state["decoder"], state["tables"]
            state.update(decoder_file=decoder_file, decoder_hash=self.decoder_hash.hex())
        if shared_encoder is not None:
            check_same_part(path.parent / shared_encoder, weights, "encoder")
            state["state_dict"], state["encoder_file"] = {}, shared_encoder
        elif _tensor_bytes(weights) + _tensor_bytes(decoder) > max_bytes:
            torch.save({"format": "fllic-encoder-1", "state_dict": weights}, own_encoder)
            state["state_dict"], state["encoder_file"] = {}, own_encoder.name
        if trunk and shared_trunk is not None:
            check_same_part(path.parent / shared_trunk, trunk, "trunk")
            state["trunk_file"] = shared_trunk
        elif trunk:
            state["trunk_file"] = trunk_path(path).name
            torch.save({"format": "fllic-trunk-1", "state_dict": trunk}, trunk_path(path))
        torch.save(state, path)

    @classmethod
    def load(cls, path) -> "CodingModel":
        from pathlib import Path

        from fllic.models.int_decoder import from_state

        path = Path(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != 2:
            raise ModelMismatchError(f"{path} is a model file of format {state.get('format')}; this fllic reads format 2 (export it again)")
        weights = dict(state["state_dict"])
        for key, what in (("encoder_file", "encoder weights"), ("trunk_file", "denoising trunk")):
            if key in state:
                part = path.parent / state[key]
                if not part.exists():
                    raise ModelMismatchError(f"{path} needs its {what} {part.name} beside it; copy the files together")
                weights.update(torch.load(part, map_location="cpu", weights_only=True)["state_dict"])
        config = state["config"]
        if config.get("trunk") is not None:
            config = {**config, "trunk": tuple(config["trunk"])}
        net = FLLIC(FllicConfig(**config))
        missing, unexpected = net.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
        if unexpected or any(not k.startswith(DECODER_PREFIXES) for k in missing):
            raise ModelMismatchError(f"{path} does not fit the FLLIC network (missing {missing}, unexpected {unexpected})")
        if "decoder_file" in state:
            decoder, tables = _read_decoder_file(_decoder_file_for(path, state["decoder_file"]),
                                                 bytes.fromhex(state["decoder_hash"]))
        else:
            decoder = from_state({k: v.to(torch.int32) if k.endswith("w_int") else v for k, v in state["decoder"].items()})
            tables = CodingTables.from_state(state["tables"])
        model = cls(net, tables, decoder, state["meta"])
        model.trunk_file = state.get("trunk_file")
        model.encoder_file = state.get("encoder_file")
        model.decoder_file = state.get("decoder_file")
        return model


def _decoder_file_for(path, name: str):
    """The decoder file ``name`` a model file at ``path`` names: beside it, or else among fllic's shipped decoder
    files (an installed model's encoder ships in fllic-encoders, its decoder file in fllic)."""
    from fllic.decoder.model import weights_dir

    beside = path.parent / name
    return beside if beside.is_file() or not (weights_dir() / name).is_file() else weights_dir() / name


def _read_decoder_file(path, decoder_hash: bytes):
    """(IntegerDecoder, CodingTables) of the decoder file a model file names, which must hold ``decoder_hash``."""
    from fllic.decoder.model import read_arrays
    from fllic.models.decoding import decoder_and_tables

    if not path.is_file():
        raise ModelMismatchError(f"the model needs its decoder file {path.name} beside it; copy the files together")
    meta, arrays = read_arrays(path)
    if bytes.fromhex(meta["decoder_hash"]) != decoder_hash:
        raise ModelMismatchError(f"{path.name} holds another decoder than the model file names; export them again")
    return decoder_and_tables(arrays, path.name)


def _holds(path, decoder_hash: bytes) -> bool:
    """Whether the decoder file ``path`` exists and holds ``decoder_hash``."""
    try:
        _read_decoder_file(path, decoder_hash)
    except ModelMismatchError:
        return False
    return True


def _tensor_bytes(tensors: dict) -> int:
    return sum(v.numel() * v.element_size() for v in tensors.values() if isinstance(v, torch.Tensor))


def check_same_part(part, tensors: dict[str, torch.Tensor], what: str = "trunk") -> None:
    """Refuse to refer to the ``what`` file ``part`` unless it holds exactly ``tensors``."""
    if not part.exists():
        raise ModelMismatchError(f"no {what} file {part} to share")
    theirs = torch.load(part, map_location="cpu", weights_only=True)["state_dict"]
    if theirs.keys() != tensors.keys() or any(not torch.equal(theirs[k], v) for k, v in tensors.items()):
        raise ModelMismatchError(f"{part.name} holds another {what} than this model's: export without sharing it")


def trunk_path(path):
    """Where a model file's denoising trunk lives: ``<stem>-trunk.pt`` beside it."""
    return path.with_name(f"{path.stem}-trunk{path.suffix}")


def finalize(net: FLLIC, meta: dict | None = None, calibration=None, half: bool = True) -> CodingModel:
    """Export step: round ``net``'s weights to float16 precision, in place (the shipped size),
    build the coding tables, and quantize h_s and g_s into the exact integer decoder.

    ``calibration`` is a batch (x, sigma, q) of training images that sets the
    integer decoder's fixed-point ranges; by default, synthetic noisy scenes.
    """
    from fllic.models.int_decoder import build

    net = net.eval()
    if half:
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(p.half().float())
    meta = dict(meta or {})
    scales = meta.setdefault("quality_scales", [1.0])
    tables = CodingTables(y=gaussian_tables(), z=factorized_tables(net.z_density))
    batch = calibration if calibration is not None else synthetic_calibration(scales)
    return CodingModel(net, tables, build(net, batch, scales), meta)


def synthetic_calibration(q_scales, size: int = 128, seed: int = 0):
    """(x, sigma, q): smooth random scenes with AWGN at several levels, for every quality scale."""
    gen = torch.Generator().manual_seed(seed)
    xs, sigmas, qs = [], [], []
    for sigma in (0.0, 15.0, 30.0, 50.0):
        base = torch.nn.functional.interpolate(torch.rand(1, 3, size // 16, size // 16, generator=gen), size=(size, size),
                                               mode="bicubic", align_corners=False)
        noisy = (base + sigma / 255.0 * torch.randn(base.shape, generator=gen)).clamp(0, 1)
        noisy = torch.round(noisy * 255) / 255
        for q in q_scales:
            xs.append(noisy); sigmas.append(sigma); qs.append(q)
    return torch.cat(xs), torch.tensor(sigmas), torch.tensor(qs, dtype=torch.float32)


def _scalar(v: float, device=None) -> torch.Tensor:
    return torch.tensor([v], dtype=torch.float32, device=device)


def _channel_groups(shape: tuple[int, ...]) -> np.ndarray:
    """The table index of every hyper-latent: its channel."""
    return np.broadcast_to(np.arange(shape[1]).reshape(1, -1, 1, 1), shape)


def _clamp(sym: torch.Tensor, tables, groups: np.ndarray) -> torch.Tensor:
    """Integer-valued symbols as int64, clamped to what the escape code carries (in place of the int64 copy)."""
    arr = sym.numpy().astype(np.int64)
    return torch.from_numpy(coder.clamp_symbols(arr, tables, groups, out=arr).reshape(sym.shape))
