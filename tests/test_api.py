import inspect
import subprocess
import sys

import numpy as np
import pytest

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


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_images_are_read_at_full_depth_not_truncated(tmp_path, suffix):
    """Pillow opens 16-bit RGB PNG/TIFF as 8-bit RGB: fllic must read all 16 bits (tests/test_depth_alpha.py)."""
    import imagecodecs

    from fllic.imageio import read_image

    rgb16 = (np.arange(24 * 20 * 3).reshape(20, 24, 3) * 97 % 65535).astype(np.uint16)
    path = tmp_path / f"rgb16{suffix}"
    path.write_bytes(imagecodecs.png_encode(rgb16) if suffix == ".png" else imagecodecs.tiff_encode(rgb16))
    assert read_image(path).dtype == np.uint16 and np.array_equal(read_image(path), rgb16)
    grey = tmp_path / f"grey16{suffix}"
    from PIL import Image

    Image.fromarray(rgb16[..., 0]).save(grey)
    assert read_image(grey).dtype == np.uint16 and np.array_equal(read_image(grey), rgb16[..., 0])
