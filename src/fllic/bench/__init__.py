"""fllic bench: the paper's comparison, reproducible.

Noise each clean image, code it with fllic at each quality point and with the
baselines of :mod:`fllic.baselines` (lossless and near-lossless coding of the
noisy image, denoiser -> codec cascades), check every decode, and write
``results.json``, ``report.md``, ``cost.md`` and one rate–distortion plot per
sigma::

    from fllic.bench import BenchConfig, run_bench
    summary = run_bench(BenchConfig(data=Path("Kodak24"), out=Path("results/kodak24")))

The command line is ``fllic bench`` (see ``fllic bench --help``).
"""

from fllic.bench.bd import BDError, bd_psnr, bd_rate
from fllic.bench.runner import BenchConfig, BenchError, DecodeCheckError, run_bench, run_method

__all__ = [
    "BDError",
    "BenchConfig",
    "BenchError",
    "DecodeCheckError",
    "bd_psnr",
    "bd_rate",
    "run_bench",
    "run_method",
]
