"""What every bench method is: a name, a promise about its decode, encode() and decode().

A *method* turns the noisy 8-bit image into bytes and back. Its ``kind`` says
what the decode promises about ``target(noisy)``, the image it actually codes
(the noisy image itself for a plain codec, the denoised image for a cascade):

- ``lossless``: the decode equals the target exactly;
- ``near-lossless``: no sample differs from the target by more than ``bound``;
- ``lossy``: no promise (the bench still measures the error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fllic._errors import FllicError, InputError

LOSSLESS = "lossless"
NEAR_LOSSLESS = "near-lossless"
LOSSY = "lossy"

# Families group methods in tables and plots.
FAMILY_LOSSLESS = "lossless"            # mathematically lossless coding of the noisy image
FAMILY_NEAR_LOSSLESS = "near-lossless"  # bounded-error coding of the noisy image
FAMILY_CASCADE = "cascade"              # denoiser -> lossless codec
FAMILY_CASCADE_LOSSY = "cascade-lossy"  # denoiser -> lossy codec (sweeps)
FAMILY_FLLIC = "fllic"                  # fllic at its quality points

FAMILY_TITLES = {
    FAMILY_LOSSLESS: "lossless, noisy image",
    FAMILY_NEAR_LOSSLESS: "near-lossless, noisy image",
    FAMILY_CASCADE: "denoiser -> lossless codec",
    FAMILY_CASCADE_LOSSY: "denoiser -> lossy codec",
    FAMILY_FLLIC: "fllic",
}


class BaselineError(FllicError):
    """A baseline method failed, or cannot be built as asked."""


class UnknownMethodError(BaselineError, InputError):
    """A method or group name that the registry does not know."""


@dataclass
class Context:
    """What a method needs to be built for one noise level.

    ``model`` is anything :func:`fllic.models.registry.resolve` accepts (None for
    the shipped default); it is resolved once, on first use, and only when a
    method needs the network; contexts made with :meth:`at` share it.
    ``cache_dir`` holds denoiser outputs (None: no disk cache).
    """

    sigma: float
    model: object = None
    cache_dir: Path | None = None
    _shared: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def coding_model(self):
        """The resolved CodingModel (loads it on first use)."""
        if "model" not in self._shared:
            from fllic.models.registry import resolve

            self._shared["model"] = resolve(self.model)
        return self._shared["model"]

    @property
    def resolved_model(self):
        """The CodingModel if some method has needed it so far, else None."""
        return self._shared.get("model")

    def at(self, sigma: float) -> "Context":
        """The same model and cache at another noise level."""
        return Context(sigma, self.model, self.cache_dir, self._shared)


@dataclass
class StageCost:
    """Work a method did before its codec ran (a denoiser), measured when it was computed."""

    seconds: float
    peak_mb: float
    cached: bool


class Method:
    """Base class: subclasses set the class attributes and implement encode/decode."""

    name: str = ""
    kind: str = LOSSLESS
    bound: int | None = None  # max absolute error for near-lossless methods
    family: str = FAMILY_LOSSLESS
    curve: str | None = None  # the sweep this point belongs to, e.g. "cbm3d+jxl"
    curve_param: float | None = None  # its position on that sweep (distance, quality, level)
    network: str | None = None  # "codec" or "denoiser": which FLLIC stages it runs (see bench.cost)

    def target(self, noisy: np.ndarray) -> np.ndarray:
        """The image this method codes, and that a lossless decode must return."""
        return noisy

    def encode(self, array: np.ndarray) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def pre_cost(self) -> StageCost | None:
        """Cost of the work done before the codec for the last encoded image (None: none)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.kind})>"


def image_hash(array: np.ndarray) -> str:
    """SHA-256 of an image's shape, dtype and pixels, as hex."""
    import hashlib

    arr = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{arr.shape}:{arr.dtype};".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def match_layout(decoded: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``decoded`` in the channel layout of ``like``.

    WebP has no grey mode: a grey image is coded as RGB with three equal
    channels, and read back as the rounded mean of the three (exactly the grey
    image when the coding was lossless).
    """
    decoded = np.asarray(decoded)
    if like.ndim == 2 and decoded.ndim == 3:
        if decoded.shape[2] == 1:
            return decoded[..., 0]
        return np.rint(decoded[..., :3].astype(np.float64).mean(axis=2)).astype(np.uint8)
    return decoded
