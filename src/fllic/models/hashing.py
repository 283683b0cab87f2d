"""The hash a .fllic file names its model by: shared by the whole model and its decoder part alone."""

from __future__ import annotations

import hashlib


def weights_hash(state_dict: dict, tables_state: dict, decoder_state: dict) -> bytes:
    """16-byte SHA-256 digest of the parameters, coding tables and integer decoder (torch tensors), in key order.

    The weights hash (version-2 files) covers all three; the decoder hash (version 3) is
    ``weights_hash({}, tables_state, decoder_state)``.
    """
    h = hashlib.sha256()

    def feed(prefix: str, tensors: dict) -> None:
        for key in sorted(tensors):
            value = tensors[key]
            if isinstance(value, dict):
                feed(f"{prefix}{key}.", value)
                continue
            t = value.detach().cpu().contiguous()
            h.update(f"{prefix}{key}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.numpy().tobytes())

    feed("", state_dict)
    feed("tables.", tables_state)
    feed("decoder.", decoder_state)
    return h.digest()[:16]
