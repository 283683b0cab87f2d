"""The torch decoder alone: a model's integer h_s, g_s and coding tables, nothing of its encoder.

Issue 27 ("decoding loads only the decoder"): a .fllic file decodes from the
model's decoder part, ``<model-id>-decoder.npz`` (the layout of
:mod:`fllic.decoder.model`), so decoding never builds the float FLLIC
network, its trunk or g_a, nor reads the encoder's files. The arrays become
the same :class:`~fllic.models.int_decoder.IntegerDecoder` and
:class:`~fllic.entropy.tables.CodingTables` a full :class:`CodingModel`
holds, and :func:`decompress` is the one both run: the pixels are the full
model's, bit for bit.

Checks: the decoder file's arrays must hash to the decoder hash it records
(:func:`fllic.decoder.model.read_arrays`), and the torch objects built from
them must hash to it again (:func:`fllic.models.fllic_net.weights_hash`'s
rule, computed here without importing the network); the codec then compares
the recorded weights hash (format version 2) or decoder hash (version 3)
with the file's header, as it does for a full model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fllic import tiling
from fllic._errors import FormatError, ModelMismatchError
from fllic._heap import release
from fllic.entropy import coder
from fllic.entropy.tables import FREQ_TOTAL, CodingTables
from fllic.models.hashing import weights_hash


def _min_cost(freqs: np.ndarray) -> float:
    """Bits of the cheapest symbol of an integer table."""
    return float(-np.log2(freqs.max() / FREQ_TOTAL))


def channel_groups(shape: tuple[int, ...]) -> np.ndarray:
    """The table index of every hyper-latent: its channel."""
    return np.broadcast_to(np.arange(shape[1]).reshape(1, -1, 1, 1), shape)


def check_stream_lengths(tables: CodingTables, m: int, strings: tuple[bytes, bytes], z_shape: tuple[int, int]) -> None:
    """Refuse streams too short to hold a z_shape grid's symbols, before any decoding work.

    Every symbol costs at least -log2(p_max) bits under its table (p_max, the
    table's largest probability), so a stream shorter than the sum of those
    minima is invalid: a guard against headers that claim a huge image for a
    small file (hostile input), which would otherwise run the decoder for minutes.
    ``m`` is the number of latent channels.
    """
    n = z_shape[0] * z_shape[1]
    z_min = n * float(sum(_min_cost(f) for f in tables.z.freqs))
    y_min = 16 * n * m * min(_min_cost(f) for f in tables.y.freqs)
    for name, data, need in (("Z", strings[0], z_min), ("Y", strings[1], y_min)):
        if 8 * len(data) + 64 < need:
            raise FormatError(f"the {name} section ({len(data)} bytes) is too short for the image size in the header")


def decode_z(tables: CodingTables, nz: int, data: bytes, z_shape: tuple[int, int]) -> torch.Tensor:
    """The z symbols (1, nz, zh, zw), int32, of the Z section."""
    groups = channel_groups((1, nz, *z_shape))
    return torch.from_numpy(coder.decode(data, groups, tables.z).reshape(groups.shape))


def decode_y(tables: CodingTables, data: bytes, p) -> torch.Tensor:
    """The y symbols (1, h, w, m), int32, of the Y section, under the tables h_s chose (``p.index``)."""
    groups = p.index.cpu().numpy()
    return torch.from_numpy(coder.decode(data, groups, tables.y).reshape(groups.shape))


@torch.no_grad()
def decompress(decoder, tables: CodingTables, strings: tuple[bytes, bytes], z_shape: tuple[int, int], sigma: float,
               q: float, tile: int = tiling.DEFAULT_TILE, progress: bool = False, device=None) -> torch.Tensor:
    """Pixels (1, 64·zh, 64·zw, 3) in fixed point from the z and y streams: z symbols, integer h_s,
    y symbols, integer g_s tile by tile; the same for any ``tile`` (fllic.tiling)."""
    device = torch.device("cpu") if device is None else device
    m = int(decoder.hs_out[0].w_int.shape[0])
    check_stream_lengths(tables, m, strings, z_shape)
    z_sym = decode_z(tables, int(decoder.step_z.numel()), strings[0], z_shape)
    p = decoder.entropy_params(z_sym.to(device), sigma, q)
    u = decode_y(tables, strings[1], p)
    release(u.shape[1] * u.shape[2] * tiling.LATENT**2)  # a large image's h_s maps are freed: g_s's bands start afresh
    return tiling.synthesis(decoder, u.to(device), p, sigma, q, tile, progress).cpu()


@dataclass
class DecodingModel:
    """What decoding reads of a shipped model, in torch: its integer decoder and coding tables.

    ``hash`` is the weights hash the decoder file records (what version 2
    files name); ``decoder_hash`` what version 3 files name.
    """

    model_id: str
    hash: bytes
    decoder_hash: bytes
    decoder: object  # IntegerDecoder
    tables: CodingTables
    device: torch.device = torch.device("cpu")

    @property
    def meta(self) -> dict:
        return {"id": self.model_id}

    def to(self, device) -> "DecodingModel":
        """Run the integer decoder on ``device`` (cpu or cuda); pixels are identical on every device."""
        self.device = torch.device(device)
        self.decoder.to(self.device)
        return self

    def decompress(self, strings: tuple[bytes, bytes], z_shape: tuple[int, int], sigma: float, q: float,
                   tile: int = tiling.DEFAULT_TILE, progress: bool = False) -> torch.Tensor:
        """Pixels (1, 64·zh, 64·zw, 3) in fixed point, as :meth:`CodingModel.decompress` returns them."""
        return decompress(self.decoder, self.tables, strings, z_shape, sigma, q, tile, progress, self.device)


def _nested(arrays: dict[str, np.ndarray], prefix: str) -> dict:
    """The arrays whose keys start with ``prefix``, as tensors keyed by the rest of the key."""
    return {k[len(prefix):]: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in arrays.items() if k.startswith(prefix)}


def decoder_and_tables(arrays: dict[str, np.ndarray], name: str = "decoder file"):
    """(IntegerDecoder, CodingTables) of a decoder file's arrays (as :func:`fllic.decoder.model.read_arrays` gives them)."""
    from fllic.models.int_decoder import from_state

    tables_state = {t: _nested(arrays, f"tables.{t}.") for t in ("y", "z")}
    state = {k: (v.to(torch.int32) if k.endswith("w_int") else v) for k, v in _nested(arrays, "decoder.").items()}
    try:
        return from_state(state), CodingTables.from_state(tables_state)
    except (KeyError, ValueError, RuntimeError) as e:
        raise ModelMismatchError(f"{name} does not hold an integer decoder ({e}); export it again") from e


def from_arrays(meta: dict, arrays: dict[str, np.ndarray], name: str = "decoder file") -> DecodingModel:
    """A DecodingModel of a decoder file's (meta, arrays), its torch state checked against the decoder hash."""
    decoder, tables = decoder_and_tables(arrays, name)
    recorded = bytes.fromhex(meta["decoder_hash"])
    if weights_hash({}, tables.to_state(), decoder.to_state()) != recorded:
        raise ModelMismatchError(f"{name} does not rebuild to its decoder hash {recorded.hex()}; export it again")
    return DecodingModel(meta["model_id"], bytes.fromhex(meta["weights_hash"]), recorded, decoder.eval(), tables)


def load_file(path) -> DecodingModel:
    """The DecodingModel of a ``-decoder.npz`` file (read and checked by :mod:`fllic.decoder.model`)."""
    from fllic.decoder.model import read_arrays

    path = Path(path)
    meta, arrays = read_arrays(path)
    return from_arrays(meta, arrays, path.name)


def decoder_file(model_id: str) -> Path | None:
    """The installed ``<model_id>-decoder.npz``, or None where the model has none."""
    from fllic.decoder.model import _ID, SUFFIX, weights_dir

    if not isinstance(model_id, str) or not _ID.fullmatch(model_id):
        return None
    path = weights_dir() / f"{model_id}{SUFFIX}"
    return path if path.is_file() else None


@functools.lru_cache(maxsize=4)
def load(model_id: str) -> DecodingModel:
    """The decoder part of an installed model, read once per process; ModelMismatchError without a decoder file."""
    path = decoder_file(model_id)
    if path is None:
        raise ModelMismatchError(f"no decoder file for model {model_id!r} is installed")
    model = load_file(path)
    if model.model_id != model_id:
        raise ModelMismatchError(f"{path.name} holds the decoder of {model.model_id!r}; reinstall fllic")
    return model
