"""From per-image records to results.json, report.md, cost.md and the RD plots.

Means are taken over images, per sigma and method: bpp, PSNR and SSIM are
plain means of the per-image values (PSNR is averaged in dB, the field's
convention). Seconds per megapixel are total seconds over total megapixels.
BD-rate and BD-PSNR (see :mod:`fllic.bench.bd`) compare the mean curves:
fllic's quality points against each denoiser -> lossy-codec sweep, the
CBM3D -> JPEG-XL one first. A sweep's curve ends at the same denoiser's
lossless cascade with that codec (JPEG-XL lossless is the limit of distance 0),
so it reaches up to the denoiser's own PSNR. Where fllic's PSNR range and the
anchor's do not overlap, no Bjøntegaard delta exists and the report says so.
"""

from __future__ import annotations

import datetime
import json
import math
import platform
from pathlib import Path

import numpy as np

from fllic.baselines import FAMILY_TITLES
from fllic.bench import bd

MEAN_KEYS = ("bytes", "bpp", "psnr", "ssim", "psnr_noisy", "encode_s", "decode_s", "denoise_s")
SINGLE_POINT_FAMILIES = ("lossless", "near-lossless", "cascade")
ANCHOR_CURVE = "cbm3d+jxl"


def sigma_key(sigma: float) -> str:
    return f"{sigma:g}"


def _mean(values) -> float | None:
    """Mean of the values, or None when there are none or any is None (an infinite PSNR)."""
    values = list(values)
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))


def _means(records: list[dict], pixels: dict[str, int]) -> dict:
    out: dict = {}
    for r in records:
        out.setdefault(r["method"], []).append(r)
    means = {}
    for name, rs in out.items():
        first = rs[0]
        m = {k: first[k] for k in ("family", "kind", "bound", "curve", "curve_param")}
        m["n"] = len(rs)
        for k in MEAN_KEYS:
            if k == "denoise_s" and first[k] is None:
                m[k] = None
                continue
            m[k] = _mean(r[k] for r in rs)
        mp = sum(pixels[r["image"]] for r in rs) / 1e6
        m["encode_s_per_mp"] = sum(r["encode_s"] for r in rs) / mp
        m["decode_s_per_mp"] = sum(r["decode_s"] for r in rs) / mp
        m["peak_mb"] = max(r["peak_mb"] for r in rs)
        m["check"] = ", ".join(sorted({r["check"] for r in rs}))
        means[name] = m
    return means


# A lossy sweep ends at its codec's lossless point (distance 0): the denoised image itself.
SWEEP_ENDPOINTS = {"jxl": "jxl-ll", "webp": "webp-ll"}


def curves_of(means: dict) -> dict[str, list[tuple[str, float, float | None]]]:
    """Curve label -> [(method, bpp, psnr)] sorted by bpp; sweeps end at their lossless cascade."""
    curves: dict[str, list] = {}
    for name, m in means.items():
        if m["curve"]:
            curves.setdefault(m["curve"], []).append((name, m["bpp"], m["psnr"]))
    for label, pts in curves.items():
        den, _, codec = label.partition("+")
        end = f"{den}+{SWEEP_ENDPOINTS.get(codec, '')}"
        if codec in SWEEP_ENDPOINTS and end in means:
            pts.append((end, means[end]["bpp"], means[end]["psnr"]))
    return {k: sorted(v, key=lambda p: p[1]) for k, v in curves.items()}


def bd_rows(curves: dict) -> list[dict]:
    if "fllic" not in curves:
        return []
    test = curves["fllic"]
    anchors = sorted((c for c in curves if "+" in c), key=lambda c: (c != ANCHOR_CURVE, c))
    rows = []
    for a in anchors:
        row = {"anchor": a, "test": "fllic", "interpolation": "pchip", "points": [len(curves[a]), len(test)],
               "bd_rate_pct": None, "bd_psnr_db": None, "error": None}
        try:
            args = ([p[1] for p in curves[a]], [p[2] for p in curves[a]], [p[1] for p in test], [p[2] for p in test])
            row["bd_rate_pct"] = bd.bd_rate(*args)
            row["bd_psnr_db"] = bd.bd_psnr(*args)
        except bd.BDError as e:
            row["error"] = str(e)
        rows.append(row)
    return rows


