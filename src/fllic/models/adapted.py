"""Adapted models: a shipped model whose denoising trunk was fitted to one camera (``fllic adapt``).

An adapted model file holds the fitted trunk alone (float16) and names its
base, a shipped model: the base's g_a, h_a, coding tables and integer decoder
are used as they are. Files it writes name the base's decoder part (format
version 3), so any stock install decodes them without the adapted file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from fllic._errors import ModelMismatchError

ADAPTED_FORMAT = "fllic-adapted-1"


def is_adapted_file(path) -> bool:
    """True for a file ``fllic adapt`` wrote (read lazily: only its format key is checked)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a torch file at all: not an adapted model
        return False
    return isinstance(state, dict) and state.get("format") == ADAPTED_FORMAT


def with_trunk(base, trunk_state: dict[str, torch.Tensor], model_id: str, meta: dict | None = None):
    """A CodingModel: ``base`` with its trunk's weights replaced, its files naming ``base``'s decoder."""
    from fllic.models.fllic_net import CodingModel

    if base.net.trunk is None:
        raise ModelMismatchError(f"model {base.meta.get('id')!r} has no denoising trunk to adapt")
    net = copy.deepcopy(base.net)
    net.trunk.load_state_dict({k: v.float() for k, v in trunk_state.items()})
    info = {**base.meta, **(meta or {}), "id": model_id, "decoder_id": base.decoder_id,
            "adapted_from": base.meta.get("id", "custom")}
    model = CodingModel(net.eval(), base.tables, base.decoder, info)
    model.device = base.device
    return model


def save_adapted(model, path: Path, extra: dict | None = None) -> None:
    """Write an adapted model: its trunk (float16), its base's id and weights hash, and its metadata."""
    base_id = model.meta["adapted_from"]
    state = {"format": ADAPTED_FORMAT, "id": model.meta["id"], "base": base_id,
             "decoder_hash": model.decoder_hash.hex(),
             "trunk": {k: v.detach().cpu().half() for k, v in model.net.trunk.state_dict().items()},
             "meta": {k: v for k, v in model.meta.items() if k.startswith("adapt")}, **(extra or {})}
    tmp = Path(path).with_name(Path(path).name + ".part")
    torch.save(state, tmp)
    tmp.replace(path)


def load_adapted(path: Path):
    """The CodingModel of an adapted model file: its base (a shipped model) with the fitted trunk."""
    from fllic.models.registry import load

    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if state.get("format") != ADAPTED_FORMAT:
        raise ModelMismatchError(f"{path} is not an adapted model file")
    base = load(state["base"])
    if base.decoder_hash.hex() != state["decoder_hash"]:
        raise ModelMismatchError(f"{path} was adapted from another version of {state['base']!r}; adapt again")
    return with_trunk(base, state["trunk"], state["id"], state.get("meta"))
