"""python -m fllic.bench.portable: does a .fllic file decode to the same pixels everywhere?

Encodes the bundled sample (seeded AWGN) with the shipped model, then decodes
it in fresh processes under other thread counts and oneDNN instruction sets
(``ONEDNN_MAX_CPU_ISA``) by each decoder (PyTorch's, whole and in bands of one
latent row, and the reference decoder: ``DECODES``), encodes it under AVX2 and
decodes that under the default, decodes the committed golden files, and on
CUDA when a GPU is present. Every decode is compared by the SHA-256 of its pixels; the matrix is
written as Markdown (``--out``).

With ``--python``, the decodes run under another Python instead: a command
line, such as an emulator and an interpreter of another architecture
(``qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.11``), whose environment
(``--pythonpath``, beside this checkout's ``src``) has numpy and Pillow, and
PyTorch and constriction where that platform has them. The sample encoded here
and the golden files are decoded there by the reference decoder and, where
PyTorch imports, by the PyTorch decoder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from fllic.bench._record import command, emit

ENVIRONMENTS: dict[str, dict[str, str]] = {
    "default": {},
    "1 thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "2 threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "oneDNN SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
}
SAMPLE_SIGMA = 25.0


def pixels_sha256(pixels) -> str:
    import numpy as np

    arr = np.ascontiguousarray(pixels)
    return hashlib.sha256(f"{arr.shape}{arr.dtype}".encode() + arr.tobytes()).hexdigest()


def _child(args: list[str], env: dict[str, str]) -> str:
    """Run this module in a fresh interpreter with ``env`` added; its last output line."""
    full = {**os.environ, **env}
    proc = subprocess.run([sys.executable, "-m", "fllic.bench.portable", *args], env=full,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} under {env} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout.strip().splitlines()[-1]


DECODES: dict[str, tuple[str, int | None]] = {  # the sample's decodes in each environment: (decoder, tile)
    "PyTorch's decoder": ("torch", None),
    "PyTorch's decoder, bands of one latent row": ("torch", 64),
    "reference decoder": ("reference", None),
}


def decode_in(path: Path, env: dict[str, str], device: str = "cpu", decoder: str = "auto",
              tile: int | None = None) -> str:
    """SHA-256 of the pixels of ``path`` decoded in a fresh process under ``env`` (by ``decoder``, ``tile``)."""
    args = ["--decode", str(path), "--device", device, "--decoder", decoder]
    return _child(args + (["--tile", str(tile)] if tile else []), env)


def encode_in(noisy_png: Path, out: Path, env: dict[str, str]) -> str:
    """Encode ``noisy_png`` at the sample sigma in a fresh process; SHA-256 of the encoder's pixels."""
    return _child(["--encode", str(noisy_png), str(out)], env)


def write_noisy_sample(path: Path):
    """The bundled sample with seeded AWGN at sigma 25, as PNG; returns the array."""
    from fllic.demo import sample_image
    from fllic.imageio import write_image
    from fllic.noise import add_noise

    noisy = add_noise(sample_image(), SAMPLE_SIGMA, seed=0)
    write_image(path, noisy)
    return noisy


def run_matrix(workdir: Path, golden: Path | None = None) -> list[dict]:
    """Rows of (case, environment, sha256, matches) for every decode."""
    import fllic

    workdir.mkdir(parents=True, exist_ok=True)
    noisy = write_noisy_sample(workdir / "noisy.png")
    res = fllic.codec.encode_detailed(noisy, sigma=SAMPLE_SIGMA)
    (workdir / "sample.fllic").write_bytes(res.data)
    want = pixels_sha256(res.pixels)
    rows = [{"case": f"sample, encoded in-process; {label}", "env": name,
             "sha256": decode_in(workdir / "sample.fllic", env, decoder=decoder, tile=tile)}
            for label, (decoder, tile) in DECODES.items() for name, env in ENVIRONMENTS.items()]
    for r in rows:
        r["expected"] = want
    avx2 = workdir / "sample-avx2.fllic"
    enc_hash = encode_in(workdir / "noisy.png", avx2, ENVIRONMENTS["oneDNN AVX2"])
    rows.append({"case": "sample, encoded under oneDNN AVX2", "env": "default",
                 "sha256": decode_in(avx2, {}), "expected": enc_hash})
    if golden is not None:
        manifest = json.loads((golden / "golden.json").read_text())
        for name, entry in manifest.items():
            rows.append({"case": f"golden {name}", "env": "default",
                         "sha256": decode_in(golden / name, {}), "expected": entry["sha256"]})
    if _cuda_available():
        first = f"sample, encoded in-process; {next(iter(DECODES))}"
        for r in list(rows):
            if r["env"] == "default":
                path = workdir / "sample.fllic" if r["case"] == first else None
                if r["case"].startswith("golden"):
                    path = golden / r["case"].split(" ", 1)[1]
                if path is not None:
                    rows.append({"case": r["case"], "env": "CUDA", "sha256": decode_in(path, {}, "cuda"),
                                 "expected": r["expected"]})
    for r in rows:
        r["match"] = r["sha256"] == r["expected"]
    return rows