def _default_point(means: dict, curves: dict, default_quality: int | None) -> dict | None:
    fllic = {n: m for n, m in means.items() if m["family"] == "fllic"}
    if not fllic:
        return None
    if "fllic-default" in fllic:  # the model's own default for this sigma, as the codec picks it
        name = "fllic-default"
    elif f"fllic-q{default_quality}" in fllic:
        name = f"fllic-q{default_quality}"
    else:
        name = max(fllic, key=lambda n: fllic[n]["curve_param"])
    f = fllic[name]
    vs = []
    for n, m in means.items():
        if m["family"] in SINGLE_POINT_FAMILIES:
            vs.append({"method": n, "family": m["family"], "bpp": m["bpp"], "psnr": m["psnr"],
                       "bits_factor": m["bpp"] / f["bpp"] if f["bpp"] else None,
                       "psnr_diff_db": None if m["psnr"] is None or f["psnr"] is None else f["psnr"] - m["psnr"] + 0.0})
    at_psnr = {}
    for c, pts in curves.items():
        if "+" in c and f["psnr"] is not None:
            try:
                r = bd.rate_at_psnr([p[1] for p in pts], [p[2] for p in pts], f["psnr"])
            except bd.BDError:
                r = None
            at_psnr[c] = {"bpp": r, "bits_factor": r / f["bpp"] if r and f["bpp"] else None}
    return {"method": name, "is_model_default": name in ("fllic-default", f"fllic-q{default_quality}"), "bpp": f["bpp"],
            "psnr": f["psnr"], "ssim": f["ssim"], "vs": vs, "sweep_bpp_at_same_psnr": at_psnr}


def _cost(records: list[dict], pixels: dict[str, int], model, size: tuple[int, int]) -> dict:
    from fllic.bench.cost import DECODE_STAGES, ENCODE_STAGES, network_cost

    net = network_cost(model) if model is not None else None
    by_method: dict[str, list[dict]] = {}
    for r in records:
        by_method.setdefault(r["method"], []).append(r)
    rows = []
    for name, rs in by_method.items():
        mp = sum(pixels[r["image"]] for r in rs) / 1e6
        network = "codec" if rs[0]["family"] == "fllic" else ("denoiser" if name.startswith("fllicdn+") else None)
        row = {"method": name, "family": rs[0]["family"], "params": None,
               "macs_per_px_encode": None, "macs_per_px_decode": None,
               "encode_s_per_mp": sum(r["encode_s"] for r in rs) / mp,
               "decode_s_per_mp": sum(r["decode_s"] for r in rs) / mp,
               "peak_mb": max(r["peak_mb"] for r in rs), "runs": len(rs)}
        if network and net is not None:
            row["params"] = net.parameters(network)
            row["macs_per_px_encode"] = net.macs_per_pixel(ENCODE_STAGES[network], *size)
            row["macs_per_px_decode"] = net.macs_per_pixel(DECODE_STAGES[network], *size)
        rows.append(row)
    return {"image_size": list(size), "rows": rows}


