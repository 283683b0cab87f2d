"""python -m fllic.train.export: finalise a float model into shippable weights.

Takes a training checkpoint, or a float weights file (such as
``weights/fllic-awgn-v1-float.pt``, the float resume point of the shipped
model), rounds the weights to float16, builds the coding tables and
quantizes h_s and g_s into the exact integer decoder, calibrating its
fixed-point ranges on crops of training photographs (never a test set).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from fllic._errors import FllicError
from fllic.models.fllic_net import FLLIC, FllicConfig, finalize
from fllic.models.int_decoder import _hs_inputs

DEFAULT_QUALITY_SCALES = (4.0, 2.5, 1.6, 1.0)
CALIBRATION_SIGMAS = (5.0, 25.0, 50.0)
DEBIAS_IMAGES = 16


def calibration_batch(data: Path, quality_scales, n_images: int = 4, size: int = 192, seed: int = 1):
    """(x, sigma, q, clean) from WikipediaPhotos crops (a training set) with seeded AWGN."""
    from fllic.noise import add_noise
    from fllic.train.data import _load

    files = sorted((data / "WikipediaPhotos").glob("*.png"))[:n_images]
    if not files:
        raise FileNotFoundError(f"no calibration images in {data / 'WikipediaPhotos'}")
    xs, sigmas, qs, cleans = [], [], [], []
    for f in files:
        img = _load(f)[:size, :size]
        clean = torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255.0)
        for sigma in CALIBRATION_SIGMAS:
            noisy = torch.from_numpy(add_noise(img, sigma, seed=seed).transpose(2, 0, 1).astype(np.float32) / 255.0)
            for q in quality_scales:
                xs.append(noisy[None]); sigmas.append(sigma); qs.append(q); cleans.append(clean[None])
    return torch.cat(xs), torch.tensor(sigmas), torch.tensor(qs, dtype=torch.float32), torch.cat(cleans)


@torch.no_grad()
def debias(net: FLLIC, batch) -> list[float]:
    """Remove the codec's mean colour error from g_s's output bias, in place; returns it (8-bit units, RGB).

    The error is x_hat - the codec's input: the trunk's estimate for a v2 model
    (its own bias is the estimator's, which a shift of the decoder must not
    hide), the clean image for v1. ŷ is quantized as when coding, over a batch
    of training crops (``calibration_batch``: several sigmas and every quality
    scale). A uniform shift per channel costs MSE for nothing: v1 decoded blue
    0.5 levels too bright.
    """
    x, sigma, q, clean = batch
    net.eval()  # in training a narrow layer's input peak would follow these crops
    err = torch.zeros(3)
    for k in range(x.shape[0]):
        xs, s, qs = x[k : k + 1], sigma[k : k + 1], q[k : k + 1]
        _, y_hat, _ = _hs_inputs(net, (xs, s, qs))  # ŷ quantized as when coding
        x_hat = net.synthesis(y_hat, s, qs).clamp(0, 1)
        target = clean[k : k + 1] if net.trunk is None else net.estimate(xs, s).float().clamp(0, 1)
        err += (x_hat - target).mean(dim=(0, 2, 3))
    err /= x.shape[0]
    last = net.g_s[-2]  # conv to 12 channels, then pixel-shuffle by 2: channel c is outputs 4c..4c+3
    last.bias -= err.repeat_interleave(4)
    return [float(v) * 255.0 for v in err]


def _float_weights(path: Path) -> tuple[dict, dict, dict]:
    """(config, weights, training facts) of a training checkpoint or a float weights file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "model" in state:
        facts = {"train_steps": int(state["step"]), "train_wall_hours": round(float(state.get("elapsed", 0.0)) / 3600, 2)}
        if state.get("weak"):  # trained from noisy images only: the mark follows the weights
            facts["weak"] = True
        return state["config"], state["model"], facts
    meta = state.get("meta", {})
    weights = dict(state["state_dict"])
    if "trunk_file" in state:  # a v2 float resume point keeps its trunk beside it
        trunk = torch.load(path.parent / state["trunk_file"], map_location="cpu", weights_only=True)["state_dict"]
        weights.update({f"trunk.{k}": v for k, v in trunk.items()})
    return state["config"], weights, {k: meta[k] for k in ("train_steps", "train_wall_hours", "weak") if k in meta}


def export(checkpoint: Path, out: Path, model_id: str, quality_scales, data: Path | None, notes: str = "",
           float_out: Path | None = None, unbias: bool = False, shared_trunk: str | None = None,
           trunk: Path | None = None, float_shared_trunk: str | None = None, shared_encoder: str | None = None) -> str:
    """Write the shipped model to ``out`` (and, with ``float_out``, its float resume point).

    ``trunk`` replaces the checkpoint's denoising trunk (one codec, trained on several
    trunks' estimates, can ship with each); ``shared_trunk`` and ``float_shared_trunk``
    name trunk files already beside ``out`` and ``float_out`` to refer to instead of copying;
    ``shared_encoder`` likewise names an encoder file beside ``out`` (another export of the same
    weights, with other quality levels).

    ``data`` is the folder with WikipediaPhotos for calibration; None uses
    synthetic scenes (for tests and tiny models only).
    """
    config, weights, facts = _float_weights(checkpoint)
    if trunk is not None:
        config, weights = _with_trunk(config, weights, trunk)
    net = FLLIC(FllicConfig(**config))
    net.load_state_dict({k: v.float() for k, v in weights.items()})
    meta = {"id": model_id, "quality_scales": [float(q) for q in quality_scales], **facts, "notes": notes}
    if net.config.trunk_kind:  # a camera trunk: the blind path gives it the per-pixel noise map and kind
        meta["noise_map"] = True
    calibration = None if data is None else calibration_batch(data, meta["quality_scales"])
    if unbias and data is not None:  # a bias of 0.1 level needs more crops than the integer ranges do
        meta["debiased_rgb"] = [round(v, 3) for v in debias(net, calibration_batch(data, meta["quality_scales"],
                                                                                    n_images=DEBIAS_IMAGES))]
    model = finalize(net, meta, calibration=None if calibration is None else calibration[:3])
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out, shared_trunk=shared_trunk, shared_encoder=shared_encoder)
    if float_out is not None:
        save_float(net, config, meta, float_out, float_shared_trunk)
    return model.hash.hex()


