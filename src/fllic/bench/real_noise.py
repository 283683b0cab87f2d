"""python -m fllic.bench.real_noise: what real camera noise looks like, beside fllic's synthetic pipelines.

For each real photograph with a mean-of-shots reference (``NAME_Real.*`` and
``NAME_mean.*``; PolyU-dev), on a centre crop, the noise is the photograph
minus its reference (which also carries the reference's own small error):

- its per-pixel std (RMS over channels) against the blind estimator's
  reading of the photograph alone (``fllic.noise.estimate_level``);
- its spatial autocorrelation at lags 1, 2, 4 and 8 pixels (horizontal and
  vertical averaged) and its correlation across colour channels;
- the share of its variance in luma (the mean of R, G and B);
- the JPEG's quality, read from its luminance quantization table against
  the IJG tables, and its chroma subsampling; and how many pixels are clipped.

The same numbers for fllic's two synthetic pipelines, on crops of training
photographs: the Brooks et al. camera pipeline (demosaicing, then JPEG at
quality 90) and the in-camera JPEG engine (``isp_noise``: noise reduction,
sharpening, JPEG at 85-100). ``--plot`` draws the autocorrelations and the
estimator's reading against the true std.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit
from fllic.bench.real import centre_crop, pairs

LAGS = (1, 2, 4, 8)
CROP = 1024


def noise_stats(noisy: np.ndarray, ref: np.ndarray) -> dict:
    """Per-pixel std, autocorrelation per lag, cross-channel correlation and luma share of noisy - ref."""
    d = noisy.astype(np.float64) - ref.astype(np.float64)
    d -= d.mean((0, 1))
    var = (d**2).mean()
    ac = [0.5 * ((d[:, :-k] * d[:, k:]).mean() + (d[:-k] * d[k:]).mean()) / var for k in LAGS]
    cc = np.corrcoef(d.reshape(-1, 3).T)
    luma = d.mean(2)
    return {"std": float(np.sqrt(var)), "ac": ac, "cc": float((cc[0, 1] + cc[0, 2] + cc[1, 2]) / 3),
            "luma_share": float(3 * (luma**2).mean() / (d**2).sum(2).mean()),
            "clipped": float(np.mean((noisy == 0) | (noisy == 255)))}


def jpeg_quality(path: Path) -> tuple[int | None, str]:
    """(the IJG quality whose luminance table is nearest the file's, chroma subsampling) of a JPEG."""
    from PIL import Image, JpegImagePlugin

    with Image.open(path) as im:
        tables = getattr(im, "quantization", None)
        if not tables:
            return None, "-"
        sampling = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(im), "other")
    table = np.asarray(tables[0], np.float64)
    return min(range(1, 101), key=lambda q: np.abs(_ijg_luma(q) - table).sum()), sampling


def _ijg_luma(quality: int) -> np.ndarray:
    """The IJG luminance quantization table at ``quality`` (libjpeg's scaling of the Annex K table)."""
    base = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                     92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


def real_rows(root: Path, size: int) -> list[dict]:
    from PIL import Image

    from fllic.noise import estimate_level

    rows = []
    for scene, noisy_path, ref_path in pairs(root):
        with Image.open(noisy_path) as a, Image.open(ref_path) as b:
            noisy, ref = (centre_crop(np.asarray(im.convert("RGB")), size) for im in (a, b))
        level = estimate_level(noisy)
        quality, sampling = jpeg_quality(noisy_path)
        rows.append({"name": scene, **noise_stats(noisy, ref), "read": level.nlf_rms if level.correlated else level.sigma,
                     "kind": level.kind, "quality": quality, "sampling": sampling})
    return rows


def synthetic_rows(data: Path, count: int, size: int = 256) -> dict[str, list[dict]]:
    """Noise statistics of the two synthetic pipelines on ``count`` crops of training photographs."""
    from fllic.noise import estimate_level
    from fllic.noise.camera import camera_noise, isp_noise, noise_free, sample_params
    from fllic.imageio import read_image

    files = sorted((data / "WikipediaPhotos").glob("*.png"))[:count]
    out: dict[str, list[dict]] = {"Brooks pipeline, JPEG 90": [], "in-camera JPEG engine": []}
    for k, f in enumerate(files):
        clean = centre_crop(read_image(f), size)
        params = sample_params(np.random.default_rng(k), shot=2e-3)
        noisy, _ = camera_noise(clean, np.random.default_rng(100 + k), replace(params, jpeg_quality=90))
        ref = noise_free(clean, params)
        out["Brooks pipeline, JPEG 90"].append({**noise_stats(noisy, ref), "read": estimate_level(noisy).sigma})
        noisy, ref, _ = isp_noise(clean, np.random.default_rng(200 + k), sample_params(np.random.default_rng(k),
                                                                                       shot=2e-3))
        out["in-camera JPEG engine"].append({**noise_stats(noisy, ref), "read": estimate_level(noisy).sigma})
    return out


