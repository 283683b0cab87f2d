"""A model's decoder part, read from its torch-free file ``<model-id>-decoder.npz``.

The file is a numpy ``savez_compressed`` archive (no pickled objects) holding
what decoding reads and nothing of the encoder:

    meta                      JSON: format, model_id, weights_hash, decoder_hash (hex);
                              base and base_arrays where it shares arrays (below)
    tables.y.freqs, .support  int64: one integer frequency table per scale-table entry
    tables.z.freqs, .support  int64: one table per hyper-latent channel
    decoder.exps              int64 (4,): the exponents e_z, e_mu, e_l, e_y
    decoder.step_z            int64 (nz,): Δ_z at 2^-Z_FRAC
    decoder.exp_lut           int64: exp over e_l's grid of [-8, 4], at 2^-STEP_FRAC
    decoder.thresholds        int64 (63,): scale-table index thresholds at 2^-e_l
    decoder.q_scales          float32: the quality levels' step scales q
    decoder.logq_l, .logq_y   int64: log q at 2^-e_l and at 2^-e_y, per level
    decoder.{hs,gs}.<i>.…     the layers of h_s and g_s in order; decoder.hs_out.{0,1,2}
                              (μ, log σ_y, log Δ_y) and decoder.gs_out: per convolution
                              .w_int (Cout×Cin×k×k), .bias and .shift (int32);
                              a ResBlock is .conv1, .conv2 and .residual_shift (int64);
                              an Up-ResBlock is .skip, .conv_a and .conv_b

Format ``fllic-decoder-1`` stores each .w_int as int16. Format
``fllic-decoder-2`` stores it as two byte planes, ``.w_int.hi`` (int8, the
high byte) and ``.w_int.lo`` (uint8, the low byte), w = 256·hi + lo, which
deflate packs 15 % tighter; and a file may name a ``base``, the model id of
another decoder file beside it (itself without a base), whose arrays listed
in ``base_arrays`` it shares instead of holding copies (a model whose
quality levels alone differ from another's, or whose encoder alone was
retrained). Format ``fllic-decoder-3`` is format 2 with narrow layers (a
model whose g_s was trained for them): such a convolution also holds
.in_mult and .in_shift (int64, its input's requantizing multiplier and shift
to 10 bits) and .mult (int64 (Cout,), its output multipliers), and each of its
output channels' .w_int sums to at most 2^15 - 1 in magnitude
(:mod:`fllic.decoder.integer`). A file without narrow layers is written as
format 2, so a model without them reads in every fllic that reads format 2.
Readers take all three formats.

The decoder hash is the first 16 bytes of SHA-256 over the tables and the
integer decoder, fed array by array, the ``tables.`` arrays and then the
``decoder.`` arrays, each in sorted key order, as ``<key>:<dtype>:<shape>;``
and then the array's little-endian bytes, with the torch dtype names
(``torch.int64``; w_int as ``torch.int32``, the width the layers compute in). The loader
recomputes it from the arrays it read (the base's shared arrays included, the
planes joined) and refuses a file whose arrays do not hash to the decoder hash
it records: a damaged decoder never decodes. Version
3 files name this hash; version 2 files name the model's weights hash, which
also covers the encoder, so a decoder file records it for them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from fllic._errors import ModelMismatchError
from fllic.decoder.integer import (A_MAX, BIAS_MAX, IN_MULT_MAX, IN_SHIFT_MAX, L1_MAX, MAX_SHIFT, MULT_MAX,
                                   NARROW_L1, Conv, ResBlock, UpResBlock)
from fllic.decoder.symbols import SymbolTables

FORMAT = "fllic-decoder-2"
NARROW_FORMAT = "fllic-decoder-3"  # format 2 with narrow layers
READS = ("fllic-decoder-1", FORMAT, NARROW_FORMAT)
SUFFIX = "-decoder.npz"
PLANES = (".hi", ".lo")  # a .w_int's high (int8) and low (uint8) bytes in format 2
MAX_EXP = 28  # STEP_FRAC: μ and ŷ are rescaled from Δ_y's format by left shifts
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_TORCH_DTYPES = {np.dtype(np.int64): "torch.int64", np.dtype(np.int32): "torch.int32",
                 np.dtype(np.int16): "torch.int16", np.dtype(np.float32): "torch.float32"}


@dataclass
class DecoderModel:
    """What decoding reads of a model: coding tables and the integer h_s and g_s."""

    model_id: str
    weights_hash: bytes  # what version 2 files name
    decoder_hash: bytes  # what version 3 files name
    exps: dict  # e_z, e_mu, e_l, e_y
    step_z: np.ndarray
    hs: list
    hs_out: list  # the convolutions giving μ, log σ_y and log Δ_y
    gs: list
    gs_out: Conv
    exp_lut: np.ndarray
    thresholds: np.ndarray
    q_scales: np.ndarray
    logq_l: np.ndarray
    logq_y: np.ndarray
    tables_y: SymbolTables
    tables_z: SymbolTables

    @property
    def nz(self) -> int:
        """Hyper-latent channels."""
        return int(self.step_z.size)

    @property
    def m(self) -> int:
        """Latent channels."""
        return int(self.hs_out[0].w_int.shape[0])


# -- the decoder hash ---------------------------------------------------------------------
def hash_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """16-byte SHA-256 over ``arrays``: the tables, then the decoder, each in sorted key order (module docstring)."""
    h = hashlib.sha256()
    for key in sorted(arrays, key=lambda k: (not k.startswith("tables."), k)):
        a = arrays[key]
        h.update(f"{key}:{_TORCH_DTYPES[a.dtype]}:{tuple(a.shape)};".encode())
        h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    return h.digest()[:16]


def canonical(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The hashed arrays: the file's ``tables.*`` and ``decoder.*``, w_int widened to int32."""
    return {k: (v.astype(np.int32) if k.endswith(".w_int") else v)
            for k, v in arrays.items() if k.startswith(("tables.", "decoder."))}