_FOREIGN = """
import hashlib, importlib.util, platform, sys
import numpy as np
import fllic
decoder, paths = sys.argv[1], sys.argv[2:]
have = lambda name: importlib.util.find_spec(name) is not None
print(platform.machine(), platform.python_version(), "torch" if have("torch") else "no-torch",
      "constriction" if have("constriction") else "no-constriction")
if decoder == "torch" and not have("torch"):
    sys.exit(0)
for path in paths:
    arr = np.ascontiguousarray(fllic.decode(open(path, "rb").read(), decoder=decoder))
    print(hashlib.sha256(f"{arr.shape}{arr.dtype}".encode() + arr.tobytes()).hexdigest(), flush=True)
"""


def decode_foreign(python: list[str], pythonpath: list[Path], decoder: str,
                   paths: list[Path]) -> tuple[str, list[str]]:
    """(what the interpreter is, the SHA-256 of each file's pixels) decoded by ``decoder`` under ``python`` in one
    process; no hashes where that decoder cannot run there (PyTorch not importable)."""
    import fllic

    src = Path(fllic.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in [src, *pythonpath])}
    proc = subprocess.run([*python, "-c", _FOREIGN, decoder, *map(str, paths)], env=env, capture_output=True,
                          text=True, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(python)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    lines = proc.stdout.strip().splitlines()
    return lines[0], lines[1:]


def run_foreign(workdir: Path, golden: Path, python: list[str], pythonpath: list[Path]) -> tuple[str, list[dict]]:
    """(the interpreter, rows): the sample encoded here and the golden files, decoded under ``python``."""
    import fllic

    workdir.mkdir(parents=True, exist_ok=True)
    res = fllic.codec.encode_detailed(write_noisy_sample(workdir / "noisy.png"), sigma=SAMPLE_SIGMA)
    (workdir / "sample.fllic").write_bytes(res.data)
    cases = [("sample, encoded here", workdir / "sample.fllic", pixels_sha256(res.pixels))]
    manifest = json.loads((golden / "golden.json").read_text())
    cases += [(f"golden {name}", golden / name, entry["sha256"]) for name, entry in sorted(manifest.items())]
    rows, where = [], ""
    for decoder in ("reference", "torch"):
        where, hashes = decode_foreign(python, pythonpath, decoder, [path for _, path, _ in cases])
        rows += [{"case": case, "env": f"{decoder} decoder", "sha256": sha, "expected": want, "match": sha == want}
                 for (case, _, want), sha in zip(cases, hashes)]
    return where, rows


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def to_markdown(rows: list[dict], command: str, foreign: str | None = None) -> str:
    import platform

    import torch

    fails = sum(not r["match"] for r in rows)
    lines = [
        "# Portable decoding: the matrix", "",
        f"`{command}`", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"CUDA {'available' if _cuda_available() else 'not available (no GPU on this machine)'}.", "",
        *([f"Decoded under another Python: {foreign} (machine, Python, whether PyTorch and constriction import); "
           "a decoder that cannot run there has no rows.", ""] if foreign else []),
        "| case | decoded under | pixels SHA-256 (first 16) | identical |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['case']} | {r['env']} | `{r['sha256'][:16]}` | {'yes' if r['match'] else '**no**'} |" for r in rows]
    lines += ["", f"{len(rows)} decodes, {fails} failures."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.portable", description=__doc__)
    p.add_argument("--workdir", type=Path, default=Path("fllic-portable"), help="where the test files are written")
    p.add_argument("--golden", type=Path, default=None, help="folder with golden .fllic files and golden.json")
    p.add_argument("--out", type=Path, default=None, help="write the matrix as Markdown here")
    p.add_argument("--python", default=None, help="decode under this Python command line instead (another "
                   "architecture under an emulator, say); needs --golden")
    p.add_argument("--pythonpath", type=Path, nargs="*", default=[], help="with --python: its site-packages folders")
    p.add_argument("--decode", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--encode", type=Path, nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--decoder", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--tile", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import fllic

    if args.decode is not None:
        print(pixels_sha256(fllic.decode(args.decode.read_bytes(), device=args.device, decoder=args.decoder,
                                         tile=args.tile)))
        return 0
    if args.encode is not None:
        from fllic.imageio import read_image

        res = fllic.codec.encode_detailed(read_image(args.encode[0]), sigma=SAMPLE_SIGMA)
        args.encode[1].write_bytes(res.data)
        print(pixels_sha256(res.pixels))
        return 0
    if args.python is not None:
        if args.golden is None:
            p.error("--python needs --golden")
        python = [os.path.expanduser(word) for word in shlex.split(args.python)]
        foreign, rows = run_foreign(args.workdir, args.golden, python, [path.expanduser() for path in args.pythonpath])
    else:
        foreign, rows = None, run_matrix(args.workdir, args.golden)
    emit(to_markdown(rows, command("python -m fllic.bench.portable", argv), foreign), args.out)
    return 0 if all(r["match"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
