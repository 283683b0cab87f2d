"""Train on another machine (a GPU server, say): pack what it needs, unpack it there, bring the weights back.

The other machine needs the repository and one folder this module packs; what
comes back is a few weight files. Copying less is faster, so the images travel
as JPEG and the weights as float16 where that does not matter:

- ``pack`` (here) writes a folder with the codec's weights to start from (float16)
  and the clean training images as JPEG (quality 92, no
  chroma subsampling); with ``--weak``, also a weakly supervised model to go on
  from (its trunk and codec, float16). The codec
  stage codes the frozen trunk's *estimate*, not the clean image, so a JPEG
  round-off of the clean image only perturbs the patches it is made from. The
  WikipediaPhotos halves are not packed: ``unpack`` remakes them.
- ``unpack`` (there) rebuilds the training loop's image cache (``clean.npz``) in
  a workdir, in the order and with the downscaling of
  :func:`fllic.train.data.clean_targets`; with ``--noisy-set`` it also writes the
  weak trainer's noisy set (:func:`fllic.train.weak_data.write_noisy_set`: the
  CBSD432 and WikipediaPhotos halves, noised once, seeded), the only file the
  weak trainer is then given.
- ``split`` (there) writes the trained codec's float32 weights as two files,
  analysis side and synthesis side, each at most ``--max-file-mb`` when given
  (``--half``: float16, each under the 8 MB limit for committed files, a resume point).
- ``join`` (here) puts them back together with the trunk into a float weights
  file that ``fllic train --init`` and ``python -m fllic.train.export`` take.
- ``weights`` (there) writes a whole model, trunk included, as one float16 file
  (the weak model, which is smaller).

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
# 92: 39.1 dB on the packed WikipediaPhotos; 97: 43.4 dB at 1.8 times the bytes (results/training/jpeg-quality.md)
_JPEG_QUALITY = 92


def _jpeg(img: np.ndarray, path: Path, quality: int = _JPEG_QUALITY) -> None:
    from PIL import Image

    Image.fromarray(img).save(path, "JPEG", quality=quality, subsampling=0)


def _codec_state(checkpoint: Path) -> dict:
    """{state_dict (codec only, float32), config, step, elapsed} of a checkpoint or joined weights file."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    weights = state["model"] if "model" in state else state["state_dict"]
    codec = {k: v.float() for k, v in weights.items() if not k.startswith("trunk.")}
    return {"state_dict": codec, "config": dict(state["config"]), "step": int(state.get("step", 0)),
            "elapsed": float(state.get("elapsed", 0.0))}


def _half_weights(state: dict) -> dict:
    """``state`` with the floating-point tensors of its weights in float16; an 8-bit layer's input peak stays float32
    (its power-of-two grid must not move)."""
    half = lambda n, v: v.half() if v.is_floating_point() and not n.endswith(".input_peak") else v  # noqa: E731
    return dict(state, **{k: {n: half(n, v) for n, v in state[k].items()} for k in ("state_dict", "model") if k in state})


