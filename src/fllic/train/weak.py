"""python -m fllic.train.weak: weakly supervised FLLIC, trained from noisy images only (Zhang & Wu 2024, Sec. 4).

The trainer is given a file of noisy images and their noise levels
(:mod:`fllic.train.weak_data`), never a data folder: no clean pixel reaches it.
The model is the v2 architecture, a denoising trunk ahead of the codec, and
every part starts untrained (a supervised model's weights would smuggle in
clean-image supervision). The loss, per patch y with noise level sigma:

- **self-supervised denoising** of the trunk f: Neighbor2Neighbor (Huang et
  al., CVPR 2021). Two sub-images g1(y), g2(y) take, in every 2x2 cell, two
  different neighbouring pixels, so their clean parts nearly agree and their
  noises are independent; ``|f(g1) - g2|^2 + gamma |f(g1) - g2 - (g1(f(y)) - g2(f(y)))|^2``.
  Chosen over re-corruption (Noisier2Noise, R2R) because it needs no extra noise
  model beyond independence across pixels, and its paper reports 32.08 dB on
  Kodak at sigma 25 against 32.43 dB for clean targets with the same network.
- **fidelity to the noisy observation**: lambda(q)·255²·MSE(x_hat, y), with the
  codec reading the trunk's estimate, so it can only reproduce the noise at a
  cost in rate;
- **rate**, and a **budget** tied to the clean image's estimated entropy:
  ``bpp + mu · max(0, bpp - H_est)``, where H_est is the estimate of the clean
  patch's code length from the noisy patch and sigma (:mod:`fllic.entropy.clean`):
  bits above the clean image's own cost can only be buying noise.

That joint loss (``--stage joint``, the recipe of ``fllic-weak-v2``) trains
slowly: the codec chases the noise it is told to reproduce. Remote-source
coding (docs/theory.md, section 6) suggests stages instead:

- ``--stage trunk``: the trunk alone, as a denoiser, with Neighbor2Neighbor or
  (``--trunk-loss r2r``) Recorrupted-to-Recorrupted (Pang et al., CVPR 2021).
  With fresh z ~ N(0, sigma²), the pair y + alpha·z, y - z/alpha has
  independent noises, so ``E|f(y + alpha z) - (y - z/alpha)|^2`` is the MSE to
  the clean image plus sigma²(1 + 1/alpha²): supervised training in
  expectation, from noisy pixels and sigma alone, at the input level
  sigma·sqrt(1 + alpha²). On 8-bit files, clipping breaks that identity near
  black and white, and R2R lost ground in a few hundred steps
  (results/training/weak-v3-trunk-trials.md).
  ``--trunk-loss distill`` instead regresses the trunk on CBM3D's estimate of
  each stored noisy image (``python -m fllic.train.weak_data --cbm3d-targets``):
  a target computed from the noisy pixels and sigma alone, so still noisy-only,
  and with none of Neighbor2Neighbor's target noise; ``--n2n-weight`` adds the
  Neighbor2Neighbor term beside it. ``fllic-weak-v4``'s trunk was trained so,
  then its codec with the stage below.
- ``--stage codec --codec-target estimate``: the trunk frozen, the codec
  learns to code its estimate (distortion to the estimate, the rate, and the
  budget). The estimate is the noisy observation's clean projection, and bits
  beyond it buy nothing. ``fllic-weak-v3`` is ``fllic-weak-v2``'s N2N trunk with
  its codec retrained this way.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from fllic.entropy.clean import DEFAULT_CALIBRATION
from fllic.models.fllic_net import FLLIC, FllicConfig, bits
from fllic.train.loop import _checkpoint, _lr, _sample_q, _threads_wanted
from fllic.train.weak_data import load_noisy_set, load_targets, targets_path


@dataclass
class WeakConfig:
    noisy_set: Path
    workdir: Path
    steps: int = 30_000
    batch: int = 8
    patch: int = 128
    lr: float = 3e-4
    warmup: int = 300
    cosine: bool = True
    lmbda: float = 0.04
    budget_weight: float = 4.0
    gamma: float = 2.0  # Neighbor2Neighbor's regulariser weight
    q_range: tuple[float, float] = (0.25, 4.0)
    calibration: str = DEFAULT_CALIBRATION  # whose H(I) calibration sets the budget
    threads: int = 2
    seed: int = 0
    ckpt_every: int = 100
    log_every: int = 20
    bf16: bool = True  # the trunk under bf16 autocast
    tiny: bool = False
    start_from: Path | None = None  # a weak checkpoint to go on from, on a new schedule and a new noisy set
    stage: str = "joint"  # "joint": trunk and codec together; "trunk": the trunk alone; "codec": the trunk frozen
    trunk_loss: str = "n2n"  # the trunk's loss: "n2n" (Neighbor2Neighbor), "r2r" (recorruption) or "distill" (CBM3D)
    targets: Path | None = None  # CBM3D's estimates of the noisy set, for trunk_loss "distill"
    n2n_weight: float = 0.0  # the Neighbor2Neighbor term's weight beside "distill"
    alpha: float = 0.5  # R2R's recorruption strength
    codec_target: str = "noisy"  # what x_hat is compared with: the noisy patch, or the trunk's estimate
    device: str = "cpu"  # "cuda" on a GPU
    max_minutes: float | None = None  # stop after this much wall time; the cosine then runs over it


class NoisyPatches:
    """Random crops, flips and rotations of the noisy images: the trainer's only view of the data.

    With ``targets`` (pseudo-targets made from the noisy images) each patch
    carries its target's same crop as channels 3-5.
    """

    def __init__(self, images: list[np.ndarray], sigmas: np.ndarray, patch: int, seed: int,
                 targets: list[np.ndarray] | None = None):
        if targets is not None:
            images = [np.concatenate([y, t], axis=2) for y, t in zip(images, targets)]
        keep = [i for i, im in enumerate(images) if min(im.shape[:2]) >= patch]
        if not keep:
            raise ValueError(f"no noisy image is at least {patch} pixels on each side")
        self.images = [images[i] for i in keep]
        self.sigmas = np.asarray(sigmas, np.float32)[keep]
        self.patch, self.rng = patch, np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, p, p, 3) uint8 noisy patches (6 channels with targets) and their sigmas."""
        p, rng = self.patch, self.rng
        out = np.empty((n, p, p, self.images[0].shape[2]), np.uint8)
        idx = rng.integers(len(self.images), size=n)
        for k, i in enumerate(idx):
            img = self.images[i]
            a, b = rng.integers(img.shape[0] - p + 1), rng.integers(img.shape[1] - p + 1)
            c = np.rot90(img[a : a + p, b : b + p], rng.integers(4))
            out[k] = c[:, ::-1] if rng.integers(2) else c
        return out, self.sigmas[idx]


