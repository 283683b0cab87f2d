"""fllic adapt: noisy photographs only, a file naming its base's decoder, decoded by a stock install."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import fllic
from fllic import format as fmt
from fllic._errors import InputError, ModelMismatchError
from fllic.adapt import AdaptOptions, _Photo, adapt, neighbour_pair, recorrupt_loss, sub_image, unit_residual
from fllic.cli import main
from fllic.models.adapted import load_adapted
from fllic.models.registry import CAMERA_JPEG_MODEL, load
from tests.conftest import noisy_image

TINY = AdaptOptions(minutes=5.0, steps=1, patch=32, batch=1, threads=1, checkpoint_every=1)


@pytest.fixture
def photos(tmp_path, rng):
    """Three small noisy 'camera' JPEGs, each with a clean reference beside it that adaptation must not read."""
    folder = tmp_path / "camera"
    folder.mkdir()
    paths = []
    for k in range(3):
        Image.fromarray(noisy_image(rng, 64, 64)).save(folder / f"p{k}.jpg", quality=92)
        Image.fromarray(noisy_image(rng, 64, 64)).save(tmp_path / f"p{k}_mean.png")
        paths.append(folder / f"p{k}.jpg")
    return paths


def test_sub_images_are_neighbours():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    first, second = neighbour_pair(x, torch.Generator().manual_seed(0))
    g1, g2 = sub_image(x, first), sub_image(x, second)
    assert g1.shape == g2.shape == (2, 1, 2, 2)
    gap = (g1 - g2).abs()
    assert torch.all((gap == 1) | (gap == 4))  # the other pixel of the cell's row (±1) or column (±4)


@pytest.mark.parametrize("objective", ["neighbor2neighbor", "recorrupt"])
def test_adaptation_reads_only_the_photographs(photos, tmp_path, objective):
    opened = []

    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes)) or event == "open" and hasattr(args[0], "__fspath__"):
            opened.append(str(args[0]))

    sys.addaudithook(hook)
    out = tmp_path / "cam.fllicm"
    options = AdaptOptions(**{**TINY.__dict__, "objective": objective})
    res = adapt(photos, out, options=options, workdir=tmp_path / "work", progress=False)
    reading = list(opened)
    opened.clear()  # the hook stays installed; later opens are not this test's
    assert res.steps == 1 and out.exists()
    assert not [p for p in reading if "_mean" in p], "adaptation read a reference"
    images = {p for p in reading if p.endswith((".png", ".jpg"))}
    assert images <= {str(p) for p in photos}
    assert torch.load(out, weights_only=True)["meta"]["adapt_objective"] == objective


def test_recorruption_maps_one_noisy_copy_to_the_other():
    """y + a n' and y - n' / a: an identity trunk pays (a + 1/a)^2 |n'|^2, and reads the map scaled to the
    level of y + a n'."""
    seen = []

    def identity(x, maps):
        seen.append(maps)
        return x

    x = torch.rand(2, 3, 16, 16)
    maps = torch.stack([torch.full((2, 16, 16), 4.0), torch.ones(2, 16, 16)], 1)
    noise = 0.01 * torch.randn(2, 3, 16, 16)
    loss = recorrupt_loss(identity, identity, x, maps, noise, alpha=0.5, anchor=0.0)
    assert torch.isclose(loss, (2.5**2) * (noise**2).mean(), rtol=1e-4)
    assert torch.allclose(seen[0][:, 0], torch.full((2, 16, 16), 4.0 * np.sqrt(1.25)))
    assert torch.equal(seen[0][:, 1], maps[:, 1])