def _whole_state(checkpoint: Path) -> dict:
    """{model (all weights, trunk included), config, step, elapsed, weak} of a training checkpoint."""
    from fllic.train.export import _float_weights

    config, weights, facts = _float_weights(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return {"model": {k: v.float() for k, v in weights.items()}, "config": dict(config),
            "step": int(state.get("step", facts.get("train_steps", 0))), "elapsed": float(state.get("elapsed", 0.0)),
            "weak": bool(facts.get("weak", False))}


def pack(checkpoint: Path, data: Path, out: Path, trunk: Path | None = None, weak: Path | None = None,
         photo_quality: int = _JPEG_QUALITY) -> int:
    """Write ``out/init.pt`` (the codec to start from), ``out/images/*.jpg``, given one, the frozen
    trunk as ``out/trunk.pt`` and, given one, a weak model to go on from as ``out/weak-init.pt``;
    returns the image count. ``photo_quality`` is the JPEG quality of the photographs stored
    losslessly (WikipediaPhotos, Waterloo): a trunk trained on MSE to the clean patches learns
    their JPEG round-off too, so a trunk run wants it high; CBSD432 is JPEG already."""
    import shutil

    from fllic.train.data import VALIDATION_PHOTOS, WATERLOO_NATURAL, _half, _load

    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    torch.save(_half_weights(_codec_state(checkpoint)), out / "init.pt")
    if trunk is not None:
        shutil.copyfile(trunk, out / "trunk.pt")
    if weak is not None:
        state = _whole_state(weak)
        if not state["weak"]:
            raise ValueError(f"{weak} is not a weakly supervised checkpoint; --weak takes only those, "
                             "so no clean supervision enters")
        torch.save(_half_weights(state), out / "weak-init.pt")
    n = 0
    for p in sorted((data / "CBSD432").glob("*.jpg")):
        _jpeg(_half(_load(p)), images / f"a-cbsd-{p.stem}.jpg")
        n += 1
    for p in sorted((data / "WikipediaPhotos").glob("*.png")):
        if p.stem not in VALIDATION_PHOTOS:  # never a validation photograph
            _jpeg(_load(p), images / f"b-wiki-{p.stem}.jpg", photo_quality)
            n += 1
    for stem in WATERLOO_NATURAL:
        path = data / "Waterloo" / f"{stem}.png"
        if path.exists() and (img := _load(path)).ndim == 3:
            _jpeg(img, images / f"c-waterloo-{stem}.jpg", photo_quality)
            n += 1
    return n


def unpack(packed: Path, workdir: Path, noisy_set: Path | None = None) -> int:
    """Write ``workdir/clean.npz`` from the packed images, and the weak trainer's ``noisy_set`` when given;
    returns the number of training images."""
    from fllic.train.data import _half, _load

    out, weak = [], []
    for p in sorted((packed / "images").glob("*.jpg")):
        img = _load(p)
        out += [img, _half(img)] if p.stem.startswith("b-wiki-") else [img]
        if p.stem.startswith(("a-cbsd-", "b-wiki-")):  # weak_data.SETS, at half scale
            weak.append(img if p.stem.startswith("a-cbsd-") else _half(img))
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(workdir / "clean.npz", **{f"img{i}": a for i, a in enumerate(out)})
    if noisy_set is not None:
        from fllic.train.weak_data import write_noisy_set

        write_noisy_set(weak, noisy_set)
    return len(out)


def split(checkpoint: Path, out: Path, base: Path | None = None, half: bool = False,
          max_bytes: int | None = None) -> list[Path]:
    """Write the codec of ``checkpoint`` as ``codec-analysis.pt`` and ``codec-synthesis.pt`` in ``out``.

    ``base`` (the packed ``init.pt``) adds the steps and hours the weights had before this run. With
    ``half`` the parts are float16: each fits the 8 MB limit for committed files, a resume point.
    """
    state = _codec_state(checkpoint)
    if half:
        state = _half_weights(state)
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
        _check_size(path, max_bytes)
        paths.append(path)
    return paths


def whole(checkpoint: Path, out: Path, base: Path | None = None, max_bytes: int | None = None) -> Path:
    """Write the whole model of ``checkpoint`` (trunk included) as one float16 file, steps counted from ``base``."""
    state = _whole_state(checkpoint)
    if base is not None:
        before = torch.load(base, map_location="cpu", weights_only=False)
        state["step"] += before["step"]
        state["elapsed"] += before["elapsed"]
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_half_weights(state), out)
    _check_size(out, max_bytes)
    return out


def _check_size(path: Path, max_bytes: int | None) -> None:
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise ValueError(f"{path} is {path.stat().st_size} bytes, over the {max_bytes} asked for (--max-file-mb)")


