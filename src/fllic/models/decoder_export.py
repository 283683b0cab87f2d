"""Write the shipped models' decoder parts as torch-free files: ``<model-id>-decoder.npz``.

    python -m fllic.models.decoder_export [MODEL_ID ...]

Each file holds a model's coding tables and integer decoder (h_s and g_s) as
numpy arrays, the layout :mod:`fllic.decoder.model` reads, beside the model's
.pt file; ``fllic.decoder`` decodes with it alone. A model whose files name
another model's decoder (an adapted model, format version 3) needs none of
its own. Where an earlier shipped model's decoder file (one without a base)
holds most of a model's arrays unchanged, the model's file names it as its
base and holds only the rest. A file over 8 MB is refused.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from fllic.decoder.model import (FORMAT, NARROW_FORMAT, SUFFIX, canonical, hash_arrays, load_file, read_arrays,
                                 split_planes)

MAX_BYTES = 8_000_000


def _flat(prefix: str, state: dict) -> dict[str, np.ndarray]:
    """Nested dicts of tensors as numpy arrays under dotted keys."""
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update(_flat(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = value.detach().cpu().numpy()
    return out


def decoder_arrays(model, base: Path | None = None) -> dict[str, np.ndarray]:
    """A CodingModel's decoder part as a decoder file's arrays, meta included: each w_int as two byte
    planes, and the arrays equal to those of the decoder file ``base`` left to it."""
    arrays = flat_arrays(model)
    narrow = any(k.endswith(".in_shift") for k in arrays)
    meta = {"format": NARROW_FORMAT if narrow else FORMAT, "model_id": model.meta.get("id", "custom"), "weights_hash": model.hash.hex(),
            "decoder_hash": model.decoder_hash.hex()}
    if base is not None:
        base_meta, base_arrays = read_arrays(base)
        if "base" in base_meta:
            raise ValueError(f"{base.name} names a base of its own; a base must hold all its arrays")
        shared = shared_keys(arrays, base_arrays)
        meta.update(base=base.name[: -len(SUFFIX)], base_arrays=shared)
        arrays = {k: v for k, v in arrays.items() if k not in shared}
    planes = {}
    for key, a in arrays.items():
        if key.endswith(".w_int"):
            planes[key + ".hi"], planes[key + ".lo"] = split_planes(a)
        else:
            planes[key] = a
    return {"meta": np.array(json.dumps(meta, sort_keys=True)), **planes}


def flat_arrays(model) -> dict[str, np.ndarray]:
    """The tables and the integer decoder as flat arrays, w_int narrowed to int16, checked against the decoder hash."""
    arrays = {**_flat("tables.", model.tables.to_state()), **_flat("decoder.", model.decoder.to_state())}
    for key in [k for k in arrays if k.endswith(".w_int")]:
        w = arrays[key]
        if np.abs(w).max() > np.iinfo(np.int16).max:
            raise ValueError(f"{key} does not fit int16")
        arrays[key] = w.astype(np.int16)
    if hash_arrays(canonical(arrays)) != model.decoder_hash:
        raise ValueError("the arrays do not hash to the model's decoder hash")
    return arrays


def shared_keys(arrays: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> list[str]:
    """The keys whose arrays ``base`` holds unchanged (same type, shape and values)."""
    return sorted(k for k, a in arrays.items()
                  if k in base and base[k].dtype == a.dtype and np.array_equal(base[k], a))


def export(model, path, max_bytes: int = MAX_BYTES, base: Path | None = None) -> int:
    """Write ``model``'s decoder file to ``path`` (sharing ``base``'s equal arrays); its size in bytes.
    ValueError over ``max_bytes``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **decoder_arrays(model, base))
    if buf.tell() > max_bytes:
        raise ValueError(f"the decoder file of {model.meta.get('id')!r} would be {buf.tell()} bytes, "
                         f"over the limit of {max_bytes}")
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    check = load_file(path)
    if check.decoder_hash != model.decoder_hash or check.weights_hash != model.hash:
        raise ValueError(f"{path.name} does not read back as written")
    return buf.tell()


def _base_for(model, candidates: list[Path]) -> Path | None:
    """The candidate decoder file (none with a base of its own) sharing most of ``model``'s bytes, if
    it shares more than half of them."""
    arrays = flat_arrays(model)
    total = sum(a.nbytes for a in arrays.values())
    best, most = None, total // 2
    for path in candidates:
        meta, theirs = read_arrays(path)
        if "base" in meta:
            continue
        size = sum(arrays[k].nbytes for k in shared_keys(arrays, theirs))
        if size > most:
            best, most = path, size
    return best


def export_shipped(ids=None, out=sys.stdout) -> dict[str, int]:
    """Decoder files of the shipped models (all, or ``ids``) beside their weights; sizes in bytes."""
    from fllic.models.registry import SHIPPED, load, weights_path

    sizes, written = {}, []
    for info in SHIPPED:
        model = load(info.id)
        if model.decoder_id != info.id:
            print(f"{info.id}: its files name {model.decoder_id}'s decoder; no decoder file of its own", file=out)
            continue
        path = weights_path(info).with_name(f"{info.id}{SUFFIX}")
        if not ids or info.id in ids:
            base = _base_for(model, written)
            sizes[info.id] = export(model, path, base=base)
            print(f"{path.name}: {sizes[info.id]} bytes" + (f", sharing {base.name}" if base else ""), file=out)
        if path.is_file():
            written.append(path)  # an earlier model's file: a base for later ones
    for path in written:
        load_file(path)  # every file still reads, its base included, whatever this run rewrote
    return sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fllic.models.decoder_export", description=__doc__.split("\n")[0])
    parser.add_argument("ids", nargs="*", help="shipped model ids (default: every shipped model)")
    args = parser.parse_args(argv)
    sizes = export_shipped(args.ids)
    print(f"{len(sizes)} decoder files, {sum(sizes.values())} bytes in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