def neighbour_pair(y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbor2Neighbor's sub-sampler: two half-size images from different pixels of each 2x2 cell."""
    n, c, h, w = y.shape
    cells = torch.nn.functional.pixel_unshuffle(y, 2).view(n, c, 4, h // 2, w // 2)
    # The four pixels of a cell are 0 1 / 2 3; neighbours share an edge.
    pairs = torch.tensor([[0, 1], [1, 0], [0, 2], [2, 0], [1, 3], [3, 1], [2, 3], [3, 2]])
    choice = pairs[torch.randint(len(pairs), (n, 1, h // 2, w // 2), generator=gen)].to(y.device)  # (n, 1, h/2, w/2, 2)
    pick = lambda j: torch.gather(cells, 2, choice[..., j].unsqueeze(2).expand(n, c, 1, h // 2, w // 2)).squeeze(2)
    return pick(0), pick(1)


def _subsample_like(x: torch.Tensor, y_pair_gen_state, gen: torch.Generator):
    gen.set_state(y_pair_gen_state)
    return neighbour_pair(x, gen)


def budget(patches: np.ndarray, sigmas: np.ndarray, calibration) -> torch.Tensor:
    """The estimated clean code length (bpp) of each noisy patch: the rate budget."""
    from fllic.entropy.clean import estimate_clean_bpp

    return torch.tensor([estimate_clean_bpp(p, float(s), calibration) for p, s in zip(patches, sigmas)])


def recorrupted_pair(y: torch.Tensor, sigma: torch.Tensor, alpha: float,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """R2R's input y + alpha·z and target y - z/alpha, z ~ N(0, sigma²): their noises are independent."""
    z = torch.randn(y.shape, generator=gen).to(y.device) * (sigma / 255).view(-1, 1, 1, 1)
    return y + alpha * z, y - z / alpha


def trunk_loss(model: FLLIC, y: torch.Tensor, sigma: torch.Tensor, cfg: WeakConfig,
               gen: torch.Generator, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The trunk's denoising loss from noisy pixels: N2N, R2R or distillation (see the module docstring)."""
    if cfg.trunk_loss == "r2r":
        y_in, y_target = recorrupted_pair(y, sigma, cfg.alpha, gen)
        f = model.estimate(y_in, sigma * (1 + cfg.alpha**2) ** 0.5).float()
        return {"r2r": ((f - y_target) ** 2).mean()}
    if cfg.trunk_loss == "distill":
        if target is None:
            raise ValueError("trunk loss 'distill' needs pseudo-targets (--targets)")
        distill = ((model.estimate(y, sigma).float() - target) ** 2).mean()
        if cfg.n2n_weight == 0:
            return {"distill": distill}
        n2n = trunk_loss(model, y, sigma, replace(cfg, trunk_loss="n2n"), gen)["n2n"]
        return {"distill": distill + cfg.n2n_weight * n2n, "mse_target": distill, "n2n": n2n}
    state = gen.get_state()
    g1, g2 = neighbour_pair(y, gen)
    with torch.no_grad():
        est = model.estimate(y, sigma).float()
    f1, f2 = _subsample_like(est, state, gen)
    f_g1 = model.estimate(g1, sigma).float()
    return {"n2n": ((f_g1 - g2) ** 2).mean() + cfg.gamma * ((f_g1 - g2 - (f1 - f2)) ** 2).mean()}


def losses(model: FLLIC, patches: np.ndarray, sigmas: np.ndarray, q: torch.Tensor, cfg: WeakConfig,
           calibration, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The weak loss's parts for one batch, for cfg.stage (see the module docstring)."""
    dev = q.device
    y = torch.from_numpy(patches).to(dev).permute(0, 3, 1, 2).float() / 255.0
    y, target = (y[:, :3], y[:, 3:]) if y.shape[1] == 6 else (y, None)
    patches = patches[..., :3]
    sigma = torch.from_numpy(np.asarray(sigmas, np.float32)).to(dev)
    parts: dict[str, torch.Tensor] = {}
    denoise = torch.zeros((), device=dev)
    if cfg.stage != "codec":
        parts = trunk_loss(model, y, sigma, cfg, gen, target)
        denoise = parts[cfg.trunk_loss]
        if cfg.stage == "trunk":  # a plain denoiser's loss, as python -m fllic.train.denoiser's
            return {"loss": denoise, **parts}
    with torch.no_grad():
        est = model.estimate(y, sigma).float().clamp(0, 1)
    out = model.forward_from_estimate(est, sigma, q)
    target = est if cfg.codec_target == "estimate" else y
    mse = ((out.x_hat - target) ** 2).flatten(1).mean(1)
    bpp = bits(out.likelihoods) / (y.shape[2] * y.shape[3])
    h_est = budget(patches, sigmas, calibration).to(dev)
    over = torch.relu(bpp - h_est)
    codec = (cfg.lmbda / q**2 * 255**2 * mse + bpp + cfg.budget_weight * over).mean()
    return {"loss": codec + 255**2 * cfg.lmbda * denoise, **parts, "bpp": bpp.mean(), "budget": h_est.mean(),
            "over": over.mean(), f"mse_{cfg.codec_target}": mse.mean()}


def _trained_parameters(model: FLLIC, stage: str) -> list[torch.nn.Parameter]:
    """The parameters a stage trains: all, the trunk's, or all but the trunk's."""
    trunk = {id(p) for p in model.trunk.parameters()}
    if stage == "trunk":
        return list(model.trunk.parameters())
    if stage == "codec":
        return [p for p in model.parameters() if id(p) not in trunk]
    return list(model.parameters())


def train(cfg: WeakConfig) -> None:
    from fllic.entropy.clean import load_calibration

    cfg.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = cfg.workdir / "checkpoint.pt"
    base = FllicConfig.tiny(trunk=True) if cfg.tiny else replace(FllicConfig(), trunk=(64, 128, 192), trunk_blocks=2)
    model = FLLIC(base)
    model.trunk.bf16 = cfg.bf16
    dev = torch.device(cfg.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(dev)
    opt = torch.optim.Adam(_trained_parameters(model, cfg.stage), lr=cfg.lr)
    step, elapsed = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
    elif cfg.start_from is not None:  # adapt to another noisy set: the weights, not the optimizer or schedule
        from fllic.train.export import _float_weights

        _, weights, facts = _float_weights(cfg.start_from)  # a weak checkpoint or its float resume point
        if not facts.get("weak"):
            raise ValueError(f"{cfg.start_from} is not a weakly supervised checkpoint; --from takes only those, "
                             "so no clean supervision enters")
        model.load_state_dict({k: v.float() for k, v in weights.items()})
    images, sigmas = load_noisy_set(cfg.noisy_set)
    targets = None
    if cfg.trunk_loss == "distill" and cfg.stage != "codec":
        targets = load_targets(targets_path(cfg.noisy_set, cfg.targets), images)
    sampler = NoisyPatches(images, sigmas, cfg.patch, cfg.seed + step, targets)
    # The budget is the calibrated line, as the shipped weak models were trained: a regressor added to the
    # calibration later (fllic.bench.entropy --calibrate) must not move their recipe's budget.
    calibration = load_calibration(cfg.calibration).line()
    gen = torch.Generator().manual_seed(cfg.seed + step)
    torch.manual_seed(cfg.seed + step)
    log = open(cfg.workdir / "train.log", "a", buffering=1)
    log.write(f"# resume at step {step}, {len(sampler.images)} noisy images, H(I) calibration of {cfg.calibration}, "
              f"stage {cfg.stage}, trunk loss {cfg.trunk_loss}, codec target {cfg.codec_target}\n")
    acc: dict[str, float] = {}
    n_acc, t0 = 0, time.time()
    t_start = t0
    model.train()
    while step < cfg.steps:
        minutes = (time.time() - t_start) / 60
        if cfg.max_minutes is not None and minutes >= cfg.max_minutes:
            break
        if step % 50 == 0:
            torch.set_num_threads(_threads_wanted(cfg))
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, minutes)
        patches, s = sampler.batch(cfg.batch)
        parts = losses(model, patches, s, _sample_q(cfg.batch, cfg.q_range, gen).to(dev), cfg, calibration, gen)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(_trained_parameters(model, cfg.stage), 1.0)
        opt.step()
        step += 1
        for k, v in parts.items():
            acc[k] = acc.get(k, 0.0) + float(v.detach())
        n_acc += 1
        if step % cfg.log_every == 0:
            dt = time.time() - t0
            elapsed += dt
            log.write(f"step {step} " + " ".join(f"{k} {v / n_acc:.4g}" for k, v in acc.items())
                      + f" lr {opt.param_groups[0]['lr']:.2e} s/step {dt / n_acc:.2f} wall_h {elapsed / 3600:.2f}\n")
            acc, n_acc, t0 = {}, 0, time.time()
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            _checkpoint(ckpt, model, opt, step, elapsed, vars(model.config), weak=True)
    if step % cfg.ckpt_every:  # stopped by the clock between checkpoints
        _checkpoint(ckpt, model, opt, step, elapsed, vars(model.config), weak=True)
    log.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.weak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--noisy-set", type=Path, default=Path.home() / ".cache" / "fllic" / "weak" / "noisy.npz",
                   help="noisy images from python -m fllic.train.weak_data (the trainer's only data)")
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "fllic" / "weak", help="checkpoints and logs")
    p.add_argument("--steps", type=int, default=30_000, help="total steps of the cosine schedule")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=128, help="patch side, a multiple of 64")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=300, help="learning-rate warm-up steps")
    p.add_argument("--lmbda", type=float, default=0.04, help="λ0 in λ(q) = λ0/q²")
    p.add_argument("--budget-weight", type=float, default=4.0, help="weight of the bits above the clean-entropy budget")
    p.add_argument("--calibration", default=DEFAULT_CALIBRATION, help="model id whose H(I) calibration sets the budget")
    p.add_argument("--threads", type=int, default=2, help="torch threads (a file 'threads' in the workdir overrides it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20, help="steps between log lines")
    p.add_argument("--ckpt-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--tiny", action="store_true", help="a tiny model, for smoke tests")
    p.add_argument("--from", dest="start_from", type=Path, default=None,
                   help="go on from a weak checkpoint (another run's checkpoint.pt, or weights/fllic-weak-v2-float.pt) "
                        "on a new schedule: more training, or adapting to a new noisy set")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="run the trunk in float32")
    p.add_argument("--stage", choices=("joint", "trunk", "codec"), default="joint",
                   help="train trunk and codec together, the trunk alone, or the codec on the frozen trunk")
    p.add_argument("--trunk-loss", choices=("n2n", "r2r", "distill"), default="n2n",
                   help="the trunk's loss: Neighbor2Neighbor, Recorrupted-to-Recorrupted, or distillation of CBM3D")
    p.add_argument("--targets", type=Path, default=None,
                   help="CBM3D's estimates of the noisy set, for --trunk-loss distill (default: cbm3d.npz beside it)")
    p.add_argument("--n2n-weight", type=float, default=0.0, help="the Neighbor2Neighbor term's weight beside distill")
    p.add_argument("--alpha", type=float, default=0.5, help="R2R's recorruption strength")
    p.add_argument("--codec-target", choices=("noisy", "estimate"), default="noisy",
                   help="the codec's distortion: to the noisy patch, or to the trunk's estimate")
    p.add_argument("--q-range", type=float, nargs=2, default=(0.25, 4.0), metavar=("LO", "HI"),
                   help="range of the quality scale q sampled in training (log-uniform)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda on a GPU")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this many minutes of training; the cosine follows the clock")
    args = p.parse_args(argv)
    if args.patch % 64:
        print("error: --patch must be a multiple of 64", file=sys.stderr)
        return 2
    if not args.noisy_set.exists():
        print(f"error: no noisy set at {args.noisy_set}; make one with python -m fllic.train.weak_data", file=sys.stderr)
        return 1
    if args.trunk_loss == "distill" and args.stage != "codec":
        args.targets = targets_path(args.noisy_set, args.targets)
        if not args.targets.exists():
            print(f"error: no CBM3D targets at {args.targets}; make them with python -m fllic.train.weak_data "
                  f"--out {args.noisy_set} --cbm3d-targets {args.targets}", file=sys.stderr)
            return 1
    train(WeakConfig(**vars(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
