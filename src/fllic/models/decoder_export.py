"""Write the shipped models' decoder parts as torch-free files: ``<model-id>-decoder.npz``.

    python -m fllic.models.decoder_export [MODEL_ID ...]

Each file holds a model's coding tables and integer decoder (h_s and g_s) as
numpy arrays, the layout :mod:`fllic.decoder.model` reads, beside the model's
.pt file; ``fllic.decoder`` decodes with it alone. A model whose files name
another model's decoder (an adapted model, format version 3) needs none of
its own. A file over 8 MB is refused.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from fllic.decoder.model import FORMAT, SUFFIX, canonical, hash_arrays, load_file

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


def decoder_arrays(model) -> dict[str, np.ndarray]:
    """A CodingModel's decoder part as a decoder file's arrays (w_int narrowed to int16), meta included."""
    arrays = {**_flat("tables.", model.tables.to_state()), **_flat("decoder.", model.decoder.to_state())}
    for key in [k for k in arrays if k.endswith(".w_int")]:
        w = arrays[key]
        if np.abs(w).max() > np.iinfo(np.int16).max:
            raise ValueError(f"{key} does not fit int16")
        arrays[key] = w.astype(np.int16)
    if hash_arrays(canonical(arrays)) != model.decoder_hash:
        raise ValueError("the arrays do not hash to the model's decoder hash")
    meta = {"format": FORMAT, "model_id": model.meta.get("id", "custom"), "weights_hash": model.hash.hex(),
            "decoder_hash": model.decoder_hash.hex()}
    return {"meta": np.array(json.dumps(meta, sort_keys=True)), **arrays}


def export(model, path, max_bytes: int = MAX_BYTES) -> int:
    """Write ``model``'s decoder file to ``path``; its size in bytes. ValueError over ``max_bytes``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **decoder_arrays(model))
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


def export_shipped(ids=None, out=sys.stdout) -> dict[str, int]:
    """Decoder files of the shipped models (all, or ``ids``) beside their weights; sizes in bytes."""
    from fllic.models.registry import SHIPPED, load, weights_path

    sizes = {}
    for info in SHIPPED:
        if ids and info.id not in ids:
            continue
        model = load(info.id)
        if model.decoder_id != info.id:
            print(f"{info.id}: its files name {model.decoder_id}'s decoder; no decoder file of its own", file=out)
            continue
        path = weights_path(info).with_name(f"{info.id}{SUFFIX}")
        sizes[info.id] = export(model, path)
        print(f"{path.name}: {sizes[info.id]} bytes", file=out)
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
