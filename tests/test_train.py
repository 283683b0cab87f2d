"""The trainer on a tiny model and generated images: it runs, checkpoints, resumes and exports."""

import numpy as np
import pytest
from PIL import Image

import fllic
from tests.conftest import noisy_image


@pytest.fixture
def data_root(tmp_path, rng):
    for name, channels in (("CBSD432", 3), ("WikipediaPhotos", 3), ("BSD400", 1)):
        (tmp_path / name).mkdir()
        for k in range(2):
            Image.fromarray(noisy_image(rng, 80, 96, channels)).save(tmp_path / name / f"{k}.png")
    return tmp_path


def test_train_resume_and_export(tmp_path, data_root):
    from fllic.train.__main__ import main as train_main
    from fllic.train.export import main as export_main

    work = tmp_path / "work"
    common = ["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "64",
              "--threads", "1", "--ckpt-every", "2"]
    assert train_main(common + ["--steps", "2"]) == 0
    assert (work / "checkpoint.pt").exists()
    assert train_main(common + ["--steps", "4"]) == 0
    log = (work / "train.log").read_text()
    assert "resume at step 2" in log
    out = tmp_path / "tiny.pt"
    assert export_main(["--checkpoint", str(work / "checkpoint.pt"), "--out", str(out), "--id", "tiny"]) == 0
    fresh = tmp_path / "fresh"
    assert train_main(common[:2] + ["--workdir", str(fresh)] + common[4:] + ["--steps", "1", "--init", str(out)]) == 0
    assert (fresh / "checkpoint.pt").exists()
    img = noisy_image(np.random.default_rng(0), 40, 40)
    data = fllic.encode(img, sigma=10, model=str(out))
    assert np.array_equal(fllic.decode(data, model=str(out)), fllic.decode(data, model=str(out)))


def test_patch_must_be_a_multiple_of_64(tmp_path, data_root):
    from fllic.train.__main__ import main as train_main

    assert train_main(["--data", str(data_root), "--workdir", str(tmp_path), "--patch", "100"]) == 2
