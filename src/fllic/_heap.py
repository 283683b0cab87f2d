"""Freed memory goes back to the system while a large image is coded (glibc's malloc).

glibc keeps freed blocks in per-thread arenas and raises its mmap threshold
as large blocks are freed (up to 32 MB), so the short-lived buffers of tiled
analysis and synthesis stay resident after their tile is done and the
process's peak grows past what the tiles need. :func:`bound_for` asks glibc
(``mallopt``) for one arena, blocks of 1 MB and more mapped and unmapped on
their own, and the heap trimmed at once, for images of at least
:data:`LARGE_PIXELS` (results/large_blind.md); smaller images, which fit a
tile or two, keep glibc's defaults. The settings are the process's: the
command line applies them, a library user may. Elsewhere than glibc nothing
changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util

LARGE_PIXELS = 1 << 22  # 4 megapixels: more than one 768-pixel tile each way
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h
SETTINGS = ((M_ARENA_MAX, 1), (M_TRIM_THRESHOLD, 0), (M_MMAP_THRESHOLD, 1 << 20))


def bound() -> bool:
    """Apply :data:`SETTINGS` to this process's malloc; True where glibc took them all, False elsewhere."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no C library found, or one without mallopt (macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)


def bound_for(pixels: int) -> bool:
    """:func:`bound` for an image of ``pixels`` of at least :data:`LARGE_PIXELS`; False otherwise."""
    return pixels >= LARGE_PIXELS and bound()
