import inspect
import subprocess
import sys

import fllic


def test_public_api_is_exactly_all():
    public = {n for n in dir(fllic) if not n.startswith("_") and not inspect.ismodule(getattr(fllic, n))}
    assert public == set(fllic.__all__) - {"__version__"}


def test_errors_derive_from_fllic_error():
    for name in ("FormatError", "InputError", "IntegrityError", "LimitError", "ModelMismatchError"):
        assert issubclass(getattr(fllic, name), fllic.FllicError)


def test_import_is_light_and_never_pulls_in_training():
    code = "import sys, fllic; print(sorted(m for m in ('torch', 'fllic.train', 'matplotlib', 'bm3d') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_library_never_imports_train():
    from pathlib import Path

    src = Path(fllic.__file__).parent
    for path in src.rglob("*.py"):
        if "train" in path.relative_to(src).parts[:1] or path.name == "cli.py":
            continue
        assert "fllic.train" not in path.read_text(), path
