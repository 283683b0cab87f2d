"""Models that share a shipped model's codec behind a trunk of their own.

Such a file holds a denoising trunk alone (float16, with its configuration;
none where it keeps the base's own), the metadata that differ from its
base's, and names its base, a shipped model: the base's g_a, h_a, coding tables and integer decoder are used as
they are. Files it writes name the base's decoder part (format version 3),
so any install that has the base decodes them without this file. The
shipped camera model is one (fllic-awgn-v7 reading a per-pixel noise map of
correlated noise), and so is every model ``fllic adapt`` writes.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from pathlib import Path

import torch

from fllic._errors import ModelMismatchError

ADAPTED_FORMAT = "fllic-adapted-1"


def is_adapted_file(path) -> bool:
    """True for a trunk-on-a-base model file (only its format key is checked)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a torch file at all: not such a model
        return False
    return isinstance(state, dict) and state.get("format") == ADAPTED_FORMAT


def with_trunk(base, trunk_state: dict[str, torch.Tensor] | None, model_id: str, meta: dict | None = None,
               trunk_config: dict | None = None):
    """A CodingModel: ``base`` behind the trunk ``trunk_state`` (of ``trunk_config``, by default the base
    trunk's; None keeps the base's own trunk), its files naming ``base``'s decoder."""
    from fllic.models.fllic_net import CodingModel
    from fllic.models.trunk import DenoisingTrunk, TrunkConfig

    if base.net.trunk is None:
        raise ModelMismatchError(f"model {base.meta.get('id')!r} has no denoising trunk to replace")
    net = copy.deepcopy(base.net)
    if trunk_state is not None and trunk_config is not None:
        config = TrunkConfig(**{**trunk_config, "channels": tuple(trunk_config["channels"])})
        net.trunk = DenoisingTrunk(config)
        net.config = replace(net.config, trunk=config.channels, trunk_blocks=config.blocks,
                             trunk_kind=config.kind_input)
    if trunk_state is not None:
        net.trunk.load_state_dict({k: v.float() for k, v in trunk_state.items()})
    info = {**base.meta, **(meta or {}), "id": model_id, "decoder_id": base.decoder_id,
            "adapted_from": base.meta.get("id", "custom")}
    model = CodingModel(net.eval(), base.tables, base.decoder, info)
    model.device = base.device
    return model


def save_adapted(model, path: Path, base=None) -> None:
    """Write ``model`` as its trunk (float16) and configuration, the metadata that differ from its base's,
    and the base's id and decoder hash."""
    from fllic.models.registry import load

    base = base or load(model.meta["adapted_from"])
    meta = {k: v for k, v in model.meta.items() if base.meta.get(k) != v and k not in ("id", "decoder_id")}
    trunk = {k: v.detach().cpu().half() for k, v in model.net.trunk.state_dict().items()}
    ours = base.net.trunk.state_dict()
    if trunk.keys() == ours.keys() and all(torch.equal(v, ours[k].detach().cpu().half()) for k, v in trunk.items()):
        trunk = None  # the base's own trunk: the file holds the metadata alone
    state = {"format": ADAPTED_FORMAT, "id": model.meta["id"], "base": base.meta["id"],
             "decoder_hash": model.decoder_hash.hex(), "trunk_config": asdict(model.net.trunk.config),
             "trunk": trunk, "meta": meta}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    tmp.replace(path)


def load_adapted(path: Path):
    """The CodingModel of such a file: its base (a shipped model) behind its trunk."""
    from fllic.models.registry import load

    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if state.get("format") != ADAPTED_FORMAT:
        raise ModelMismatchError(f"{path} is not a trunk-on-a-base model file")
    base = load(state["base"])
    if base.decoder_hash.hex() != state["decoder_hash"]:
        raise ModelMismatchError(f"{path} was made from another version of {state['base']!r}; make it again")
    return with_trunk(base, state["trunk"], state["id"], state.get("meta"), state.get("trunk_config"))
