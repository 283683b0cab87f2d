import numpy as np
import pytest
import torch

from fllic.models.fllic_net import FLLIC, FllicConfig, finalize


@pytest.fixture(scope="package")  # once for the whole tests package
def tiny_model():
    """A tiny, randomly initialised model with finalised tables: no training in tests."""
    torch.manual_seed(0)
    return finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-test", "quality_scales": [2.0, 1.0]})


@pytest.fixture(scope="package")  # once for the whole tests package
def tiny_model_path(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    tiny_model.save(path)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def noisy_image(rng, h, w, channels=3):
    """A smooth random scene plus noise, as uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    img = base[..., None] + rng.normal(0, 20, size=(h, w, channels))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img