# -- reading a file -----------------------------------------------------------------------
def _damaged(path: Path, why: str) -> ModelMismatchError:
    return ModelMismatchError(f"decoder file {path.name} is damaged ({why}); reinstall fllic or export it again")


def read_arrays(path: Path, base_of: str | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a decoder file, planes joined, shared arrays read from its base, and its
    decoder hash checked against them. ``base_of`` names the file that reads this one as its base."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise _damaged(path, f"not a readable npz archive: {e}") from e
    try:
        meta = json.loads(str(arrays.pop("meta")))
        recorded = bytes.fromhex(meta["decoder_hash"])
        bytes.fromhex(meta["weights_hash"])
    except (KeyError, ValueError, TypeError) as e:
        raise _damaged(path, "no valid metadata") from e
    if meta.get("format") not in READS:
        raise ModelMismatchError(f"{path.name} is a decoder file of format {meta.get('format')!r}; "
                                 f"this fllic reads {', '.join(READS)}: install a newer fllic")
    arrays = _joined(path, arrays)
    if "base" in meta:
        arrays.update(_shared(path, meta, base_of))
    if any(a.dtype not in _TORCH_DTYPES for a in arrays.values()):
        raise _damaged(path, "an array of an unexpected type")
    if hash_arrays(canonical(arrays)) != recorded:
        raise _damaged(path, "its arrays do not match its decoder hash")
    return meta, arrays


def split_planes(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An int16 array's high bytes (int8) and low bytes (uint8): w = 256·hi + lo."""
    w = np.asarray(w, np.int16)
    return (w >> 8).astype(np.int8), (w & 0xFF).astype(np.uint8)


def _joined(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Format 2's byte planes joined back into int16 .w_int arrays."""
    out = {}
    for key, a in arrays.items():
        if key.endswith(".w_int.lo"):
            continue
        if key.endswith(".w_int.hi"):
            lo = arrays.get(key[:-3] + ".lo")
            if lo is None or lo.shape != a.shape or a.dtype != np.int8 or lo.dtype != np.uint8:
                raise _damaged(path, f"{key[:-3]} has no matching byte planes")
            out[key[:-3]] = (a.astype(np.int16) << 8) | lo.astype(np.int16)
        else:
            out[key] = a
    return out


def _shared(path: Path, meta: dict, base_of: str | None) -> dict[str, np.ndarray]:
    """The arrays a file shares with its base: the base file beside it, read and checked in turn."""
    base, keys = meta.get("base"), meta.get("base_arrays")
    if base_of is not None:
        raise _damaged(path, f"it is {base_of}'s base and names a base of its own")
    if not isinstance(base, str) or not _ID.fullmatch(base) or not isinstance(keys, list):
        raise _damaged(path, "a base named wrongly")
    base_path = path.with_name(f"{base}{SUFFIX}")
    if not base_path.is_file():
        raise ModelMismatchError(f"{path.name} shares arrays with {base_path.name}, which is not beside it; "
                                 f"copy the two files together")
    _, base_arrays = read_arrays(base_path, base_of=path.name)
    missing = [k for k in keys if k not in base_arrays]
    if missing:
        raise _damaged(path, f"its base {base_path.name} has no {missing[0]}")
    return {k: base_arrays[k] for k in keys}


def _conv(arrays: dict, prefix: str) -> Conv:
    w = arrays[f"{prefix}.w_int"].astype(np.int64)
    shift = arrays[f"{prefix}.shift"].astype(np.int64)
    if w.ndim != 4 or np.abs(w).reshape(w.shape[0], -1).sum(1).max() > L1_MAX:
        raise ModelMismatchError(f"{prefix} breaks the L1 bound that makes the convolution exact; export the model again")
    if shift.min() < 1 or shift.max() > MAX_SHIFT:
        raise ModelMismatchError(f"{prefix} has a rounding shift outside 1..{MAX_SHIFT}; export the model again")
    bias = arrays[f"{prefix}.bias"].astype(np.int64)
    if bias.size and np.abs(bias).max() > BIAS_MAX:
        raise ModelMismatchError(f"{prefix} has a bias beyond ±{BIAS_MAX}; export the model again")
    if f"{prefix}.in_shift" not in arrays:
        return Conv(w, bias, shift)
    return Conv(w, bias, shift, **_narrow(arrays, prefix, w, bias))


def _narrow(arrays: dict, prefix: str, w: np.ndarray, bias: np.ndarray) -> dict:
    """A narrow layer's in_mult, in_shift and mult, checked against the bounds that make it exact (format 3; its
    bias within ±A_MAX, as export writes it, keeps the float32 rounding exact)."""
    in_mult, in_shift = int(arrays[f"{prefix}.in_mult"]), int(arrays[f"{prefix}.in_shift"])
    mult = arrays[f"{prefix}.mult"].astype(np.int64)
    if bias.size and np.abs(bias).max() > A_MAX:
        raise ModelMismatchError(f"{prefix} has a narrow layer's bias beyond ±{A_MAX}; export the model again")
    if np.abs(w).reshape(w.shape[0], -1).sum(1).max() > NARROW_L1 or mult.shape != (w.shape[0],):
        raise ModelMismatchError(f"{prefix} breaks a narrow layer's bounds; export the model again")
    if not (1 <= in_mult <= IN_MULT_MAX and 1 <= in_shift <= IN_SHIFT_MAX) or mult.min() < 1 or mult.max() > MULT_MAX:
        raise ModelMismatchError(f"{prefix} has a narrow layer's shift or multiplier out of range; export the model again")
    return {"in_mult": in_mult, "in_shift": in_shift, "mult": mult}


def _layer(arrays: dict, prefix: str):
    """The conv, ResBlock or Up-ResBlock stored under ``prefix``."""
    if f"{prefix}.residual_shift" in arrays:
        skip = int(arrays[f"{prefix}.residual_shift"])
        if not -15 <= skip <= MAX_SHIFT:  # the int32 reference's skip term stays below 2^30
            raise ModelMismatchError(f"{prefix} has a skip shift outside -15..{MAX_SHIFT}; export the model again")
        return ResBlock(_conv(arrays, f"{prefix}.conv1"), _conv(arrays, f"{prefix}.conv2"), skip)
    if f"{prefix}.conv_a.w_int" in arrays:
        return UpResBlock(*(_conv(arrays, f"{prefix}.{n}") for n in ("skip", "conv_a", "conv_b")))
    return _conv(arrays, prefix)


def _sequence(arrays: dict, prefix: str) -> list:
    count = len({k[len(prefix):].split(".")[0] for k in arrays if k.startswith(prefix)})
    return [_layer(arrays, f"{prefix}{i}") for i in range(count)]


def _tables(arrays: dict, name: str) -> SymbolTables:
    return SymbolTables.from_flat(arrays[f"tables.{name}.freqs"], arrays[f"tables.{name}.support"])


def load_file(path) -> DecoderModel:
    """The DecoderModel of a decoder file; ModelMismatchError when it is damaged or of another format."""
    path = Path(path)
    meta, a = read_arrays(path)
    try:
        exps = dict(zip(("z", "mu", "l", "y"), (int(v) for v in a["decoder.exps"])))
        if len(exps) != 4 or not all(0 <= e <= MAX_EXP for e in exps.values()):
            raise ModelMismatchError(f"{path.name} has fixed-point exponents outside 0..{MAX_EXP}; export it again")
        return DecoderModel(
            meta["model_id"], bytes.fromhex(meta["weights_hash"]), bytes.fromhex(meta["decoder_hash"]), exps,
            a["decoder.step_z"].astype(np.int64), _sequence(a, "decoder.hs."),
            [_conv(a, f"decoder.hs_out.{k}") for k in range(3)], _sequence(a, "decoder.gs."),
            _conv(a, "decoder.gs_out"), a["decoder.exp_lut"].astype(np.int64),
            a["decoder.thresholds"].astype(np.int64), a["decoder.q_scales"].astype(np.float32),
            a["decoder.logq_l"].astype(np.int64), a["decoder.logq_y"].astype(np.int64),
            _tables(a, "y"), _tables(a, "z"),
        )
    except (KeyError, ValueError) as e:
        raise _damaged(path, f"missing or inconsistent arrays: {e}") from e


# -- the installed decoders -----------------------------------------------------------------
def weights_dir() -> Path:
    """Where the shipped models' files live (fllic/models/weights), found without importing them."""
    return Path(str(resources.files("fllic") / "models" / "weights"))


def installed() -> list[str]:
    """The model ids with a decoder file installed."""
    return sorted(p.name[: -len(SUFFIX)] for p in weights_dir().glob(f"*{SUFFIX}"))


@functools.lru_cache(maxsize=4)
def load(model_id: str) -> DecoderModel:
    """The installed decoder of ``model_id``, read once per process."""
    path = weights_dir() / f"{model_id}{SUFFIX}"
    if not _ID.fullmatch(model_id) or not path.is_file():
        raise ModelMismatchError(f"no decoder for model {model_id!r} is installed (installed: "
                                 f"{', '.join(installed()) or 'none'}); install the fllic that ships it")
    model = load_file(path)
    if model.model_id != model_id:
        raise _damaged(path, f"it holds the decoder of {model.model_id!r}")
    return model
