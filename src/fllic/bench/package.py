"""python -m fllic.bench.package: what a decoding install of fllic weighs.

Builds the wheel from the checkout (``pip wheel . --no-deps``), installs it
with its base dependencies only (no extras, so no PyTorch) into a fresh
virtual environment, and records the wheel's size and its weight files'
share, the install's time and the environment's size on disk, and whether
that environment decodes every golden file (``.ci/decode_without_torch.py``).
The install downloads the base dependencies (numpy, constriction, Pillow,
tqdm) from the package index, so its time includes the network.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from fllic.bench._record import command, emit


def _mb(n: int) -> float:
    return n / 2**20


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def build_wheel(repo: Path, out: Path) -> Path:
    """The wheel of the checkout at ``repo``, built into ``out``."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(repo), "--no-deps", "-q", "-w", str(out)],
                   check=True)
    return next(out.glob("fllic-*.whl"))


def wheel_contents(wheel: Path) -> dict[str, int]:
    """Compressed bytes in the wheel: all, the .pt weight files, the decoder files."""
    with zipfile.ZipFile(wheel) as z:
        infos = z.infolist()
    size = lambda pred: sum(i.compress_size for i in infos if pred(i.filename))
    return {"all": wheel.stat().st_size, "pt": size(lambda n: n.endswith(".pt")),
            "npz": size(lambda n: n.endswith("-decoder.npz"))}


def base_install(wheel: Path, venv: Path) -> float:
    """Seconds to install ``wheel`` with its base dependencies into a new virtual environment ``venv``."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    t0 = time.perf_counter()
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True)
    return time.perf_counter() - t0


def decodes_golden(venv: Path, repo: Path) -> tuple[bool, str]:
    """(passed, last line): the CI's torch-free decode of the golden files, run with the environment's Python."""
    r = subprocess.run([str(venv / "bin" / "python"), str(repo / ".ci" / "decode_without_torch.py"),
                        str(repo / "tests" / "golden")], capture_output=True, text=True)
    lines = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.package", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=Path("."), help="the fllic checkout (default: here)")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(repo, tmp / "wheel")
        sizes = wheel_contents(wheel)
        seconds = base_install(wheel, tmp / "venv")
        env_bytes = _tree_bytes(tmp / "venv")
        torch_free = not any((tmp / "venv").glob("lib/python*/site-packages/torch"))
        ok, last = decodes_golden(tmp / "venv", repo)
    lines = ["# A decoding install of fllic", "", f"`{command('python -m fllic.bench.package', argv)}`", "",
             "The wheel built from the checkout, installed with its base dependencies only (no extras) into a fresh "
             "virtual environment; the install's time includes downloading those dependencies.", "",
             "| what | measured |", "|---|---:|",
             f"| wheel | {_mb(sizes['all']):.1f} MB |",
             f"| of which model weights (.pt) | {_mb(sizes['pt']):.1f} MB |",
             f"| of which decoder files (-decoder.npz) | {_mb(sizes['npz']):.1f} MB |",
             f"| base install, time | {seconds:.0f} s |",
             f"| base install, environment on disk | {_mb(env_bytes):.0f} MB |",
             f"| PyTorch in the environment | {'no' if torch_free else 'yes'} |",
             f"| golden files decoded without PyTorch | {'all, identical' if ok else 'FAILED'} ({last}) |"]
    emit("\n".join(lines) + "\n", args.out)
    return 0 if ok and torch_free else 1


if __name__ == "__main__":
    sys.exit(main())
