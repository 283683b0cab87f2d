"""python -m fllic.bench.entropy: the clean-image entropy estimator H(I) against the truth.

The operational H(I) of a clean image is the bits per pixel, from the file's
bytes, that the supervised model spends on it at its default quality with
sigma 0 (docs/theory.md). The estimate sees only the noisy image and sigma
(:mod:`fllic.entropy.clean`). ``--calibrate`` fits the estimator's four
constants on training images (WikipediaPhotos crops and every 9th CBSD432 photograph) and stores them for the
model; the evaluation runs on test sets (Kodak24, CBSD68) it never saw.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

SIGMAS = (5.0, 15.0, 25.0, 50.0)
CALIBRATION_SIGMAS = (0.0, 5.0, 15.0, 25.0, 50.0)


def operational_bpp(clean: np.ndarray, model) -> float:
    """H(I): bits per pixel of the .fllic file of the clean image (sigma 0, default quality)."""
    from fllic.codec import encode

    return 8.0 * len(encode(clean, sigma=0.0, model=model)) / (clean.shape[0] * clean.shape[1])


def _crop(img: np.ndarray, size: int = 512) -> np.ndarray:
    i, j = max(0, (img.shape[0] - size) // 2), max(0, (img.shape[1] - size) // 2)
    return img[i : i + size, j : j + size]


def calibrate_model(data: Path, model, model_id: str, limit: int | None) -> dict:
    from tqdm import tqdm

    from fllic.entropy.clean import calibrate
    from fllic.imageio import read_image
    from fllic.noise import add_noise

    files = sorted((data / "WikipediaPhotos").glob("*.png"))[:limit]
    files += sorted((data / "CBSD432").glob("*.jpg"))[::9][:limit]
    noisy, sigmas, target = [], [], []
    for k, f in enumerate(tqdm(files, desc="calibration images", unit="image")):
        clean = _crop(read_image(f))
        h = operational_bpp(clean, model)
        for s in CALIBRATION_SIGMAS:
            noisy.append(add_noise(clean, s, seed=k) if s else clean)
            sigmas.append(s)
            target.append(h)
    cal = calibrate(noisy, sigmas, target, model_id)
    return {"distortion": cal.distortion, "gain": cal.gain, "offset": cal.offset, "kappa": cal.kappa,
            "calibrated_on": f"{len(files)} training images (WikipediaPhotos 512x512 centre crops, every 9th CBSD432 "
                             f"image), sigma {list(CALIBRATION_SIGMAS)}"}


def evaluate(folder: Path, model, calibration, limit: int | None) -> list[dict]:
    from tqdm import tqdm

    from fllic.entropy.clean import estimate_clean_bpp
    from fllic.imageio import read_image
    from fllic.noise import add_noise

    rows = []
    for k, f in enumerate(tqdm(sorted(folder.glob("*.png"))[:limit], desc=folder.name, unit="image")):
        clean = read_image(f)
        truth = operational_bpp(clean, model)
        for s in SIGMAS:
            est = estimate_clean_bpp(add_noise(clean, s, seed=k), s, calibration)
            rows.append({"set": folder.name, "image": f.stem, "sigma": s, "truth": truth, "estimate": est})
    return rows


def table(rows: list[dict]) -> list[str]:
    out = ["| set | σ | images | mean H(I) (bpp) | mean estimate | MARE | worst relative error |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r["set"] for r in rows):
        for s in SIGMAS:
            sel = [r for r in rows if r["set"] == name and r["sigma"] == s]
            rel = np.array([abs(r["estimate"] - r["truth"]) / r["truth"] for r in sel])
            out.append(f"| {name} | {s:g} | {len(sel)} | {np.mean([r['truth'] for r in sel]):.3f} | "
                       f"{np.mean([r['estimate'] for r in sel]):.3f} | {100 * rel.mean():.1f} % | {100 * rel.max():.1f} % |")
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for s in SIGMAS:
        sel = [r for r in rows if r["sigma"] == s]
        ax.scatter([r["truth"] for r in sel], [r["estimate"] for r in sel], s=10, label=f"σ {s:g}")
    top = max(max(r["truth"], r["estimate"]) for r in rows) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.set(xlabel="H(I): bits of the clean image (bpp)", ylabel="estimate from the noisy image (bpp)",
           xlim=(0, top), ylim=(0, top), title="Clean-image entropy from noisy images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    from fllic.entropy.clean import DEFAULT_CALIBRATION, Calibration, load_calibration
    from fllic.models.registry import resolve

    p = argparse.ArgumentParser(prog="python -m fllic.bench.entropy", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with Kodak24, CBSD68, WikipediaPhotos")
    p.add_argument("--sets", nargs="+", default=["Kodak24", "CBSD68"], help="test sets to evaluate")
    p.add_argument("--model", default=DEFAULT_CALIBRATION, help="the model whose bits define H(I)")
    p.add_argument("--calibrate", action="store_true", help="first fit the estimator on WikipediaPhotos and store it for --model")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    p.add_argument("--out", type=Path, default=None, help="folder for the record (table, JSON rows, plot)")
    args = p.parse_args(argv)
    model = resolve(args.model)
    model_id = model.meta.get("id", str(args.model))
    if args.calibrate:
        entry = calibrate_model(args.data, model, model_id, args.limit)
        path = Path(str(resources.files("fllic.entropy") / "calibration.json"))
        table_json = json.loads(path.read_text())
        table_json[model_id] = entry
        path.write_text(json.dumps(table_json, indent=2) + "\n")
        print(f"calibration for {model_id}: {entry}")
    cal: Calibration = load_calibration(model_id)
    rows = []
    for name in args.sets:
        if not (args.data / name).is_dir():
            print(f"error: no test set {args.data / name}", file=sys.stderr)
            return 1
        rows += evaluate(args.data / name, model, cal, args.limit)
    lines = ["# Clean-image entropy H(I) estimated from noisy images", "",
             f"`{command('python -m fllic.bench.entropy', argv)}`", "",
             f"H(I): bpp of the .fllic file of the clean image under `{model_id}` (sigma 0, default quality). "
             f"Estimate: `fllic.entropy.clean` from the noisy image (seeded AWGN) and sigma, calibration "
             f"D = {cal.distortion:g}, kappa = {cal.kappa:g}, gain = {cal.gain:.3f}, offset = {cal.offset:+.3f}. "
             "MARE: mean absolute relative error.", ""] + table(rows)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
        plot(rows, args.out / "entropy.png")
        lines += ["", "![estimate against truth](entropy.png)"]
    emit("\n".join(lines) + "\n", None if args.out is None else args.out / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