def _platform() -> dict:
    import os
    import sys

    info = {"python": platform.python_version(), "machine": platform.machine(), "system": platform.system(),
            "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def _home_relative(path) -> str:
    """``path`` with the user's home written as ``~``: a record names no machine's directories."""
    path, home = Path(path).expanduser().resolve(), Path.home().resolve()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def summarize(results: list[dict], cfg, model) -> dict:
    """The content of results.json."""
    import fllic

    results = sorted(results, key=lambda t: (cfg.sigmas.index(t["sigma"]), t["index"]))
    pixels = {t["image"]: t["height"] * t["width"] for t in results}
    records = [r for t in results for r in t["records"]]
    by_sigma: dict[str, dict] = {}
    for s in cfg.sigmas:
        k = sigma_key(s)
        rs = [r for r in records if r["sigma"] == s]
        means = _means(rs, pixels)
        curves = curves_of(means)
        quality = model.default_quality(s) if model is not None else None
        by_sigma[k] = {
            "sigma": s,
            "noisy_psnr": _mean(t["noisy_psnr"] for t in results if t["sigma"] == s),
            "means": means,
            "bd": bd_rows(curves),
            "default_point": _default_point(means, curves, quality),
        }
    first = results[0]
    seen, image_rows = set(), []
    for t in results:
        if t["image"] not in seen:
            seen.add(t["image"])
            image_rows.append({"name": t["image"], "height": t["height"], "width": t["width"],
                               "channels": t["channels"], "clean_sha256": t["clean_sha256"],
                               "noise_entropy": t["noise_entropy"]})
    return {
        "fllic_version": fllic.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": _platform(),
        "config": {
            "data": str(cfg.data), "dataset": Path(cfg.data).resolve().name, "sigmas": list(cfg.sigmas),
            "noise": cfg.noise, "seed": cfg.seed,
            "seed_rule": "numpy.random.default_rng([seed, int(clean_sha256[:16], 16)])",
            "methods_requested": list(cfg.methods), "limit": cfg.limit, "half": cfg.half, "jobs": cfg.jobs,
            "cache_dir": None if cfg.cache_dir is None else _home_relative(cfg.cache_dir),
            "model": None if model is None else {
                "id": model.meta.get("id", "custom"), "weights_hash": model.hash.hex(),
                "quality_levels": len(model.meta.get("quality_scales", [1.0]))},
            "bpp": "bits per pixel of the image (not per sub-pixel)",
            "null_psnr": "a null PSNR is infinite: the images are identical",
        },
        "images": image_rows,
        "per_image": records,
        "by_sigma": by_sigma,
        "cost": _cost(records, pixels, model, (first["height"], first["width"])),
    }


# -- writing ---------------------------------------------------------------------------
def _json_safe(x):
    """Floats to 7 significant digits; non-finite ones become None (JSON has no inf or nan)."""
    if isinstance(x, float):
        return float(f"{x:.7g}") if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        return _json_safe(x.item())
    return x


def results_json(summary: dict) -> str:
    """The summary as JSON, indented, with one line per per-image record (keeps big runs diffable)."""
    body = _json_safe(summary)
    records = body.pop("per_image")
    text = json.dumps(body, indent=1, allow_nan=False)
    lines = ",\n  ".join(json.dumps(r, allow_nan=False, separators=(", ", ": ")) for r in records)
    return text[:-2] + ',\n "per_image": [\n  ' + lines + "\n ]\n}\n"


def write_outputs(summary: dict, out: Path) -> list[Path]:
    """results.json, report.md, cost.md and rd_sigma<S>.png in ``out``; returns the paths. All drawn from the
    summary as results.json holds it (7 significant digits), so a redraw from that file gives the same text."""
    summary = _json_safe(summary)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "report.md", out / "cost.md"]
    paths[0].write_text(results_json(summary))
    plots = {k: out / f"rd_sigma{k}.png" for k in summary["by_sigma"]}
    for k, path in plots.items():
        plot_rd(summary, k, path)
    paths[2].write_text(cost_markdown(summary) + "\n")
    paths[1].write_text(report_markdown(summary, {k: p.name for k, p in plots.items()}))
    return paths + list(plots.values())


def _f(x, digits: int = 3, suffix: str = "") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}{suffix}"


def _sec(x) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    return "<0.001" if x < 0.001 else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _macs(x) -> str:
    return "—" if x is None else ("0" if x == 0 else f"{x / 1e3:.1f} k")


def _psnr(x) -> str:
    return "∞" if x is None else f"{x:.2f}"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _best(means: dict, pred) -> tuple[str, dict] | None:
    items = [(n, m) for n, m in means.items() if pred(n, m)]
    return min(items, key=lambda nm: nm[1]["bpp"]) if items else None


