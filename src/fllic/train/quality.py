"""python -m fllic.train.quality: choose a model's default quality per noise level, on a validation split.

The functionally lossless point is the cheapest quality whose decoded image is
as good as the model's own estimate, within ``--tolerance`` dB (issue 7: the
default point within 0.2 dB of the unquantized estimate). For each sigma of a
grid this measures, on development images (centre crops of the first half of
CBSD68 by name, images 1-34, which no model trained on; BSD68's for grey; never a
test set; ``--photos wikipedia`` takes the crops of WikipediaPhotos 045-049
that fllic 0.12 and earlier chose on, which v1 trained on), the PSNR of the
estimate g_s(g_a(x)) with ŷ unquantized and the PSNR and bpp of every quality
level, picks the coarsest level within tolerance, and writes the choice into
the model file's metadata as ``default_quality`` (metadata is not hashed, so
files already coded stay valid).

With ``--grey`` the same rule runs on grey versions of the crops (BT.601 luma)
and the choice is stored as ``default_quality_grey``, which the codec uses for
grey images: on the same crops grey costs about an eighth less than colour at
a level, and reaches the estimate's PSNR at a coarser level at some sigmas.

Under camera noise (``--camera``) one level serves every noise level: the
finest of the per-level choices. The key of a per-level table, blind sigma,
is a poor key for camera noise: it depends on the image (the noise-level
function reads high on texture) and on the estimator. fllic-camera-v2's first
table was keyed by the blind sigma of an earlier estimator, which the scale
test's change moved, and sent Kodak24 at shot 1e-3 to levels 1 and 2, below
the noisy input's PSNR.

With ``--refine STEPS`` the same rule chooses the levels that ``fllic compress
--refine`` uses (``default_quality_refine``, or ``..._refine_grey`` with
``--grey``). Refinement moves the symbols toward the estimate, so a coarser
level can come within tolerance. Refining is slow (about half a minute per
crop), so only the two levels below the plain default are refined at each
sigma; the plain default stays the choice where neither is within reach.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 35.0, 50.0)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _point(res, ref: np.ndarray) -> tuple[float, float]:
    """(PSNR against ``ref``, bits per pixel of the file) of one encode_detailed result."""
    return _psnr(res.pixels, ref), 8.0 * len(res.data) / (ref.shape[0] * ref.shape[1])


def _noisy(clean: np.ndarray, sigma: float, k: int) -> np.ndarray:
    from fllic.noise import add_noise

    return add_noise(clean, sigma, seed=k) if sigma else clean


def measure(model, images: list[np.ndarray], sigmas=GRID) -> dict[float, dict]:
    """Per sigma: the estimate's PSNR and each level's (PSNR, bpp), averaged over ``images``."""
    from fllic.codec import _pixels, _to_tensor, encode_detailed

    scales = model.meta["quality_scales"]
    out = {}
    for s in sigmas:
        est, levels = [], [[] for _ in scales]
        for k, clean in enumerate(images):
            h, w = clean.shape[:2]
            noisy = _noisy(clean, s, k)
            x = model.estimate(_to_tensor(noisy), float(np.float32(s)), float(np.float32(scales[-1])))
            est.append(_psnr(_pixels(x, h, w, 1 if clean.ndim == 2 else 3), clean))
            for q in range(len(scales)):
                res = encode_detailed(noisy, sigma=s, model=model, quality=q + 1)
                levels[q].append(_point(res, clean))
        out[s] = {"estimate": float(np.mean(est)),
                  "levels": [tuple(float(v) for v in np.mean(lv, axis=0)) for lv in levels]}
        print(f"sigma {s:g}: estimate {out[s]['estimate']:.2f} dB; "
              + "; ".join(f"q{q + 1} {p:.2f} dB {b:.3f} bpp" for q, (p, b) in enumerate(out[s]["levels"])), flush=True)
    return out


def measure_refined(model, images: list[np.ndarray], steps: int, sigmas=GRID, grey: bool = False,
                    below: int = 2) -> dict[float, dict]:
    """Per sigma: the estimate's PSNR, the plain levels' (PSNR, bpp), and with ``steps`` of encoder
    refinement the (PSNR, bpp) of the plain default level and the ``below`` levels under it."""
    from fllic.codec import encode_detailed

    plain = measure(model, images, sigmas)
    out = {}
    for s in sigmas:
        default = model.default_quality(s, grey)
        refined = {}
        for q in range(max(1, default - below), default + 1):
            runs = []
            for k, clean in enumerate(images):
                res = encode_detailed(_noisy(clean, s, k), sigma=s, model=model, quality=q, refine=steps)
                runs.append(_point(res, clean))
            refined[q] = tuple(float(v) for v in np.mean(runs, axis=0))
        out[s] = {**plain[s], "default": default, "refined": refined}
        print(f"sigma {s:g}, refined ({steps} steps): "
              + "; ".join(f"q{q} {p:.2f} dB {b:.3f} bpp" for q, (p, b) in refined.items()), flush=True)
    return out


def choose_refined(table: dict[float, dict], tolerance: float) -> list[list[float]]:
    """choose() for refined coding: per grid sigma the coarsest refined level within ``tolerance``
    of the best measured (estimate, plain or refined level); the plain default where none is."""
    sigmas = sorted(table)
    pairs = []
    for i, s in enumerate(sigmas):
        row = table[s]
        best = max([row["estimate"]] + [p for p, _ in row["levels"]] + [p for p, _ in row["refined"].values()])
        level = next((q for q, (p, _) in sorted(row["refined"].items()) if p >= best - tolerance), row["default"])
        bound = (s + sigmas[i + 1]) / 2 if i + 1 < len(sigmas) else 255.0
        pairs.append([float(bound), int(level)])
    return pairs


CAMERA_SHOTS = (2e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3)  # across the unprocessing paper's range


def measure_camera(model, images: list[np.ndarray], shots=CAMERA_SHOTS) -> dict[float, dict]:
    """measure() for camera noise: per shot level, keyed by the mean blind sigma that auto mode codes with.

    Each crop goes through the camera pipeline (seeded settings); PSNR is
    against the pipeline's noise-free output; coding is blind, as ``fllic
    compress`` runs it (the model's noise map from the measured noise-level function).
    """
    from fllic.codec import _blind_level, _pixels, _to_tensor, _trunk_noise_map, encode_detailed
    from fllic.noise.camera import camera_noise, noise_free, sample_params

    scales = model.meta["quality_scales"]
    out = {}
    for shot in shots:
        est, levels, sigmas = [], [[] for _ in scales], []
        for k, clean in enumerate(images):
            params = sample_params(np.random.default_rng(k), shot=shot)
            noisy, _ = camera_noise(clean, np.random.default_rng(100 + k), params)
            ref = noise_free(clean, params)
            level = _blind_level(noisy)
            s = float(np.float32(level.sigma))
            x = model.estimate(_to_tensor(noisy), s, float(np.float32(scales[-1])), _trunk_noise_map(noisy, level))
            est.append(_psnr(_pixels(x, *clean.shape[:2], 3), ref))
            sigmas.append(s)
            for q in range(len(scales)):
                res = encode_detailed(noisy, model=model, quality=q + 1)
                levels[q].append(_point(res, ref))
        key = round(float(np.mean(sigmas)), 2)
        out[key] = {"shot": shot, "estimate": float(np.mean(est)),
                    "levels": [tuple(float(v) for v in np.mean(lv, axis=0)) for lv in levels]}
        print(f"shot {shot:g} (blind sigma {key:g}): estimate {out[key]['estimate']:.2f} dB; "
              + "; ".join(f"q{q + 1} {p:.2f} dB {b:.3f} bpp" for q, (p, b) in enumerate(out[key]["levels"])),
              flush=True)
    return out


def choose(table: dict[float, dict], tolerance: float) -> list[list[float]]:
    """``[[sigma_max, level], ...]``: per grid sigma the coarsest level within ``tolerance`` of the
    model's best, its estimate (ŷ unquantized) or its best coded level, whichever is higher (a
    coded level can beat an unquantized ŷ that g_s never saw in training); the finest level when
    none is within reach of the estimate."""
    sigmas = sorted(table)
    pairs = []
    for i, s in enumerate(sigmas):
        levels = table[s]["levels"]
        best = max([table[s]["estimate"]] + [p for p, _ in levels])
        level = next((q for q, (p, _) in enumerate(levels) if p >= best - tolerance), len(levels) - 1) + 1
        bound = (s + sigmas[i + 1]) / 2 if i + 1 < len(sigmas) else 255.0
        pairs.append([float(bound), int(level)])
    return pairs


def uniform(pairs: list[list[float]]) -> list[list[float]]:
    """One level for every sigma: the finest of ``pairs``' levels (within tolerance at every level measured)."""
    return [[255.0, max(level for _, level in pairs)]]


