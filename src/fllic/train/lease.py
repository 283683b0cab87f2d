"""Train the codec on a lent GPU machine: pack what it needs, unpack it there, bring the weights back.

A lent machine sees only the repository's working tree and a few carried paths
(64 MiB in all), and returns files of at most 16 MiB. So:

- ``pack`` (here) writes a folder with the codec's float weights to start from and
  the clean training images as JPEG (quality 92, no chroma subsampling). The codec
  stage codes the frozen trunk's *estimate*, not the clean image, so a JPEG
  round-off of the clean image only perturbs the patches it is made from. The
  WikipediaPhotos halves are not packed: ``unpack`` remakes them.
- ``unpack`` (there) rebuilds the training loop's image cache (``clean.npz``) in
  a workdir, in the order and with the downscaling of
  :func:`fllic.train.data.clean_targets`.
- ``split`` (there) writes the trained codec's float32 weights as two files,
  analysis side and synthesis side, each under the return limit.
- ``join`` (here) puts them back together with the trunk into a float weights
  file that ``fllic train --init`` and ``python -m fllic.train.export`` take.

The training itself is ``fllic train --device cuda --workers N --max-minutes M
--cosine …``: with a time budget the cosine follows the clock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

_SYNTHESIS = ("h_s.", "g_s.")
_RETURN_LIMIT = 16 * 2**20  # bytes per file a lent machine gives back
_JPEG_QUALITY = 92


def _jpeg(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(img).save(path, "JPEG", quality=_JPEG_QUALITY, subsampling=0)


def _codec_state(checkpoint: Path) -> dict:
    """{state_dict (codec only, float32), config, step, elapsed} of a checkpoint or joined weights file."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    weights = state["model"] if "model" in state else state["state_dict"]
    codec = {k: v.float() for k, v in weights.items() if not k.startswith("trunk.")}
    return {"state_dict": codec, "config": dict(state["config"]), "step": int(state.get("step", 0)),
            "elapsed": float(state.get("elapsed", 0.0))}


def pack(checkpoint: Path, data: Path, out: Path, trunk: Path | None = None) -> int:
    """Write ``out/init.pt`` (the codec to start from), ``out/images/*.jpg`` and, given one, the frozen
    trunk as ``out/trunk.pt``; returns the image count."""
    import shutil

    from fllic.train.data import VALIDATION_PHOTOS, WATERLOO_NATURAL, _half, _load

    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    torch.save(_codec_state(checkpoint), out / "init.pt")
    if trunk is not None:
        shutil.copyfile(trunk, out / "trunk.pt")
    n = 0
    for p in sorted((data / "CBSD432").glob("*.jpg")):
        _jpeg(_half(_load(p)), images / f"a-cbsd-{p.stem}.jpg")
        n += 1
    for p in sorted((data / "WikipediaPhotos").glob("*.png")):
        if p.stem not in VALIDATION_PHOTOS:  # never a validation photograph
            _jpeg(_load(p), images / f"b-wiki-{p.stem}.jpg")
            n += 1
    for stem in WATERLOO_NATURAL:
        path = data / "Waterloo" / f"{stem}.png"
        if path.exists() and (img := _load(path)).ndim == 3:
            _jpeg(img, images / f"c-waterloo-{stem}.jpg")
            n += 1
    return n


def unpack(lease: Path, workdir: Path) -> int:
    """Write ``workdir/clean.npz`` from the packed images; returns the number of training images."""
    from fllic.train.data import _half, _load

    out = []
    for p in sorted((lease / "images").glob("*.jpg")):
        img = _load(p)
        out += [img, _half(img)] if p.stem.startswith("b-wiki-") else [img]
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(workdir / "clean.npz", **{f"img{i}": a for i, a in enumerate(out)})
    return len(out)


def split(checkpoint: Path, out: Path, base: Path | None = None) -> list[Path]:
    """Write the codec of ``checkpoint`` as ``codec-analysis.pt`` and ``codec-synthesis.pt`` in ``out``.

    ``base`` (the packed ``init.pt``) adds the steps and hours the weights had before this run.
    """
    state = _codec_state(checkpoint)
    if base is not None:
        before = torch.load(base, map_location="cpu", weights_only=False)
        state["step"] += before["step"]
        state["elapsed"] += before["elapsed"]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, keep in (("analysis", lambda k: not k.startswith(_SYNTHESIS)), ("synthesis", lambda k: k.startswith(_SYNTHESIS))):
        part = dict(state, state_dict={k: v for k, v in state["state_dict"].items() if keep(k)})
        path = out / f"codec-{name}.pt"
        torch.save(part, path)
        if path.stat().st_size > _RETURN_LIMIT:
            raise ValueError(f"{path} is {path.stat().st_size} bytes, over the {_RETURN_LIMIT} a lent machine returns")
        paths.append(path)
    return paths


def join(parts: Path, trunk: Path, out: Path) -> None:
    """A float weights file (``model``, ``config``, ``step``, ``elapsed``) from the two parts and a trunk file."""
    from fllic.train.loop import _trunk_weights, trunk_fields

    analysis = torch.load(parts / "codec-analysis.pt", map_location="cpu", weights_only=False)
    synthesis = torch.load(parts / "codec-synthesis.pt", map_location="cpu", weights_only=False)
    trunk_config, trunk_weights = _trunk_weights(trunk)
    model = {**analysis["state_dict"], **synthesis["state_dict"], **{f"trunk.{k}": v for k, v in trunk_weights.items()}}
    config = {**analysis["config"], **trunk_fields(trunk_config)}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "config": config, "step": analysis["step"], "elapsed": analysis["elapsed"]}, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.lease", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    a = sub.add_parser("pack", help="here: the codec to start from and the training images, for carrying")
    a.add_argument("--checkpoint", type=Path, required=True)
    a.add_argument("--data", type=Path, default=Path("../shared/data"))
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--trunk", type=Path, default=None, help="the frozen trunk, copied as trunk.pt (for --trunk there)")
    a = sub.add_parser("unpack", help="there: the training image cache in a workdir")
    a.add_argument("--lease", type=Path, required=True)
    a.add_argument("--workdir", type=Path, required=True)
    a = sub.add_parser("split", help="there: the trained codec as two returnable files")
    a.add_argument("--checkpoint", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--base", type=Path, default=None, help="the packed init.pt, to count its steps and hours")
    a = sub.add_parser("join", help="here: the returned parts and a trunk as one float weights file")
    a.add_argument("--parts", type=Path, required=True)
    a.add_argument("--trunk", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.verb == "pack":
        if not (args.data / "CBSD432").is_dir():
            print(f"error: no training data under {args.data} (expected CBSD432, WikipediaPhotos); pass --data", file=sys.stderr)
            return 2
        print(f"packed {pack(args.checkpoint, args.data, args.out, args.trunk)} images in {args.out}")
    elif args.verb == "unpack":
        print(f"{unpack(args.lease, args.workdir)} training images in {args.workdir / 'clean.npz'}")
    elif args.verb == "split":
        print(" ".join(str(x) for x in split(args.checkpoint, args.out, args.base)))
    else:
        join(args.parts, args.trunk, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