def headline_rows(summary: dict) -> list[list[str]]:
    rows = []
    for k, s in summary["by_sigma"].items():
        means, dp = s["means"], s["default_point"]
        best_ll = _best(means, lambda n, m: m["family"] == "lossless")
        half = int(np.floor(s["sigma"] / 2))
        near = means.get(f"jpegls-near{half}")
        casc = _best(means, lambda n, m: m["family"] == "cascade" and n.startswith("cbm3d+"))
        anchor = (dp or {}).get("sweep_bpp_at_same_psnr", {}).get(ANCHOR_CURVE) or {}

        def cell(nm):
            return "—" if nm is None else f"{nm[1]['bpp']:.3f} ({_psnr(nm[1]['psnr'])} dB, {nm[0]})"

        rows.append([
            k, _psnr(s["noisy_psnr"]),
            "—" if dp is None else f"**{dp['bpp']:.3f}** ({_psnr(dp['psnr'])} dB)",
            cell(best_ll), "—" if near is None else f"{near['bpp']:.3f} ({_psnr(near['psnr'])} dB)",
            cell(casc), _f(anchor.get("bpp")),
        ])
    return rows


HEADLINE_HEADER = ["σ", "noisy PSNR", "fllic, default point: bpp (PSNR)", "best lossless, noisy",
                   "JPEG-LS NEAR=⌊σ/2⌋", "best CBM3D → lossless", "CBM3D → JPEG-XL bpp at fllic's PSNR"]


def _method_rows(means: dict) -> list[list[str]]:
    order = list(FAMILY_TITLES)
    rows = []
    for name, m in sorted(means.items(), key=lambda nm: (order.index(nm[1]["family"]), nm[1]["bpp"])):
        rows.append([
            name, FAMILY_TITLES[m["family"]], f"{m['bpp']:.3f}", _psnr(m["psnr"]), _f(m["ssim"], 4),
            _psnr(m["psnr_noisy"]), _sec(m["encode_s"]), _sec(m["decode_s"]), _f(m["peak_mb"], 1), m["check"],
        ])
    return rows


