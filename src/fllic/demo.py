"""``fllic demo``: the main job on the bundled sample, end to end."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from fllic._errors import FllicError, InputError


def sample_image() -> np.ndarray:
    """The bundled clean sample: a 512x384 crop of Kodak's kodim23 (released for unrestricted use)."""
    from fllic.imageio import read_image

    return read_image(Path(str(resources.files("fllic") / "data" / "sample.png")))


def _lossless_sizes(noisy: np.ndarray) -> dict[str, int]:
    import imagecodecs

    return {
        "PNG (level 9)": len(imagecodecs.png_encode(noisy, level=9)),
        "JPEG-XL lossless (effort 7)": len(imagecodecs.jpegxl_encode(noisy, lossless=True, effort=7)),
    }


def run_demo(sigma: float, seed: int, out: Path, force: bool, quality: int | None = None) -> int:
    from fllic.codec import decode, encode_detailed
    from fllic.imageio import write_image
    from fllic.metrics import bpp, psnr
    from fllic.noise import add_noise

    targets = {name: out / name for name in ("noisy.png", "decoded.png", "sample.fllic")}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} exist; pass --force to overwrite")
    clean = sample_image()
    noisy = add_noise(clean, sigma, seed)
    h, w = clean.shape[:2]
    res = encode_detailed(noisy, sigma=sigma, quality=quality)
    decoded = decode(res.data)
    if not np.array_equal(decoded, res.pixels):
        raise FllicError("decoded image differs from the encoder's reconstruction")
    out.mkdir(parents=True, exist_ok=True)
    write_image(targets["noisy.png"], noisy)
    write_image(targets["decoded.png"], decoded)
    targets["sample.fllic"].write_bytes(res.data)

    print(f"sample {w}x{h} RGB, AWGN sigma {sigma:g} (seed {seed}), rounded and clipped to 8 bits")
    print(f"{'method':42s} {'bytes':>9s} {'bpp':>8s} {'PSNR vs clean':>14s}")
    print(f"{'fllic (quality ' + str(res.quality) + ')':42s} {len(res.data):9d} "
          f"{bpp(len(res.data), h, w):8.3f} {psnr(decoded, clean):11.2f} dB")
    for name, size in _lossless_sizes(noisy).items():
        print(f"{name + ', noisy image':42s} {size:9d} {bpp(size, h, w):8.3f} {psnr(noisy, clean):11.2f} dB")
    print(f"decoded image equals the encoder's reconstruction: yes; model estimate "
          f"{res.estimated_bits / (h * w):.3f} bpp")
    print(f"wrote {targets['noisy.png']}, {targets['decoded.png']}, {targets['sample.fllic']}")
    return 0
