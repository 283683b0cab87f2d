"""Baselines for ``fllic bench``: the alternatives fllic is compared with.

Every method is a small class with ``encode(array) -> bytes`` and
``decode(bytes) -> array``, registered by name (see :mod:`fllic.baselines.registry`
for the names and groups)::

    from fllic.baselines import Context, build_methods
    for m in build_methods(["lossless", "cbm3d+jxl-ll"], Context(sigma=25)):
        data = m.encode(noisy)
        assert (m.decode(data) == m.target(noisy)).all()   # m.kind == "lossless"

Heavy modules (imagecodecs, bm3d, torch) load only when a method runs.
"""

from fllic.baselines._base import (
    FAMILY_TITLES,
    LOSSLESS,
    LOSSY,
    NEAR_LOSSLESS,
    BaselineError,
    Context,
    Method,
    StageCost,
    UnknownMethodError,
    image_hash,
    match_layout,
)
from fllic.baselines.denoisers import DenoiseCache, Denoiser, default_cache_dir
from fllic.baselines.registry import (
    CODECS,
    DENOISERS,
    GROUPS,
    Cascade,
    FllicPoint,
    build,
    build_methods,
    describe,
    expand,
    register_codec,
    register_codec_pattern,
    register_denoiser,
)

__all__ = [
    "CODECS",
    "DENOISERS",
    "FAMILY_TITLES",
    "GROUPS",
    "LOSSLESS",
    "LOSSY",
    "NEAR_LOSSLESS",
    "BaselineError",
    "Cascade",
    "Context",
    "DenoiseCache",
    "Denoiser",
    "FllicPoint",
    "Method",
    "StageCost",
    "UnknownMethodError",
    "build",
    "build_methods",
    "default_cache_dir",
    "describe",
    "expand",
    "image_hash",
    "match_layout",
    "register_codec",
    "register_codec_pattern",
    "register_denoiser",
]
