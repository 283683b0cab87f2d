"""Decode every golden file with the base install (no PyTorch): `fllic decompress` and fllic.decode.

Usage: python decode_without_torch.py GOLDEN_DIR, with the python of an environment where fllic is installed
without extras. Each file's decoded pixels must have the SHA-256 that GOLDEN_DIR/golden.json records
(tests/test_portable.py: over the shape, the dtype and the pixels' bytes).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def pixels_sha256(pixels: np.ndarray) -> str:
    arr = np.ascontiguousarray(pixels)
    return hashlib.sha256(f"{arr.shape}{arr.dtype}".encode() + arr.tobytes()).hexdigest()


def by_cli(fllic_cmd: str, src: Path, out: Path) -> str:
    """SHA-256 of what `fllic decompress SRC -o OUT.png` writes, read back by fllic's image reader."""
    from fllic.imageio import read_image

    run = subprocess.run([fllic_cmd, "decompress", str(src), "-o", str(out), "-q"], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"fllic decompress {src.name} failed: {run.stderr.strip()}")
    return pixels_sha256(read_image(out))


def by_api(src: Path) -> str:
    import fllic

    return pixels_sha256(fllic.decode(src.read_bytes()))


def main(golden: Path) -> int:
    if importlib.util.find_spec("torch") is not None:
        raise SystemExit("torch is installed in this environment: the base install must not bring it")
    fllic_cmd = shutil.which("fllic", path=str(Path(sys.executable).parent))
    if fllic_cmd is None:
        raise SystemExit("no fllic command beside this python: install fllic in its environment first")
    manifest = json.loads((golden / "golden.json").read_text())
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, entry in sorted(manifest.items()):
            t0 = time.perf_counter()
            got = {"fllic decompress": by_cli(fllic_cmd, golden / name, Path(tmp) / f"{name}.png"),
                   "fllic.decode": by_api(golden / name)}
            bad = [how for how, sha in got.items() if sha != entry["sha256"]]
            failed += bool(bad)
            print(f"{name}: {'FAILED by ' + ', '.join(bad) if bad else 'ok'} ({time.perf_counter() - t0:.1f} s)")
    if "torch" in sys.modules:
        raise SystemExit("decoding imported torch")
    print(f"{len(manifest) - failed} passed, {failed} failed")
    return 1 if failed or not manifest else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