def report_markdown(summary: dict, plots: dict[str, str]) -> str:
    c = summary["config"]
    n = len(summary["images"])
    model = c["model"]
    lines = [
        f"# fllic bench: {c['dataset']}, {c['noise'].upper()} σ = {', '.join(sigma_key(s) for s in c['sigmas'])}",
        "",
        f"{n} image(s) from `{c['data']}`"
        + {"dev": " (the development half, images 1-34 by name)", "test": " (the test half, images 35-68 by name)"}.get(
            c.get("half"), "")
        + f"; noise `{c['noise']}` with seed {c['seed']} "
        f"(per image: `{c['seed_rule']}`), rounded and clipped to 8 bits. "
        + (f"fllic model `{model['id']}` (weights `{model['weights_hash']}`), "
           f"quality levels 1..{model['quality_levels']}. "
           if model else "")
        + f"fllic {summary['fllic_version']}, {summary['created']}, {summary['platform']['system']} "
        f"{summary['platform']['machine']} with {summary['platform']['cpu_count']} CPU(s), --jobs {c['jobs']}.",
        "",
        "bpp is bits per pixel of the image (not per sub-pixel), from the real file bytes. PSNR (dB, peak 255) "
        "and SSIM are against the clean image, means over images; *PSNR vs noisy* is against the noisy input "
        "(∞: identical). Seconds are means per image; a cascade's encode seconds include its denoiser's, "
        "as measured when it ran (outputs are cached on disk). Peak MB is the largest rise of resident memory "
        "during one method on one image (a lower bound). Every decode was checked: *exact* (lossless), "
        "*±N* (near-lossless: every sample within N of the input), *crc* (fllic's decoder verifies the "
        "encoder's reconstruction).",
        "",
        "## Headline",
        "",
        _table(HEADLINE_HEADER, headline_rows(summary)),
        "",
    ]
    for k, s in summary["by_sigma"].items():
        lines += [f"## σ = {k}", "", f"Noisy image: {_psnr(s['noisy_psnr'])} dB PSNR.", ""]
        if k in plots:
            lines += [f"![rate–distortion, σ = {k}]({plots[k]})", ""]
        lines += [_table(["method", "family", "bpp", "PSNR", "SSIM", "PSNR vs noisy", "encode s",
                          "decode s", "peak MB", "check"], _method_rows(s["means"]), "llrrrrrrrl"), ""]
        if s["bd"]:
            lines += [f"### Bjøntegaard deltas of fllic's quality points (σ = {k})", "",
                      "Negative BD-rate: fllic needs fewer bits for the same PSNR; positive BD-PSNR: higher PSNR "
                      "at the same rate. Mean curves, PCHIP interpolation over the shared range; each sweep "
                      "ends at its lossless cascade (e.g. cbm3d+jxl-ll).", ""]
            rows = [[f"fllic vs {b['anchor']}", f"{b['points'][1]} vs {b['points'][0]}",
                     _f(b["bd_rate_pct"], 1, " %"), _f(b["bd_psnr_db"], 2, " dB"), b["error"] or ""]
                    for b in s["bd"]]
            lines += [_table(["comparison", "points", "BD-rate", "BD-PSNR", "note"], rows, "lrrrl"), ""]
        dp = s["default_point"]
        if dp:
            lines += [f"### fllic's default point ({dp['method']}) against the single-point methods (σ = {k})", "",
                      f"fllic: {dp['bpp']:.3f} bpp, {_psnr(dp['psnr'])} dB. *× bits*: how many times more bits "
                      "the method spends than fllic; *ΔPSNR*: fllic's PSNR minus the method's.", ""]
            order = list(FAMILY_TITLES)
            rows = [[v["method"], FAMILY_TITLES[v["family"]], f"{v['bpp']:.3f}", _psnr(v["psnr"]),
                     _f(v["bits_factor"], 2, "×"), _f(v["psnr_diff_db"], 2, " dB")]
                    for v in sorted(dp["vs"], key=lambda v: (order.index(v["family"]), v["bpp"]))]
            lines += [_table(["method", "family", "bpp", "PSNR", "× bits", "ΔPSNR"], rows, "llrrrr"), ""]
            sweeps = dp["sweep_bpp_at_same_psnr"]
            if sweeps:
                lines += ["Rate each lossy cascade needs to reach fllic's PSNR (interpolated on its mean curve): "
                          + "; ".join(f"{c}: {_f(v['bpp'])} bpp ({_f(v['bits_factor'], 2, '×')})"
                                      if v["bpp"] else f"{c}: outside its range" for c, v in sweeps.items()) + ".", ""]
    lines += ["## Cost", "", cost_markdown(summary), ""]
    return "\n".join(lines)


def cost_markdown(summary: dict) -> str:
    cost = summary["cost"]
    h, w = cost["image_size"]
    rows = []
    for r in sorted(cost["rows"], key=lambda r: list(FAMILY_TITLES).index(r["family"])):
        rows.append([
            r["method"], "—" if r["params"] is None else f"{r['params'] / 1e6:.3g} M",
            _macs(r["macs_per_px_encode"]), _macs(r["macs_per_px_decode"]),
            _sec(r["encode_s_per_mp"]), _sec(r["decode_s_per_mp"]), _f(r["peak_mb"], 1), str(r["runs"]),
        ])
    note = (f"Parameters and multiply–accumulates per pixel (convolutions only, counted with forward hooks, "
            f"at {w}×{h} with padding charged) for the methods that run fllic's network; seconds per megapixel "
            "(total seconds over total megapixels, all σ) and the largest peak-memory rise for every method. "
            "fllic encoding runs g_a, h_a, h_s and g_s, decoding h_s and g_s; `fllicdn` runs g_a and g_s.")
    table = _table(["method", "parameters", "MACs/px encode", "MACs/px decode", "encode s/MP", "decode s/MP",
                    "peak MB", "runs"], rows)
    return note + "\n\n" + table


