"""The trainer on a tiny model and generated images: it runs, checkpoints, resumes and exports."""

import numpy as np
import pytest
from PIL import Image

import fllic
import fllic.models.fllic_net
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
    out, resume = tmp_path / "tiny.pt", tmp_path / "tiny-float.pt"
    assert export_main(["--checkpoint", str(work / "checkpoint.pt"), "--out", str(out), "--id", "tiny",
                        "--synthetic-calibration", "--float-out", str(resume)]) == 0
    fresh = tmp_path / "fresh"
    assert train_main(common[:2] + ["--workdir", str(fresh)] + common[4:] + ["--steps", "1", "--init", str(resume)]) == 0
    assert (fresh / "checkpoint.pt").exists()
    img = noisy_image(np.random.default_rng(0), 40, 40)
    data = fllic.encode(img, sigma=10, model=str(out))
    assert np.array_equal(fllic.decode(data, model=str(out)), fllic.decode(data, model=str(out)))


def test_patch_must_be_a_multiple_of_64(tmp_path, data_root):
    from fllic.train.__main__ import main as train_main

    assert train_main(["--data", str(data_root), "--workdir", str(tmp_path), "--patch", "100"]) == 2


def test_export_without_calibration_photos_is_a_clear_error(tmp_path, data_root, capsys):
    from fllic.train.__main__ import main as train_main
    from fllic.train.export import main as export_main

    work = tmp_path / "work"
    assert train_main(["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "64",
                       "--threads", "1", "--steps", "1"]) == 0
    assert export_main(["--checkpoint", str(work / "checkpoint.pt"), "--out", str(tmp_path / "m.pt"),
                        "--data", str(tmp_path / "nowhere")]) == 1
    assert "no calibration photos" in capsys.readouterr().err


def test_denoiser_trainer_smoke(tmp_path, data_root):
    """The v2 trunk's plain-denoiser trainer runs, validates, checkpoints, resumes and exports."""
    from fllic.train.denoiser import main as denoiser_main

    work = tmp_path / "trunk"
    common = ["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "32",
              "--threads", "1", "--val-every", "2"]
    assert denoiser_main(common + ["--steps", "2"]) == 0
    assert denoiser_main(common + ["--steps", "3"]) == 0
    log = (work / "train.log").read_text()
    assert "resume at step 2" in log
    assert denoiser_main(common + ["--export", str(tmp_path / "trunk.pt")]) == 0
    assert (tmp_path / "trunk.pt").stat().st_size > 0
    fresh = ["--workdir", str(tmp_path / "fresh")] + common[4:]
    assert denoiser_main(common[:2] + fresh + ["--steps", "4", "--init", str(tmp_path / "trunk.pt")]) == 0
    assert "resume at step 3" in (tmp_path / "fresh" / "train.log").read_text()


