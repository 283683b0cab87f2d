"""Development and test halves of the evaluation sets.

Kodak24 is a test set. CBSD68 and BSD68 (the same 68 scenes in colour and
grey) are split by name: images 1-34 are the development half, where quality
tables, estimator constants and trials are chosen, and images 35-68 the test
half, which records report. Nothing is chosen on a test image.
"""

from __future__ import annotations

from pathlib import Path

DEV_IMAGES = 34  # CBSD68 / BSD68: the first 34 by name are the development half
HALVES = ("dev", "test")


def split(images: list[Path], half: str | None) -> list[Path]:
    """``images`` (sorted by name) cut to one half: ``dev`` the first :data:`DEV_IMAGES`, ``test`` the rest;
    None keeps them all."""
    if half is None:
        return list(images)
    if half not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}, got {half!r}")
    return list(images[:DEV_IMAGES] if half == "dev" else images[DEV_IMAGES:])
