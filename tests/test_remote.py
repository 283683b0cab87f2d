"""Training on another machine: the time budget, patch workers, and the pack/unpack/split/join round trip."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import noisy_image


@pytest.fixture
def data_root(tmp_path, rng):
    for name in ("CBSD432", "WikipediaPhotos"):
        (tmp_path / name).mkdir()
    for k in range(2):
        Image.fromarray(noisy_image(rng, 160, 192)).save(tmp_path / "CBSD432" / f"{k}.jpg")
        Image.fromarray(noisy_image(rng, 160, 192)).save(tmp_path / "WikipediaPhotos" / f"00{k}.png")
    Image.fromarray(noisy_image(rng, 160, 192)).save(tmp_path / "WikipediaPhotos" / "045.png")  # validation
    return tmp_path


@pytest.fixture
def trunk(tmp_path, data_root):
    from fllic.train.denoiser import main as denoiser_main

    work = tmp_path / "t"
    assert denoiser_main(["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2",
                          "--patch", "32", "--threads", "1", "--steps", "1"]) == 0
    assert denoiser_main(["--workdir", str(work), "--export", str(tmp_path / "trunk.pt")]) == 0
    return tmp_path / "trunk.pt"


def test_the_cosine_follows_the_clock_under_a_time_budget():
    from pathlib import Path

    from fllic.train.loop import TrainConfig, _lr, _progress

    cfg = TrainConfig(data=Path("."), workdir=Path("."), steps=1_000_000, warmup=10, cosine=True, lr=1e-3,
                      max_minutes=10.0)
    assert _progress(cfg, 100, 5.0) == pytest.approx(0.5)
    assert _progress(cfg, 100, 20.0) == 1.0
    assert _lr(cfg, 100, 5.0) == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5))
    assert _lr(cfg, 100, 10.0) == pytest.approx(2e-5)
    assert _lr(cfg, 5, 9.0) == pytest.approx(6e-4)  # warm-up first, whatever the clock says


def test_grey_awgn_patches_have_grey_targets_and_grey_noise():
    from fllic.train.data import MixedNoiseSampler

    scene = noisy_image(np.random.default_rng(1), 80, 80)
    target, noisy, level = MixedNoiseSampler([scene], patch=32, sigma_max=30, camera_fraction=0.0, seed=0,
                                             grey_fraction=1.0).batch(4)
    for t in (target, noisy):
        assert torch.equal(t[:, 0], t[:, 1]) and torch.equal(t[:, 1], t[:, 2])
    assert level.shape == (4, 2, 32, 32) and not level[:, 1].any()
    colour, _, _ = MixedNoiseSampler([scene], patch=32, sigma_max=30, camera_fraction=0.0, seed=0).batch(4)
    assert not torch.equal(colour[:, 0], colour[:, 1])


def test_pack_unpack_train_with_workers_split_and_join(tmp_path, data_root, trunk):
    from fllic.train.__main__ import main as train_main
    from fllic.train.data import clean_targets
    from fllic.train.remote import main as remote_main

    start = tmp_path / "start"
    common = ["--data", str(data_root), "--tiny", "--batch", "2", "--patch", "64", "--threads", "1",
              "--freeze-trunk", "--targets", "clean", "--code-estimate", "--camera-fraction", "0.5"]
    assert train_main(common + ["--workdir", str(start), "--trunk", str(trunk), "--steps", "1"]) == 0

    packed = tmp_path / "packed"
    assert remote_main(["pack", "--checkpoint", str(start / "checkpoint.pt"), "--data", str(data_root),
                       "--out", str(packed), "--trunk", str(trunk)]) == 0
    assert (packed / "trunk.pt").read_bytes() == trunk.read_bytes()
    assert sorted(p.name for p in (packed / "images").iterdir()) == [
        "a-cbsd-0.jpg", "a-cbsd-1.jpg", "b-wiki-000.jpg", "b-wiki-001.jpg"]  # no validation photograph

    there = tmp_path / "there"
    assert remote_main(["unpack", "--pack", str(packed), "--workdir", str(there)]) == 0
    with np.load(there / "clean.npz") as f:
        unpacked = [f[k] for k in sorted(f.files, key=lambda k: int(k[3:]))]
    expected = clean_targets(data_root, tmp_path / "here.npz")
    assert [a.shape for a in unpacked] == [a.shape for a in expected]
    for a, b in zip(unpacked, expected):  # the same images, less a JPEG round trip
        assert np.abs(a.astype(int) - b).mean() < 8  # on noise-like test images, JPEG's worst case

    # --photo-quality: the losslessly stored photographs at a higher JPEG quality, CBSD432 (JPEG already) as before.
    packed97 = tmp_path / "packed97"
    assert remote_main(["pack", "--checkpoint", str(start / "checkpoint.pt"), "--data", str(data_root),
                       "--out", str(packed97), "--photo-quality", "97"]) == 0
    for name in ("a-cbsd-0.jpg", "b-wiki-000.jpg"):
        same = (packed97 / "images" / name).read_bytes() == (packed / "images" / name).read_bytes()
        assert same == name.startswith("a-cbsd-"), name
    assert remote_main(["unpack", "--pack", str(packed97), "--workdir", str(tmp_path / "there97")]) == 0
    with np.load(tmp_path / "there97" / "clean.npz") as f:
        err = lambda a, k: np.abs(a.astype(int) - expected[k]).mean()
        assert np.array_equal(f["img0"], unpacked[0])  # a-cbsd-0: as before
        assert err(f["img2"], 2) < 0.7 * err(unpacked[2], 2)  # b-wiki-000 at full size: closer to the original

    # The other machine's run: patch workers, a wall-clock budget, a checkpoint when the clock stops it.
    assert train_main(common + ["--workdir", str(there), "--trunk", str(packed / "trunk.pt"),
                                "--init", str(packed / "init.pt"), "--steps", "3",
                                "--workers", "1", "--max-minutes", "5", "--cosine", "--ckpt-every", "100"]) == 0
    trained = torch.load(there / "checkpoint.pt", weights_only=False)
    assert trained["step"] == 3

    back = tmp_path / "back"
    assert remote_main(["split", "--checkpoint", str(there / "checkpoint.pt"), "--out", str(back),
                       "--base", str(packed / "init.pt")]) == 0
    assert sorted(p.name for p in back.iterdir()) == ["codec-analysis.pt", "codec-synthesis.pt"]
    joined = tmp_path / "joined.pt"
    assert remote_main(["join", "--parts", str(back), "--trunk", str(trunk), "--out", str(joined)]) == 0
    state = torch.load(joined, weights_only=False)
    assert state["step"] == 4  # one step here, three there
    assert state["model"].keys() == trained["model"].keys()
    for k, v in trained["model"].items():
        assert torch.equal(state["model"][k], v.float()), k
    from fllic.models.fllic_net import FLLIC, FllicConfig

    FLLIC(FllicConfig(**state["config"])).load_state_dict(state["model"])  # strict: a whole model

    # --half: float16 parts, small enough to commit as a resume point; join gives float32 weights back.
    assert remote_main(["split", "--checkpoint", str(there / "checkpoint.pt"), "--out", str(tmp_path / "b16"),
                       "--base", str(packed / "init.pt"), "--half"]) == 0
    assert remote_main(["join", "--parts", str(tmp_path / "b16"), "--trunk", str(trunk), "--out", str(joined)]) == 0
    state16 = torch.load(joined, weights_only=False)
    assert state16["step"] == 4
    for k, v in trained["model"].items():
        want = v.float() if k.startswith("trunk.") else v.half().float()
        assert state16["model"][k].dtype == torch.float32 and torch.equal(state16["model"][k], want), k


def test_pack_without_training_data_is_a_one_line_error(tmp_path, capsys):
    from fllic.train.remote import main as remote_main

    assert remote_main(["pack", "--checkpoint", str(tmp_path / "c.pt"), "--data", str(tmp_path), "--out",
                       str(tmp_path / "l")]) == 2
    assert "no training data" in capsys.readouterr().err


def test_the_denoiser_stops_on_the_clock_and_keeps_its_last_step(tmp_path, data_root):
    from fllic.train.denoiser import main as denoiser_main

    work = tmp_path / "t"
    assert denoiser_main(["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "32",
                          "--threads", "1", "--steps", "1000000", "--max-minutes", "0.002", "--ckpt-every", "1000000",
                          "--workers", "1"]) == 0
    state = torch.load(work / "checkpoint.pt", weights_only=False)
    assert 1 <= state["step"] < 1_000_000  # stopped by the clock, saved between checkpoints
    assert all(v.device.type == "cpu" for v in state["model"].values())


def _tiny_weak_checkpoint(tmp_path, data_root):
    from fllic.train.weak import main as weak_main
    from fllic.train.weak_data import make_noisy_set

    here = tmp_path / "noisy-here.npz"
    make_noisy_set(data_root, here)
    assert weak_main(["--tiny", "--batch", "2", "--patch", "64", "--threads", "1", "--no-bf16", "--noisy-set", str(here),
                      "--workdir", str(tmp_path / "w"), "--steps", "1"]) == 0
    return tmp_path / "w" / "checkpoint.pt"


def test_a_weak_pack_carries_the_weak_model_and_makes_its_noisy_set_there(tmp_path, data_root):
    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.data import _half, _load
    from fllic.train.remote import main as remote_main
    from fllic.train.weak import main as weak_main
    from fllic.train.weak_data import load_noisy_set

    weak = _tiny_weak_checkpoint(tmp_path, data_root)
    folder = tmp_path / "packed"
    assert remote_main(["pack", "--checkpoint", str(weak), "--data", str(data_root), "--out", str(folder),
                       "--weak", str(weak)]) == 0
    packed = torch.load(folder / "weak-init.pt", weights_only=False)
    assert packed["weak"] and packed["step"] == 1
    assert all(v.dtype == torch.float16 for v in packed["model"].values() if v.is_floating_point())

    there = tmp_path / "there"
    noisy = there / "noisy.npz"
    assert remote_main(["unpack", "--pack", str(folder), "--workdir", str(there), "--noisy-set", str(noisy)]) == 0
    images, sigmas = load_noisy_set(noisy)
    # The weak set's photographs at half scale (CBSD432 and WikipediaPhotos, no validation photograph), noised once.
    clean = [_half(_load(data_root / "CBSD432" / f"{k}.jpg")) for k in range(2)]
    clean += [_half(_load(data_root / "WikipediaPhotos" / f"00{k}.png")) for k in range(2)]
    assert [a.shape for a in images] == [c.shape for c in clean]
    assert np.all((sigmas >= 5) & (sigmas <= 50))
    for y, c, s in zip(images, clean, sigmas):
        residual = y.astype(float) - c
        assert 0.5 * s < residual.std() < 1.5 * s + 8  # noise of about sigma, plus the JPEG round trip

    assert weak_main(["--tiny", "--batch", "2", "--patch", "64", "--threads", "1", "--no-bf16", "--noisy-set", str(noisy),
                      "--workdir", str(there / "w"), "--steps", "2", "--max-minutes", "5",
                      "--from", str(folder / "weak-init.pt")]) == 0
    back = tmp_path / "back" / "weak.pt"
    assert remote_main(["weights", "--checkpoint", str(there / "w" / "checkpoint.pt"), "--out", str(back),
                       "--base", str(folder / "weak-init.pt")]) == 0
    state = torch.load(back, weights_only=False)
    assert state["weak"] and state["step"] == 3  # one step here, two there
    FLLIC(FllicConfig(**state["config"])).load_state_dict({k: v.float() for k, v in state["model"].items()})


def test_a_weak_pack_refuses_a_supervised_checkpoint(tmp_path, data_root, capsys):
    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.remote import main as remote_main

    model = FLLIC(FllicConfig.tiny())
    torch.save({"model": model.state_dict(), "config": vars(model.config), "step": 1}, tmp_path / "sup.pt")
    assert remote_main(["pack", "--checkpoint", str(tmp_path / "sup.pt"), "--data", str(data_root), "--out",
                       str(tmp_path / "l"), "--weak", str(tmp_path / "sup.pt")]) == 2
    assert "not a weakly supervised checkpoint" in capsys.readouterr().err
