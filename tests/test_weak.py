"""Weakly supervised training: the trainer sees noisy images only (issue 8)."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import noisy_image


@pytest.fixture
def noisy_set(tmp_path, rng):
    from fllic.train.weak_data import make_noisy_set

    root = tmp_path / "data"
    for name in ("CBSD432", "WikipediaPhotos"):
        (root / name).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(noisy_image(rng, 160, 192, 3)).save(root / name / f"{k}.png")
    out = tmp_path / "noisy.npz"
    assert make_noisy_set(root, out, sigma_range=(10.0, 30.0), seed=5) == 4
    return root, out


def test_the_noisy_set_is_made_once_with_a_fixed_seed(tmp_path, noisy_set):
    from fllic.train.weak_data import load_noisy_set, make_noisy_set

    root, out = noisy_set
    again = tmp_path / "again.npz"
    make_noisy_set(root, again, sigma_range=(10.0, 30.0), seed=5)
    (a, sa), (b, sb) = load_noisy_set(out), load_noisy_set(again)
    assert np.array_equal(sa, sb) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(10.0 <= s <= 30.0 for s in sa)
    assert a[0].shape == (80, 96, 3) and a[0].dtype == np.uint8  # downscaled by 2, as the supervised targets


def test_the_weak_trainer_cannot_reach_clean_images(tmp_path, noisy_set, monkeypatch):
    """With the data folder gone and every image reader booby-trapped, training still runs: it reads only the noisy set."""
    import shutil

    import PIL.Image

    import fllic.entropy.clean as clean
    import fllic.train.data as data
    from fllic.train.weak import main

    root, out = noisy_set
    shutil.rmtree(root)

    def trap(*args, **kwargs):
        raise AssertionError("the weak trainer tried to read an image file")

    monkeypatch.setattr(PIL.Image, "open", trap)
    monkeypatch.setattr(data, "_load", trap)
    monkeypatch.setattr(data, "collect_images", trap)
    monkeypatch.setattr(data, "clean_targets", trap)
    monkeypatch.setattr(clean, "load_calibration", lambda model_id: clean.Calibration(8.0, 1.0, 0.0, 1.2, model_id))
    work = tmp_path / "weak"
    args = ["--noisy-set", str(out), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "64",
            "--threads", "1", "--steps", "2", "--no-bf16", "--log-every", "1"]
    assert main(args) == 0
    state = torch.load(work / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2 and state["weak"]
    log = (work / "train.log").read_text()
    assert "n2n" in log and "budget" in log
    # The denoiser trainer's --validate reads the weak checkpoint's trunk: the same network as the model's estimate.
    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.denoiser import trunk_of

    cfg = dict(state["config"], trunk=tuple(state["config"]["trunk"]))
    net = FLLIC(FllicConfig(**cfg))
    net.load_state_dict(state["model"])
    x, s = torch.rand(1, 3, 64, 64), torch.tensor([20.0])
    with torch.no_grad():
        assert torch.equal(trunk_of(work / "checkpoint.pt")(x, s), net.estimate(x, s))
    # Adapting to another noisy set starts from the weak weights on a schedule of its own.
    more = tmp_path / "weak-more"
    args = ["--noisy-set", str(out), "--workdir", str(more), "--tiny", "--batch", "2", "--patch", "64",
            "--threads", "1", "--steps", "1", "--no-bf16", "--from", str(work / "checkpoint.pt")]
    assert main(args) == 0
    assert torch.load(more / "checkpoint.pt", weights_only=False)["step"] == 1
    # Its float resume point carries the mark too, and serves --from on a machine without the checkpoint.
    from fllic.train.export import main as export_main

    assert export_main(["--checkpoint", str(more / "checkpoint.pt"), "--out", str(tmp_path / "w.pt"), "--id", "w",
                        "--synthetic-calibration", "--quality-scales", "1", "--float-out", str(tmp_path / "w-float.pt")]) == 0
    args[3], args[-1] = str(tmp_path / "again"), str(tmp_path / "w-float.pt")
    assert main(args) == 0


def test_weak_adaptation_refuses_a_supervised_checkpoint(tmp_path, noisy_set):
    from fllic.train.weak import main

    _, out = noisy_set
    from fllic.models.fllic_net import FLLIC, FllicConfig

    net = FLLIC(FllicConfig.tiny(trunk=True))
    torch.save({"model": net.state_dict(), "step": 5, "elapsed": 1.0, "config": vars(net.config)},
               tmp_path / "supervised.pt")
    with pytest.raises(ValueError, match="not a weakly supervised checkpoint"):
        main(["--noisy-set", str(out), "--workdir", str(tmp_path / "w"), "--tiny", "--batch", "2", "--patch", "64",
              "--threads", "1", "--steps", "1", "--from", str(tmp_path / "supervised.pt")])


def test_neighbour_pairs_take_two_different_neighbours_of_each_cell():
    from fllic.train.weak import neighbour_pair

    h, w = 8, 12
    pos = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w).repeat(2, 3, 1, 1)
    g1, g2 = neighbour_pair(pos, torch.Generator().manual_seed(0))
    assert g1.shape == g2.shape == (2, 3, h // 2, w // 2)
    r1, c1 = g1 // w, g1 % w
    r2, c2 = g2 // w, g2 % w
    assert torch.all(r1 // 2 == torch.arange(h // 2).view(1, 1, -1, 1))  # inside its own 2x2 cell
    assert torch.all((r1 // 2 == r2 // 2) & (c1 // 2 == c2 // 2))
    assert torch.all((r1 - r2).abs() + (c1 - c2).abs() == 1)  # edge neighbours, never the same pixel


def test_a_missing_noisy_set_is_a_clear_error(tmp_path, capsys):
    from fllic.train.weak import main

    assert main(["--noisy-set", str(tmp_path / "none.npz"), "--workdir", str(tmp_path)]) == 1
    assert "python -m fllic.train.weak_data" in capsys.readouterr().err


def test_a_weak_model_takes_its_default_quality_from_another_model(tmp_path, capsys):
    """Choosing defaults measures PSNR against clean images; a weakly supervised model copies them instead."""
    from fllic.models.fllic_net import FLLIC, CodingModel, FllicConfig, finalize
    from fllic.train.quality import main

    torch.manual_seed(0)
    source = finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-src", "quality_scales": [2.0, 1.0],
                                                  "default_quality": [[20.0, 2], [255.0, 1]]})
    source.save(tmp_path / "src.pt")
    finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-weak", "quality_scales": [2.0, 1.0]}).save(tmp_path / "weak.pt")
    assert main(["--model", str(tmp_path / "weak.pt"), "--copy-from", str(tmp_path / "src.pt"), "--write"]) == 0
    weak = CodingModel.load(tmp_path / "weak.pt")
    assert weak.default_quality(10.0) == 2 and weak.default_quality(30.0) == 1
    assert weak.meta["default_quality_from"] == "tiny-src"
    finalize(FLLIC(FllicConfig.tiny()), {"id": "other", "quality_scales": [1.0]}).save(tmp_path / "other.pt")
    assert main(["--model", str(tmp_path / "other.pt"), "--copy-from", str(tmp_path / "src.pt")]) == 1
    assert "other quality scales" in capsys.readouterr().err


@pytest.mark.parametrize("stage,loss,trained,frozen", [("trunk", "r2r", "trunk.", "g_a."), ("trunk", "n2n", "trunk.", "g_s."),
                                                       ("codec", "n2n", "g_s.", "trunk.")])
def test_a_stage_trains_its_part_only(tmp_path, noisy_set, stage, loss, trained, frozen):
    """--stage trunk moves the trunk and nothing else; --stage codec (coding the estimate) leaves the trunk as it was."""
    from fllic.train.weak import main

    _, out = noisy_set
    common = ["--noisy-set", str(out), "--tiny", "--batch", "2", "--patch", "64", "--threads", "1", "--no-bf16"]
    assert main(common + ["--workdir", str(tmp_path / "a"), "--steps", "1"]) == 0
    before = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    args = common + ["--workdir", str(tmp_path / "b"), "--steps", "2", "--stage", stage, "--trunk-loss", loss,
                     "--codec-target", "estimate", "--from", str(tmp_path / "a" / "checkpoint.pt")]
    assert main(args) == 0
    after = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    moved = lambda prefix: any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))
    assert moved(trained) and not moved(frozen)
    assert f"stage {stage}" in (tmp_path / "b" / "train.log").read_text()


def test_recorrupted_pairs_have_independent_noises():
    """R2R: y + alpha z and y - z/alpha share the signal; their noises' covariance is sigma^2 - sigma^2 = 0."""
    from fllic.train.weak import recorrupted_pair

    g = torch.Generator().manual_seed(0)
    x = torch.full((1, 3, 256, 256), 0.5)
    n = torch.randn(x.shape, generator=g) * 20 / 255
    a, b = recorrupted_pair(x + n, torch.tensor([20.0]), 0.5, g)
    na, nb = (a - x).flatten(), (b - x).flatten()
    assert abs(float((na * nb).mean())) < 0.02 * float(na.var())
    assert float(na.var()) == pytest.approx((20 / 255) ** 2 * 1.25, rel=0.02)
    assert float(nb.var()) == pytest.approx((20 / 255) ** 2 * 5.0, rel=0.02)


