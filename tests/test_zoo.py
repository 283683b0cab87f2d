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


def _pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


@pytest.mark.skipif(not WEIGHTS.is_dir(), reason="needs the repository's weights folder")
def test_fllic_encoders_leaves_out_exactly_the_retired_encoders():
    excluded = _pyproject(ROOT / "encoders")["tool"]["setuptools"]["exclude-package-data"]
    left_out = {Path(f).name for f in excluded["fllic_encoders"]}
    needed = set().union(*(_files_of(info.filename) for info in SHIPPED if not info.retired))
    assert left_out == {p.name for p in WEIGHTS.glob("*.pt")} - needed
    assert (ROOT / "encoders" / "src" / "fllic_encoders" / "weights").resolve() == WEIGHTS.resolve()


@pytest.mark.skipif(not WEIGHTS.is_dir(), reason="needs the repository's pyproject files")
def test_fllic_ships_decoder_files_only_and_its_encode_extra_asks_for_its_own_version_of_the_encoders():
    main, encoders = _pyproject(ROOT), _pyproject(ROOT / "encoders")
    assert main["tool"]["setuptools"]["package-data"]["fllic.models"] == ["weights/*-decoder.npz"]
    assert encoders["project"]["version"] == main["project"]["version"]
    assert f"fllic-encoders=={main['project']['version']}" in main["project"]["optional-dependencies"]["encode"]


def test_a_model_file_missing_from_fllic_is_found_in_fllic_encoders(monkeypatch, tmp_path):
    import sys
    import types

    assert registry.weights_path(registry.find(registry.DEFAULT_MODEL)).is_file()  # fllic's folder, or the package
    (tmp_path / "fllic-new.pt").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "fllic_encoders", types.SimpleNamespace(WEIGHTS=tmp_path))
    assert registry.weights_path(ModelInfo("fllic-new", "fllic-new.pt", "")) == tmp_path / "fllic-new.pt"
    assert registry.weights_path(ModelInfo("fllic-gone", "fllic-gone.pt", "")).parent != tmp_path  # in neither


def test_a_current_model_without_its_encoder_says_how_to_install_it(monkeypatch, tmp_path):
    info = ModelInfo("fllic-new", "fllic-new.pt", "a current model")
    monkeypatch.setattr(registry, "SHIPPED", (*SHIPPED, info))
    monkeypatch.setattr(registry, "weights_path", lambda i: tmp_path / i.filename)
    registry.load.cache_clear()
    with pytest.raises(ModelMismatchError, match=r"fllic-new.s encoder \(the fllic-encoders package\) is not installed: .*pip install ./encoders"):
        registry.load("fllic-new")


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