def _with_trunk(config: dict, weights: dict, path: Path) -> tuple[dict, dict]:
    """The checkpoint's codec with the trunk of ``path`` (a denoiser export or a model's float trunk)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    trunk_config = state["config"]
    codec = {k: v for k, v in weights.items() if not k.startswith("trunk.")}
    codec.update({f"trunk.{k}": v for k, v in state["state_dict"].items()})
    return {**config, "trunk": tuple(trunk_config["channels"]), "trunk_blocks": int(trunk_config["blocks"]),
            "trunk_kind": bool(trunk_config.get("kind_input", False))}, codec


def save_float(net: FLLIC, config: dict, meta: dict, path: Path, shared_trunk: str | None = None) -> None:
    """The float resume point (float16): the codec in ``path`` and, for v2, the trunk beside it.

    The trunk file (``<stem>-trunk.pt``) has the denoiser trainer's export
    format, so it serves as ``fllic train --trunk`` and keeps each file under 8 MB.
    ``shared_trunk`` names such a file already beside ``path`` holding the same trunk.
    """
    from fllic.models.fllic_net import TRUNK_PREFIX, check_same_part, trunk_path

    half = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    codec = {k: v for k, v in half.items() if not k.startswith(TRUNK_PREFIX)}
    state = {"format": 1, "config": config, "state_dict": codec, "meta": meta}
    trunk = {k[len(TRUNK_PREFIX):]: v for k, v in half.items() if k.startswith(TRUNK_PREFIX)}
    if trunk and shared_trunk is not None:
        check_same_part(path.parent / shared_trunk, trunk, "trunk")
        state["trunk_file"] = shared_trunk
    elif trunk:
        state["trunk_file"] = trunk_path(path).name
        c = net.trunk.config
        torch.save({"format": 1, "config": {"channels": list(c.channels), "blocks": c.blocks, "kind_input": c.kind_input},
                    "state_dict": trunk, "step": meta.get("trunk_steps", 0), "elapsed": 0.0}, trunk_path(path))
    torch.save(state, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.export", description=__doc__)
    p.add_argument("--checkpoint", type=Path, default=Path.home() / ".cache" / "fllic" / "train" / "checkpoint.pt",
                   help="a training checkpoint or a float weights file")
    p.add_argument("--out", type=Path, required=True, help="the exported model file")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with WikipediaPhotos, for calibration")
    p.add_argument("--id", default="fllic-awgn-v1", help="the model id written into every file it codes")
    p.add_argument("--quality-scales", type=float, nargs="+", default=list(DEFAULT_QUALITY_SCALES),
                   help="step-map scale of quality 1, 2, ... (the last, the finest, is the default)")
    p.add_argument("--notes", default="", help="free text stored in the model's metadata")
    p.add_argument("--float-out", type=Path, default=None,
                   help="also write the float weights (float16) here: the resume point for `fllic train --init`")
    p.add_argument("--synthetic-calibration", action="store_true",
                   help="calibrate the integer decoder on synthetic scenes instead of --data (tests, tiny models)")
    p.add_argument("--debias", action="store_true",
                   help="remove the decoded image's mean colour error on the calibration crops from g_s's output bias")
    p.add_argument("--shared-trunk", default=None, metavar="NAME",
                   help="refer to this trunk file beside --out (another model's, holding the same trunk) "
                        "instead of writing a copy")
    p.add_argument("--trunk", type=Path, default=None,
                   help="replace the checkpoint's denoising trunk with this one (a denoiser export or a float trunk file)")
    p.add_argument("--float-shared-trunk", default=None, metavar="NAME",
                   help="the float resume point refers to this trunk file beside --float-out instead of writing a copy")
    p.add_argument("--shared-encoder", default=None, metavar="NAME",
                   help="refer to this encoder file beside --out (another export of the same weights) instead of "
                        "writing a copy")
    args = p.parse_args(argv)
    data = None if args.synthetic_calibration else args.data
    if data is not None and not any((data / "WikipediaPhotos").glob("*.png")):
        print(f"error: no calibration photos in {data / 'WikipediaPhotos'}; pass --data, or --synthetic-calibration "
              "for a test model", file=sys.stderr)
        return 1
    try:
        digest = export(args.checkpoint, args.out, args.id, args.quality_scales, data, args.notes, args.float_out,
                        args.debias, args.shared_trunk, args.trunk, args.float_shared_trunk, args.shared_encoder)
    except FllicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), weights hash {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