def test_cbm3d_pseudo_targets_come_from_the_noisy_set_alone(tmp_path, noisy_set):
    """The targets are CBM3D of the stored noisy pixels at their stored sigma; a second run reuses the finished parts."""
    pytest.importorskip("bm3d")
    import shutil

    from fllic.train.weak_data import load_noisy_set, load_targets, make_pseudo_targets

    root, out = noisy_set
    shutil.rmtree(root)  # no clean image to read
    targets_path = tmp_path / "cbm3d.npz"
    assert make_pseudo_targets(out, targets_path, jobs=1, progress=False) == 4
    images, _ = load_noisy_set(out)
    targets = load_targets(targets_path, images)
    assert all(t.shape == y.shape and t.dtype == np.uint8 for t, y in zip(targets, images))
    rough = lambda a: float(np.abs(np.diff(a.astype(np.float64), axis=1)).mean())
    assert all(rough(t) < 0.5 * rough(y) for t, y in zip(targets, images))  # denoised: far smoother than the input
    (tmp_path / "cbm3d.npz").unlink()
    for part in (tmp_path / "cbm3d.npz.parts").glob("img*.npy"):
        np.save(part, np.zeros_like(np.load(part)))  # a resumed run takes the finished parts as they are
    make_pseudo_targets(out, targets_path, jobs=1, progress=False)
    assert not any(load_noisy_set(targets_path)[0][0].ravel())
    (tmp_path / "cbm3d.npz.parts" / "source.sha256").write_text("another noisy set")
    make_pseudo_targets(out, targets_path, jobs=1, progress=False)  # stale parts are dropped, not reused
    assert np.array_equal(load_noisy_set(targets_path)[0][0], targets[0])
    with pytest.raises(ValueError, match="does not match"):
        load_targets(targets_path, images[:3])
    # The normal profile: other targets, and the low-complexity parts in the same folder are not reused for them.
    make_pseudo_targets(out, targets_path, jobs=1, progress=False, profile="np")
    normal = load_targets(targets_path, images)
    assert any(not np.array_equal(a, b) for a, b in zip(normal, targets))
    assert all(rough(t) < 0.5 * rough(y) for t, y in zip(normal, images))
    with pytest.raises(ValueError, match="profile"):
        make_pseudo_targets(out, targets_path, jobs=1, progress=False, profile="high")


