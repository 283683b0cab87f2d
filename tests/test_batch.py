"""Batch coding: many files, resumable, failures isolated, inputs untouched; worker processes and Dask."""

import hashlib

import numpy as np
import pytest
from PIL import Image

import fllic
from fllic.cli import main
from tests.conftest import noisy_image


@pytest.fixture
def photos(tmp_path, rng):
    """Two loose images and a folder with a sub-folder of two more, plus one unreadable 'image'."""
    root = tmp_path / "in"
    (root / "album" / "day2").mkdir(parents=True)
    paths = [root / "a.png", root / "b.png", root / "album" / "c.png", root / "album" / "day2" / "d.png"]
    for k, p in enumerate(paths):
        Image.fromarray(noisy_image(rng, 40 + 8 * k, 52, channels=1 if k == 2 else 3)).save(p)
    return root, paths


def _digests(paths):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_batch_compress_decompress_resume(tmp_path, photos, tiny_model_path, capsys):
    root, paths = photos
    before = _digests(paths)
    out = tmp_path / "out"
    model = ["--model", str(tiny_model_path), "-q"]
    argv = ["compress", str(paths[0]), str(paths[1]), str(root / "album"), "-o", f"{out}/", "--sigma", "20", *model]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| 4 | 4 | 0 | 0 |" in table
    coded = sorted(out.rglob("*.fllic"))
    assert [p.relative_to(out).as_posix() for p in coded] == ["a.fllic", "album/c.fllic", "album/day2/d.fllic", "b.fllic"]
    assert all(fllic.check(p.read_bytes()) for p in coded)
    assert _digests(paths) == before  # inputs untouched
    # resumable: a second run skips what exists and verifies, and redoes a damaged output
    (out / "b.fllic").write_bytes(b"half-written")
    assert main(argv) == 0
    assert "| 4 | 1 | 3 | 0 |" in capsys.readouterr().out
    assert fllic.check((out / "b.fllic").read_bytes())
    dec = tmp_path / "dec"
    assert main(["decompress", str(out), "-o", str(dec), *model]) == 0
    decoded = sorted(p.relative_to(dec).as_posix() for p in dec.rglob("*.png"))
    assert decoded == ["a.png", "album/c.png", "album/day2/d.png", "b.png"]  # a folder alone is mirrored
    grey = np.asarray(Image.open(dec / "album" / "c.png"))
    assert grey.ndim == 2
    assert np.array_equal(grey, fllic.decode((out / "album" / "c.fllic").read_bytes(), model=str(tiny_model_path)))


def test_a_failure_is_reported_and_the_rest_go_on(tmp_path, photos, tiny_model_path, capsys):
    root, paths = photos
    broken = root / "broken.png"
    broken.write_text("not an image")
    out = tmp_path / "out"
    assert main(["compress", str(root), "-o", str(out), "--sigma", "20", "--model", str(tiny_model_path), "-q"]) == 1
    text = capsys.readouterr().out
    assert "| 5 | 4 | 0 | 1 |" in text and "failed:" in text and "broken.png" in text
    assert len(list(out.rglob("*.fllic"))) == 4 and not list(out.rglob(".fllic-*"))


def test_outputs_may_not_overwrite_inputs(photos, tiny_model_path, capsys):
    root, _ = photos
    assert main(["decompress", str(root), "-o", str(root.parent), "--model", str(tiny_model_path), "-q"]) == 1


def test_worker_processes(tmp_path, photos, tiny_model_path, capsys):
    root, _ = photos
    out = tmp_path / "out"
    assert main(["compress", str(root), "-o", str(out), "--sigma", "20", "--model", str(tiny_model_path),
                 "--jobs", "2", "-q"]) == 0
    assert "| 4 | 4 | 0 | 0 |" in capsys.readouterr().out


def test_dask_local_cluster(tmp_path, photos, tiny_model_path, capsys):
    distributed = pytest.importorskip("distributed")
    root, _ = photos
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        argv = ["compress", str(root), "-o", str(out), "--sigma", "20", "--model", str(tiny_model_path),
                "--scheduler", cluster.scheduler_address, "-q"]
        assert main(argv) == 0
    assert "| 4 | 4 | 0 | 0 |" in capsys.readouterr().out
    assert all(fllic.check(p.read_bytes()) for p in out.rglob("*.fllic"))


def test_unreachable_scheduler_is_one_line(tmp_path, photos, tiny_model_path, capsys):
    pytest.importorskip("distributed")
    root, _ = photos
    assert main(["compress", str(root), "-o", str(tmp_path / "o"), "--model", str(tiny_model_path),
                 "--scheduler", "tcp://127.0.0.1:9", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fllic: error: cannot reach the Dask scheduler") and err.count("\n") == 1


def test_batch_outputs_follow_the_umask(tmp_path):
    import os
    import stat

    from fllic.batch import _atomic_write

    out = tmp_path / "o" / "a.bin"
    old = os.umask(0o022)
    try:
        _atomic_write(out, lambda p: p.write_bytes(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
