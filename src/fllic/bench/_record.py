"""What every record-writing bench command shares: its command line, and printing and saving the record."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path


def home_tilde(text: str) -> str:
    """``text`` with paths under the home folder written with ``~`` (a path's start, not inside one)."""
    return re.sub(rf"(?<![^\s=]){re.escape(str(Path.home()))}/", "~/", text)


def command(prog: str, argv: list[str] | None) -> str:
    """The command line that made a record, for its header, as a shell takes it: paths under the home folder
    written with ``~``, an argument with spaces or shell characters quoted."""
    args = argv if argv is not None else sys.argv[1:]
    words = (home_tilde(a) for a in args)
    return f"{prog} " + " ".join(w if re.fullmatch(r"[\w@%+=:,./~-]+", w) else shlex.quote(w) for w in words)


def emit(text: str, out: Path | None) -> None:
    """Print the record, and write it to ``out`` when given."""
    print(text)
    if out is not None:
        out.write_text(text)


def png_files(folder: Path, limit: int | None) -> list[Path]:
    """The first ``limit`` PNG images of ``folder``, sorted by name; an empty list says why on stderr."""
    files = sorted(Path(folder).glob("*.png"))[:limit]
    if not files:
        print(f"error: no PNG images in {folder}", file=sys.stderr)
    return files