def test_camera_trunk_trains_on_shaped_noise_and_validates_on_real_pairs(tmp_path, data_root):
    """--shaped-fraction patches, and --val-real: the trunk's gain on one fold of NAME_Real / NAME_mean pairs,
    read with the blind map a camera model gives it, logged beside the synthetic validation."""
    from fllic.train.denoiser import main as denoiser_main, real_validation_set

    real = tmp_path / "real"
    real.mkdir()
    rng = np.random.default_rng(0)
    for name in ("camA_one", "camA_two", "camB_three"):
        clean = noisy_image(rng, 64, 64)
        Image.fromarray(clean).save(real / f"{name}_mean.png")
        noisy = np.clip(clean + rng.normal(0, 6, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(real / f"{name}_Real.jpg", quality=90)
    photos = real_validation_set(real, "a", 2.0, crop=64)
    assert len(photos) == 2  # fold a: the first and third scenes by name
    for noisy, ref, level in photos:
        assert noisy.shape == ref.shape == (64, 64, 3) and level.shape == (2, 64, 64)
    work = tmp_path / "trunk"
    assert denoiser_main(["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "32",
                          "--threads", "1", "--val-every", "2", "--steps", "2", "--camera-fraction", "1",
                          "--shaped-fraction", "1", "--val-real", str(real), "--no-bf16"]) == 0
    lines = [ln for ln in (work / "train.log").read_text().splitlines() if ln.startswith("valreal")]
    assert [ln.split()[1] for ln in lines] == ["0", "2"] and all("over 2 photographs" in ln for ln in lines)


def test_v2_codec_trains_on_a_frozen_trunk_and_codes_exactly(tmp_path, data_root):
    """Stage 2 of v2: a trunk from the denoiser trainer, frozen, ahead of a codec initialised from float weights."""
    import torch

    from fllic.train.__main__ import main as train_main
    from fllic.train.denoiser import main as denoiser_main
    from fllic.train.export import main as export_main

    trunk = tmp_path / "trunk.pt"
    denoiser_main(["--data", str(data_root), "--workdir", str(tmp_path / "t"), "--tiny", "--batch", "2",
                   "--patch", "32", "--threads", "1", "--steps", "1", "--export", str(trunk)])
    assert not trunk.exists()  # --export needs a checkpoint: nothing trained yet
    assert denoiser_main(["--data", str(data_root), "--workdir", str(tmp_path / "t"), "--tiny", "--batch", "2",
                          "--patch", "32", "--threads", "1", "--steps", "1"]) == 0
    assert denoiser_main(["--workdir", str(tmp_path / "t"), "--export", str(trunk)]) == 0
    work = tmp_path / "v2"
    assert train_main(["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "64",
                       "--threads", "1", "--steps", "2", "--trunk", str(trunk), "--freeze-trunk", "--bf16",
                       "--targets", "clean", "--cosine", "--q-range", "0.25", "4", "--code-estimate"]) == 0
    state = torch.load(work / "checkpoint.pt", weights_only=False)
    before = torch.load(trunk, weights_only=True)["state_dict"]
    for k, v in before.items():  # frozen: the trunk's weights did not move
        assert torch.equal(state["model"][f"trunk.{k}"].half(), v)
    out = tmp_path / "v2.pt"
    resume = tmp_path / "v2-float.pt"
    assert export_main(["--checkpoint", str(work / "checkpoint.pt"), "--out", str(out), "--id", "tiny-v2",
                        "--synthetic-calibration", "--quality-scales", "2", "1", "--float-out", str(resume)]) == 0
    # The float resume point also keeps its trunk beside it, in the denoiser's export format (a --trunk),
    # and re-exports to the same model.
    assert (tmp_path / "v2-float-trunk.pt").exists()
    again = tmp_path / "again.pt"
    assert export_main(["--checkpoint", str(resume), "--out", str(again), "--id", "tiny-v2",
                        "--synthetic-calibration", "--quality-scales", "2", "1"]) == 0
    assert fllic.models.fllic_net.CodingModel.load(again).hash == fllic.models.fllic_net.CodingModel.load(out).hash
    # A model may refer to another's trunk file instead of shipping a copy, only if it holds the same trunk.
    shared = tmp_path / "shared.pt"
    common = ["--checkpoint", str(resume), "--id", "tiny-v2", "--synthetic-calibration", "--quality-scales", "2", "1"]
    assert export_main(common + ["--out", str(shared), "--shared-trunk", "v2-trunk.pt"]) == 0
    assert not (tmp_path / "shared-trunk.pt").exists()
    assert fllic.models.fllic_net.CodingModel.load(shared).hash == fllic.models.fllic_net.CodingModel.load(out).hash
    reloaded = fllic.models.fllic_net.CodingModel.load(shared)
    reloaded.meta["default_quality"] = [[255.0, 1]]
    reloaded.save(shared)  # new metadata (fllic.train.quality --write): still shares the trunk
    assert not (tmp_path / "shared-trunk.pt").exists()
    assert export_main(common + ["--out", str(shared), "--shared-trunk", "trunk.pt"]) == 1
    float_shared = tmp_path / "v2-float-again.pt"
    assert export_main(common + ["--out", str(shared), "--shared-trunk", "v2-trunk.pt", "--float-out",
                                 str(float_shared), "--float-shared-trunk", "v2-float-trunk.pt"]) == 0
    assert not (tmp_path / "v2-float-again-trunk.pt").exists()
    assert torch.load(float_shared, weights_only=True)["trunk_file"] == "v2-float-trunk.pt"
    # --trunk ships the same codec with another trunk (the camera and AWGN models share a codec).
    assert denoiser_main(["--data", str(data_root), "--workdir", str(tmp_path / "t2"), "--tiny", "--batch", "2",
                          "--patch", "32", "--threads", "1", "--steps", "1", "--seed", "5"]) == 0
    assert denoiser_main(["--workdir", str(tmp_path / "t2"), "--export", str(tmp_path / "t2.pt")]) == 0
    swapped = tmp_path / "swapped.pt"
    assert export_main(common + ["--out", str(swapped), "--trunk", str(tmp_path / "t2.pt")]) == 0
    other = torch.load(tmp_path / "t2.pt", weights_only=True)["state_dict"]
    got = torch.load(tmp_path / "swapped-trunk.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(got[f"trunk.{k}"], v.half()) for k, v in other.items())
    assert not all(torch.equal(other[k].half(), before[k].half()) for k in other)
    assert train_main(["--data", str(data_root), "--workdir", str(tmp_path / "v2b"), "--tiny", "--batch", "2",
                       "--patch", "64", "--threads", "1", "--steps", "1", "--init", str(resume),
                       "--trunk", str(tmp_path / "v2-float-trunk.pt"), "--freeze-trunk"]) == 0
    img = noisy_image(np.random.default_rng(0), 50, 70)
    res = fllic.codec.encode_detailed(img, sigma=20, model=str(out))
    assert np.array_equal(fllic.decode(res.data, model=str(out)), res.pixels)
    # The trunk ships in a file of its own beside the model (each file stays under 8 MB).
    part = tmp_path / "v2-trunk.pt"
    assert set(torch.load(part, weights_only=True)["state_dict"]) == {f"trunk.{k}" for k in before}
    assert not any(k.startswith("trunk.") for k in torch.load(out, weights_only=True)["state_dict"])
    part.rename(tmp_path / "elsewhere.pt")
    with pytest.raises(fllic.ModelMismatchError, match="v2-trunk.pt"):
        fllic.models.fllic_net.CodingModel.load(out)


def test_encoder_only_training_moves_g_a_and_h_a_only(tmp_path, data_root):
    """--encoder-only --grey-output: g_a and h_a train on grey patches against the decoded channels' mean, while
    the decoder part (h_s, g_s), the z prior and the trunk keep the start's weights exactly."""
    import torch

    from fllic.train.__main__ import main as train_main

    work = tmp_path / "w"
    assert train_main(["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "64",
                       "--threads", "1", "--steps", "1", "--lr", "1e-2", "--warmup", "1"]) == 0
    start = torch.load(work / "checkpoint.pt", weights_only=False)["model"]
    grey = tmp_path / "grey"
    assert train_main(["--data", str(data_root), "--workdir", str(grey), "--tiny", "--batch", "2", "--patch", "64",
                       "--threads", "1", "--steps", "2", "--lr", "1e-2", "--warmup", "1", "--init",
                       str(work / "checkpoint.pt"), "--encoder-only", "--grey-output", "--grey-fraction", "1"]) == 0
    after = torch.load(grey / "checkpoint.pt", weights_only=False)["model"]
    moved = {k for k in start if not torch.equal(start[k], after[k])}
    assert moved and all(k.startswith(("g_a.", "h_a.")) for k in moved)
    assert any(k.startswith("g_a.") for k in moved)


def test_bf16_codec_training_runs_the_transforms_in_bf16_and_keeps_rates_and_weights_float32(tmp_path, data_root):
    """--bf16-codec: g_a, h_a, h_s and g_s convolve in bf16, their outputs (so x_hat, the likelihoods and the loss) are
    float32 and near the float32 forward's, and a bf16 run trains float32 weights."""
    import torch

    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.__main__ import main as train_main

    torch.manual_seed(0)
    net = FLLIC(FllicConfig.tiny())
    seen = set()
    for conv in (m for m in net.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
    x, s, q = torch.rand(2, 3, 64, 64), torch.tensor([20.0, 5.0]), torch.tensor([0.5, 2.0])
    torch.manual_seed(1)
    ref = net.forward_from_estimate(x, s, q)
    assert seen == {torch.float32}
    net.bf16 = True
    torch.manual_seed(1)
    out = net.forward_from_estimate(x, s, q)
    assert torch.bfloat16 in seen
    assert out.x_hat.dtype == out.likelihoods.y.dtype == torch.float32
    assert (out.x_hat - ref.x_hat).abs().max() < 0.05
    work = tmp_path / "bf16"
    assert train_main(["--data", str(data_root), "--workdir", str(work), "--tiny", "--batch", "2", "--patch", "64",
                       "--threads", "1", "--steps", "2", "--bf16-codec"]) == 0
    state = torch.load(work / "checkpoint.pt", weights_only=False)["model"]
    assert all(v.dtype == torch.float32 for k, v in state.items() if v.is_floating_point())


def test_an_encoder_behind_a_shipped_decoder_codes_as_that_model(tmp_path):
    """train.evaluate --behind: a checkpoint's g_a and h_a behind a shipped model's decoder part; with the
    model's own encoder weights it codes what that model codes, in a file that names that model's decoder
    and decodes on a stock install."""
    import torch

    import fllic
    from fllic import format as fmt
    from fllic.models.registry import load
    from fllic.train.evaluate import load_behind

    base = load("fllic-awgn-v7")
    state = {f"{part}.{k}": v for part in ("g_a", "h_a") for k, v in getattr(base.net, part).state_dict().items()}
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"model": state, "step": 7, "config": {}}, ckpt)
    model, step = load_behind(ckpt, "fllic-awgn-v7")
    assert step == 7 and model.decoder_id == "fllic-awgn-v7"
    img = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    ours, stock = (fllic.encode(img, sigma=20, model=m, quality=3) for m in (model, base))
    assert np.array_equal(fllic.decode(ours), fllic.decode(stock))
    ours, stock = fmt.unpack(ours), fmt.unpack(stock)  # the same coded symbols; only the header differs,
    assert all(ours.sections[k] == stock.sections[k] for k in ("Z", "Y"))  # naming the decoder it needs
    assert ours.header.model_id == "checkpoint" and ours.header.version > stock.header.version


def test_fitted_latents_copy_the_trunks_estimate_more_closely():
    """train.evaluate --fit-latents: with no steps the fitted estimate is the own estimate; with steps, g_s's
    copy of the trunk's estimate comes closer, and the networks' weights do not move."""
    import torch

    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize
    from fllic.train.evaluate import _estimates, fitted_estimate

    torch.manual_seed(0)
    net = FLLIC(FllicConfig.tiny(trunk=True)).eval()
    for conv in (m for m in net.g_s.modules() if isinstance(m, torch.nn.Conv2d)):  # a g_s whose output moves with y
        torch.nn.init.kaiming_normal_(conv.weight, a=0.1).data.mul_(0.5)  # and does not saturate
    model = finalize(net, {"id": "tiny", "quality_scales": [1.0]})
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    noisy = noisy_image(np.random.default_rng(4), 40, 56)
    own, trunk = _estimates(model, noisy, 20.0, 1.0)
    assert np.array_equal(fitted_estimate(model, noisy, 20.0, 1.0, 0), own)
    err = lambda img: float(np.mean((img.astype(float) - trunk) ** 2))
    assert err(fitted_estimate(model, noisy, 20.0, 1.0, 40)) < 0.9 * err(own)
    assert all(torch.equal(v, before[k]) for k, v in model.net.state_dict().items())


def test_grey_output_error_ignores_colour_that_averages_out():
    """The grey distortion is on the channels' mean: a colour cast with zero mean costs nothing, a grey error does."""
    import torch

    from fllic.train.loop import _squared_error

    target = torch.rand(2, 3, 8, 8)
    cast = target + torch.tensor([0.1, -0.1, 0.0]).view(1, 3, 1, 1)
    assert torch.allclose(_squared_error(cast, target, grey_output=True), torch.zeros(2), atol=1e-12)
    assert bool((_squared_error(cast, target, grey_output=False) > 0).all())
    assert bool((_squared_error(target + 0.1, target, grey_output=True) > 0.009).all())


def test_debias_removes_a_uniform_colour_shift(tmp_path):
    """export --debias measures the mean colour error on calibration crops and takes it out of g_s's bias."""
    import torch

    from fllic.models.fllic_net import FLLIC, FllicConfig, synthetic_calibration
    from fllic.train.export import debias

    torch.manual_seed(0)
    net = FLLIC(FllicConfig.tiny()).eval()
    x, sigma, q = synthetic_calibration([1.0], size=64)
    with torch.no_grad():
        net.g_s[-2].bias[8:12] += 0.02  # blue comes out 5 levels too bright
    first = debias(net, (x, sigma, q, x))
    second = debias(net, (x, sigma, q, x))
    assert first[2] > 4.0 and abs(first[2]) > abs(first[0]) + 3
    assert max(abs(v) for v in second) < 0.3 * abs(first[2])


def test_debias_leaves_the_narrow_layers_input_ranges_as_trained():
    """A network built in training mode (as export builds it) must not let the calibration crops move a narrow
    layer's input peak: that cost a deeper g_s 0.57 dB on the bundled sample."""
    from dataclasses import replace

    import torch

    from fllic.models.fllic_net import FLLIC, FllicConfig, synthetic_calibration
    from fllic.models.layers import NarrowConv2d
    from fllic.train.export import debias

    torch.manual_seed(0)
    net = FLLIC(replace(FllicConfig.tiny(), gs_narrow=2))
    narrow = [m for m in net.g_s.modules() if isinstance(m, NarrowConv2d)]
    for m in narrow:
        m.input_peak.fill_(0.37)
    assert net.training and narrow
    x, sigma, q = synthetic_calibration([1.0], size=64)
    debias(net, (x, sigma, q, x))
    assert all(float(m.input_peak) == pytest.approx(0.37) for m in narrow)


def _grown_and_trained(tmp_path, data_root, grow: list[str], name: str) -> list[str]:
    """A tiny codec trained one step, grown by fllic.train.widen with ``grow``, then trained two steps from it in
    tmp_path/name; the trainer's common arguments."""
    from fllic.train.__main__ import main as train_main
    from fllic.train.widen import main as widen_main

    work = tmp_path / "work"
    common = ["--data", str(data_root), "--tiny", "--batch", "2", "--patch", "64", "--threads", "1"]
    assert train_main(common + ["--workdir", str(work), "--steps", "1"]) == 0
    grown = tmp_path / f"{name}-init.pt"
    widen_main(["--from", str(work / "checkpoint.pt"), *grow, "--out", str(grown)])
    assert train_main(common + ["--workdir", str(tmp_path / name), "--steps", "2", "--init", str(grown)]) == 0
    return common


def test_quiet_without_new_latent_channels_is_refused_in_one_line(tmp_path, capsys):
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize
    from fllic.train.widen import main as widen_main

    src = tmp_path / "tiny.pt"
    finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny"}).save(src)
    with pytest.raises(SystemExit) as stop:
        widen_main(["--from", str(src), "--quiet", "0.01", "--out", str(tmp_path / "out.pt")])
    assert stop.value.code == 2 and "--quiet scales the new latent channels: give --m above" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


def test_a_quiet_widening_keeps_the_output_and_makes_the_new_latents_near_free():
    """--quiet: the new latents start near zero, their scale a twentieth of a step; the old ones, the entropy
    parameters of the old ones and the decoded image are untouched."""
    from dataclasses import replace

    import torch

    from fllic.models.fllic_net import FLLIC, SCALE_MIN, FllicConfig
    from fllic.train.widen import QUIET_SCALE, widen_state

    torch.manual_seed(0)
    config = FllicConfig.tiny()
    narrow = FLLIC(config).eval()
    loud = FLLIC(replace(config, m=12)).eval()
    quiet = FLLIC(replace(config, m=12)).eval()
    loud.load_state_dict(widen_state(narrow.state_dict(), config, 12))
    quiet.load_state_dict(widen_state(narrow.state_dict(), config, 12, quiet=0.01))
    x, s, q = torch.rand(1, 3, 64, 64), torch.tensor([20.0]), torch.tensor([1.0])
    with torch.no_grad():
        y, y_loud, y_quiet = narrow.analysis(x, s, q), loud.analysis(x, s, q), quiet.analysis(x, s, q)
        assert torch.equal(y, y_quiet[:, :8])
        assert torch.allclose(y_quiet[:, 8:], 0.01 * y_loud[:, 8:], atol=1e-6)
        z_hat = torch.round(narrow.h_a(y) / narrow.step_z()) * narrow.step_z()
        p, p_quiet, p_loud = (m.entropy_params(z_hat, s, q) for m in (narrow, quiet, loud))
        assert torch.equal(p.t, p_quiet.t[:, :8])
        # a new latent's scale is a twentieth of a step (or the smallest scale the coder takes)
        assert p_quiet.t[:, 8:].max().item() <= max(SCALE_MIN, 1.01 * QUIET_SCALE) < p_loud.t[:, 8:].min().item()


def _off_its_initial_values(config):
    """A codec of ``config`` (seeded) with every weight moved off its initial value, so that zero blocks in what
    is grown from it are not an accident of the initialisation; in evaluation mode."""
    import torch

    from fllic.models.fllic_net import FLLIC

    torch.manual_seed(0)
    net = FLLIC(config).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def test_widened_codec_computes_what_the_narrow_one_did_then_trains(tmp_path, data_root):
    """fllic.train.widen adds latent channels without changing the output; the trainer takes the
    wider shape from --init, and the export codes exactly."""
    import torch
    from dataclasses import replace

    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.__main__ import main as train_main
    from fllic.train.export import main as export_main
    from fllic.train.widen import widen_state

    config = FllicConfig.tiny()
    narrow = _off_its_initial_values(config)
    wide = FLLIC(replace(config, m=12)).eval()
    wide.load_state_dict(widen_state(narrow.state_dict(), config, 12))
    x, s, q = torch.rand(1, 3, 64, 64), torch.tensor([20.0]), torch.tensor([0.5])
    with torch.no_grad():
        y, y_wide = narrow.analysis(x, s, q), wide.analysis(x, s, q)
        assert torch.equal(y, y_wide[:, :8]) and y_wide[:, 8:].abs().sum() > 0
        z_hat = torch.round(narrow.h_a(y) / narrow.step_z()) * narrow.step_z()
        assert torch.equal(z_hat, torch.round(wide.h_a(y_wide) / wide.step_z()) * wide.step_z())
        p, p_wide = narrow.entropy_params(z_hat, s, q), wide.entropy_params(z_hat, s, q)
        assert torch.equal(p.mu, p_wide.mu[:, :8]) and torch.equal(p.t, p_wide.t[:, :8])
        y_hat = p.mu + torch.round((y - p.mu) / p.step) * p.step
        x_hat = narrow.synthesis(y_hat, s, q)
        assert torch.equal(x_hat, wide.synthesis(torch.cat([y_hat, y_wide[:, 8:]], 1), s, q))
    with pytest.raises(ValueError, match="only widen"):
        widen_state(narrow.state_dict(), config, 4)

    common = _grown_and_trained(tmp_path, data_root, ["--m", "12"], "wide")
    assert train_main(common + ["--workdir", str(tmp_path / "wide"), "--steps", "3"]) == 0  # resumes at m = 12
    out = tmp_path / "wide.pt"
    assert export_main(["--checkpoint", str(tmp_path / "wide" / "checkpoint.pt"), "--out", str(out), "--id", "tiny-wide",
                        "--synthetic-calibration"]) == 0
    assert fllic.models.fllic_net.CodingModel.load(out).net.config.m == 12
    img = noisy_image(np.random.default_rng(1), 40, 56)
    res = fllic.codec.encode_detailed(img, sigma=15, model=str(out))
    assert np.array_equal(fllic.decode(res.data, model=str(out)), res.pixels)


def test_deepened_g_s_decodes_what_the_shallow_one_did_then_learns_and_exports(tmp_path, data_root):
    """widen --gs-blocks: new ResBlocks at g_s's half resolution start as the identity, so the output is
    unchanged; their second convs get gradients at once; the trainer takes the depth from --init, and the
    export decodes exactly through both decoders."""
    import torch
    from dataclasses import replace

    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.widen import deepen_state

    config = FllicConfig.tiny()
    shallow = _off_its_initial_values(config)
    deep = FLLIC(replace(config, gs_blocks=4))
    deep.load_state_dict(deepen_state(shallow.state_dict(), config, 4))
    y, s, q = torch.randn(1, config.m, 4, 4), torch.tensor([20.0]), torch.tensor([0.5])
    with torch.no_grad():
        assert torch.allclose(shallow.synthesis(y, s, q), deep.synthesis(y, s, q), atol=1e-6)
    deep.synthesis(y, s, q).square().mean().backward()
    new = [deep.g_s[i].branch[2].weight.grad for i in (len(deep.g_s) - 4, len(deep.g_s) - 3)]
    assert all(g is not None and g.abs().sum() > 0 for g in new)
    with pytest.raises(ValueError, match="only deepen"):
        deepen_state(shallow.state_dict(), config, 1)

    _grown_and_trained(tmp_path, data_root, ["--gs-blocks", "3"], "deep")
    assert _exported_and_decoded_exactly(tmp_path, "deep").net.config.gs_blocks == 3


def _exported_and_decoded_exactly(tmp_path, name: str):
    """The checkpoint in tmp_path/name exported (a model file and its reference decoder file); a small image coded
    by it decodes to the encoder's pixels through both decoders. Returns the model."""
    from fllic.models.decoder_export import export
    from fllic.train.export import main as export_main

    out = tmp_path / f"{name}.pt"
    assert export_main(["--checkpoint", str(tmp_path / name / "checkpoint.pt"), "--out", str(out), "--id",
                        f"tiny-{name}", "--synthetic-calibration"]) == 0
    model = fllic.models.fllic_net.CodingModel.load(out)
    part = tmp_path / f"tiny-{name}-decoder.npz"
    export(model, part)
    img = noisy_image(np.random.default_rng(2), 40, 56)
    res = fllic.codec.encode_detailed(img, sigma=15, model=str(out))
    assert np.array_equal(fllic.decode(res.data, model=str(out)), res.pixels)
    assert np.array_equal(fllic.decode(res.data, model=str(part), decoder="reference"), res.pixels)
    return model


def test_widened_g_s_half_resolution_decodes_what_the_narrow_one_did_then_learns_and_exports(tmp_path, data_root):
    """widen --gs-n1: g_s's half resolution gets more channels than g_a's; old channels read nothing from the new
    ones, so the output is unchanged, while the new ones carry signal and the last conv's weights from them get
    gradients at once; the trainer takes the width from --init, and the export decodes exactly through both
    decoders."""
    import torch
    from dataclasses import replace

    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.widen import widen_state

    config = FllicConfig.tiny()
    narrow = _off_its_initial_values(config)
    wide = FLLIC(replace(config, gs_n1=12))
    wide.load_state_dict(widen_state(narrow.state_dict(), config, config.m, gs_n1=12))
    assert wide.g_s[-2].in_channels == 12 and wide.g_a[0].out_channels == config.n1
    y, s, q = torch.randn(1, config.m, 4, 4), torch.tensor([20.0]), torch.tensor([0.5])
    with torch.no_grad():
        assert torch.allclose(narrow.synthesis(y, s, q), wide.synthesis(y, s, q), atol=1e-6)
        inner = wide.g_s[:-2](torch.cat([y, torch.ones(1, 2, 4, 4)], 1))
        assert inner[:, config.n1:].abs().sum() > 0
    wide.synthesis(y, s, q).square().mean().backward()
    assert wide.g_s[-2].weight.grad[:, config.n1:].abs().sum() > 0
    with pytest.raises(ValueError, match="only widen"):
        widen_state(narrow.state_dict(), replace(config, gs_n1=12), config.m, gs_n1=10)

    _grown_and_trained(tmp_path, data_root, ["--gs-n1", "12"], "gs-wide")
    assert _exported_and_decoded_exactly(tmp_path, "gs-wide").net.config.gs_width == 12


def test_deepened_g_a_codes_what_the_shallow_one_did_and_trains_behind_the_same_decoder(tmp_path, data_root):
    """widen --ga-blocks: new ResBlocks at g_a's half resolution start as the identity (the same latents), get
    gradients at once, and an --encoder-only run from the deeper weights moves g_a and h_a only, so its files
    still decode with the start's decoder part."""
    import torch
    from dataclasses import replace

    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.__main__ import main as train_main
    from fllic.train.widen import deepen_state, main as widen_main

    torch.manual_seed(0)
    config = FllicConfig.tiny()
    shallow = FLLIC(config).eval()
    with torch.no_grad():
        for p in shallow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    deep = FLLIC(replace(config, ga_blocks=4))
    deep.load_state_dict(deepen_state(shallow.state_dict(), config, config.gs_blocks, ga_blocks=4))
    x, s, q = torch.rand(1, 3, 64, 64), torch.tensor([20.0]), torch.tensor([0.5])
    with torch.no_grad():
        assert torch.allclose(shallow.analysis_of_estimate(x, s, q), deep.analysis_of_estimate(x, s, q), atol=1e-6)
    deep.analysis_of_estimate(x, s, q).square().mean().backward()
    assert all(deep.g_a[i].branch[2].weight.grad.abs().sum() > 0 for i in (3, 4))
    with pytest.raises(ValueError, match="g_a has 2 blocks"):
        deepen_state(shallow.state_dict(), config, config.gs_blocks, ga_blocks=1)

    common = ["--data", str(data_root), "--tiny", "--batch", "2", "--patch", "64", "--threads", "1"]
    assert train_main(common + ["--workdir", str(tmp_path / "work"), "--steps", "1"]) == 0
    grown = tmp_path / "deep-init.pt"
    widen_main(["--from", str(tmp_path / "work" / "checkpoint.pt"), "--ga-blocks", "3", "--out", str(grown)])
    assert train_main(common + ["--workdir", str(tmp_path / "deep"), "--steps", "2", "--lr", "1e-2", "--warmup", "1",
                                "--init", str(grown), "--encoder-only"]) == 0
    start = torch.load(grown, weights_only=True)["state_dict"]
    after = torch.load(tmp_path / "deep" / "checkpoint.pt", weights_only=False)
    assert after["config"]["ga_blocks"] == 3
    moved = {k for k in start if not torch.equal(start[k], after["model"][k])}
    assert any(k.startswith("g_a.3.") for k in moved) and all(k.startswith(("g_a.", "h_a.")) for k in moved)


def test_a_model_over_the_file_limit_ships_its_encoder_beside_it(tmp_path):
    """Every shipped file stays under 8 MB: past the limit, g_a, h_a and the z density go to
    <stem>-encoder.pt, which the decoder does not need and the encoder loads with the model."""
    import torch

    from fllic.models.fllic_net import FLLIC, CodingModel, FllicConfig, finalize

    torch.manual_seed(0)
    model = finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-split", "quality_scales": [1.0]})
    whole, split = tmp_path / "whole.pt", tmp_path / "split.pt"
    model.save(whole)
    model.save(split, max_bytes=1)
    assert not (tmp_path / "whole-encoder.pt").exists() and (tmp_path / "split-encoder.pt").exists()
    assert torch.load(split, weights_only=True)["state_dict"] == {}
    img = noisy_image(np.random.default_rng(2), 40, 40)
    a, b = CodingModel.load(whole), CodingModel.load(split)
    assert a.hash == b.hash
    assert fllic.encode(img, sigma=10, model=a) == fllic.encode(img, sigma=10, model=b)
    (tmp_path / "split-encoder.pt").rename(tmp_path / "elsewhere.pt")
    with pytest.raises(fllic.ModelMismatchError, match="split-encoder.pt"):
        CodingModel.load(split)


def test_plot_log_reads_both_kinds_of_training_line(tmp_path):
    """Lines of a clean-target run and of a --code-estimate run (PSNR to the trunk's estimate) both plot."""
    from fllic.train.plot_log import main as plot_main
    from fllic.train.plot_log import parse

    log = tmp_path / "train.log"
    log.write_text("# resume at step 0\n"
                   "step 20 loss 5.1 bpp 1.50 psnr(q<1.2) 32.10 lr 1.0e-04 s/step 0.9 wall_h 0.01\n"
                   "step 40 loss 4.9 bpp 1.48 psnr(q<1.2)-to-estimate 34.20 lr 1.0e-04 s/step 0.9 wall_h 0.02\n")
    assert parse(log) == [(20, 5.1, 1.5, 32.1, 1e-4), (40, 4.9, 1.48, 34.2, 1e-4)]
    assert plot_main([str(log), "-o", str(tmp_path / "curve.png"), "--smooth", "1"]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_plot_log_plots_a_denoiser_log_and_refuses_an_empty_one(tmp_path, capsys):
    from fllic.train.plot_log import main as plot_main
    from fllic.train.plot_log import parse_trunk

    log = tmp_path / "trunk.log"
    log.write_text("# resume at step 0, 522 training images, 0 validation crops\n"
                   "step 20 mse 1.401e-03 psnr 28.54 lr 2.00e-05 s/step 0.29 wall_h 0.00\n"
                   "step 40 mse 1.437e-03 psnr 28.42 lr 4.00e-05 s/step 0.02 wall_h 0.00\n")
    assert parse_trunk(log) == [(20, 28.54), (40, 28.42)]
    assert plot_main([str(log), "-o", str(tmp_path / "trunk.png"), "--smooth", "1"]) == 0
    assert (tmp_path / "trunk.png").stat().st_size > 0
    (tmp_path / "empty.log").write_text("# nothing yet\n")
    assert plot_main([str(tmp_path / "empty.log"), "-o", str(tmp_path / "e.png")]) == 1
    assert "no training lines" in capsys.readouterr().err


def test_default_levels_are_chosen_on_the_development_half_only(tmp_path, monkeypatch):
    """python -m fllic.train.quality measures CBSD68's images 1-34 (BSD68's for grey), never 35-68, and writes
    the chosen table into the model."""
    import torch

    import fllic.train.data
    from fllic.models.fllic_net import FLLIC, CodingModel, FllicConfig, finalize
    from fllic.train.quality import development_images, main

    rng = np.random.default_rng(0)
    for name, shape in (("CBSD68", (40, 48, 3)), ("BSD68", (40, 48))):
        (tmp_path / name).mkdir()
        for i in range(68):
            Image.fromarray(noisy_image(rng, *shape[:2]) if len(shape) == 3 else
                            noisy_image(rng, *shape)[..., 0]).save(tmp_path / name / f"img{i:03d}.png")
    read, real_load = [], fllic.train.data._load
    monkeypatch.setattr(fllic.train.data, "_load", lambda p: read.append(p.parent.name + "/" + p.name) or real_load(p))
    grey = development_images(tmp_path, "dev", 32, every=5, grey=True)
    assert all(img.shape == (32, 32) for img in grey)
    assert read == [f"BSD68/img{i:03d}.png" for i in range(0, 34, 5)]
    torch.manual_seed(0)
    model = tmp_path / "tiny.pt"
    finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-q", "quality_scales": [2.0, 1.0]}).save(model)
    read.clear()
    assert main(["--model", str(model), "--data", str(tmp_path), "--size", "32", "--every", "17", "--write"]) == 0
    assert read == ["CBSD68/img000.png", "CBSD68/img017.png"]
    table = CodingModel.load(model).meta["default_quality"]
    assert [s for s, _ in table][-1] == 255.0 and all(level in (1, 2) for _, level in table)


def test_narrowed_g_s_rounds_with_calibrated_scales_and_restores_its_weights():
    """train.narrow: at 16 bits g_s's image stays within a step of float's; at 3 bits it moves; the rounding
    reaches only the convolutions of the stages asked for, and turning it off restores the weights."""
    import torch

    from fllic.models.fllic_net import FLLIC, FllicConfig
    from fllic.train.narrow import Narrowed, _remove_hooks, coded_latents, synthesised

    torch.manual_seed(0)
    net = FLLIC(FllicConfig.tiny()).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    noisy = noisy_image(np.random.default_rng(3), 64, 64)
    latents = coded_latents(net, noisy, 20.0, 1.0)
    ref = synthesised(net, *latents, 64, 64).astype(int)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for bits, near in ((16, True), (3, False)):
        narrow = Narrowed(net, bits, bits)
        synthesised(net, *latents, 64, 64)  # calibration
        narrow.rounding(True)
        out = synthesised(net, *latents, 64, 64).astype(int)
        narrow.rounding(False)
        _remove_hooks(net)
        assert (np.abs(out - ref).max() <= 1) == near
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    narrow = Narrowed(net, 8, 8)
    synthesised(net, *latents, 64, 64)  # calibration on this image
    peaks = dict(narrow.peak)
    narrow.rounding(False)
    synthesised(net, *coded_latents(net, 4 * noisy // 5, 50.0, 0.5), 64, 64)  # a measured image: not calibrated on
    assert narrow.peak == peaks
    _remove_hooks(net)
    half = Narrowed(net, 8, 8, "half")
    assert len(half.convs) == 1 + 2 * net.config.gs_blocks + 1  # the Up-ResBlock's second conv, the blocks, the last
    _remove_hooks(net)
    quarter = Narrowed(net, 8, 8, "quarter")
    assert set(half.convs) < set(quarter.convs) and len(quarter.convs) == len(half.convs) + 5
    assert len(quarter.convs) < sum(isinstance(m, torch.nn.Conv2d) for m in net.g_s.modules())
    _remove_hooks(net)


def test_a_g_s_trained_for_8_bit_integers_keeps_its_weights_trains_and_decodes_exactly(tmp_path, data_root):
    """widen --gs-narrow 2: g_s's half- and quarter-resolution convolutions become NarrowConv2d with the same weights
    (their input ranges set by the first training batch); the trainer takes gs_narrow from --init, and the export decodes exactly
    through both decoders, its decoder file of format 3."""
    import json

    import torch

    from fllic.models.decoder_export import export
    from fllic.models.layers import NarrowConv2d
    from fllic.train.export import main as export_main

    _grown_and_trained(tmp_path, data_root, ["--gs-narrow", "2"], "narrow")
    grown = torch.load(tmp_path / "narrow-init.pt", weights_only=True)
    trained = torch.load(tmp_path / "narrow" / "checkpoint.pt", weights_only=True)
    assert grown["config"]["gs_narrow"] == 2 and trained["config"]["gs_narrow"] == 2
    peaks = {k: float(v) for k, v in trained["model"].items() if k.endswith(".input_peak")}
    assert len(peaks) == 11 and all(v > 0 for v in peaks.values())  # 6 at half resolution, 5 at quarter
    out = tmp_path / "narrow.pt"
    assert export_main(["--checkpoint", str(tmp_path / "narrow" / "checkpoint.pt"), "--out", str(out), "--id",
                        "tiny-narrow", "--synthetic-calibration"]) == 0
    model = fllic.models.fllic_net.CodingModel.load(out)
    assert sum(isinstance(m, NarrowConv2d) for m in model.net.g_s.modules()) == 11
    part = tmp_path / "tiny-narrow-decoder.npz"
    export(model, part)
    with np.load(part) as npz:
        assert json.loads(str(npz["meta"]))["format"] == "fllic-decoder-3"
    img = noisy_image(np.random.default_rng(3), 40, 56)
    res = fllic.codec.encode_detailed(img, sigma=15, model=str(out))
    assert np.array_equal(fllic.decode(res.data, model=str(out)), res.pixels)
    assert np.array_equal(fllic.decode(res.data, model=str(part), decoder="reference"), res.pixels)
