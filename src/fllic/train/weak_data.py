"""The weakly supervised data set: noisy images made once, stored, and nothing else.

This module is the only place of the weak pipeline that reads clean images:
``make_noisy_set`` noises each training photograph once, with a fixed seed,
and writes the noisy pixels and their noise levels to one .npz file. The
trainer (:mod:`fllic.train.weak`) is given that file and never the data
folder, so it cannot reach a clean pixel (tests/test_weak.py checks it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SETS = ("CBSD432", "WikipediaPhotos")


def make_noisy_set(data_root: Path, out: Path, sets=SETS, sigma_range=(5.0, 50.0), seed: int = 0,
                   half: bool = True) -> int:
    """Noise every image of ``sets`` once (sigma ~ U[sigma_range], seeded) and store the noisy images.

    With ``half`` the photographs are first downscaled by 2, as the supervised
    targets were: the scene, not its JPEG blocks (a property of the capture,
    which a noisy-only pipeline may choose as freely as the supervised one).
    Returns the number of images written.
    """
    from fllic.noise import add_noise
    from fllic.train.data import _half, _load

    rng = np.random.default_rng(seed)
    noisy, sigmas = [], []
    for name in sets:
        for k, p in enumerate(sorted((data_root / name).glob("*"))):
            if p.suffix.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            img = _load(p)
            img = _half(img) if half else img
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            sigma = float(rng.uniform(*sigma_range))
            noisy.append(add_noise(img, sigma, seed=int(rng.integers(1 << 31))))
            sigmas.append(sigma)
    if not noisy:
        raise FileNotFoundError(f"no training images in {data_root} ({', '.join(sets)})")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, sigmas=np.array(sigmas, np.float32), **{f"img{i}": a for i, a in enumerate(noisy)})
    return len(noisy)


def load_noisy_set(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """(noisy uint8 images, their sigmas) from a file written by :func:`make_noisy_set`."""
    with np.load(path, allow_pickle=False) as f:
        keys = sorted((k for k in f.files if k.startswith("img")), key=lambda k: int(k[3:]))
        return [f[k] for k in keys], f["sigmas"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.weak_data", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with the training sets")
    p.add_argument("--sets", nargs="+", default=list(SETS), help="training sets to noise (never a test set)")
    p.add_argument("--out", type=Path, default=Path.home() / ".cache" / "fllic" / "weak" / "noisy.npz")
    p.add_argument("--sigma-range", type=float, nargs=2, default=(5.0, 50.0), metavar=("LO", "HI"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full-size", dest="half", action="store_false", help="do not downscale by 2 first")
    args = p.parse_args(argv)
    n = make_noisy_set(args.data, args.out, args.sets, tuple(args.sigma_range), args.seed, args.half)
    print(f"wrote {n} noisy images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
