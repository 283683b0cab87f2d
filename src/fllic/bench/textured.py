"""python -m fllic.bench.textured: blind camera-JPEG mode on textured scenes, where the noise reading can be texture.

The camera-JPEG model reads correlated noise as the blind noise-level
function (the per-pixel std of the weakest-texture patches of each
intensity) times its ``correlated_gain``. On a textured scene at mild noise
the weakest patches of some intensities are still texture, the reading is
several times the noise, and the trunk smooths the texture away. Real
photographs with references and textured scenes are scarce, so the textured
set here is synthetic: the development half of CBSD68 (images 1-34, clean
scenes rich in texture; a development set) with camera-JPEG-like noise
(:func:`fllic.noise.camera.shaped_noise`: spatially correlated, mostly luma,
growing with intensity, then JPEG at quality 88-99, 4:4:4, 4:2:2 or 4:2:0
chroma; ``--noise`` sets its level), ``--draws`` seeded draws per image. Beside it, the real photographs of PolyU-dev (centre crops, their
mean-of-shots references; a development set).

``--caps``: the trunk's estimate alone (before coding) with the reading held
to at most each multiple of the PCA reading (``meta["spread_cap"]``,
:meth:`fllic.noise.estimate.NoiseLevel.capped`), then the model's gain; what
a camera model's cap is chosen with; ``--windows`` adds each cap lifted by the
weakest patches' texture ratio over each window (``meta["spread_window"]``,
:meth:`fllic.noise.estimate.NoiseLevelFunction.texture_ratio`). Without it: the blind codec as
``fllic compress`` runs a JPEG input (auto mode, or ``--model`` each),
default level, the file capped at the noisy JPEG's bytes; PSNR against the
clean image, bpp from the files' bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit
from fllic.noise.camera import SHAPED_SIGMA

DEV_IMAGES = 34  # CBSD68 sorted by name: images 1-34 are the development half


def textured_set(data: Path, draws: int, limit: int | None = None,
                 noise: tuple[float, float] | None = None) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """[(name, noisy uint8 RGB decoded from its JPEG, clean uint8 RGB, the noisy JPEG's bytes)], seeded."""
    from PIL import Image

    from fllic.noise.camera import jpeg_bytes, shaped_noise

    files = sorted((data / "CBSD68").glob("*.png"))[:DEV_IMAGES][:limit]
    if not files:
        raise SystemExit(f"error: no CBSD68 images in {data}; pass --data")
    out = []
    for k, path in enumerate(files):
        clean = np.asarray(Image.open(path).convert("RGB"))
        for d in range(draws):
            rng = np.random.default_rng(1000 * k + d)
            noisy, _, params = shaped_noise(clean, rng, noise or SHAPED_SIGMA)
            source = jpeg_bytes(noisy, params["jpeg_quality"], params["jpeg_subsampling"])
            out.append((f"{path.stem}/{d}", noisy, clean, len(source)))
    return out


def _real_set(data: Path, crop: int) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """PolyU-dev's pairs as (name, noisy crop, reference crop, source JPEG bytes); [] without the folder."""
    from fllic.bench.real import pairs, read_pair

    if not data.is_dir():
        return []
    return [(scene, *read_pair(n, r, crop)) for scene, n, r in pairs(data)]


def cap_sweep(items, model, caps) -> dict[str, dict]:
    """{name: {cap: PSNR gain of the trunk's rounded estimate over the noisy image}}; cap None: no cap, a
    number: that cap, a (cap, (lo, hi)) pair: that cap over that texture-ratio window."""
    from tqdm import tqdm

    from fllic.bench.real import _blind_map, trunk_estimate
    from fllic.codec import _blind_level
    from fllic.metrics import psnr
    from fllic.models.registry import resolve

    m = resolve(model)
    gain = float(m.meta.get("correlated_gain", 1.0))
    out = {}
    for name, noisy, clean, _ in tqdm(items, desc="cap sweep", unit="image"):
        level, base = _blind_level(noisy), psnr(noisy, clean)
        out[name] = {}
        for cap in caps:
            lv = _held(level, cap)
            out[name][cap] = psnr(trunk_estimate(m, noisy, _blind_map(noisy, lv, gain), lv.sigma * gain), clean) - base
    return out


def cap_table(sets: dict[str, dict[str, dict]]) -> list[str]:
    """Per cap, per set: the mean gain, the worst image's and how many lose over 1 dB against the noisy image."""
    caps = list(next(iter(next(iter(sets.values())).values())))
    head = [f"{name} ({len(sweep)}): mean, worst, below -1 dB" for name, sweep in sets.items()]
    lines = ["| reading | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for cap in caps:
        cells = []
        for sweep in sets.values():
            v = np.array([s[cap] for s in sweep.values()])
            cells.append(f"{v.mean():+.2f} dB, {v.min():+.2f}, {int((v < -1).sum())}")
        lines.append(f"| {_cap_name(cap)} | " + " | ".join(cells) + " |")
    return lines


def _held(level, cap):
    """``level`` as a sweep entry reads it: None as read, a number held to that cap, (cap, window) that cap
    lifted over that texture-ratio window."""
    if cap is None:
        return level
    return level.capped(*cap) if isinstance(cap, tuple) else level.capped(cap)


def _cap_name(cap) -> str:
    if cap is None:
        return "as read (no cap)"
    if isinstance(cap, tuple):
        return f"at most {cap[0]:g} x PCA, lifted over texture ratio {cap[1][0]:g}-{cap[1][1]:g}"
    return f"at most {cap:g} x PCA"


def codec_rows(items, models, quality: int | None = None) -> dict[str, list[tuple[float, float, float]]]:
    """{model: [(PSNR of the decoded image over the clean, minus the noisy's; bpp; the noisy JPEG's bpp)]}, at
    the default level or at ``quality``."""
    from tqdm import tqdm

    from fllic.codec import encode_detailed
    from fllic.metrics import psnr

    out: dict[str, list] = {m or "auto": [] for m in models}
    for name, noisy, clean, source in tqdm(items, desc="blind codec", unit="image"):
        pixels = noisy.shape[0] * noisy.shape[1]
        base = psnr(noisy, clean)
        for m in models:
            res = encode_detailed(noisy, sigma=None, model=m, quality=quality, max_bytes=source, from_jpeg=True)
            out[m or "auto"].append((psnr(res.pixels, clean) - base, 8.0 * len(res.data) / pixels,
                                     8.0 * source / pixels))
    return out


def codec_table(rows: dict[str, list[tuple[float, float, float]]]) -> list[str]:
    lines = ["| model | mean gain over the noisy image | worst | images below -1 dB | better than noisy | "
             "bpp | noisy JPEG bpp |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m, r in rows.items():
        g = np.array([x[0] for x in r])
        lines.append(f"| `{m}` | {g.mean():+.2f} dB | {g.min():+.2f} | {int((g < -1).sum())} of {len(g)} | "
                     f"{int((g > 0).sum())} | {np.mean([x[1] for x in r]):.3f} | {np.mean([x[2] for x in r]):.3f} |")
    return lines


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise SystemExit(f"error: a window is LO:HI, two numbers, got {text!r}") from None
    return lo, hi


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.textured", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the data folder (CBSD68, PolyU-dev)")
    p.add_argument("--draws", type=int, default=2, help="noise draws per development image")
    p.add_argument("--limit", type=int, default=None, help="only the first N development images")
    p.add_argument("--noise", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="the noise std at mid-grey, 8-bit units, drawn log-uniform in [LO, HI] (default: 1 to 14)")
    p.add_argument("--crop", type=int, default=512, help="side of PolyU-dev's centre crops, pixels")
    p.add_argument("--model", nargs="+", default=None,
                   help="model ids or files (default: auto mode's choice; with --caps, the camera-JPEG model)")
    p.add_argument("--quality", type=int, default=None, help="code at this level (default: the model's default)")
    p.add_argument("--caps", type=float, nargs="+", default=None,
                   help="instead: the trunk's estimate with the reading held to each multiple of the PCA reading")
    p.add_argument("--windows", nargs="+", default=[], metavar="LO:HI",
                   help="with --caps: also each cap lifted as the weakest patches' texture ratio goes from LO to HI")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    textured = textured_set(args.data, args.draws, args.limit, args.noise)
    lo, hi = args.noise or SHAPED_SIGMA
    head = [f"`{command('python -m fllic.bench.textured', argv)}`", "",
            f"Textured: the first {len(textured) // args.draws} CBSD68 images (the development half), "
            f"{args.draws} draws each of camera-JPEG-like noise (`fllic.noise.camera.shaped_noise`, std {lo:g} to "
            f"{hi:g} at mid-grey), the whole image, against the clean image."]
    if args.caps:
        from fllic.models.registry import CAMERA_JPEG_MODEL

        model = args.model[0] if args.model else CAMERA_JPEG_MODEL
        real = _real_set(args.data / "PolyU-dev", args.crop)
        caps = [None, *args.caps] + [(c, _window(w)) for c in args.caps for w in args.windows]
        sets = {"textured": cap_sweep(textured, model, caps)}
        if real:
            sets["PolyU-dev"] = cap_sweep(real, model, caps)
        lines = [f"# The blind reading's cap on textured scenes and real photographs: `{model}`'s trunk", ""] + head + [
            f"PolyU-dev: the centre {args.crop}x{args.crop} crop of each real photograph, against its mean-of-shots "
            "reference. Each cell: the PSNR gain (dB) of the trunk's rounded estimate over the noisy image (before "
            "coding), the reading held to the cap, then scaled by the model's correlated gain.", ""] + cap_table(sets)
    else:
        models = args.model or [None]
        lines = ["# Blind camera-JPEG mode on textured scenes", ""] + head + [
            "Blind, as `fllic compress` runs a JPEG input, "
            + ("default level" if args.quality is None else f"level {args.quality}")
            + ", the file capped at the noisy JPEG's bytes.", ""] + codec_table(codec_rows(textured, models, args.quality))
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
