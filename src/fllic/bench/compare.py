"""python -m fllic.bench.compare: two bench records side by side, method by method.

For every sigma and every method present in both ``results.json`` files, the
mean PSNR and bpp of each, the PSNR difference (new − old, dB) and the bpp
ratio; ``--max-db`` and ``--max-bpp-pct`` mark the rows outside a tolerance.
Used to check that a change (the integer decoder, a new model) moves the
numbers only as much as it should.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fllic.bench._record import command, emit


def compare(old: dict, new: dict, methods: list[str] | None = None) -> list[dict]:
    rows = []
    for key, sig in new["by_sigma"].items():
        if key not in old["by_sigma"]:
            continue
        before, after = old["by_sigma"][key]["means"], sig["means"]
        for name in methods or sorted(after):
            if name in before and name in after:
                a, b = before[name], after[name]
                rows.append({"sigma": sig["sigma"], "method": name, "psnr_old": a["psnr"], "psnr_new": b["psnr"],
                             "d_psnr": b["psnr"] - a["psnr"], "bpp_old": a["bpp"], "bpp_new": b["bpp"],
                             "d_bpp_pct": 100.0 * (b["bpp"] / a["bpp"] - 1.0), "n": b["n"]})
    return rows


def to_markdown(rows: list[dict], old: str, new: str, max_db: float, max_bpp_pct: float, command: str) -> str:
    out = [f"# {new} against {old}", "", f"`{command}`", "",
           f"Tolerance: |ΔPSNR| <= {max_db} dB and |Δbpp| <= {max_bpp_pct} %. Means over the images of each record.", "",
           "| σ | method | images | PSNR old | PSNR new | ΔPSNR (dB) | bpp old | bpp new | Δbpp | within |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ok = abs(r["d_psnr"]) <= max_db and abs(r["d_bpp_pct"]) <= max_bpp_pct
        out.append(f"| {r['sigma']:g} | {r['method']} | {r['n']} | {r['psnr_old']:.3f} | {r['psnr_new']:.3f} | "
                   f"{r['d_psnr']:+.3f} | {r['bpp_old']:.4f} | {r['bpp_new']:.4f} | {r['d_bpp_pct']:+.2f} % | "
                   f"{'yes' if ok else '**no**'} |")
    worst_db = max((abs(r["d_psnr"]) for r in rows), default=0.0)
    worst_bpp = max((abs(r["d_bpp_pct"]) for r in rows), default=0.0)
    out += ["", f"Largest |ΔPSNR|: {worst_db:.3f} dB; largest |Δbpp|: {worst_bpp:.2f} %."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.compare", description=__doc__)
    p.add_argument("old", type=Path, help="the reference results.json")
    p.add_argument("new", type=Path, help="the results.json to check")
    p.add_argument("--methods", nargs="+", default=None, help="methods to compare (default: all in both)")
    p.add_argument("--max-db", type=float, default=0.05, help="PSNR tolerance in dB")
    p.add_argument("--max-bpp-pct", type=float, default=1.0, help="bpp tolerance in percent")
    p.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    args = p.parse_args(argv)
    for path in (args.old, args.new):
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 1
    rows = compare(json.loads(args.old.read_text()), json.loads(args.new.read_text()), args.methods)
    text = to_markdown(rows, str(args.old), str(args.new), args.max_db, args.max_bpp_pct,
                       command("python -m fllic.bench.compare", argv))
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
