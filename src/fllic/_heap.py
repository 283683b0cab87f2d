"""The codec's heap (glibc's malloc): buffers reused while an image is coded.

A block above glibc's mmap threshold is a mapping of its own, made on allocation and unmapped on free, so each
such tensor of a convolution or an element-wise step is paged in, and zeroed by the kernel, afresh. For images
from 4 MP fllic 0.20 had every block from 1 MB mapped so (to give memory back as soon as a band was done): a new
4-16 MB int32 result then took 0.9-1.1 ns per value against 0.15-0.27 in a heap that reuses it, and PyTorch's
g_s 1.2-1.6x the time it takes under glibc's default (results/heap.md). :func:`reusing` keeps blocks up to
32 MB (glibc's largest threshold) in an untrimmed heap for the span of a coding call: g_s in 0.83-0.95x the
default's time, the process's first call included. After the call glibc's thresholds stay where its own rule
takes a process that has freed a 32 MB block. PyTorch's streamed bands are sized to keep their buffers below
that (``fllic.tiling.BAND_LATENTS``).

A large image's phases (the noise estimate, the analysis's tiles, h_s's maps, g_s's bands) use buffers of
other sizes, so between them, and at the end of the call, :func:`release` gives the heap's free pages back to
the system for an image of at least :data:`LARGE_PIXELS`; a smaller image keeps them for the next call.

:func:`bound_for` limits a process coding a large image to one arena, so that the blocks its threads free
return to the one heap the next band reuses (results/large_blind.md). The settings are the process's: the
command line applies :func:`bound_for`, a library user may. Elsewhere than glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from contextlib import contextmanager

LARGE_PIXELS = 1 << 22  # 4 megapixels: more than one 768-pixel tile each way
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest on 64-bit systems
KEEP = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, (1 << 31) - 1))  # blocks up to 32 MB reused
# glibc's own thresholds once a process has freed a 32 MB mapping: the mmap threshold that size, trimming at twice it
SETTLED = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_MAX))

_lock = threading.Lock()
_depth = 0  # coding calls under way in this process (threads may code several at once)
_released = False  # whether a large image's phase gave pages back during them: the end gives back the rest


@functools.lru_cache(maxsize=1)
def _libc():
    """The C library's handle where it is glibc (it has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # no C library found, or one without them (macOS, musl)
        return None
    return libc


def _set(settings) -> bool:
    libc = _libc()
    return libc is not None and all(libc.mallopt(param, value) == 1 for param, value in settings)


def _trim() -> bool:
    libc = _libc()
    return libc is not None and libc.malloc_trim(0) in (0, 1)


def release(pixels: int) -> bool:
    """Between a large image's phases: give every free page of the heap back to the system (malloc_trim), for an
    image of at least :data:`LARGE_PIXELS`; True where glibc did."""
    global _released
    if pixels < LARGE_PIXELS:
        return False
    with _lock:
        _released = True
    return _trim()


@contextmanager
def reusing():
    """Keep freed blocks in the heap while the body codes an image (:data:`KEEP`); on leaving the outermost such
    body, settle glibc's thresholds (:data:`SETTLED`) and give the free pages back where a large image's phase
    did."""
    global _depth, _released
    with _lock:
        _depth += 1
        if _depth == 1:
            _set(KEEP)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(SETTLED)
                if _released:
                    _released = False
                    _trim()


def bound() -> bool:
    """One malloc arena for this process; True where glibc took it, False elsewhere."""
    return _set(((M_ARENA_MAX, 1),))


def bound_for(pixels: int) -> bool:
    """:func:`bound` for an image of ``pixels`` of at least :data:`LARGE_PIXELS`; False otherwise."""
    return pixels >= LARGE_PIXELS and bound()