# -- plots -------------------------------------------------------------------------------
_CODEC_MARKERS = {"png": "o", "webp-ll": "s", "jxl-ll": "D", "jpegls": "^", "j2k-ll": "v"}
_DENOISER_COLOURS = {None: "0.45", "cbm3d": "tab:blue", "fllicdn": "tab:green"}


def plot_rd(summary: dict, key: str, path: Path) -> None:
    """Rate–distortion plot for one sigma: log bpp against PSNR, every method."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    s = summary["by_sigma"][key]
    means = s["means"]
    fig = Figure(figsize=(10, 6))
    ax = fig.subplots()
    for name, m in means.items():
        if m["family"] not in ("lossless", "cascade") or m["psnr"] is None:
            continue
        den, _, codec = name.rpartition("+")
        ax.scatter([m["bpp"]], [m["psnr"]], marker=_CODEC_MARKERS.get(codec, "P"), s=45,
                   color=_DENOISER_COLOURS.get(den or None, "tab:purple"), label=name, zorder=3)
    curves = curves_of(means)
    styles = {"fllic": dict(color="tab:red", marker="*", ms=11, lw=2.2, zorder=5),
              "jpegls-near": dict(color="tab:orange", marker="x", ms=7, lw=1.2, ls=":")}
    palette = ["tab:blue", "tab:cyan", "tab:purple", "tab:brown", "tab:olive", "tab:pink"]
    sweeps = [c for c in sorted(curves) if c not in styles]
    for label, pts in sorted(curves.items()):
        pts = [p for p in pts if p[2] is not None]
        if not pts:
            continue
        if label in ("fllic-default", "fllic-refine"):  # one point, not a sweep: the model's default level
            ax.scatter([pts[0][1]], [pts[0][2]], marker="D", s=70, facecolors="none", edgecolors="tab:red", lw=1.6,
                       zorder=6, label=f"{label} (the model's default level)")
            continue
        i = sweeps.index(label) if label in sweeps else 0
        style = styles.get(label, dict(marker="o", ms=4, lw=1.3, ls=["-", "--"][i % 2], color=palette[i % 6]))
        shown = {"fllic": "fllic (quality points)", "jpegls-near": "jpegls-near (NEAR 1, 2, 4, ⌊σ/2⌋)"}
        ax.plot([p[1] for p in pts], [p[2] for p in pts], label=shown.get(label, label + " (sweep)"), **style)
        if label in ("fllic", "jpegls-near"):
            for name, x, y in pts:
                ax.annotate(name.rsplit("-", 1)[-1], (x, y), textcoords="offset points", xytext=(4, 4),
                            fontsize=7, color=style["color"])
    if s["noisy_psnr"] is not None:
        ax.axhline(s["noisy_psnr"], color="0.6", lw=0.8, ls=":", label="noisy image PSNR")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
    ax.set_xlabel("bits per pixel (log scale)")
    ax.set_ylabel("PSNR against the clean image (dB)")
    c = summary["config"]
    ax.set_title(f"{c['dataset']}, {c['noise'].upper()} σ = {key}: mean of {len(summary['images'])} image(s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    """python -m fllic.bench.report DIR...: redraw each record's report.md, cost.md and plots from its results.json
    (after a change to the report's layout; the measurements are not touched)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m fllic.bench.report", description=main.__doc__)
    p.add_argument("records", nargs="+", type=Path, metavar="DIR", help="a folder fllic bench wrote")
    args = p.parse_args(argv)
    for folder in args.records:
        source = folder / "results.json"
        if not source.is_file():
            print(f"error: {source}: no such file; give a folder that fllic bench wrote", file=sys.stderr)
            return 1
        summary = json.loads(source.read_text())
        for path in write_outputs(summary, folder):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
