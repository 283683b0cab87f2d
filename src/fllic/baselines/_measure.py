"""Wall time and peak memory of one call.

Peak memory is the rise of the process's resident set size (RSS) above its
level when the call starts. On Linux a background thread reads
``/proc/self/statm`` every 20 ms and at both ends, so native allocations (torch,
libjxl, BM3D) count, not only Python's. Elsewhere it falls back to the rise of
``resource.getrusage().ru_maxrss``, which moves only when the process sets a
new all-time high. Both are lower bounds on the call's working memory: memory
the allocator already holds from earlier calls is reused without showing.
"""

from __future__ import annotations

import os
import threading
import time

_STATM = "/proc/self/statm"
_INTERVAL_S = 0.02


def _rss_bytes() -> int | None:
    try:
        with open(_STATM) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_bytes() -> int:
    import resource
    import sys

    kb_or_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb_or_bytes if sys.platform == "darwin" else kb_or_bytes * 1024


class measure:
    """``with measure() as m: ...``; then ``m.seconds`` and ``m.peak_mb`` (MiB)."""

    def __enter__(self) -> "measure":
        self.seconds = 0.0
        self.peak_mb = 0.0
        base = _rss_bytes()
        self._sampled = base is not None
        if self._sampled:
            self._base = self._peak = base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._base = _maxrss_bytes()
        self._t0 = time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(_INTERVAL_S):
            rss = _rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._sampled:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss_bytes() or 0)
            rise = self._peak - self._base
        else:
            rise = _maxrss_bytes() - self._base
        self.peak_mb = max(rise, 0) / 2**20
