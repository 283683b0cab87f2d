"""python -m fllic.bench.large: time and peak memory of coding one large image.

Makes a WIDTHxHEIGHT RGB scene (a clean photograph resized with Lanczos
filtering, plus seeded AWGN or a camera's demosaiced raw noise), then encodes it and
decodes it in two fresh processes, each reporting its wall time and peak
resident memory (``ru_maxrss``), and checks that the decode equals the
encoder's pixels. Both apply the heap settings ``fllic compress`` and
``fllic decompress`` apply to a large image (:mod:`fllic._heap`). ``--blind``
encodes without sigma, as ``fllic compress`` does by default: the noise is
estimated from the image first, and a third process times that estimate (and
the noise map, for correlated noise) alone. ``--decode-tiles`` decodes the same
file again with other synthesis tile sizes, each in a fresh process: tiling is
exact, so only time and memory change (both decoders stream bands of latent rows of about a tile's
area, each pixel computed once); ``--band-latents`` caps PyTorch's bands at other sizes
(``fllic.tiling.BAND_LATENTS``). ``--decoders`` decodes it with each
named decoder (``fllic decompress --decoder``), the first in the main table.
``--refine N`` encodes with N refinement steps per tile (``fllic compress --refine-steps``):
its memory is a tile's, whatever N, so a small N measures refined coding's peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from fllic._heap import bound_for
from fllic.bench._record import command, emit
from fllic.codec import DECODE_TILE, DEFAULT_TILE


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM where /proc has it, which is the running program's own
    (ru_maxrss can report the parent's peak at the fork, here the scene's making); ru_maxrss otherwise."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child_estimate(src: Path) -> dict:
    from fllic.codec import _blind_level, _trunk_noise_map
    from fllic.imageio import read_image

    img = read_image(src)
    t0 = time.perf_counter()
    level = _blind_level(img)
    _trunk_noise_map(img, level)
    return {"seconds": time.perf_counter() - t0, "peak_mb": _peak_mb(), "sigma": level.sigma, "kind": level.kind}


def _child_encode(src: Path, out: Path, sigma: float | None, tile: int | None, refine: int = 0) -> dict:
    import numpy as np

    import fllic
    from fllic.imageio import read_image

    img = read_image(src)
    bound_for(img.shape[0] * img.shape[1])  # as fllic compress does
    t0 = time.perf_counter()
    res = fllic.codec.encode_detailed(img, sigma=sigma, tile=tile, progress=True, max_pixels=1 << 28, refine=refine)
    seconds = time.perf_counter() - t0
    out.write_bytes(res.data)
    np.save(out.with_suffix(".npy"), res.pixels)
    return {"seconds": seconds, "peak_mb": _peak_mb(), "bytes": len(res.data), "model": res.model_id}


def _child_decode(path: Path, tile: int | None, decoder: str = "auto", band: int | None = None) -> dict:
    import numpy as np

    import fllic
    from fllic import tiling
    from fllic.codec import bound_decode_heap

    if band is not None:
        tiling.BAND_LATENTS = band

    data = path.read_bytes()
    meta = fllic.info(data)
    bound_decode_heap(meta["width"] * meta["height"], decoder, named=meta["decoder_id"])  # as fllic decompress does
    t0 = time.perf_counter()
    pixels = fllic.decode(data, tile=tile, progress=True, max_pixels=1 << 28, decoder=decoder)
    seconds = time.perf_counter() - t0
    same = bool(np.array_equal(pixels, np.load(path.with_suffix(".npy"))))
    return {"seconds": seconds, "peak_mb": _peak_mb(), "identical": same}


def _run(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "fllic.bench.large", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "child failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_scene(source: Path, width: int, height: int, sigma: float, out: Path, noise: str = "awgn") -> None:
    import numpy as np
    from PIL import Image

    from fllic.imageio import write_image
    from fllic.noise import add_noise

    with Image.open(source) as im:
        clean = np.asarray(im.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
    if noise == "camera":  # demosaiced raw noise (fllic.noise.camera), correlated: what blind mode reads per pixel
        from fllic.noise.camera import camera_noise

        write_image(out, camera_noise(clean, np.random.default_rng(0))[0])
    else:
        write_image(out, add_noise(clean, sigma, seed=0, kind=noise))


def _tiles(tile: int | None) -> str:
    """The header's words for the tile sides used."""
    if tile:
        return f"tiles of {tile} px"
    return f"the codec's default tiles ({DEFAULT_TILE} px to encode, {DECODE_TILE} px to decode)"


def _label(decoder: str, tile: int | None) -> str:
    """A decode's row name: its decoder and tile side (the default's where none is given)."""
    if tile is None:
        tile = DEFAULT_TILE if decoder == "reference" else DECODE_TILE
    return f"{decoder}, {tile}"