def test_patches_carry_their_targets_same_crop(noisy_set):
    from fllic.train.weak import NoisyPatches
    from fllic.train.weak_data import load_noisy_set

    images, sigmas = load_noisy_set(noisy_set[1])
    patches, _ = NoisyPatches(images, sigmas, 64, seed=3, targets=[255 - y for y in images]).batch(5)
    assert patches.shape == (5, 64, 64, 6)
    assert np.array_equal(patches[..., 3:], 255 - patches[..., :3])


@pytest.mark.parametrize("n2n_weight", ["0", "0.5"])
def test_distillation_trains_the_trunk_on_the_stored_targets(tmp_path, noisy_set, n2n_weight):
    from fllic.train.weak import main
    from fllic.train.weak_data import load_noisy_set

    _, out = noisy_set
    images, sigmas = load_noisy_set(out)
    np.savez(tmp_path / "cbm3d.npz", sigmas=sigmas, **{f"img{i}": y for i, y in enumerate(images)})
    common = ["--noisy-set", str(out), "--tiny", "--batch", "2", "--patch", "64", "--threads", "1", "--no-bf16",
              "--log-every", "1"]
    assert main(common + ["--workdir", str(tmp_path / "a"), "--steps", "1"]) == 0
    before = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    assert main(common + ["--workdir", str(tmp_path / "b"), "--steps", "2", "--stage", "trunk", "--trunk-loss", "distill",
                          "--n2n-weight", n2n_weight, "--from", str(tmp_path / "a" / "checkpoint.pt")]) == 0
    after = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("trunk."))
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("trunk."))
    log = (tmp_path / "b" / "train.log").read_text()
    assert "distill" in log and ("n2n" in log) == (n2n_weight != "0")


def test_cbm3d_targets_without_a_noisy_set_is_a_clear_error(tmp_path, capsys):
    from fllic.train.weak_data import main

    assert main(["--out", str(tmp_path / "none.npz"), "--cbm3d-targets", str(tmp_path / "t.npz")]) == 1
    assert "no noisy set" in capsys.readouterr().err


def test_distillation_without_targets_is_a_clear_error(tmp_path, noisy_set, capsys):
    from fllic.train.weak import main

    assert main(["--noisy-set", str(noisy_set[1]), "--tiny", "--workdir", str(tmp_path / "w"), "--steps", "1",
                 "--stage", "trunk", "--trunk-loss", "distill"]) == 1
    assert "--cbm3d-targets" in capsys.readouterr().err
