"""The weakly supervised data set: noisy images made once, stored, and nothing else.

This module is the only place of the weak pipeline that reads clean images:
``make_noisy_set`` noises each training photograph once, with a fixed seed,
and writes the noisy pixels and their noise levels to one .npz file. The
trainer (:mod:`fllic.train.weak`) is given that file and never the data
folder, so it cannot reach a clean pixel (tests/test_weak.py checks it).

``make_pseudo_targets`` reads that file, not the data folder: it runs CBM3D
on each stored noisy image at its stored noise level and writes the results
beside it. A CBM3D estimate is a function of the noisy pixels and sigma alone,
so a trunk distilled from it stays trained from noisy images only
(``python -m fllic.train.weak --trunk-loss distill``).
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
    from fllic.train.data import _half, _load

    images = []
    for name in sets:
        for p in sorted((data_root / name).glob("*")):
            if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
                images.append(_half(_load(p)) if half else _load(p))
    if not images:
        raise FileNotFoundError(f"no training images in {data_root} ({', '.join(sets)})")
    return write_noisy_set(images, out, sigma_range, seed)


def write_noisy_set(images, out: Path, sigma_range=(5.0, 50.0), seed: int = 0) -> int:
    """Noise each image once (sigma ~ U[sigma_range], seeded; grey ones as three equal channels) and store them."""
    from fllic.noise import add_noise

    rng = np.random.default_rng(seed)
    noisy, sigmas = [], []
    for img in images:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        sigma = float(rng.uniform(*sigma_range))
        noisy.append(add_noise(img, sigma, seed=int(rng.integers(1 << 31))))
        sigmas.append(sigma)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, sigmas=np.array(sigmas, np.float32), **{f"img{i}": a for i, a in enumerate(noisy)})
    return len(noisy)


def load_noisy_set(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """(noisy uint8 images, their sigmas) from a file written by :func:`make_noisy_set`."""
    with np.load(path, allow_pickle=False) as f:
        keys = sorted((k for k in f.files if k.startswith("img")), key=lambda k: int(k[3:]))
        return [f[k] for k in keys], f["sigmas"]


PROFILES = ("lc", "np")  # CBM3D's low-complexity and normal profiles


def _cbm3d_one(args: tuple[np.ndarray, float, str]) -> np.ndarray:
    import bm3d
    from bm3d.profiles import BM3DProfileLC

    from fllic.baselines.denoisers import _to_uint8

    noisy, sigma, profile = args
    prof = BM3DProfileLC() if profile == "lc" else "np"
    return _to_uint8(bm3d.bm3d_rgb(noisy.astype(np.float64) / 255.0, sigma / 255.0, profile=prof))


def make_pseudo_targets(noisy_set: Path, out: Path, jobs: int = 2, progress: bool = True, profile: str = "lc") -> int:
    """CBM3D's estimate of every image in ``noisy_set`` at its stored sigma, written to ``out``.

    ``profile`` is CBM3D's low-complexity profile, ``"lc"`` (Mäkinen et al.'s
    ``BM3DProfileLC``), or its normal one, ``"np"``: about 2.5 times slower on
    this CPU and 0.1-0.2 dB better (results/training/weak-v3-trunk-trials.md).

    Each finished image is kept in ``<out>.parts/`` so an interrupted run
    resumes (parts made from another noisy set or profile are dropped);
    ``out`` has the noisy set's keys (img0, img1, ...). Returns the number of
    images. Needs the bm3d package (``pip install 'fllic[bench]'``).
    """
    import hashlib
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    if profile not in PROFILES:
        raise ValueError(f"unknown CBM3D profile {profile!r}; use one of {PROFILES}")
    images, sigmas = load_noisy_set(noisy_set)
    parts = out.with_name(out.name + ".parts")
    # The stamp names the profile except for "lc", so parts made before profiles existed stay valid.
    source = hashlib.sha256(noisy_set.read_bytes()).hexdigest() + (f" {profile}" if profile != "lc" else "")
    stamp = parts / "source.sha256"
    if parts.exists() and (not stamp.exists() or stamp.read_text().strip() != source):
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    stamp.write_text(source)
    todo = [i for i in range(len(images)) if not (parts / f"img{i}.npy").exists()]
    jobs_args = ((images[i], float(sigmas[i]), profile) for i in todo)
    with ProcessPoolExecutor(max(1, jobs)) as pool, tqdm(total=len(images), initial=len(images) - len(todo),
                                                          unit="image", desc="CBM3D", disable=not progress) as bar:
        for i, target in zip(todo, pool.map(_cbm3d_one, jobs_args)):
            np.save(parts / f"img{i}.npy", target)
            bar.update()
    np.savez(out, sigmas=sigmas, **{f"img{i}": np.load(parts / f"img{i}.npy") for i in range(len(images))})
    return len(images)


def targets_path(noisy_set: Path, targets: Path | None = None) -> Path:
    """Where the pseudo-targets are: ``targets``, or cbm3d.npz beside the noisy set."""
    return targets or noisy_set.with_name("cbm3d.npz")


def load_targets(path: Path, images: list[np.ndarray]) -> list[np.ndarray]:
    """The pseudo-targets written by :func:`make_pseudo_targets`, checked against ``images``."""
    targets, _ = load_noisy_set(path)
    if len(targets) != len(images) or any(t.shape != y.shape for t, y in zip(targets, images)):
        raise ValueError(f"{path} does not match the noisy set (made from another one?); remake it")
    return targets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.weak_data", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with the training sets")
    p.add_argument("--sets", nargs="+", default=list(SETS), help="training sets to noise (never a test set)")
    p.add_argument("--out", type=Path, default=Path.home() / ".cache" / "fllic" / "weak" / "noisy.npz")
    p.add_argument("--sigma-range", type=float, nargs=2, default=(5.0, 50.0), metavar=("LO", "HI"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full-size", dest="half", action="store_false", help="do not downscale by 2 first")
    p.add_argument("--cbm3d-targets", type=Path, default=None, metavar="OUT",
                   help="instead: run CBM3D on the noisy set at --out and write its estimates to OUT")
    p.add_argument("--jobs", type=int, default=2, help="CBM3D processes")
    p.add_argument("--profile", choices=PROFILES, default="lc", help="CBM3D's low-complexity or normal profile")
    args = p.parse_args(argv)
    if args.cbm3d_targets is not None:
        if not args.out.exists():
            print(f"error: no noisy set at {args.out}; make it first with python -m fllic.train.weak_data",
                  file=sys.stderr)
            return 1
        import importlib.util

        if importlib.util.find_spec("bm3d") is None:
            print("error: CBM3D targets need the bm3d package: pip install 'fllic[bench]'", file=sys.stderr)
            return 1
        n = make_pseudo_targets(args.out, args.cbm3d_targets, args.jobs, profile=args.profile)
        print(f"wrote CBM3D ({args.profile}) estimates of {n} noisy images to {args.cbm3d_targets}")
        return 0
    n = make_noisy_set(args.data, args.out, args.sets, tuple(args.sigma_range), args.seed, args.half)
    print(f"wrote {n} noisy images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