def _copy_defaults(source, path: Path, write: bool) -> int:
    from fllic.models.fllic_net import CodingModel
    from fllic.models.registry import resolve

    src, model = resolve(source), CodingModel.load(path)
    if src.meta.get("quality_scales") != model.meta.get("quality_scales"):
        print(f"error: {source} has other quality scales than {path}; its defaults do not apply", file=sys.stderr)
        return 1
    pairs = src.meta["default_quality"]
    print("default_quality:", pairs, f"(from {src.meta.get('id', source)})")
    if write:
        model.meta["default_quality"] = pairs
        model.meta["default_quality_from"] = src.meta.get("id", str(source))
        model.save(path)
        print(f"wrote the defaults into {path}")
    return 0


def development_images(data: Path, photos: str, size: int, every: int = 1, grey: bool = False) -> list[np.ndarray]:
    """Centre ``size`` crops (an even side: whole Bayer cells) of the images the defaults are chosen on.

    ``dev``: every ``every``-th image of the development half of CBSD68, or of
    BSD68 (the same scenes, grey) for ``grey``; ``wikipedia``: WikipediaPhotos
    045-049, grey as BT.601 luma rounded to 8 bits.
    """
    from fllic.bench.splits import split
    from fllic.train.data import VALIDATION_PHOTOS, _load

    if photos == "dev":
        files = split(sorted((data / ("BSD68" if grey else "CBSD68")).glob("*.png")), "dev")[::every]
    else:
        files = [data / "WikipediaPhotos" / f"{stem}.png" for stem in VALIDATION_PHOTOS]
    images = []
    for f in files:
        img = _load(f)
        if grey and img.ndim == 3:  # the luma a grey capture records (ITU-R BT.601 weights)
            img = np.rint(img @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        i, j = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        images.append(np.ascontiguousarray(img[i : i + size, j : j + size]))
    return images


def main(argv: list[str] | None = None) -> int:
    from fllic.models.fllic_net import CodingModel
    p = argparse.ArgumentParser(prog="python -m fllic.train.quality", description=__doc__)
    p.add_argument("--model", type=Path, required=True, help="an exported model file (updated with --write)")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with CBSD68 and BSD68")
    p.add_argument("--photos", choices=("dev", "wikipedia"), default="dev",
                   help="dev: the development half of CBSD68 (BSD68 for --grey); wikipedia: fllic 0.12's crops")
    p.add_argument("--every", type=int, default=3, help="with --photos dev: every Nth development image")
    p.add_argument("--size", type=int, default=320, help="side of the centre crops (even)")
    p.add_argument("--tolerance", type=float, default=0.2, help="dB below the estimate a default may be")
    p.add_argument("--write", action="store_true", help="store the choice in the model file's metadata")
    p.add_argument("--camera", action="store_true",
                   help="measure under the camera pipeline, blind, against its noise-free output (the camera model)")
    p.add_argument("--grey", action="store_true",
                   help="measure on grey versions of the crops and store the choice as the grey images' table")
    p.add_argument("--copy-from", default=None, metavar="MODEL",
                   help="measure nothing: take MODEL's defaults (same quality scales), for a weakly supervised model, "
                        "which may not choose with clean images")
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="choose the levels for refined coding (fllic compress --refine, which runs 50 steps)")
    args = p.parse_args(argv)
    if args.refine and (args.camera or args.copy_from is not None):
        print("error: --refine takes neither --camera nor --copy-from", file=sys.stderr)
        return 2
    if args.grey and args.camera:
        print("error: --grey and --camera do not combine: the camera pipeline is colour", file=sys.stderr)
        return 2
    if args.copy_from is not None:
        return _copy_defaults(args.copy_from, args.model, args.write)
    images = development_images(args.data, args.photos, args.size, args.every, args.grey)
    model = CodingModel.load(args.model)
    if args.refine:
        table = measure_refined(model, images, args.refine, grey=args.grey)
        pairs = choose_refined(table, args.tolerance)
    else:
        table = measure_camera(model, images) if args.camera else measure(model, images)
        pairs = choose(table, args.tolerance)
    if args.camera:
        print("per noise level:", pairs)
        pairs = uniform(pairs)
    key = "default_quality" + ("_refine" if args.refine else "") + ("_grey" if args.grey else "")
    print(f"{key}:", pairs)
    if args.write:  # re-read the file first: a colour and a grey run may share it
        model = CodingModel.load(args.model)
        model.meta[key] = pairs
        model.meta[f"{key}_table"] = {str(s): v for s, v in table.items()}
        model.save(args.model)
        print(f"wrote the defaults into {args.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
