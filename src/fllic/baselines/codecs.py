"""Classic image codecs through imagecodecs: lossless, near-lossless and lossy.

Settings (imagecodecs 2026.x; libpng, libwebp, libjxl, CharLS, OpenJPEG):

========== ==================================================================
png        zlib level 9
webp-ll    WebP lossless, quality 90, method 5 (on kodim01 within 0.1 % of the
           strongest setting, quality 100 and method 6, at 1/20 of its time)
jxl-ll     JPEG-XL lossless, effort 7 (libjxl's default)
jpegls     JPEG-LS, NEAR = 0 (CharLS)
j2k-ll     JPEG 2000 reversible 5/3 wavelet, raw J2K codestream (no JP2 box)
jpegls-nearN  JPEG-LS with NEAR = N: every sample within N of the input
jxl-dD     JPEG-XL lossy, butteraugli distance D, effort 7
webp-qQ    WebP lossy, quality Q, method 6
========== ==================================================================

WebP has no grey mode: grey images are coded as RGB with equal channels (see
``match_layout``). Every encoder gets a contiguous uint8 (H, W) or (H, W, 3) array.
"""

from __future__ import annotations

import numpy as np

from fllic.baselines._base import (
    FAMILY_NEAR_LOSSLESS,
    LOSSY,
    NEAR_LOSSLESS,
    Method,
)


def _c(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.uint8)


def _rgb(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array


class Png(Method):
    name = "png"

    def encode(self, array):
        import imagecodecs

        return bytes(imagecodecs.png_encode(_c(array), level=9))

    def decode(self, data):
        import imagecodecs

        return imagecodecs.png_decode(data)


class WebpLossless(Method):
    name = "webp-ll"

    def encode(self, array):
        import imagecodecs

        return bytes(imagecodecs.webp_encode(_c(_rgb(array)), level=90, lossless=True, method=5))

    def decode(self, data):
        import imagecodecs

        return imagecodecs.webp_decode(data)


class JxlLossless(Method):
    name = "jxl-ll"

    def encode(self, array):
        import imagecodecs

        return bytes(imagecodecs.jpegxl_encode(_c(array), lossless=True, effort=7))

    def decode(self, data):
        import imagecodecs

        return imagecodecs.jpegxl_decode(data)


class JpegLs(Method):
    """JPEG-LS; NEAR = 0 is lossless, NEAR = N > 0 bounds every sample's error by N."""

    def __init__(self, near: int = 0):
        if near < 0 or near > 255:
            raise ValueError(f"JPEG-LS NEAR must be in 0..255, got {near}")
        self.near = int(near)
        self.name = "jpegls" if near == 0 else f"jpegls-near{near}"
        if near:
            self.kind, self.bound, self.family = NEAR_LOSSLESS, self.near, FAMILY_NEAR_LOSSLESS
            self.curve, self.curve_param = "jpegls-near", float(near)

    def encode(self, array):
        import imagecodecs

        return bytes(imagecodecs.jpegls_encode(_c(array), level=self.near or None))

    def decode(self, data):
        import imagecodecs

        return imagecodecs.jpegls_decode(data)


class J2kReversible(Method):
    name = "j2k-ll"

    def encode(self, array):
        import imagecodecs

        return bytes(imagecodecs.jpeg2k_encode(_c(array), reversible=True, codecformat="J2K"))

    def decode(self, data):
        import imagecodecs

        return imagecodecs.jpeg2k_decode(data)


def format_distance(distance: float) -> str:
    """1.0 -> "1.0", 0.25 -> "0.25": the canonical spelling in method names."""
    s = f"{distance:g}"
    return s if "." in s or "e" in s else s + ".0"


class JxlLossy(Method):
    kind = LOSSY

    def __init__(self, distance: float):
        if not 0.0 < distance <= 25.0:
            raise ValueError(f"JPEG-XL distance must be in (0, 25], got {distance}")
        self.distance = float(distance)
        self.name = f"jxl-d{format_distance(self.distance)}"
        self.curve, self.curve_param = "jxl", self.distance

    def encode(self, array):
        import imagecodecs

        return bytes(imagecodecs.jpegxl_encode(_c(array), distance=self.distance, effort=7, lossless=False))

    def decode(self, data):
        import imagecodecs

        return imagecodecs.jpegxl_decode(data)


class WebpLossy(Method):
    kind = LOSSY

    def __init__(self, quality: int):
        if not 0 <= quality <= 100:
            raise ValueError(f"WebP quality must be in 0..100, got {quality}")
        self.quality = int(quality)
        self.name = f"webp-q{self.quality}"
        self.curve, self.curve_param = "webp", float(self.quality)

    def encode(self, array):
        import imagecodecs

        return bytes(imagecodecs.webp_encode(_c(_rgb(array)), level=self.quality, lossless=False, method=6))

    def decode(self, data):
        import imagecodecs

        return imagecodecs.webp_decode(data)


LOSSLESS_CODECS = ("png", "webp-ll", "jxl-ll", "jpegls", "j2k-ll")
