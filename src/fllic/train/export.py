"""python -m fllic.train.export: finalise a training checkpoint into shippable weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

DEFAULT_QUALITY_SCALES = (4.0, 2.5, 1.6, 1.0)


def export(checkpoint: Path, out: Path, model_id: str, quality_scales, notes: str = "") -> str:
    state = torch.load(checkpoint, map_location="cpu")
    net = FLLIC(FllicConfig(**state["config"]))
    net.load_state_dict(state["model"])
    meta = {
        "id": model_id,
        "quality_scales": [float(q) for q in quality_scales],
        "train_steps": int(state["step"]),
        "train_wall_hours": round(float(state["elapsed"]) / 3600, 2),
        "notes": notes,
    }
    model = finalize(net, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return model.hash.hex()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.export", description=__doc__)
    p.add_argument("--checkpoint", type=Path, default=Path.home() / ".cache" / "fllic" / "train" / "checkpoint.pt")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--id", default="fllic-awgn-v1")
    p.add_argument("--quality-scales", type=float, nargs="+", default=list(DEFAULT_QUALITY_SCALES),
                   help="step-map scale of quality 1, 2, ... (the last, the finest, is the default)")
    p.add_argument("--notes", default="")
    args = p.parse_args(argv)
    digest = export(args.checkpoint, args.out, args.id, args.quality_scales, args.notes)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), weights hash {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
