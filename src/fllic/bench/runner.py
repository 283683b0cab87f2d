"""Running the comparison: images × noise levels × methods, measured and checked.

For each image and sigma the clean image is noised with
``fllic.noise.add_noise`` (rounded and clipped to 8 bits) from the generator
``numpy.random.default_rng([seed, int(clean_sha256[:16], 16)])``, where
clean_sha256 is ``fllic.baselines.image_hash`` of the clean image (recorded in
results.json). The noise is fixed by the recorded seed and the image content,
so a renamed file gets the same noise, and every sigma scales the same
standard-normal field.

Each method then encodes the noisy image and decodes its bytes; the decode is
checked (a lossless method must return its input exactly, a near-lossless one
must keep its bound, fllic's decoder checks the CRC of the encoder's
reconstruction) and measured:

- ``bytes`` and ``bpp`` (bits per pixel of the image, not per sub-pixel);
- ``psnr`` and ``ssim`` against the clean image, ``psnr_noisy`` against the
  noisy one (None stands for an infinite PSNR: identical images);
- ``encode_s`` (for a cascade: the denoiser's seconds, as measured when it
  was computed even if it now comes from the cache, plus the codec's),
  ``decode_s``, and ``peak_mb``: the largest rise of resident memory over the
  denoiser, the encode and the decode (see ``fllic.baselines._measure``).

Before timing, each process warms every codec and the network up on a 64×64
image, so one-time library loading is not charged to the first image.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fllic._errors import FllicError, InputError
from fllic.baselines import (
    LOSSLESS,
    NEAR_LOSSLESS,
    BaselineError,
    Cascade,
    Context,
    FllicPoint,
    Method,
    build_methods,
    default_cache_dir,
    expand,
    image_hash,
    match_layout,
)
from fllic.baselines._measure import measure
from fllic.baselines.denoisers import FllicDenoiser

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".ppm", ".pgm")
DEFAULT_DATA = Path("../shared/data/Kodak24")
DEFAULT_SIGMAS = (15.0, 25.0, 50.0)


class BenchError(FllicError):
    """The bench cannot run as asked, or a method failed on an image."""


class DecodeCheckError(BenchError):
    """A lossless decode differs from its input, or a near-lossless one breaks its bound."""


@dataclass
class BenchConfig:
    """Everything ``fllic bench`` needs; ``run_bench(BenchConfig(...))`` is the API."""

    data: Path
    out: Path
    sigmas: tuple[float, ...] = DEFAULT_SIGMAS
    noise: str = "awgn"
    methods: tuple[str, ...] = ("all",)
    limit: int | None = None
    half: str | None = None  # "dev" or "test": one half of a set split for development (fllic.bench.splits)
    jobs: int = 1
    seed: int = 0
    model: object = None  # a shipped model id, an exported .pt path, a CodingModel, or None
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    force: bool = False
    progress: bool = True


def list_images(data: Path, limit: int | None = None, half: str | None = None) -> list[Path]:
    """The images of ``data`` by name: one ``half`` of a development/test split (fllic.bench.splits), then the
    first ``limit``."""
    from fllic.bench.splits import split

    data = Path(data)
    if not data.is_dir():
        raise BenchError(f"{data}: no such directory (pass --data DIR, a folder of images)")
    images = sorted(p for p in data.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise BenchError(f"{data}: no images ({', '.join(IMAGE_SUFFIXES)})")
    images = split(images, half)
    return images[:limit] if limit else images


def noise_entropy(clean: np.ndarray, seed: int) -> list[int]:
    """The noise generator's seed: [seed, the first 64 bits of the clean image's hash]."""
    return [int(seed), int(image_hash(clean)[:16], 16)]


def make_noisy(clean: np.ndarray, sigma: float, noise: str, seed: int) -> np.ndarray:
    from fllic.noise import add_noise

    return add_noise(clean, sigma, np.random.default_rng(noise_entropy(clean, seed)), kind=noise)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _check(method: Method, reference: np.ndarray | None, decoded: np.ndarray, where: str) -> tuple[str, int | None]:
    if reference is None:
        return "crc" if isinstance(method, FllicPoint) else "none", None
    if decoded.shape != reference.shape:
        raise DecodeCheckError(f"{where}: decoded shape {decoded.shape} differs from the input's {reference.shape}")
    err = int(np.abs(decoded.astype(np.int16) - reference.astype(np.int16)).max())
    if method.kind == LOSSLESS and err != 0:
        n = int(np.count_nonzero(decoded != reference))
        raise DecodeCheckError(f"{where}: a lossless decode differs from its input "
                               f"(max abs error {err}, {n} samples)")
    if method.kind == NEAR_LOSSLESS and err > method.bound:
        raise DecodeCheckError(f"{where}: a near-lossless decode breaks its bound "
                               f"(max abs error {err} > {method.bound})")
    if method.kind == LOSSLESS:
        return "exact", err
    if method.kind == NEAR_LOSSLESS:
        return f"±{method.bound}", err
    return "none", err


def _quality(decoded: np.ndarray, clean: np.ndarray, noisy: np.ndarray, memo: dict | None) -> dict:
    from fllic.metrics import psnr, ssim

    key = image_hash(decoded) if memo is not None else None
    if key is not None and key in memo:
        return memo[key]
    q = {"psnr": _finite(psnr(decoded, clean)), "ssim": _finite(ssim(decoded, clean)),
         "psnr_noisy": _finite(psnr(decoded, noisy))}
    if memo is not None:
        memo[key] = q
    return q


def run_method(method: Method, clean: np.ndarray, noisy: np.ndarray, where: str = "",
               memo: dict | None = None) -> dict:
    """Encode, decode, check and measure one method on one image.

    ``memo`` (a dict kept for one noisy image) reuses the quality metrics of a
    decoded image seen before, e.g. the noisy image from every lossless codec.
    """
    from fllic.metrics import bpp

    where = f"{method.name} on {where}" if where else method.name
    try:
        reference = None if isinstance(method, FllicPoint) else method.target(noisy)
        with measure() as enc:
            data = method.encode(noisy)
        with measure() as dec:
            decoded = method.decode(data)
    except FllicError as e:
        raise type(e)(f"{where}: {e}") from e
    except Exception as e:  # a codec library's own error: report it in one line
        raise BaselineError(f"{where}: {type(e).__name__}: {e}") from e
    decoded = match_layout(decoded, noisy)
    check, err = _check(method, reference, decoded, where)
    if decoded.shape != noisy.shape:
        raise DecodeCheckError(f"{where}: decoded shape {decoded.shape} differs from the image's {noisy.shape}")
    pre = method.pre_cost()
    h, w = noisy.shape[:2]
    return {
        "method": method.name, "family": method.family, "kind": method.kind, "bound": method.bound,
        "curve": method.curve, "curve_param": method.curve_param,
        "bytes": len(data), "bpp": bpp(len(data), h, w),
        **_quality(decoded, clean, noisy, memo),
        "max_abs_err": err, "check": check,
        "encode_s": enc.seconds + (pre.seconds if pre else 0.0), "decode_s": dec.seconds,
        "denoise_s": pre.seconds if pre else None, "denoise_cached": pre.cached if pre else None,
        "peak_mb": max(enc.peak_mb, dec.peak_mb, pre.peak_mb if pre else 0.0),
    }


def _warm_up(methods: list[Method]) -> None:
    """Load each codec library and the network once, off the clock."""
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.clip(128 + 50 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None]
                  + np.zeros((1, 1, 3)), 0, 255).astype(np.uint8)
    seen: set[str] = set()
    for m in methods:
        codec = m.codec if isinstance(m, Cascade) else m
        if codec.name not in seen:
            seen.add(codec.name)
            codec.decode(codec.encode(img))
        if isinstance(m, Cascade) and isinstance(m.denoiser, FllicDenoiser) and "+fllicdn" not in seen:
            seen.add("+fllicdn")
            m.denoiser.denoise(img)


@dataclass
class Task:
    index: int
    path: Path
    sigma: float
    noise: str
    seed: int
    methods: tuple[str, ...]
    cache_dir: Path | None


_WORKER: dict = {}


def _init_worker(model, threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    _WORKER["model"] = model
    _WORKER["warm"] = set()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def run_task(task: Task, on_method=None) -> dict:
    """One image at one sigma, every method; the unit of work of ``--jobs``."""
    from fllic.imageio import read_image
    from fllic.metrics import psnr

    clean = read_image(task.path)
    noisy = make_noisy(clean, task.sigma, task.noise, task.seed)
    methods = build_methods(task.methods, Context(task.sigma, _WORKER.get("model"), task.cache_dir))
    if task.sigma not in _WORKER.setdefault("warm", set()):
        _warm_up(methods)
        _WORKER["warm"].add(task.sigma)
    where = f"{task.path.name} (sigma {task.sigma:g})"
    records, memo = [], {}
    for m in methods:
        r = run_method(m, clean, noisy, where, memo)
        records.append({"image": task.path.name, "sigma": task.sigma, **r})
        if on_method is not None:
            on_method(m.name)
    h, w = clean.shape[:2]
    return {
        "index": task.index, "image": task.path.name, "sigma": task.sigma, "noise": task.noise, "seed": task.seed,
        "methods": list(task.methods), "height": h, "width": w,
        "channels": 1 if clean.ndim == 2 else 3, "noisy_psnr": _finite(psnr(noisy, clean)), "records": records,
        "noise_entropy": noise_entropy(clean, task.seed), "clean_sha256": image_hash(clean),
        "noisy_sha256": image_hash(noisy),
    }


def _validate(cfg: BenchConfig) -> None:
    from fllic.noise import NOISE_MODELS

    if cfg.noise not in NOISE_MODELS:
        raise InputError(f"unknown noise model {cfg.noise!r}; choose from {', '.join(sorted(NOISE_MODELS))}")
    if not cfg.sigmas:
        raise InputError("give at least one sigma")
    for s in cfg.sigmas:
        if not np.isfinite(s) or not 0 <= s <= 255:
            raise InputError(f"sigma must be between 0 and 255, got {s}")
    if cfg.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {cfg.jobs}")
    if cfg.limit is not None and cfg.limit < 1:
        raise InputError(f"--limit must be at least 1, got {cfg.limit}")
    if cfg.seed < 0:
        raise InputError(f"--seed must be >= 0, got {cfg.seed}")


def run_bench(cfg: BenchConfig) -> dict:
    """Run the comparison and write results.json, report.md, cost.md and the RD plots to cfg.out."""
    from fllic.bench.report import summarize, write_outputs

    _validate(cfg)
    images = list_images(cfg.data, cfg.limit, cfg.half)
    out = Path(cfg.out)
    if (out / "results.json").exists() and not cfg.force:
        raise BenchError(f"{out / 'results.json'} exists; pass --force to overwrite it")

    # Expand and build every method once here, so a bad name fails before any work.
    base = Context(cfg.sigmas[0], cfg.model, cfg.cache_dir)
    names: dict[float, tuple[str, ...]] = {}
    for s in cfg.sigmas:
        names[s] = tuple(expand(cfg.methods, base.at(s)))
        for m in build_methods(names[s], base.at(s)):
            if isinstance(m, Cascade):
                m.denoiser.version()  # fails now if the denoiser's package is missing
    model = base.resolved_model  # None when no method uses the network

    # sigma by sigma, so a stopped run has whole noise levels done first
    tasks = [Task(i, p, s, cfg.noise, cfg.seed, names[s], cfg.cache_dir)
             for s in cfg.sigmas for i, p in enumerate(images)]
    out.mkdir(parents=True, exist_ok=True)
    log = out / TASK_LOG
    done = _finished_tasks(log, tasks, _signature(model))
    todo = [t for t in tasks if _task_key(t) not in done]
    if done:
        print(f"resuming: {len(done)} of {len(tasks)} (image, sigma) tasks already in {log}", file=sys.stderr)
    results = list(done.values()) + _run_tasks(todo, cfg, model, sum(len(t.methods) for t in todo), log)
    summary = summarize(results, cfg, model)
    write_outputs(summary, out)
    log.unlink()
    return summary


TASK_LOG = "tasks.partial.jsonl"  # one finished (image, sigma) task a line; a re-run resumes from it


def _task_key(t) -> tuple:
    """What makes a finished task reusable: the image, sigma, noise, seed and methods (dicts or Tasks)."""
    if isinstance(t, dict):
        return t["image"], t["sigma"], t["noise"], t["seed"], tuple(t["methods"])
    return t.path.name, t.sigma, t.noise, t.seed, tuple(t.methods)


def _signature(model) -> dict:
    """What every task of a run shares beyond its own key: the network's weights (None where no method uses it)."""
    return {"signature": 1, "weights": None if model is None else model.hash.hex()}


