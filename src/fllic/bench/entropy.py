"""python -m fllic.bench.entropy: the clean-image entropy estimator H(I) against the truth.

The operational H(I) of a clean image is the bits per pixel, from the file's
bytes, that the supervised model spends on it at its default quality with
sigma 0 (docs/theory.md). The estimate sees only the noisy image and sigma
(:mod:`fllic.entropy.clean`). ``--calibrate`` fits, on noisy training images, the line's four constants
(WikipediaPhotos crops and every 9th CBSD432 photograph), the learned regressor's weights (every CBSD432
photograph beside them) and its grey fit (BSD400), and stores them for the model; the evaluation runs on test
sets (Kodak24, CBSD68, BSD68) it never saw, with the regressor where the model has one (``--line``: the line).
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


def _noisy_samples(files: list[Path], model, desc: str):
    """(file, noisy image, sigma, the clean image's operational bpp) for each file's centre crop at each of
    CALIBRATION_SIGMAS, the noise seeded by the file's index."""
    from tqdm import tqdm

    from fllic.imageio import read_image
    from fllic.noise import add_noise

    for k, f in enumerate(tqdm(files, desc=desc, unit="image")):
        clean = _crop(read_image(f))
        h = operational_bpp(clean, model)
        for s in CALIBRATION_SIGMAS:
            yield f, (add_noise(clean, s, seed=k) if s else clean), s, h


def calibrate_model(data: Path, model, model_id: str, limit: int | None) -> dict:
    """Fit the estimator for ``model`` on noisy training images against their clean images' operational bits.

    The line (D, κ, gain, offset) is fitted on the WikipediaPhotos crops and every 9th CBSD432 photograph,
    as before; the learned regressor (``regressor``: fllic.entropy.clean.fit_regressor's weights) on every
    CBSD432 photograph beside them, at each of CALIBRATION_SIGMAS.
    """
    from fllic.entropy.clean import band_features, calibrate

    wiki = sorted((data / "WikipediaPhotos").glob("*.png"))[:limit]
    bsd = sorted((data / "CBSD432").glob("*.jpg"))[:None if limit is None else 9 * limit]
    line_set = set(wiki + bsd[::9])
    noisy, sigmas, line_target, features, target = [], [], [], [], []
    for f, y, s, h in _noisy_samples(wiki + bsd, model, "calibration images"):
        features.append(band_features(y, s))
        target.append(h)
        if f in line_set:
            noisy.append(y)
            sigmas.append(s)
            line_target.append(h)
    cal = calibrate(noisy, sigmas, line_target, model_id)
    weights, cv = _fit_with_cv(np.array(features), np.array(target), "regressor")
    return {"distortion": cal.distortion, "gain": cal.gain, "offset": cal.offset, "kappa": cal.kappa,
            "regressor": weights, "regressor_cv": cv,
            "calibrated_on": f"line: {len(line_set)} training images (WikipediaPhotos 512x512 centre crops, every 9th "
                             f"CBSD432 image); regressor: {len(wiki) + len(bsd)} (every CBSD432 image), "
                             f"sigma {list(CALIBRATION_SIGMAS)}"}


def calibrate_grey(data: Path, model, limit: int | None) -> dict:
    """The regressor for grey images, fitted on BSD400 (grey training images, 180x180: whole, not cropped)
    against their operational bits: a grey image is coded on the model's grey path."""
    from fllic.entropy.clean import band_features

    files = sorted((data / "BSD400").glob("*.png"))[:limit]
    samples = [(band_features(y, s), h) for _, y, s, h in _noisy_samples(files, model, "grey calibration images")]
    weights, cv = _fit_with_cv(np.array([x for x, _ in samples]), np.array([h for _, h in samples]), "grey regressor")
    return {"regressor_grey": weights, "regressor_grey_cv": cv,
            "grey_calibrated_on": f"{len(files)} BSD400 training images, sigma {list(CALIBRATION_SIGMAS)}"}


def _fit_with_cv(features: np.ndarray, target: np.ndarray, what: str) -> tuple[list[float], dict]:
    """fit_regressor's weights, and cross_validate's scores (printed, and rounded for calibration.json)."""
    from fllic.entropy.clean import fit_regressor

    n = len(target) // len(CALIBRATION_SIGMAS)
    cv = cross_validate(features, target, np.repeat(np.arange(n), len(CALIBRATION_SIGMAS)),
                        np.tile(CALIBRATION_SIGMAS, n))
    for ridge, by_sigma in cv.items():
        print(f"{what}, ridge {ridge:g}: 5-fold MARE by sigma "
              + ", ".join(f"{s:g}: {100 * m:.1f} %" for s, m in by_sigma.items()))
    return ([float(w) for w in fit_regressor(features, target)],
            {f"{r:g}": {f"{s:g}": round(m, 4) for s, m in v.items()} for r, v in cv.items()})


def cross_validate(features: np.ndarray, target: np.ndarray, groups: np.ndarray, sigmas: np.ndarray,
                   ridges=(1e-5, 1e-4, 1e-3, 1e-2), folds: int = 5) -> dict[float, dict[float, float]]:
    """Per ridge, the regressor's mean absolute relative error by sigma, each image predicted by a fit on the
    folds without it (images shuffled into ``folds`` with a fixed seed): how RIDGE was chosen."""
    from fllic.entropy.clean import fit_regressor

    ids = np.unique(groups)
    fold = dict(zip(ids, np.random.default_rng(0).permutation(len(ids)) % folds))
    which = np.array([fold[g] for g in groups])
    out = {}
    for ridge in ridges:
        pred = np.empty(len(target))
        for f in range(folds):
            test = which == f
            pred[test] = features[test] @ fit_regressor(features[~test], target[~test], ridge)
        err = np.abs(np.maximum(pred, 0.0) - target) / target
        out[ridge] = {float(s): float(err[sigmas == s].mean()) for s in np.unique(sigmas)}
    return out


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


def _estimator(cal) -> str:
    if cal.weights is not None:
        grey = "" if cal.weights_grey is None else "; grey images: its fit on BSD400"
        return (f"the learned regressor (band_features, {len(cal.weights)} weights fitted by "
                f"fit_regressor on the calibration images{grey})")
    return (f"the calibrated Gaussian rate, D = {cal.distortion:g}, kappa = {cal.kappa:g}, gain = {cal.gain:.3f}, "
            f"offset = {cal.offset:+.3f}")


def main(argv: list[str] | None = None) -> int:
    from fllic.entropy.clean import Calibration, load_calibration
    from fllic.entropy.clean import CALIBRATED_MODEL
    from fllic.models.registry import resolve

    p = argparse.ArgumentParser(prog="python -m fllic.bench.entropy", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with Kodak24, CBSD68, WikipediaPhotos")
    p.add_argument("--sets", nargs="+", default=["Kodak24", "CBSD68"], help="test sets to evaluate")
    p.add_argument("--model", default=CALIBRATED_MODEL, help="the model whose bits define H(I) (default: the calibrated "
                   "fllic-awgn-v7)")
    p.add_argument("--calibrate", nargs="?", const="both", choices=("colour", "grey", "both"), default=None,
                   help="first fit the estimator on training images and store it for --model: the line and the "
                        "colour regressor (WikipediaPhotos, CBSD432), the grey regressor (BSD400), or both (the default)")
    p.add_argument("--line", action="store_true",
                   help="evaluate the calibrated Gaussian rate (the line), not the learned regressor")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    p.add_argument("--out", type=Path, default=None, help="folder for the record (table, JSON rows, plot)")
    args = p.parse_args(argv)
    model = resolve(args.model)
    model_id = model.meta.get("id", str(args.model))
    if args.calibrate:
        path = Path(str(resources.files("fllic.entropy") / "calibration.json"))
        table_json = json.loads(path.read_text())
        entry = table_json.get(model_id, {})
        if args.calibrate in ("colour", "both"):
            entry = {**calibrate_model(args.data, model, model_id, args.limit),
                     **{k: v for k, v in entry.items() if "grey" in k}}
        if args.calibrate in ("grey", "both"):
            if "distortion" not in entry:
                print(f"error: {model_id} has no colour calibration to add a grey regressor to; run --calibrate "
                      "colour first", file=sys.stderr)
                return 1
            entry.update(calibrate_grey(args.data, model, args.limit))
        table_json[model_id] = entry
        path.write_text(json.dumps(table_json, indent=2) + "\n")
        print(f"calibration for {model_id}: {sorted(entry)}")
    cal: Calibration = load_calibration(model_id)
    if args.line:
        cal = cal.line()
    rows = []
    for name in args.sets:
        if not (args.data / name).is_dir():
            print(f"error: no test set {args.data / name}", file=sys.stderr)
            return 1
        rows += evaluate(args.data / name, model, cal, args.limit)
    lines = ["# Clean-image entropy H(I) estimated from noisy images", "",
             f"`{command('python -m fllic.bench.entropy', argv)}`", "",
             f"H(I): bpp of the .fllic file of the clean image under `{model_id}` (sigma 0, default quality). "
             f"Estimate: `fllic.entropy.clean` from the noisy image (seeded AWGN) and sigma, {_estimator(cal)}. "
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