def join(parts: Path, trunk: Path, out: Path) -> None:
    """A float weights file (``model``, ``config``, ``step``, ``elapsed``) from the two parts and a trunk file."""
    from fllic.train.loop import _trunk_weights, trunk_fields

    analysis = torch.load(parts / "codec-analysis.pt", map_location="cpu", weights_only=False)
    synthesis = torch.load(parts / "codec-synthesis.pt", map_location="cpu", weights_only=False)
    trunk_config, trunk_weights = _trunk_weights(trunk)
    codec = {**analysis["state_dict"], **synthesis["state_dict"]}
    model = {**{k: v.float() for k, v in codec.items()}, **{f"trunk.{k}": v for k, v in trunk_weights.items()}}
    config = {**analysis["config"], **trunk_fields(trunk_config)}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "config": config, "step": analysis["step"], "elapsed": analysis["elapsed"]}, out)


def _bytes(mb: float | None) -> int | None:
    return None if mb is None else int(mb * 2**20)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.remote", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    a = sub.add_parser("pack", help="here: the codec to start from and the training images, for carrying")
    a.add_argument("--checkpoint", type=Path, required=True)
    a.add_argument("--data", type=Path, default=Path("../shared/data"))
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--trunk", type=Path, default=None, help="the frozen trunk, copied as trunk.pt (for --trunk there)")
    a.add_argument("--weak", type=Path, default=None, help="a weak checkpoint to go on from there, as weak-init.pt")
    a.add_argument("--photo-quality", type=int, default=_JPEG_QUALITY, metavar="Q",
                   help=f"JPEG quality, 1-100, of the WikipediaPhotos and Waterloo images "
                        f"(default {_JPEG_QUALITY}; 97 for a trunk run)")
    a = sub.add_parser("unpack", help="there: the training image cache in a workdir")
    a.add_argument("--pack", type=Path, required=True, help="the folder pack wrote")
    a.add_argument("--workdir", type=Path, required=True)
    a.add_argument("--noisy-set", type=Path, default=None, help="also write the weak trainer's noisy set here")
    a = sub.add_parser("split", help="there: the trained codec as two returnable files")
    a.add_argument("--checkpoint", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--base", type=Path, default=None, help="the packed init.pt, to count its steps and hours")
    a.add_argument("--half", action="store_true", help="float16 parts (a resume point small enough to commit)")
    a.add_argument("--max-file-mb", type=float, default=None, help="refuse to write a part larger than this")
    a = sub.add_parser("weights", help="there: a whole model (the weak one) as one returnable float16 file")
    a.add_argument("--checkpoint", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--base", type=Path, default=None, help="the packed weak-init.pt, to count its steps and hours")
    a.add_argument("--max-file-mb", type=float, default=None, help="refuse to write a file larger than this")
    a = sub.add_parser("join", help="here: the returned parts and a trunk as one float weights file")
    a.add_argument("--parts", type=Path, required=True)
    a.add_argument("--trunk", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.verb == "pack":
        if not 1 <= args.photo_quality <= 100:
            print(f"error: --photo-quality {args.photo_quality} is not a JPEG quality; use 1 to 100", file=sys.stderr)
            return 2
        if not (args.data / "CBSD432").is_dir():
            print(f"error: no training data under {args.data} (expected CBSD432, WikipediaPhotos); pass --data", file=sys.stderr)
            return 2
        try:
            n = pack(args.checkpoint, args.data, args.out, args.trunk, args.weak, args.photo_quality)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"packed {n} images in {args.out}")
    elif args.verb == "unpack":
        print(f"{unpack(args.pack, args.workdir, args.noisy_set)} training images in {args.workdir / 'clean.npz'}")
    elif args.verb == "split":
        print(" ".join(str(x) for x in split(args.checkpoint, args.out, args.base, args.half, _bytes(args.max_file_mb))))
    elif args.verb == "weights":
        print(whole(args.checkpoint, args.out, args.base, _bytes(args.max_file_mb)))
    else:
        join(args.parts, args.trunk, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
