"""What each shipped model can do in this installation, found without PyTorch where it is absent.

A model encodes where its weights are installed and PyTorch imports; its
files decode where the decoder part they name (``<id>-decoder.npz``) is
installed, which the reference decoder reads without PyTorch. A model that
shares another's codec (an adapted trunk, fllic.models.adapted) names that
model's decoder part.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path


from fllic._deps import torch_available
from fllic._errors import ModelMismatchError
from fllic.decoder.model import SUFFIX, read_arrays, weights_dir
from fllic.models.registry import DEFAULT_GREY_MODEL, DEFAULT_MODEL, SHIPPED, ModelInfo, weights_path

_ADAPTED_FORMAT = "fllic-adapted-1"  # fllic.models.adapted.ADAPTED_FORMAT, which imports torch


class _PlainUnpickler(pickle.Unpickler):
    """Reads plain Python values only: any class or function (a tensor, say) is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name} is not a plain value")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("stored tensors are not plain values")


def _decoder_file(model_id: str) -> Path:
    return weights_dir() / f"{model_id}{SUFFIX}"


def adapted_base(path: Path) -> str | None:
    """The base model an adapted file without a trunk of its own names, read without PyTorch; None otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            with z.open(name) as f:
                state = _PlainUnpickler(f).load()
    except (OSError, StopIteration, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError):
        return None
    if isinstance(state, dict) and state.get("format") == _ADAPTED_FORMAT and isinstance(state.get("base"), str):
        return state["base"]
    return None


def _from_decoder_file(decoder: str | None, own: bool) -> dict:
    """The quality levels a decoder file records (read with the arrays it shares with its base, and checked
    against its decoder hash), and the weights hash where it is the model's own."""
    unknown = {"weights_hash": None, "quality_levels": None}
    if decoder is None:
        return unknown
    try:
        meta, arrays = read_arrays(_decoder_file(decoder))
        return {"weights_hash": meta["weights_hash"] if own else None,
                "quality_levels": int(arrays["decoder.q_scales"].size)}
    except (ModelMismatchError, KeyError):
        return unknown


def _from_encoder(model_id: str) -> dict:
    from fllic.models.registry import load

    model = load(model_id)
    return {"weights_hash": model.hash.hex(), "quality_levels": len(model.meta.get("quality_scales", [1.0])),
            "decoder": model.decoder_id}


def status(info: ModelInfo, torch: bool) -> dict:
    """One model's row: id, default, default_grey (the default for grey images), description, retired, encodes,
    decoder (the decoder part its files name, None where that cannot be read without PyTorch), decodes, weights_hash
    and quality_levels (None where unknown)."""
    has_weights = weights_path(info).is_file()
    encodes = has_weights and torch
    if encodes:
        found = _from_encoder(info.id)
    else:
        decoder = info.id if _decoder_file(info.id).is_file() else adapted_base(weights_path(info))
        found = {**_from_decoder_file(decoder, own=decoder == info.id), "decoder": decoder}
    decodes = found["decoder"] is not None and _decoder_file(found["decoder"]).is_file()
    return {"id": info.id, "default": info.id == DEFAULT_MODEL, "default_grey": info.id == DEFAULT_GREY_MODEL,
            "description": info.description,
            "retired": info.retired, "encodes": encodes, "decodes": decodes, **found}


def shipped() -> list[dict]:
    """Every shipped model's row (see :func:`status`), in the registry's order."""
    torch = torch_available()
    return [status(info, torch) for info in SHIPPED]
