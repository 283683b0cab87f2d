"""Batch compression and decompression: many files, one model load per process, resumable.

``fllic compress a.png b.png photos/ -o OUT/`` plans one job per input image
(folders are walked recursively and their layout is kept under OUT), then runs
the jobs in this process (``--jobs 1``), in worker processes (``--jobs N``), or
on a Dask distributed cluster (``--scheduler ADDRESS``; paths must be visible
to every worker, e.g. a shared filesystem). The same applies to decompress.

Guarantees: an input is never modified (an output may not be an input), an
output is written to a temporary file and renamed, so a stopped run leaves no
half-written output; an output that exists and verifies is skipped, so an
interrupted run resumes; a failure is reported with its file and the other
jobs go on; the summary says how many succeeded.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from fllic._heap import bound_for

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".ppm", ".pgm", ".webp")
FLLIC_SUFFIX = ".fllic"


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


@dataclass
class Outcome:
    src: str
    status: str  # "done", "skipped" or "failed"
    seconds: float = 0.0
    pixels: int = 0
    out_bytes: int = 0
    error: str = ""


@dataclass(frozen=True)
class Options:
    """What every job of a run shares."""

    mode: str  # "compress" or "decompress"
    sigma: float | None = None
    quality: int | None = None
    refine: int = 0  # encoder refinement steps per tile (compress)
    float32: bool = False  # compress: the encoder's analysis in float32, not bf16 where the CPU has it
    model: str | None = None
    out_suffix: str = ".png"
    allow_lossy: bool = False
    tile: int | None = None  # the codec's defaults: 768 to encode, fllic.codec.DECODE_TILE to decode with PyTorch
    max_pixels: int = 1 << 28
    threads: int = 0  # torch threads per worker; 0: leave torch's default
    decoder: str = "auto"  # decompress: fllic.codec.DECODERS
    verify: bool = True  # decompress: False writes a damaged file's best-effort image (--best-effort)


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0


# -- planning ---------------------------------------------------------------------------
def plan(inputs: list[Path], out_dir: Path, opts: Options) -> list[Job]:
    """One job per input file; folders contribute their files, keeping their layout.

    A folder given alone is mirrored: its tree goes straight into ``out_dir``
    (``fllic compress photos/ -o out/`` writes ``out/x.fllic``, and ``fllic
    decompress out/ -o decoded/`` writes ``decoded/x.png``, the tree of
    ``photos/``). Beside other inputs a folder keeps its name, ``out_dir/photos/...``.
    """
    from fllic._errors import InputError

    wanted = (FLLIC_SUFFIX,) if opts.mode == "decompress" else IMAGE_SUFFIXES
    suffix = FLLIC_SUFFIX if opts.mode == "compress" else opts.out_suffix
    jobs: list[Job] = []
    for item in inputs:
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
            base = out_dir if len(inputs) == 1 else out_dir / item.name
            jobs += [Job(f, base / f.relative_to(item).with_suffix(suffix)) for f in files]
        elif item.is_file():
            jobs.append(Job(item, out_dir / item.with_suffix(suffix).name))
        else:
            raise InputError(f"{item}: no such file or directory")
    dsts = [j.dst.resolve() for j in jobs]
    if len(set(dsts)) != len(dsts):
        raise InputError("two inputs would write the same output; give them distinct names")
    srcs = {j.src.resolve() for j in jobs}
    if srcs & set(dsts):
        raise InputError("an output would overwrite an input; choose another output folder")
    return jobs


# -- one job ----------------------------------------------------------------------------
def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fllic-", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an output follows the umask, as open() does
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process's umask, read once (reading it means setting it, which threads must not race)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _verified(job: Job, opts: Options) -> bool:
    """An existing output that is complete: a valid .fllic file, or a readable image."""
    if not job.dst.is_file():
        return False
    try:
        if opts.mode == "compress":
            import fllic

            return fllic.check(job.dst.read_bytes())
        from fllic.imageio import read_image

        read_image(job.dst)
        return True
    except Exception:  # noqa: BLE001 - any failure means: not verified, redo it
        return False


def run_one(job: Job, opts: Options) -> Outcome:
    """Run one job; never raises (a failure is an Outcome)."""
    if opts.threads:
        import torch

        torch.set_num_threads(opts.threads)
    if _verified(job, opts):
        return Outcome(str(job.src), "skipped")
    t0 = time.perf_counter()
    try:
        pixels, size = (_compress if opts.mode == "compress" else _decompress)(job, opts)
    except Exception as e:  # noqa: BLE001 - one file's failure, whatever it is, must not stop the others
        first = str(e).splitlines()[0] if str(e) else ""
        first = first.removeprefix(f"{job.src}: ")  # the table names the file already
        return Outcome(str(job.src), "failed", error=first or type(e).__name__)
    return Outcome(str(job.src), "done", time.perf_counter() - t0, pixels, size)


def _compress(job: Job, opts: Options) -> tuple[int, int]:
    from fllic.codec import encode_detailed
    from fllic.imageio import read_image_file

    image = read_image_file(job.src)
    bound_for(image.pixels.shape[0] * image.pixels.shape[1])
    with open(job.src, "rb") as f:
        jpeg = f.read(3) == b"\xff\xd8\xff"  # a camera JPEG: never coded larger than itself
    res = encode_detailed(image.array, sigma=opts.sigma, model=opts.model, quality=opts.quality, tile=opts.tile,
                          max_pixels=opts.max_pixels, icc=image.icc, exif=image.exif, refine=opts.refine,
                          float32=opts.float32,
                          max_bytes=job.src.stat().st_size if jpeg else None, from_jpeg=jpeg)
    _atomic_write(job.dst, lambda p: p.write_bytes(res.data))
    return image.pixels.shape[0] * image.pixels.shape[1], len(res.data)


def _decompress(job: Job, opts: Options) -> tuple[int, int]:
    """Decode one file to an image of its bit depth, with its alpha, ICC profile and EXIF."""
    from fllic.codec import bound_decode_heap, decode_detailed, info
    from fllic.imageio import check_writable, write_image

    data = job.src.read_bytes()
    meta = info(data, verify=opts.verify)  # an output format that cannot hold the image fails before the decode
    check_writable(job.dst.suffix, meta["bit_depth"], meta["alpha"], allow_lossy=opts.allow_lossy)
    bound_decode_heap(meta["width"] * meta["height"], opts.decoder, opts.model, named=meta["decoder_id"])
    res = decode_detailed(data, model=opts.model, tile=opts.tile, max_pixels=opts.max_pixels, decoder=opts.decoder,
                          verify=opts.verify)
    _atomic_write(job.dst, lambda p: write_image(p, res.pixels, allow_lossy=opts.allow_lossy, suffix=job.dst.suffix,
                                                 icc=res.icc, exif=res.exif))
    return res.pixels.shape[0] * res.pixels.shape[1], job.dst.stat().st_size


# -- runners ----------------------------------------------------------------------------
def _bar(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr, disable=not progress)


def run(jobs: list[Job], opts: Options, workers: int = 1, scheduler: str | None = None,
        progress: bool = True) -> Summary:
    """Run every job: in this process, in ``workers`` processes, or on a Dask cluster."""
    t0 = time.perf_counter()
    summary = Summary()
    with _bar(len(jobs), progress) as bar:
        for outcome in _outcomes(jobs, opts, workers, scheduler):
            summary.outcomes.append(outcome)
            bar.update()
    summary.seconds = time.perf_counter() - t0
    return summary


def _outcomes(jobs: list[Job], opts: Options, workers: int, scheduler: str | None):
    if scheduler is not None:
        yield from _dask_outcomes(jobs, opts, scheduler)
    elif workers <= 1:
        for job in jobs:
            yield run_one(job, opts)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from dataclasses import replace

        cores = os.cpu_count() or 1
        opts = replace(opts, threads=opts.threads or max(1, cores // workers))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_one, job, opts) for job in jobs]
            for f in as_completed(futures):
                yield f.result()


def _dask_outcomes(jobs: list[Job], opts: Options, scheduler: str):
    from fllic._errors import InputError

    try:
        from distributed import Client, as_completed
    except ImportError as e:
        raise InputError("--scheduler needs Dask distributed: pip install 'dask[distributed]'") from e
    try:
        client = Client(scheduler, timeout=10)
    except (OSError, TimeoutError) as e:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({e})") from e
    with client:
        futures = client.map(run_one, jobs, opts=opts, pure=False)
        for f in as_completed(futures):
            yield f.result()


def summary_table(summary: Summary) -> str:
    """The end-of-run summary: counts, megapixels, throughput, and each failure."""
    done = [o for o in summary.outcomes if o.status == "done"]
    mp = sum(o.pixels for o in done) / 1e6
    rate = mp / summary.seconds if summary.seconds > 0 else 0.0
    lines = [
        "| files | done | skipped | failed | megapixels | seconds | MP/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(summary.outcomes)} | {len(done)} | {summary.count('skipped')} | {summary.count('failed')} | "
        f"{mp:.2f} | {summary.seconds:.1f} | {rate:.3f} |",
    ]
    lines += [f"failed: {o.src}: {o.error}" for o in summary.outcomes if o.status == "failed"]
    return "\n".join(lines)
