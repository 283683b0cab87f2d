"""The ``fllic bench`` subcommand (placeholder until the bench lands)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="compare fllic with lossless, near-lossless and cascade baselines")
    p.set_defaults(func=run)


def run(args) -> int:
    from fllic._errors import FllicError

    raise FllicError("fllic bench is not implemented yet")