def _finished_tasks(log: Path, tasks: list, signature: dict) -> dict:
    """The tasks of an interrupted run with the same settings, from its log; lines of other settings are ignored,
    and a log of other weights is started afresh."""
    wanted = {_task_key(t) for t in tasks}
    done = {}
    lines = log.read_text().splitlines() if log.exists() else []
    if not lines or lines[0] != json.dumps(signature):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps(signature) + "\n")
        return done
    for line in lines[1:]:
        if line:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # the last line of a run killed while writing it
                continue
            if _task_key(r) in wanted:
                done[_task_key(r)] = r
    return done


def _run_tasks(tasks: list[Task], cfg: BenchConfig, model, total: int, log: Path) -> list[dict]:
    from tqdm import tqdm

    def keep(result: dict) -> dict:
        with open(log, "a") as f:
            f.write(json.dumps(result) + "\n")
        return result

    bar = tqdm(total=total, desc="bench", unit="run", disable=not cfg.progress, dynamic_ncols=True)
    try:
        if cfg.jobs == 1:
            _WORKER.clear()
            _WORKER["model"] = model if model is not None else cfg.model
            done = []
            for t in tasks:
                bar.set_postfix_str(f"{t.path.name} sigma {t.sigma:g}")
                done.append(keep(run_task(t, on_method=lambda name: bar.update(1))))
            return done
        return _run_parallel(tasks, cfg, model, bar, keep)
    finally:
        bar.close()


def _run_parallel(tasks: list[Task], cfg: BenchConfig, model, bar, keep) -> list[dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = min(cfg.jobs, len(tasks))
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started threads
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg.model, threads)) as pool:
        futures = {pool.submit(run_task, t): t for t in tasks}
        done = []
        try:
            for f in as_completed(futures):
                done.append(keep(f.result()))
                t = futures[f]
                bar.set_postfix_str(f"{t.path.name} sigma {t.sigma:g}")
                bar.update(len(t.methods))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return done
