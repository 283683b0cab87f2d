"""Coverage-guided fuzz target for the .fllic decoder (atheris / libFuzzer).

Not collected by pytest (the name does not start with test_). Run it with:

    pip install atheris
    python tests/fuzz_decode.py -max_total_time=1800 -rss_limit_mb=1024 -timeout=5 -max_len=16384 \\
        fuzz-corpus/

The corpus folder is seeded with valid files of a tiny model (written on the
first run). Every input must end in a FllicError or in a decode that passed
the pixel CRC; anything else (another exception, a hang over 5 s, more than
1 GB of memory) is a crash that libFuzzer reports and saves.
"""

import struct
import sys
import zlib
from pathlib import Path

import atheris

import numpy as np
import torch

with atheris.instrument_imports(include=["fllic"]):
    import fllic
    import fllic.codec
    import fllic.entropy.coder
    import fllic.format
    import fllic.models.int_decoder
    import fllic.models.integer
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

torch.set_num_threads(1)
torch.manual_seed(0)
MODEL = finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-fuzz", "quality_scales": [2.0, 1.0]})


def seed_corpus(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        return
    rng = np.random.default_rng(0)
    for k, (h, w, c) in enumerate(((40, 52, 3), (33, 17, 1), (70, 90, 3))):
        img = np.clip(rng.normal(128, 40, (h, w, c) if c == 3 else (h, w)), 0, 255).astype(np.uint8)
        (folder / f"seed{k}.fllic").write_bytes(fllic.encode(img, sigma=20, model=MODEL))


def test_one_input(data: bytes) -> None:
    """The input as it is, and with its file CRC recomputed, so mutations reach the parsers behind it."""
    fixed = data[:-4] + struct.pack("<I", zlib.crc32(data[:-4])) if len(data) > 4 else data
    for candidate in (data, fixed):
        try:
            fllic.decode(candidate, model=MODEL)
        except fllic.FllicError:
            pass


if __name__ == "__main__":
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:
        seed_corpus(Path(corpus[0]))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