def table(rows: list[dict], synthetic: dict[str, list[dict]]) -> list[str]:
    lines = ["| photo | noise std | blind reading | std / reading | " + " | ".join(f"corr. lag {k}" for k in LAGS)
             + " | across channels | luma share | JPEG quality, chroma | clipped |",
             "|---|---:|---:|---:|" + "---:|" * len(LAGS) + "---:|---:|---|---:|"]
    for r in rows:
        lines.append(_row(r["name"], r) + f" {r['quality']}, {r['sampling']} | {100 * r['clipped']:.2f} % |")
    lines.append(_row(f"**mean of {len(rows)} real**", _mean(rows)) + " | |")
    for name, group in synthetic.items():
        lines.append(_row(f"{name} (mean of {len(group)} crops)", _mean(group)) + " | |")
    return lines


def _row(name: str, r: dict) -> str:
    return (f"| {name} | {r['std']:.2f} | {r['read']:.2f} | {r['std'] / max(r['read'], 1e-9):.2f} | "
            + " | ".join(f"{v:.2f}" for v in r["ac"]) + f" | {r['cc']:.2f} | {r['luma_share']:.2f} |")


def _mean(rows: list[dict]) -> dict:
    return {"std": np.mean([r["std"] for r in rows]), "read": np.mean([r["read"] for r in rows]),
            "ac": list(np.mean([r["ac"] for r in rows], axis=0)), "cc": np.mean([r["cc"] for r in rows]),
            "luma_share": np.mean([r["luma_share"] for r in rows])}


def plot(rows: list[dict], synthetic: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in rows:
        a.plot(LAGS, r["ac"], color="0.7", lw=0.8)
    a.plot(LAGS, _mean(rows)["ac"], color="k", lw=2, label="real camera JPEGs (mean)")
    for (name, group), colour in zip(synthetic.items(), ("tab:blue", "tab:orange")):
        a.plot(LAGS, _mean(group)["ac"], color=colour, lw=2, ls="--", label=name)
    a.set(xlabel="lag (pixels)", ylabel="noise autocorrelation", xscale="log", title="Spatial correlation of the noise")
    a.set_xticks(LAGS, [str(k) for k in LAGS])
    a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    a.legend(fontsize=8)
    stds, reads = [r["std"] for r in rows], [r["read"] for r in rows]
    b.scatter(reads, stds, color="k", s=14, label="real camera JPEGs")
    top = max(stds + reads) * 1.1
    b.plot([0, top], [0, top], color="0.5", lw=0.8, label="reading = std")
    b.set(xlabel="blind reading (8-bit units)", ylabel="true per-pixel noise std", xlim=(0, top), ylim=(0, top),
          title="The blind estimator against the true std")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.real_noise", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"),
                   help="folder holding PolyU-dev (the real pairs) and WikipediaPhotos (the synthetic crops)")
    p.add_argument("--set", default="PolyU-dev", help="the folder of NAME_Real.* / NAME_mean.* pairs under --data")
    p.add_argument("--crop", type=int, default=CROP, help="side of the centre crop of each real photograph")
    p.add_argument("--synthetic", type=int, default=8, help="training photographs for the synthetic pipelines")
    p.add_argument("--plot", type=Path, default=None, help="write the figure (PNG) here")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    rows = real_rows(args.data / args.set, args.crop)
    if not rows:
        print(f"error: no NAME_Real.* / NAME_mean.* pairs in {args.data / args.set}", file=sys.stderr)
        return 1
    synthetic = synthetic_rows(args.data, args.synthetic)
    if args.plot:
        plot(rows, synthetic, args.plot)
    lines = ["# Real camera noise against fllic's synthetic pipelines", "",
             f"`{command('python -m fllic.bench.real_noise', argv)}`", "",
             f"{len(rows)} photographs of {args.set}, the centre {args.crop}x{args.crop} crop of each; the noise is "
             "the photograph minus its mean-of-shots reference. Blind reading: what `fllic noise` measures on the "
             "photograph alone (the noise-level function's RMS for correlated noise). The synthetic rows use "
             f"{args.synthetic} crops of training photographs at shot-noise factor 0.002.", ""]
    lines += table(rows, synthetic)
    if args.plot:
        lines += ["", f"![noise autocorrelation and the blind reading]({args.plot.name})"]
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
