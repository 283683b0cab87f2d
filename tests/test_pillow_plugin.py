import numpy as np
from PIL import Image

import fllic
from fllic.pillow_plugin import register
from tests.conftest import noisy_image


def test_pillow_saves_with_options(tmp_path, rng, tiny_model_path):
    register()
    path = tmp_path / "a.fllic"
    Image.fromarray(noisy_image(rng, 30, 41)).save(path, sigma=12, model=str(tiny_model_path), quality=1)
    meta = fllic.info(path.read_bytes())
    assert (meta["sigma"], meta["quality"], meta["model_id"]) == (12.0, 1, "tiny-test")


def test_pillow_opens_fllic_with_the_shipped_model(tmp_path, rng):
    register()
    for channels, mode in ((3, "RGB"), (1, "L")):
        path = tmp_path / f"{mode}.fllic"
        Image.fromarray(noisy_image(rng, 30, 41, channels)).save(path, sigma=20)
        with Image.open(path) as im:
            assert im.format == "FLLIC" and im.size == (41, 30) and im.mode == mode
            assert np.array_equal(np.asarray(im), fllic.decode(path.read_bytes()))
