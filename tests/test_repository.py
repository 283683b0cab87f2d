"""The repository speaks only of fllic: no record, doc or source names an absolute path on some machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("src", "tests", "docs", "results", "encoders", ".ci")
FILES = ("README.md", "CHANGELOG.md", "pyproject.toml")
SUFFIXES = {".md", ".py", ".txt", ".sh", ".json", ".csv", ".log", ".toml", ".cfg", ".yml", ".yaml", ""}
ABSOLUTE = re.compile(r"(?<![\w.~])/(?:tmp|root|home|work|mnt|Users)/")  # a path on some machine, not in the repo


def _text_files():
    for name in FILES:
        if (ROOT / name).is_file():
            yield ROOT / name
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            skip = {"__pycache__", ".pytest_cache", "build"} & set(path.relative_to(ROOT).parts)
            if (path.is_file() and not skip and path.suffix in SUFFIXES and path.stat().st_size < 4 << 20
                    and path != Path(__file__).resolve()):  # this file's own examples
                yield path


def _hits(pattern: re.Pattern) -> list[str]:
    hits = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    return hits


def test_the_scanner_sees_the_repository_and_catches_a_path():
    assert len(list(_text_files())) > 100
    assert ABSOLUTE.search("--workdir /tmp/x") and not ABSOLUTE.search("--workdir build/x ~/.cache/fllic")


@pytest.mark.skipif(not (ROOT / "results").is_dir(), reason="a source checkout's records are not here")
def test_no_record_doc_or_source_names_an_absolute_path_of_a_machine():
    assert _hits(ABSOLUTE) == []

