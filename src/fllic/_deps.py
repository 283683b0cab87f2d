"""Optional dependencies: decoding needs the base install only, encoding needs PyTorch (the ``encode`` extra)."""

from __future__ import annotations

import importlib
import importlib.util

from fllic._errors import DependencyError

ENCODE_PIP = 'pip install "fllic[encode]"'
ENCODE_HINT = f'{ENCODE_PIP} (from a fllic checkout: pip install ./encoders ".[encode]")'


def torch_available() -> bool:
    """True when PyTorch can be imported (it is imported to find out)."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def torch_installed() -> bool:
    """True when PyTorch is installed, found without importing it (an import costs about a second and a half)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def require_torch(task: str, extra: str = "encode") -> None:
    """DependencyError, one line with the pip command, when PyTorch is not installed."""
    if not torch_available():
        hint = ENCODE_HINT if extra == "encode" else ENCODE_HINT.replace("[encode]", f"[{extra}]")
        raise DependencyError(f"{task} needs PyTorch, which is not installed: {hint}")
