"""python -m fllic.bench.package: what a decoding install of fllic weighs.

Builds the two wheels from the checkout (``pip wheel . --no-deps``: fllic,
with every model's decoder file; and ``pip wheel encoders --no-deps``:
fllic-encoders, the current models' encoders, which the ``encode`` extra
installs), installs fllic's with its base dependencies only (no extras, so no
PyTorch) into a fresh virtual environment, and records each wheel's size and
its weight files' share, the install's time and the environment's size on
disk, and whether that environment decodes every golden file
(``.ci/decode_without_torch.py``).
The install downloads the base dependencies (numpy, constriction, tqdm,
threadpoolctl) from the package index, so its time includes the network.

Beside the sizes, two things a size target has to reckon with: what the
environment's bytes are (fllic, numpy, pip, setuptools, ...), and the order-0
entropy of the weights, array by array (the decoder files' integer kernels,
the .pt files' float16 bit patterns): about what an entropy coder with one
static table per array would store them in. A coder that models context could
go somewhat lower; weights are close to independent, so not by much.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit


def _mb(n: int) -> float:
    return n / 2**20


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def build_wheel(project: Path, out: Path) -> Path:
    """The wheel of the project at ``project`` (the checkout, or its encoders/ folder), built into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(project), "--no-deps", "-q", "-w", str(out)],
                   check=True)
    return next(iter(set(out.glob("*.whl")) - before))


def wheel_contents(wheel: Path) -> dict[str, int]:
    """Compressed bytes in the wheel: all, the .pt weight files, the decoder files."""
    with zipfile.ZipFile(wheel) as z:
        infos = z.infolist()
    size = lambda pred: sum(i.compress_size for i in infos if pred(i.filename))
    return {"all": wheel.stat().st_size, "pt": size(lambda n: n.endswith(".pt")),
            "npz": size(lambda n: n.endswith("-decoder.npz"))}


def _entropy_bytes(values: np.ndarray) -> float:
    """Order-0 entropy of ``values`` in bytes: n · H of their empirical distribution."""
    _, counts = np.unique(values, return_counts=True)
    return float(-(counts * np.log2(counts / counts.sum())).sum()) / 8


def _npz_floor(data: bytes) -> float:
    """Entropy bytes of a decoder file's arrays, each .w_int joined from its two byte planes."""
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "meta"}
    total = 0.0
    for key, a in arrays.items():
        if key.endswith(".lo"):
            continue
        if key.endswith(".hi"):  # format fllic-decoder-2: w = 256 hi + lo
            a = a.astype(np.int32) * 256 + arrays[key[:-3] + ".lo"].astype(np.int32)
        total += _entropy_bytes(a)
    return total


def _pt_floor(data: bytes) -> float:
    """Entropy bytes of a .pt file's tensors, as their bit patterns."""
    import torch

    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from tensors(v)

    obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    views = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
    return sum(_entropy_bytes(t.contiguous().numpy().view(views[t.element_size()])) for t in tensors(obj))


def weights_floor(*wheels: Path) -> dict[str, float]:
    """Order-0 entropy bytes of the wheels' weights: the .pt files, the decoder files."""
    out = {"pt": 0.0, "npz": 0.0}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.endswith(".pt"):
                    out["pt"] += _pt_floor(z.read(name))
                elif name.endswith("-decoder.npz"):
                    out["npz"] += _npz_floor(z.read(name))
    return out


# import names that differ from their distribution's
_IMPORT_NAMES = {"pil": "pillow", "pkg_resources": "setuptools", "distutils": "setuptools"}


def environment_parts(venv: Path, top: int = 6) -> list[tuple[str, int]]:
    """The environment's bytes by site-packages entry (a distribution's folders, its .dist-info apart),
    the ``top`` largest, then the rest of site-packages and what lies outside it."""
    site = next(venv.glob("lib/python*/site-packages"))
    parts = Counter()
    for entry in site.iterdir():
        name = entry.name.split("-")[0].split(".")[0].lstrip("_").lower()
        name = _IMPORT_NAMES.get(name, name)
        parts[name] += _tree_bytes(entry) if entry.is_dir() else entry.stat().st_size
    named = parts.most_common(top)
    rest = sum(parts.values()) - sum(n for _, n in named)
    return [*named, ("other site-packages", rest), ("the rest (interpreter links, scripts)",
                                                    _tree_bytes(venv) - sum(parts.values()))]


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
        encoders = build_wheel(repo / "encoders", tmp / "wheel")
        sizes, enc_sizes = wheel_contents(wheel), wheel_contents(encoders)
        floor = weights_floor(wheel, encoders)
        pt, npz = sizes["pt"] + enc_sizes["pt"], sizes["npz"] + enc_sizes["npz"]
        seconds = base_install(wheel, tmp / "venv")
        env_bytes = _tree_bytes(tmp / "venv")
        parts = environment_parts(tmp / "venv")
        torch_free = not any((tmp / "venv").glob("lib/python*/site-packages/torch"))
        ok, last = decodes_golden(tmp / "venv", repo)
    lines = ["# A decoding install of fllic", "", f"`{command('python -m fllic.bench.package', argv)}`", "",
             "fllic's wheel built from the checkout, installed with its base dependencies only (no extras) into a "
             "fresh virtual environment; the install's time includes downloading those dependencies. The current "
             "models' encoders ship in a second wheel, fllic-encoders (encoders/), which the encode extra installs "
             "with PyTorch.", "",
             "| what | measured |", "|---|---:|",
             f"| fllic wheel (decoding) | {_mb(sizes['all']):.1f} MiB |",
             f"| of which decoder files (-decoder.npz) | {_mb(sizes['npz']):.1f} MiB |",
             f"| of which model weights (.pt) | {_mb(sizes['pt']):.1f} MiB |",
             f"| fllic-encoders wheel (the encode extra) | {_mb(enc_sizes['all']):.1f} MiB |",
             f"| of which model weights (.pt) | {_mb(enc_sizes['pt']):.1f} MiB |",
             f"| base install, time | {seconds:.0f} s |",
             f"| base install, environment on disk | {_mb(env_bytes):.0f} MiB |",
             f"| PyTorch in the environment | {'no' if torch_free else 'yes'} |",
             f"| golden files decoded without PyTorch | {'all, identical' if ok else 'FAILED'} ({last}) |",
             "", "## The weights' order-0 entropy", "",
             "Order-0 entropy of each weight array (the decoder files' integer kernels and tables, the .pt files' "
             "float16 bit patterns), summed: about what an entropy coder with one static table per array would "
             "store them in (one that models context could go somewhat lower).", "",
             "| weights | in the wheels | order-0 entropy |", "|---|---:|---:|",
             f"| model weights (.pt) | {_mb(pt):.1f} MiB | {_mb(floor['pt']):.1f} MiB |",
             f"| decoder files (-decoder.npz) | {_mb(npz):.1f} MiB | {_mb(floor['npz']):.1f} MiB |",
             f"| both | {_mb(pt + npz):.1f} MiB | {_mb(floor['pt'] + floor['npz']):.1f} MiB |",
             "", "## The environment, by part", "", "| part | MiB |", "|---|---:|",
             *(f"| {name} | {_mb(n):.1f} |" for name, n in parts)]
    emit("\n".join(lines) + "\n", args.out)
    return 0 if ok and torch_free else 1


if __name__ == "__main__":
    sys.exit(main())
