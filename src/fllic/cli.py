"""The ``fllic`` command line: thin wrappers over the library, tested in-process via main(argv)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fllic._errors import FllicError, InputError


def _out_path(path: Path, force: bool) -> Path:
    if path.exists() and not force:
        raise InputError(f"{path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise InputError(f"{path.parent}: no such directory")
    return path


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path.read_bytes()


def cmd_compress(args) -> int:
    from fllic.codec import encode_detailed
    from fllic.imageio import read_image

    out = _out_path(args.output, args.force)
    img = read_image(args.input)
    res = encode_detailed(img, sigma=args.sigma, model=args.model, quality=args.quality, device=args.device)
    out.write_bytes(res.data)
    h, w = img.shape[:2]
    real = 8 * len(res.data)
    print(f"{args.input} -> {out}: {len(res.data)} bytes, {real / (h * w):.4f} bpp "
          f"(model estimate {res.estimated_bits / (h * w):.4f} bpp, container overhead "
          f"{100 * (real - res.estimated_bits) / max(res.estimated_bits, 1):+.1f}%), "
          f"sigma {res.sigma:.2f}, quality {res.quality}")
    return 0


def cmd_decompress(args) -> int:
    from fllic.codec import decode
    from fllic.imageio import write_image

    out = _out_path(args.output, args.force)
    pixels = decode(_read_bytes(args.input), model=args.model, device=args.device)
    write_image(out, pixels)
    print(f"{args.input} -> {out}: {pixels.shape[1]}x{pixels.shape[0]}, {'grey' if pixels.ndim == 2 else 'RGB'}")
    return 0


def cmd_info(args) -> int:
    from fllic.codec import info

    meta = info(_read_bytes(args.input))
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    print(f"model        {meta['model_id']} (weights {meta['weights_hash']})")
    print(f"image        {meta['width']}x{meta['height']}, {meta['channels']} channel(s), {meta['bit_depth']}-bit")
    print(f"sigma        {meta['sigma']:.2f}")
    print(f"quality      {meta['quality']} (step scale {meta['step_scale']:.4g})")
    print(f"sections     " + ", ".join(f"{k}: {v} bytes" for k, v in meta["sections"].items()))
    print(f"size         {meta['file_bytes']} bytes, {meta['bpp']:.4f} bpp (bits per pixel, not per sub-pixel)")
    return 0


def cmd_models(args) -> int:
    from fllic.models.registry import DEFAULT_MODEL, SHIPPED, load

    rows = []
    for m in SHIPPED:
        model = load(m.id)
        scales = model.meta.get("quality_scales", [1.0])
        rows.append({"id": m.id, "default": m.id == DEFAULT_MODEL, "description": m.description,
                     "weights_hash": model.hash.hex(), "quality_levels": len(scales)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        flag = " (default)" if r["default"] else ""
        print(f"{r['id']}{flag}\n  {r['description']}\n  weights {r['weights_hash']}, quality 1..{r['quality_levels']}")
    return 0


def cmd_demo(args) -> int:
    from fllic.demo import run_demo

    return run_demo(args.sigma, args.seed, args.out, args.force, args.quality)


def cmd_train(args) -> int:
    from fllic.train.__main__ import main as train_main

    return train_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fllic", description="Functionally lossless image compression.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compress", help="noisy image -> .fllic")
    c.add_argument("input", type=Path, help="8-bit PNG, TIFF, BMP or JPEG, grey or RGB")
    c.add_argument("-o", "--output", type=Path, required=True)
    c.add_argument("--sigma", type=float, default=None, help="noise std in 8-bit units (default: estimated from the image)")
    c.add_argument("--model", default=None, help="shipped model id (see `fllic models`) or an exported .pt file")
    c.add_argument("--quality", type=int, default=None, help="rate point; the default, the highest, is functionally lossless")
    c.add_argument("--force", action="store_true", help="overwrite OUTPUT")
    c.add_argument("--device", default=None, help="run the network on cpu or cuda; the file is decodable anywhere (default: cpu)")
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", help=".fllic -> denoised image")
    d.add_argument("input", type=Path)
    d.add_argument("-o", "--output", type=Path, required=True, help="PNG (or TIFF, BMP) to write")
    d.add_argument("--model", default=None, help="exported .pt file, for files not written by a shipped model")
    d.add_argument("--force", action="store_true")
    d.add_argument("--device", default=None, help="decode on cpu or cuda; the pixels are identical on either (default: cpu)")
    d.set_defaults(func=cmd_decompress)

    i = sub.add_parser("info", help="what a .fllic file holds")
    i.add_argument("input", type=Path)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("models", help="list the shipped models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    dm = sub.add_parser("demo", help="noise, compress and decompress the bundled sample; compare with PNG and JPEG-XL")
    dm.add_argument("--sigma", type=float, default=25.0)
    dm.add_argument("--seed", type=int, default=0)
    dm.add_argument("--quality", type=int, default=None)
    dm.add_argument("--out", type=Path, default=Path("fllic-demo"), help="folder for the images it writes")
    dm.add_argument("--force", action="store_true")
    dm.set_defaults(func=cmd_demo)

    from fllic.bench.cli import add_parser as add_bench_parser

    add_bench_parser(sub)

    t = sub.add_parser("train", help="train a model (see `fllic train -- --help`)", add_help=False)
    t.add_argument("rest", nargs=argparse.REMAINDER)
    t.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FllicError as e:
        print(f"fllic: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"fllic: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fllic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