def _tile_table(first: str, dec: dict, others: list[tuple[str, dict]], mp: float) -> list[str]:
    """The decode again by other decoders or at other tile sides: seconds as a ratio to the first decode's, peak
    memory, identity."""
    if not others:
        return []
    rows = [(first, dec), *others]
    return ["", "The same file decoded again, each in a fresh process, in the same run:", "",
            "| decoder, tile (px) | seconds | time against the first | MP/s | peak memory (MB) | identical |",
            "|---|---:|---:|---:|---:|---|",
            *(f"| {t} | {d['seconds']:.1f} | {d['seconds'] / dec['seconds']:.2f}x | {mp / d['seconds']:.2f} | "
              f"{d['peak_mb']:.0f} | {'yes' if d['identical'] else 'NO'} |" for t, d in rows)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.large", description=__doc__)
    p.add_argument("--source", type=Path, default=Path("../shared/data/Kodak24/kodim23.png"), help="clean photograph to enlarge")
    p.add_argument("--size", type=int, nargs=2, default=[6000, 4000], metavar=("WIDTH", "HEIGHT"))
    p.add_argument("--sigma", type=float, default=25.0, help="the scene's noise level")
    p.add_argument("--noise", choices=("awgn", "camera"), default="awgn",
                   help="the scene's noise: AWGN at --sigma, or camera noise (fllic.noise.camera, seed 0)")
    p.add_argument("--blind", action="store_true", help="encode without sigma (fllic compress's default)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile side in pixels for both steps (default: the codec's, 768 to encode and "
                        "fllic.codec.DECODE_TILE to decode, as fllic compress and decompress use)")
    p.add_argument("--decode-tiles", type=int, nargs="+", default=[], metavar="PX",
                   help="decode the file again with these tile sides (fresh processes), beside --tile")
    p.add_argument("--band-latents", type=int, nargs="+", default=[], metavar="N",
                   help="decode the file again with PyTorch's streamed bands of at most N latents "
                        "(fllic.tiling.BAND_LATENTS; fresh processes)")
    p.add_argument("--decoders", nargs="+", choices=("auto", "torch", "reference"), default=["auto"],
                   help="decode with each (fllic decompress --decoder), the first in the main table")
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="encode with this many refinement steps per tile (fllic compress --refine-steps)")
    p.add_argument("--workdir", type=Path, default=Path("fllic-large"))
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    p.add_argument("--child-encode", nargs=2, type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-decode", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-decoder", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--child-band", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-estimate", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_estimate is not None:
        print(json.dumps(_child_estimate(args.child_estimate)))
        return 0
    if args.child_encode is not None:
        print(json.dumps(_child_encode(*args.child_encode, None if args.blind else args.sigma, args.tile, args.refine)))
        return 0
    if args.child_decode is not None:
        print(json.dumps(_child_decode(args.child_decode, args.tile, args.child_decoder, args.child_band)))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    noisy, coded = args.workdir / "noisy.png", args.workdir / "large.fllic"
    make_scene(args.source, *args.size, args.sigma, noisy, args.noise)
    common = ["--sigma", str(args.sigma), *(["--tile", str(args.tile)] if args.tile else []),
              *(["--blind"] if args.blind else [])]
    est = _run(["--child-estimate", str(noisy)]) if args.blind else None
    enc = _run(["--child-encode", str(noisy), str(coded), *common, "--refine", str(args.refine)])
    first, *more = args.decoders
    dec = _run(["--child-decode", str(coded), "--child-decoder", first, *common])
    others = [(_label(d, args.tile), _run(["--child-decode", str(coded), "--child-decoder", d, *common]))
              for d in more]
    others += [(_label(first, t), _run(["--child-decode", str(coded), "--child-decoder", first, "--sigma",
                                        str(args.sigma), "--tile", str(t)])) for t in args.decode_tiles]
    others += [(f"{_label(first, args.tile)}, bands of at most {n} latents",
                _run(["--child-decode", str(coded), "--child-decoder", first, *common, "--child-band", str(n)]))
               for n in args.band_latents]
    w, h = args.size
    mp = w * h / 1e6
    import torch

    mode = (f"blind (no sigma given; read {est['sigma']:.2f}, {est['kind']} noise)" if est
            else f"sigma {args.sigma:g} given") + (f", refined ({args.refine} steps per tile)" if args.refine else "")
    lines = [
        f"# Large image: {w}x{h} RGB, "
        f"{'camera noise' if args.noise == 'camera' else f'AWGN at sigma {args.sigma:g}'}, {mode}, {_tiles(args.tile)}", "",
        f"`{command('python -m fllic.bench.large', argv)}`", "",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; peak memory is each step's process's maximum "
        f"resident set (VmHWM), imports and the image included.", "",
        "| step | seconds | MP/s | peak memory (MB) |", "|---|---:|---:|---:|",
        *([f"| noise estimate (and noise map), alone | {est['seconds']:.1f} | {mp / est['seconds']:.2f} | "
           f"{est['peak_mb']:.0f} |"] if est else []),
        f"| encode | {enc['seconds']:.1f} | {mp / enc['seconds']:.2f} | {enc['peak_mb']:.0f} |",
        f"| decode{'' if first == 'auto' else f' (--decoder {first})'} | {dec['seconds']:.1f} | "
        f"{mp / dec['seconds']:.2f} | {dec['peak_mb']:.0f} |", "",
        f"Model {enc['model']}. File: {enc['bytes']} bytes, {8 * enc['bytes'] / (w * h):.3f} bpp. "
        f"Decode identical to the encoder's pixels: {'yes' if dec['identical'] else 'NO'}.",
        *_tile_table(_label(first, args.tile), dec, others, mp),
    ]
    emit("\n".join(lines) + "\n", args.out)
    return 0 if all(d["identical"] for d in [dec, *(o for _, o in others)]) else 1


if __name__ == "__main__":
    sys.exit(main())
