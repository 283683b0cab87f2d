"""python -m fllic.train.camera: a camera model from a shipped codec and a camera trunk.

The camera model is a shipped model's codec (g_a, h_a, coding tables and
integer decoder, unchanged, so its quality levels and default tables carry
over, and its files name that model's decoder) behind a denoising trunk trained for camera noise
(``python -m fllic.train.denoiser --camera-fraction ...``: it reads a
per-pixel noise map and the noise kind). ``--gain`` is the factor by which
auto mode scales the blind estimator's reading of correlated noise before the
trunk reads it (``meta["correlated_gain"]``), chosen on real development
photographs with ``python -m fllic.bench.real --gains``. ``--coarse-gain``
runs the trunk at two scales (``meta["coarse_gain"]``, :func:`fllic.models.trunk.two_scale`),
the coarse pass reading the map at that gain instead, chosen with
``python -m fllic.bench.real --coarse-gains``. ``--spread-cap`` holds the
reading to at most that many times the PCA reading before the gain
(``meta["spread_cap"]``, :meth:`fllic.noise.estimate.NoiseLevel.capped`),
chosen with ``python -m fllic.bench.textured --caps``; ``--spread-window``
lets the weakest patches lift that cap where noise, not texture, fills them
(``meta["spread_window"]``), chosen with ``python -m fllic.bench.textured
--windows``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from fllic.models.adapted import save_adapted
from fllic.models.registry import load


def camera_model(base_id: str, trunk_checkpoint: Path | None, model_id: str, gain: float, notes: str = "",
                 coarse_gain: float | None = None, spread_cap: float | None = None,
                 spread_window: tuple[float, float] | None = None):
    """``base_id``'s codec behind the trunk of ``trunk_checkpoint`` (a denoiser checkpoint or export; None:
    the base's own trunk), reading the per-pixel noise map of correlated noise at ``gain``; with
    ``coarse_gain``, at two scales, the coarse pass reading the blind map at ``coarse_gain``; with
    ``spread_cap``, the reading held to that many times the PCA reading first, and with ``spread_window``
    only where the weakest patches' texture ratio is below that window."""
    from fllic.models.adapted import with_trunk
    from fllic.train.denoiser import trunk_of

    meta = {"noise_map": True, "correlated_gain": float(gain), "notes": notes}
    if coarse_gain is not None:
        meta["coarse_gain"] = float(coarse_gain) / float(gain)  # relative to the map the fine pass reads
    if spread_cap is not None:
        meta["spread_cap"] = float(spread_cap)
    if spread_window is not None:
        meta["spread_window"] = [float(v) for v in spread_window]
    if trunk_checkpoint is None:
        return with_trunk(load(base_id), None, model_id, meta)
    trunk = trunk_of(trunk_checkpoint)
    state = torch.load(trunk_checkpoint, map_location="cpu", weights_only=True)
    weights = {k: v.half() for k, v in trunk.state_dict().items()}
    return with_trunk(load(base_id), weights, model_id, {**meta, "trunk_steps": int(state.get("step", 0))},
                      asdict(trunk.config))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.camera", description=__doc__)
    p.add_argument("--base", default="fllic-awgn-v7", help="the shipped model whose codec the camera model uses")
    p.add_argument("--trunk", type=Path, default=None,
                   help="the camera trunk: a denoiser checkpoint or export (default: the base's own trunk)")
    p.add_argument("--id", required=True, help="the camera model's id")
    p.add_argument("--gain", type=float, required=True, help="the correlated gain (see the module docstring)")
    p.add_argument("--coarse-gain", type=float, default=None,
                   help="run the trunk at two scales, the coarse pass reading the blind map at this gain")
    p.add_argument("--spread-cap", type=float, default=None,
                   help="hold the blind reading of correlated noise to this many times the PCA reading")
    p.add_argument("--spread-window", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="lift the spread cap as the weakest patches' texture ratio goes from LO to HI")
    p.add_argument("--notes", default="", help="free text stored in the model's metadata")
    p.add_argument("--out", type=Path, required=True, help="the model file (the trunk, naming its base)")
    args = p.parse_args(argv)
    model = camera_model(args.base, args.trunk, args.id, args.gain, args.notes, args.coarse_gain, args.spread_cap,
                         args.spread_window)
    save_adapted(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), weights hash {model.hash.hex()}, "
          f"the codec and decoder of {args.base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