def test_unit_residual_is_the_residual_over_the_noise_map_and_bounded():
    from fllic.noise import NoiseLevel

    pixels = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    level = NoiseLevel(5.0, "white", 5.0, float("nan"), 0.5)
    grey = lambda x, maps: torch.full_like(x, 0.5)  # noqa: E731
    r = unit_residual(grey, _Photo(pixels, level), side=32)
    assert r.shape == (32, 32, 3) and r.dtype == np.float32
    centre = pixels[4:36, 8:40].astype(np.float64)
    assert np.allclose(r, np.clip((centre / 255.0 - 0.5) * 255.0 / 5.0, -4, 4), atol=1e-4)
    scaled = unit_residual(grey, _Photo(pixels, level), side=32, level=1.0)
    assert np.sqrt(np.mean(scaled.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-5)
    assert np.allclose(scaled / r, scaled[0, 0, 0] / r[0, 0, 0], rtol=1e-4)  # the same sample, rescaled


def test_a_checkpoint_at_another_sample_level_is_not_resumed(photos, tmp_path):
    out, work = tmp_path / "cam.fllicm", tmp_path / "work"
    assert adapt(photos, out, options=AdaptOptions(**{**TINY.__dict__, "steps": 2}), workdir=work,
                 progress=False).steps == 2
    level = AdaptOptions(**{**TINY.__dict__, "sample_level": 1.0})
    assert adapt(photos, out, options=level, workdir=work, progress=False).steps == 1


def test_an_unknown_objective_is_refused(photos, tmp_path):
    with pytest.raises(InputError, match="objective must be one of"):
        adapt(photos, tmp_path / "x.fllicm", options=AdaptOptions(**{**TINY.__dict__, "objective": "magic"}),
              workdir=tmp_path / "w", progress=False)


def test_adapted_file_decodes_on_a_stock_install(photos, tmp_path):
    out = tmp_path / "cam.fllicm"
    adapt(photos, out, options=TINY, workdir=tmp_path / "work", progress=False)
    model = load_adapted(out)
    base = load(CAMERA_JPEG_MODEL)
    assert model.decoder_hash == base.decoder_hash and model.hash != base.hash
    img = noisy_image(np.random.default_rng(5), 64, 80)
    res = fllic.codec.encode_detailed(img, model=str(out))
    header = fmt.unpack(res.data).header
    assert header.version == fmt.VERSION_DECODER
    assert header.model_id == "cam" and header.decoder_id == base.decoder_id == "fllic-awgn-v7"
    assert fllic.info(res.data)["decoder_hash"] == base.decoder_hash.hex()
    coded = tmp_path / "a.fllic"
    coded.write_bytes(res.data)
    out.unlink()  # the stock install never saw the adapted model
    decoded = tmp_path / "a.png"
    subprocess.run([sys.executable, "-m", "fllic.cli", "decompress", str(coded), "-o", str(decoded), "-q"],
                   check=True)
    assert np.array_equal(np.asarray(Image.open(decoded)), res.pixels)


def test_stock_files_stay_version_2(tiny_model):
    data = fllic.encode(noisy_image(np.random.default_rng(1), 32, 32), sigma=10, model=tiny_model)
    assert data[len(fmt.MAGIC)] == fmt.VERSION == 2
    assert "decoder_hash" not in fllic.info(data)


def test_a_decoder_hash_that_does_not_match_is_refused(tiny_model):
    data = fllic.encode(noisy_image(np.random.default_rng(1), 32, 32), sigma=10, model=tiny_model)
    c = fmt.unpack(data)
    c.header.decoder_id, c.header.decoder_hash = "tiny-test", bytes(16)
    forged = fmt.pack(c)
    assert fmt.unpack(forged).header.version == fmt.VERSION_DECODER
    with pytest.raises(ModelMismatchError, match="needs the decoder"):
        fllic.decode(forged, model=tiny_model)


def test_resume_goes_on_from_the_checkpoint(photos, tmp_path):
    out, work = tmp_path / "cam.fllicm", tmp_path / "work"
    adapt(photos, out, options=TINY, workdir=work, progress=False)
    res = adapt(photos, out, options=AdaptOptions(**{**TINY.__dict__, "steps": 2}), workdir=work, progress=False)
    assert res.steps == 2
    assert torch.load(out, weights_only=True)["meta"]["adapt_steps"] == 2


def test_a_checkpoint_of_another_base_with_the_same_weights_is_not_resumed(photos, tmp_path):
    """camera-v6 and camera-v7 share their weights but read the noise differently: a run from one never resumes
    a checkpoint of the other (resumed, the one-step run would stop at the other's two steps)."""
    out, work = tmp_path / "cam.fllicm", tmp_path / "work"
    assert load("fllic-camera-v6").hash == load("fllic-camera-v7").hash
    two = AdaptOptions(**{**TINY.__dict__, "steps": 2})
    assert adapt(photos, out, base="fllic-camera-v6", options=two, workdir=work, progress=False).steps == 2
    assert adapt(photos, out, base="fllic-camera-v7", options=TINY, workdir=work, progress=False).steps == 1


def test_adapt_cli_and_its_errors(photos, tmp_path, capsys):
    assert main(["adapt", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.fllicm"), "-q"]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(InputError, match="at least 96x96"):
        adapt(photos, tmp_path / "x.fllicm", options=AdaptOptions(**{**TINY.__dict__, "patch": 96}),
              workdir=tmp_path / "w", progress=False)


def test_the_camera_model_is_v7_reading_a_noise_map():
    """The camera-JPEG model keeps v7's trunk and codec: its file holds metadata alone, its files name v7's
    decoder, and its trunk runs at two scales."""
    from fllic.models.registry import find, weights_path

    state = torch.load(weights_path(find(CAMERA_JPEG_MODEL)), weights_only=True)
    assert state["base"] == "fllic-awgn-v7" and state["trunk"] is None
    model, v7 = load(CAMERA_JPEG_MODEL), load("fllic-awgn-v7")
    assert model.meta["noise_map"] and model.meta["correlated_gain"] > 1
    assert model.net.coarse_gain == model.meta["coarse_gain"] and v7.net.coarse_gain is None
    assert model.decoder_id == "fllic-awgn-v7" and model.decoder_hash == v7.decoder_hash
    ours, theirs = model.net.trunk.state_dict(), v7.net.trunk.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)  # v7's trunk itself, not a fresh one
