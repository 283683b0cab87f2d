"""The model zoo: current models ship whole, retired models their decoder part only."""

import tomllib
from pathlib import Path

import pytest
import torch

from fllic._errors import ModelMismatchError
from fllic.models import registry
from fllic.models.registry import SHIPPED, ModelInfo
from fllic.models.zoo import shipped

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "fllic" / "models" / "weights"


def _files_of(filename: str) -> set[str]:
    """A model file and every weights file it names (its encoder, its trunk, an adapted model's base)."""
    state = torch.load(WEIGHTS / filename, map_location="cpu", weights_only=False)
    files = {filename}
    for key in ("encoder_file", "trunk_file"):
        if state.get(key):
            files |= _files_of(state[key])
    if state.get("format") == "fllic-adapted-1":
        files |= _files_of(registry.find(state["base"]).filename)
    return files


@pytest.mark.skipif(not WEIGHTS.is_dir(), reason="needs the repository's weights folder")
def test_the_wheel_leaves_out_exactly_the_retired_encoders():
    excluded = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["exclude-package-data"]
    left_out = {Path(f).name for f in excluded["fllic.models"]}
    needed = set().union(*(_files_of(info.filename) for info in SHIPPED if not info.retired))
    assert left_out == {p.name for p in WEIGHTS.glob("*.pt")} - needed


def test_every_shipped_model_decodes_and_only_current_ones_need_encoders():
    rows = shipped()
    assert all(r["decodes"] for r in rows)
    assert all(r["encodes"] for r in rows if not r["retired"])


def test_the_default_and_auto_models_are_current():
    current = {info.id for info in SHIPPED if not info.retired}
    assert {registry.DEFAULT_MODEL, registry.CAMERA_MODEL, registry.CAMERA_JPEG_MODEL} <= current


def test_a_retired_model_without_its_encoder_says_so(monkeypatch, tmp_path):
    info = ModelInfo("fllic-old", "fllic-old.pt", "an old model", retired=True)
    monkeypatch.setattr(registry, "SHIPPED", (*SHIPPED, info))
    monkeypatch.setattr(registry, "weights_path", lambda i: tmp_path / i.filename)
    registry.load.cache_clear()
    with pytest.raises(ModelMismatchError, match="fllic-old is retired: fllic decodes its files"):
        registry.load("fllic-old")


def test_a_model_file_can_name_its_decoder_file_instead_of_a_copy(tiny_model, tmp_path):
    from fllic.models.decoder_export import export
    from fllic.models.fllic_net import CodingModel

    export(tiny_model, tmp_path / "tiny-test-decoder.npz")
    tiny_model.save(tmp_path / "whole.pt")
    tiny_model.save(tmp_path / "named.pt", decoder_file="tiny-test-decoder.npz")
    assert (tmp_path / "named.pt").stat().st_size < (tmp_path / "whole.pt").stat().st_size / 2
    loaded = CodingModel.load(tmp_path / "named.pt")
    assert loaded.hash == tiny_model.hash and loaded.decoder_hash == tiny_model.decoder_hash
    assert loaded.decoder_file == "tiny-test-decoder.npz"
    loaded.save(tmp_path / "named.pt")  # re-saving keeps naming it
    assert torch.load(tmp_path / "named.pt", weights_only=True)["decoder_file"] == "tiny-test-decoder.npz"
    (tmp_path / "tiny-test-decoder.npz").rename(tmp_path / "elsewhere.npz")
    with pytest.raises(ModelMismatchError, match="needs its decoder file tiny-test-decoder.npz beside it"):
        CodingModel.load(tmp_path / "named.pt")


def test_a_model_file_refuses_a_decoder_file_of_another_decoder(tiny_model, tmp_path):
    from fllic.models.decoder_export import export
    from fllic.models.fllic_net import CodingModel, FLLIC, FllicConfig, finalize

    torch.manual_seed(1)
    other = finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-other", "quality_scales": [2.0, 1.0]})
    export(other, tmp_path / "other-decoder.npz")
    with pytest.raises(ModelMismatchError, match="holds another decoder"):
        tiny_model.save(tmp_path / "x.pt", decoder_file="other-decoder.npz")
    export(tiny_model, tmp_path / "tiny-test-decoder.npz")
    tiny_model.save(tmp_path / "x.pt", decoder_file="tiny-test-decoder.npz")
    export(other, tmp_path / "tiny-test-decoder.npz")  # the file beside it replaced by another decoder
    with pytest.raises(ModelMismatchError, match="holds another decoder"):
        CodingModel.load(tmp_path / "x.pt")
