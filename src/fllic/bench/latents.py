"""python -m fllic.bench.latents: where a file's bits go, latent channel by latent channel, grey against colour.

Each clean image is noised (seeded AWGN at ``--sigma``, rounded and clipped)
twice: in colour, and as grey (its luma, ITU-R 601, as Pillow converts it),
and both are coded at the same ``--quality``. The files' own symbols are then
read back with the reference decoder's steps (Z, h_s, the table of every y
symbol, Y) and each y symbol is costed under its table, -log2(f / 2^16) bits
(an escaped symbol at its escape code plus the sign and 24 bits that follow),
so the per-channel bits add up to about the Y section's size. Recorded per
image and on average: bpp of the file, y bits per pixel, how many of the
latent channels carry 90 % of the y bits, and the share of the 16 busiest.
A grey image goes through the colour codec by replication; this shows whether
its latents notice (issue 29: why grey costs more than a grey codec would).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit, png_files

ESCAPE_EXTRA_BITS = 25  # the sign and the two 12-bit halves after an escape symbol


def channel_bits(data: bytes) -> np.ndarray:
    """Bits of a file's y symbols per latent channel, each symbol costed under the table that coded it."""
    from fllic import format as fmt
    from fllic.decoder import PAD_MULTIPLE, decoding_model, latent_symbols, model_sigma, symbols

    c = fmt.unpack(data)
    h = c.header
    m = decoding_model(h)
    zh, zw = (h.height + h.pad_h) // PAD_MULTIPLE, (h.width + h.pad_w) // PAD_MULTIPLE
    u, p = latent_symbols(m, c.sections["Z"], c.sections["Y"], zh, zw, model_sigma(h), h.step_scale)
    u = u.astype(np.int64)
    bits = np.zeros(u.shape[-1])
    for k in np.unique(p.index):
        at = p.index == k
        support = int(m.tables_y.support[k])
        freqs = m.tables_y.freqs[k].astype(np.float64)
        escaped = np.abs(u[at]) >= support
        idx = np.where(escaped, 2 * support - 1, u[at] + support - 1)  # the escape symbol is the last entry
        cost = -np.log2(freqs[idx] / symbols.FREQ_TOTAL) + ESCAPE_EXTRA_BITS * escaped
        bits += np.bincount(np.nonzero(at)[-1], weights=cost, minlength=u.shape[-1])
    return bits


def measure(img: np.ndarray, sigma: float, quality: int) -> dict:
    """One coding of ``img``: bpp, y bits per pixel, channels for 90 % of the y bits, the 16 busiest's share."""
    import fllic
    from fllic.noise import add_noise

    data = fllic.encode(add_noise(img, sigma, seed=0), sigma=sigma, quality=quality)
    bits = np.sort(channel_bits(data))[::-1]
    pixels = img.shape[0] * img.shape[1]
    share = np.cumsum(bits) / bits.sum()
    return {"bpp": 8.0 * len(data) / pixels, "y_bpp": bits.sum() / pixels,
            "channels_90": int(np.searchsorted(share, 0.9)) + 1, "top16": float(share[15]), "channels": bits.size}


def run(files: list[Path], sigma: float, quality: int) -> list[dict]:
    from PIL import Image
    from tqdm import tqdm

    rows = []
    for path in tqdm(files, desc="latents", unit="image"):
        with Image.open(path) as im:
            colour, grey = np.asarray(im.convert("RGB")), np.asarray(im.convert("L"))
        rows.append({"image": path.name, "colour": measure(colour, sigma, quality),
                     "grey": measure(grey, sigma, quality)})
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = ["| image | colour bpp | grey bpp | grey / colour | colour: channels for 90 % | grey: channels for 90 % "
             "| colour: 16 busiest | grey: 16 busiest |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def line(name, c, g):
        return (f"| {name} | {c['bpp']:.3f} | {g['bpp']:.3f} | {g['bpp'] / c['bpp']:.2f} | {c['channels_90']:.0f} "
                f"| {g['channels_90']:.0f} | {100 * c['top16']:.0f} % | {100 * g['top16']:.0f} % |")

    lines += [line(r["image"], r["colour"], r["grey"]) for r in rows]
    mean = {kind: {key: float(np.mean([r[kind][key] for r in rows])) for key in rows[0][kind]}
            for kind in ("colour", "grey")}
    lines.append(line(f"**mean of {len(rows)}**", mean["colour"], mean["grey"]))
    return lines


def main(argv: list[str] | None = None) -> int:
    from fllic.bench.splits import split

    p = argparse.ArgumentParser(prog="python -m fllic.bench.latents", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/CBSD68"), help="folder of clean colour PNGs")
    p.add_argument("--half", choices=["dev", "test"], default=None, help="one half of CBSD68 / BSD68 by name")
    p.add_argument("--limit", type=int, default=None, help="the first N images only")
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--quality", type=int, default=5, help="the level both codings use")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    files = png_files(args.data, None)
    files = (split(files, args.half) if args.half else files)[: args.limit]
    if not files:
        return 1
    rows = run(files, args.sigma, args.quality)
    channels = rows[0]["colour"]["channels"]
    text = "\n".join([
        "# Where the bits go: latent channels, grey against colour", "",
        f"`{command('python -m fllic.bench.latents', argv)}`", "",
        f"{len(rows)} images of `{args.data.name}`{f' ({args.half} half)' if args.half else ''}, each noised at "
        f"σ {args.sigma:g} (seeded AWGN, rounded and clipped) in colour and as grey (its luma), both coded by the "
        f"default model at level {args.quality}. Each y symbol of the file is costed under the table that coded it; "
        f"the channels are counted among {channels}.", "", *table(rows), ""])
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
