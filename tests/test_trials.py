"""Issue 29's float trials (fllic.train.trials): each starts as the codec it grows from, learns, and is measured."""

import numpy as np
import pytest
import torch
from PIL import Image

from fllic.models.fllic_net import FllicConfig, bits
from fllic.train.trials import build
from tests.conftest import noisy_image
from tests.test_train import _off_its_initial_values


def _grown(trial: str):
    """(base, trial network) with the base's weights; the trial's new modules as they are built."""
    config = FllicConfig.tiny()
    base = _off_its_initial_values(config)
    net = build(trial, config)
    missing, unexpected = net.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith(net.new_prefixes) for k in missing)
    return base, net.eval()


@pytest.mark.parametrize("trial", ["finer-latent", "mixer"])
def test_a_trial_starts_as_the_codec_it_grows_from_and_its_new_modules_get_gradients(trial):
    torch.manual_seed(1)
    base, net = _grown(trial)
    if trial == "finer-latent":  # the perturbed tiny codec's features are far larger than a trained one's
        with torch.no_grad():
            net.finer.a[-1].weight.mul_(1e-3)
    control = build("control", FllicConfig.tiny())
    control.load_state_dict(base.state_dict())
    x, s, q = torch.rand(2, 3, 64, 64), torch.tensor([15.0, 40.0]), torch.tensor([1.0, 0.25])
    with torch.no_grad():
        ours, theirs = net.forward_from_estimate(x, s, q, hard=True), control.eval().forward_from_estimate(x, s, q, hard=True)
    assert torch.equal(ours.x_hat, theirs.x_hat)
    assert torch.allclose(bits(ours.likelihoods), bits(theirs.likelihoods), rtol=1e-4)  # ŷ2's zeros: about 0 bits
    out = net.train().forward_from_estimate(x, s, q)
    ((out.x_hat - x).square().mean() * 1e3 + bits(out.likelihoods).mean() / 64**2).backward()
    new = [p.grad for k, p in net.named_parameters() if k.startswith(net.new_prefixes)]
    assert any(g is not None and g.abs().sum() > 0 for g in new)


def test_the_control_trains_as_the_plain_codec_does():
    """The control's relaxed forward is FLLIC's own, draw for draw: the trials' reference is the plain codec."""
    base = _off_its_initial_values(FllicConfig.tiny())
    control = build("control", FllicConfig.tiny())
    control.load_state_dict(base.state_dict())
    x, s, q = torch.rand(1, 3, 64, 64), torch.tensor([25.0]), torch.tensor([0.5])
    torch.manual_seed(3)
    a = base.train().forward_from_estimate(x, s, q)
    torch.manual_seed(3)
    b = control.train().forward_from_estimate(x, s, q)
    assert torch.equal(a.x_hat, b.x_hat) and torch.equal(bits(a.likelihoods), bits(b.likelihoods))


def test_trials_train_from_the_trainer_and_are_measured_against_the_control(tmp_path, rng, capsys):
    from fllic.train.__main__ import main as train_main
    from fllic.train.trials import load_trial, main as trials_main

    for name, channels in (("CBSD432", 3), ("WikipediaPhotos", 3), ("BSD400", 1), ("dev", 3)):
        (tmp_path / name).mkdir()
        for k in range(4 if name == "dev" else 2):
            Image.fromarray(noisy_image(rng, 64, 64, channels)).save(tmp_path / name / f"{k}.png")
    common = ["--data", str(tmp_path), "--tiny", "--batch", "2", "--patch", "64", "--threads", "1",
              "--ckpt-every", "2", "--steps", "2", "--rate-warmup", "1"]
    runs = {"plain": [], "finer": ["--trial", "finer-latent", "--new-lr-scale", "10"], "mixer": ["--trial", "mixer"]}
    for name, extra in runs.items():
        assert train_main(common + ["--workdir", str(tmp_path / name)] + extra) == 0
    assert type(load_trial(tmp_path / "finer" / "checkpoint.pt")).__name__ == "FinerLatentFLLIC"
    ckpts = [str(tmp_path / name / "checkpoint.pt") for name in runs]
    assert trials_main(["--checkpoint", *ckpts, "--data", str(tmp_path / "dev"), "--limit", "2", "--sigma", "20",
                        "--q", "2", "1", "0.5"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 20 |")]
    assert len(rows) == 3 and all(line.count("dB") == 3 for line in rows)
    assert "finer against plain: BD-rate" in out and "mixer against plain: BD-rate" in out


def test_a_coded_point_is_the_entropy_models_bits_and_the_pixels_psnr():
    """coded_point: bits = −log2 of every likelihood, per pixel; PSNR of g_s's output rounded to 8 bits, cropped."""
    from fllic.models.fllic_net import ForwardOutput, Likelihoods
    from fllic.train.trials import coded_point

    net = build("control", FllicConfig.tiny())
    clean = np.full((40, 56, 3), 100, np.uint8)
    x_hat = torch.full((1, 3, 64, 64), 101 / 255)  # one code value off everywhere: 48.13 dB
    half = torch.full((1, 10), 0.5)
    net.forward_from_estimate = lambda *a, **kw: ForwardOutput(x_hat, Likelihoods(y=half, z=half[:, :6]), None, None)
    bpp, db = coded_point(net, clean, clean, 15.0, 1.0)
    assert bpp == pytest.approx(16 / (40 * 56)) and db == pytest.approx(20 * np.log10(255), abs=0.01)


def test_an_unknown_trial_is_refused():
    with pytest.raises(ValueError, match="no trial 'wide'"):
        build("wide", FllicConfig.tiny())
