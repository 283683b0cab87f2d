"""Widen a trained codec's latent y (more channels M) without changing what it computes.

Issue 7's capacity lever: at σ 10-15 the codec's unquantized estimate loses over a
decibel to the trunk's, because 128 channels at 1/16 resolution cannot carry the
estimate's fine texture. A wider model starts from the trained one:

- every tensor of the wider model starts at its fresh initialisation (so g_a's new
  channels carry the Haar sub-bands that the narrow transform truncated, see
  ``fllic.models.init``), and the trained weights are copied into its leading block;
- weights from a new channel into an old one are zeroed, so at step 0 the wide model
  decodes exactly what the narrow one did, and training decides what the new channels
  are worth: their consumers' weights get gradients as soon as the new channels carry
  signal;
- h_s's output, the concatenation (μ, log σ_y, log Δ_y), and g_s's input, y followed by
  the σ and log q maps, are remapped part by part.

``--gs-blocks N`` deepens instead (or as well): N ResBlocks at g_s's last, half
resolution, where the codec's copy of the estimate loses most (issue 29: fitted
latents leave g_s 0.66 dB below the trunk at σ 15). Each new block starts as the
identity (its second convolution zero) with its first convolution freshly
initialised, so it decodes what the shallower model decoded and learns from the
first step. ``--ga-blocks N`` does the same at g_a's first, half resolution: an encoder
that can find better latents for the same decoder (fitted latents leave g_a 0.47 dB of
the loss at the coarsest level), trained with ``fllic train --encoder-only``.

``--gs-n1 W`` widens g_s's last, half resolution from n1 channels to W (issue 29's width lever, after the depth
one: a synthesis that can draw finer detail needs more features where the detail is drawn). As for the latent,
the trained weights fill each tensor's leading block, new channels read the old ones through fresh weights, and
old channels (g_s's output among them) read nothing from the new ones, so step 0 decodes what the narrower model
decoded; the sub-pixel skip's 4·n1 outputs are the leading block of its 4·W (PixelShuffle groups them by channel).

``--gs-narrow N`` makes the convolutions of g_s's last N resolutions narrow (1: half, 2: half and quarter;
``fllic.models.layers.NarrowConv2d``, issue 27's lever: 10-bit inputs, weights under an L1 bound, one exact
float32 product in the decoder): the same weights, rounded from the first training
step on, their input ranges set by the first batch; train them with ``fllic train --init FILE``
(quantization-aware training).

``python -m fllic.train.widen --from CKPT --m 192 --out FILE`` writes a float weights
file that ``fllic train --init FILE`` starts from.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from fllic.models.fllic_net import FLLIC, FllicConfig
from fllic.models.integer import MAX_TAPS


def _parts(key: str, old_m: int, new_m: int, dim: int, size: int) -> list[tuple[slice, slice]] | None:
    """(old, new) index ranges along ``dim`` for the two concatenated layouts; None elsewhere."""
    if key.startswith("h_s.") and dim == 0 and size == 3 * old_m:
        return [(slice(i * old_m, (i + 1) * old_m), slice(i * new_m, i * new_m + old_m)) for i in range(3)]
    if key == "g_s.0.weight" and dim == 1:
        return [(slice(0, old_m), slice(0, old_m)), (slice(old_m, size), slice(new_m, new_m + size - old_m))]
    return None


def _ranges(key: str, old: torch.Tensor, old_m: int, new_m: int, dim: int) -> list[tuple[slice, slice]]:
    parts = _parts(key, old_m, new_m, dim, old.shape[dim])
    if parts is None:
        return [(slice(0, old.shape[dim]), slice(0, old.shape[dim]))]
    return parts


@torch.no_grad()
def widen_state(weights: dict[str, torch.Tensor], config: FllicConfig, m: int, seed: int = 0,
                quiet: float | None = None, gs_n1: int | None = None) -> dict[str, torch.Tensor]:
    """The state of ``FLLIC(replace(config, m=m, gs_n1=gs_n1))`` computing what ``weights`` computed.

    ``quiet``: scale g_a's new outputs by this factor, so that the new latents start near zero and quantize to
    zero: the wide model then also spends the bits the narrow one spent at step 0, not only decoding what it
    decoded (the Haar sub-bands of fresh new channels cost bits that g_s ignores at first)."""
    gs_n1 = config.gs_width if gs_n1 is None else gs_n1
    if m < config.m or gs_n1 < config.gs_width:
        raise ValueError(f"can only widen: the model has {config.m} latent channels and {config.gs_width} at g_s's "
                         f"half resolution, asked for {m} and {gs_n1}")
    torch.manual_seed(seed)
    wide = FLLIC(replace(config, m=m, gs_n1=gs_n1)).state_dict()
    out = {}
    for key, fresh in wide.items():
        old = weights[key].float()
        new = fresh.clone()
        if old.shape == new.shape:
            out[key] = old.clone()
            continue
        for o_old, o_new in _ranges(key, old, config.m, m, 0):
            if old.dim() == 1:
                new[o_new] = old[o_old]
                continue
            if old.shape[1] != new.shape[1]:
                new[o_new] = 0.0  # old outputs read nothing from new inputs
            for c_old, c_new in _ranges(key, old, config.m, m, 1):
                new[o_new, c_new] = old[o_old, c_old]
        out[key] = new
    _neutral_new_params(out, config.m, m)
    if gs_n1 > config.gs_width:
        _live_new_gs_channels(out, FLLIC(replace(config, m=m, gs_n1=gs_n1, trunk=None)), config.gs_width)
    if quiet is not None:
        _quiet_new_latents(out, config.m, m, quiet)
    return out


@torch.no_grad()
def deepen_state(weights: dict[str, torch.Tensor], config: FllicConfig, blocks: int,
                 seed: int = 0, ga_blocks: int | None = None) -> dict[str, torch.Tensor]:
    """The state of ``FLLIC(replace(config, gs_blocks=blocks, ga_blocks=ga_blocks))`` computing what ``weights``
    computed: new ResBlocks follow g_s's old half-resolution ones (and g_a's), each the identity at step 0
    (module docstring)."""
    ga_blocks = config.ga_blocks if ga_blocks is None else ga_blocks
    for name, old, new in (("g_s", config.gs_blocks, blocks), ("g_a", config.ga_blocks, ga_blocks)):
        if new < old:
            raise ValueError(f"can only deepen: {name} has {old} blocks at half resolution, asked for {new}")
    torch.manual_seed(seed)
    deep = FLLIC(replace(config, gs_blocks=blocks, ga_blocks=ga_blocks)).state_dict()
    shallow = FLLIC(replace(config, trunk=None))
    inserts = {"g_s": (len(shallow.g_s) - 2, blocks - config.gs_blocks),  # before g_s's last conv
               "g_a": (1 + config.ga_blocks, ga_blocks - config.ga_blocks)}  # before g_a's first down-step
    out = {}
    for key, fresh in deep.items():
        part = key.split(".")
        at, added = inserts.get(part[0], (0, 0))
        index = int(part[1]) if part[0] in inserts else -1
        if at <= index < at + added:  # a new block: the identity, its second conv zero
            out[key] = torch.zeros_like(fresh) if part[2:4] == ["branch", "2"] else fresh.clone()
            continue
        if index >= at + added:
            part[1] = str(index - added)
        out[key] = weights[".".join(part)].float().clone()
    return out


def _live_new_gs_channels(state: dict[str, torch.Tensor], net: FLLIC, old_width: int) -> None:
    """Give g_s's new half-resolution channels a signal: their rows of the sub-pixel skip into that resolution
    a fresh 1x1 convolution's (PyTorch's default initialisation). Every other path into them starts at zero
    (the branches' last convolutions, as in ``fllic.models.init``), and old channels read nothing from them, so
    without it they would stay zero and get no gradient; with it g_s's last convolution gets gradients for its
    weights from them at the first step, while the output is still unchanged."""
    from fllic.models.layers import UpResBlock

    last_up = [i for i, block in enumerate(net.g_s) if isinstance(block, UpResBlock)][-1]
    skip = net.g_s[last_up].skip[0]
    fresh = torch.nn.Conv2d(skip.in_channels, skip.out_channels, 1)
    state[f"g_s.{last_up}.skip.0.weight"][4 * old_width:] = fresh.weight[4 * old_width:]


QUIET_SCALE = 0.05  # a quiet new latent's scale σ_y over its step Δ_y: a zero symbol costs next to nothing


def _quiet_new_latents(state: dict[str, torch.Tensor], old_m: int, new_m: int, factor: float) -> None:
    """Scale the weights and biases of g_a's new latent channels by ``factor``, and start their σ_y at
    ``QUIET_SCALE`` times the old channels' median step, so that their zero symbols are all but free (with the
    old median σ_y, about six steps, each new latent costs bits whatever its value)."""
    for key, value in state.items():
        if key.startswith("g_a.") and value.dim() >= 1 and value.shape[0] == new_m and new_m != old_m:
            value[old_m:] *= factor
    b = state[_last_h_s(state) + ".bias"]
    b[new_m + old_m: 2 * new_m] = b[2 * new_m: 2 * new_m + old_m].median() + math.log(QUIET_SCALE)


def _neutral_new_params(state: dict[str, torch.Tensor], old_m: int, new_m: int) -> None:
    """New channels' μ starts at zero and their σ_y and Δ_y at the old channels' median."""
    w, b = state[_last_h_s(state) + ".weight"], state[_last_h_s(state) + ".bias"]
    for part in range(3):
        new = slice(part * new_m + old_m, (part + 1) * new_m)
        w[new] = 0.0
        b[new] = 0.0 if part == 0 else b[part * new_m: part * new_m + old_m].median()


def _last_h_s(state: dict[str, torch.Tensor]) -> str:
    convs = sorted({k.rsplit(".", 1)[0] for k in state if k.startswith("h_s.") and k.count(".") == 2},
                   key=lambda k: int(k.split(".")[1]))
    return convs[-1]


def _load(path: Path) -> tuple[FllicConfig, dict[str, torch.Tensor], dict]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    weights = state["model"] if "model" in state else state["state_dict"]
    config = dict(state["config"])
    if config.get("trunk") is not None:
        config["trunk"] = tuple(config["trunk"])
    return FllicConfig(**config), weights, state.get("meta", {})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m fllic.train.widen", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="source", type=Path, required=True,
                   help="a training checkpoint or float weights file (weights/*-float.pt)")
    p.add_argument("--m", type=int, default=None, help="latent channels of the wider model (default: the same)")
    p.add_argument("--gs-blocks", type=int, default=None,
                   help="ResBlocks at g_s's half resolution of the deeper model (default: the same)")
    p.add_argument("--ga-blocks", type=int, default=None,
                   help="ResBlocks at g_a's half resolution (default: the same); the decoder is unchanged, so "
                        "train the deeper g_a with --encoder-only to keep the start's decoder")
    p.add_argument("--gs-n1", type=int, default=None, metavar="W",
                   help="channels at g_s's half resolution of the wider model (default: the same)")
    p.add_argument("--gs-narrow", type=int, choices=(0, 1, 2), default=None,
                   help="g_s's last resolutions whose convolutions train as narrow layers (10-bit inputs): 1 half, 2 half and "
                        "quarter (default: the same)")
    p.add_argument("--out", type=Path, required=True, help="float weights file to write (fllic train --init)")
    p.add_argument("--quiet", type=float, default=None, metavar="FACTOR",
                   help="scale g_a's new latent channels by FACTOR (e.g. 0.01), so step 0 spends v7's bits too")
    args = p.parse_args(argv)
    config, weights, meta = _load(args.source)
    m, blocks, ga_blocks = args.m or config.m, args.gs_blocks or config.gs_blocks, args.ga_blocks or config.ga_blocks
    if args.quiet is not None and m == config.m:
        p.error(f"--quiet scales the new latent channels: give --m above the source's {config.m}")
    gs_n1 = args.gs_n1 or config.gs_width
    widened = m != config.m or gs_n1 != config.gs_width
    state = widen_state(weights, config, m, quiet=args.quiet, gs_n1=gs_n1) if widened else dict(weights)
    state = deepen_state(state, replace(config, m=m, gs_n1=gs_n1), blocks, ga_blocks=ga_blocks)
    narrow = config.gs_narrow if args.gs_narrow is None else args.gs_narrow
    gs_n1 = 0 if gs_n1 == config.n1 else gs_n1
    wide = asdict(replace(config, m=m, gs_blocks=blocks, ga_blocks=ga_blocks, gs_narrow=narrow, gs_n1=gs_n1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "config": wide, "state_dict": state, "meta": meta}, args.out)
    print(f"{args.out}: latent channels {config.m} -> {m}, half-resolution blocks of g_s {config.gs_blocks} -> "
          f"{blocks} and of g_a {config.ga_blocks} -> {ga_blocks}, its channels there {config.gs_width} -> "
          f"{wide['gs_n1'] or config.n1}, g_s's narrow stages {config.gs_narrow} -> {narrow}")
    taps = state["g_s.0.weight"][0].numel()
    if taps > MAX_TAPS:
        print(f"warning: g_s's first layer reads {taps} taps, over the integer decoder's exact bound of {MAX_TAPS}: "
              "this codec trains in float but cannot be exported (results/training/v8-trials.md)", file=sys.stderr)


if __name__ == "__main__":
    main()
