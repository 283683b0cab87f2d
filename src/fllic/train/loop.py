"""The supervised FLLIC training loop: loss = λ(q)·255²·MSE(x_hat, clean) + bpp.

λ(q) = λ0 / q² ties each step-map scale q to its own rate–distortion balance,
so one model learns every quality point. The rate term is ramped in over the
first ``rate_warmup`` steps, so the transforms first learn to denoise. Resumable: a checkpoint is written
atomically every ``--ckpt-every`` steps and picked up on restart.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from fllic.models.fllic_net import FLLIC, FllicConfig, bits
from fllic.models.trunk import load_trunk_weights
from fllic.train.data import MixedNoiseSampler, PatchSampler, load_cached


@dataclass
class TrainConfig:
    data: Path
    workdir: Path
    steps: int = 100_000
    batch: int = 8
    patch: int = 128
    lr: float = 3e-4
    warmup: int = 300
    rate_warmup: int = 2000
    lmbda: float = 0.015
    q_range: tuple[float, float] = (0.5, 4.0)
    sigma_max: float = 55.0
    grey_fraction: float = 0.2
    threads: int = 2
    seed: int = 0
    ckpt_every: int = 100
    log_every: int = 20
    init: Path | None = None
    tiny: bool = False
    trunk: Path | None = None  # v2: a denoising trunk (from fllic.train.denoiser) ahead of g_a
    freeze_trunk: bool = False
    bf16: bool = False  # the trunk under bf16 autocast
    bf16_codec: bool = False  # g_a, h_a, h_s and g_s under bf16 autocast
    targets: str = "v1"  # "v1": the v1 image set; "clean": the v2 estimator's cleaner targets (data.clean_targets)
    cosine: bool = False  # decay the learning rate on a cosine to 2 % at ``steps`` (fine-tuning)
    code_estimate: bool = False  # v2 with a frozen trunk: distortion against the trunk's estimate, not the clean image
    camera_fraction: float = 0.0  # patches through the camera pipeline; the trunk reads their noise maps (issue 9)
    device: str = "cpu"  # "cuda" on a GPU
    workers: int = 0  # processes that make patches ahead of the training step (a GPU outruns one core)
    max_minutes: float | None = None  # stop after this much wall time; the cosine then runs over it
    encoder_only: bool = False  # train g_a and h_a only: files still decode with the start's decoder and tables
    grey_output: bool = False  # distortion on the channels' mean, the pixels a grey image decodes to
    trial: str | None = None  # issue 29's float trials (fllic.train.trials): "finer-latent", "mixer", "control"
    new_lr_scale: float = 1.0  # a trial's new modules learn at this multiple of the learning rate


def _threads_wanted(cfg: TrainConfig) -> int:
    """The thread count, which a file workdir/threads can change while training runs."""
    f = cfg.workdir / "threads"
    try:
        return max(1, int(f.read_text().strip()))
    except (OSError, ValueError):
        return cfg.threads


def _initial_weights(path: Path) -> dict[str, torch.Tensor]:
    """Weights from a training checkpoint or a float weights file (``weights/*-float.pt``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") == 2:
        raise ValueError(f"{path} is an exported model: its decoder is integer-only. Start from its float "
                         "resume point instead (weights/fllic-awgn-v1-float.pt for the shipped model)")
    weights = state["model"] if "model" in state else state["state_dict"]
    return {k: v.float() for k, v in weights.items()}


def _trunk_weights(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(trunk config, weights) from a denoiser checkpoint or its export."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    weights = state["model"] if "model" in state else state["state_dict"]
    return state["config"], {k: v.float() for k, v in weights.items()}


_CODEC_WIDTHS = ("n1", "n2", "n3", "m", "nh", "nz", "gs_blocks", "ga_blocks", "gs_narrow", "gs_n1")  # depths, narrow stages, g_s width


def _model_config(cfg: "TrainConfig", trunk, start: Path | None = None) -> FllicConfig:
    """The model's shape: the codec's widths and depth from the weights it starts from (a checkpoint or
    --init, e.g. a model widened or deepened by fllic.train.widen), else the default; the trunk's from --trunk."""
    from dataclasses import replace

    base = FllicConfig.tiny() if cfg.tiny else FllicConfig()
    if start is not None and start.exists():
        saved = torch.load(start, map_location="cpu", weights_only=False).get("config") or {}
        base = replace(base, **{k: int(saved[k]) for k in _CODEC_WIDTHS if k in saved})
    if trunk is None:
        return base
    return replace(base, **trunk_fields(trunk[0]))


def trunk_fields(trunk_config: dict) -> dict:
    """The FllicConfig fields that describe a trunk, from its own config (a denoiser checkpoint's or export's)."""
    return {"trunk": tuple(trunk_config["channels"]), "trunk_blocks": int(trunk_config["blocks"]),
            "trunk_kind": bool(trunk_config.get("kind_input", False))}


def _load_except_trunk(model: FLLIC, weights: dict[str, torch.Tensor]) -> None:
    """Load codec weights (e.g. v1's) into a model that may also have a trunk (or a trial's new modules)."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith(".input_peak")]  # narrow layers' peaks: the first batch sets them
    fresh = ("trunk.", *getattr(model, "new_prefixes", ()))
    if unexpected or any(not k.startswith(fresh) for k in missing):
        raise ValueError(f"initial weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def _build(cfg: TrainConfig, config: FllicConfig) -> FLLIC:
    """The network: FLLIC, or one of issue 29's float trials (fllic.train.trials)."""
    if cfg.trial is None:
        return FLLIC(config)
    from fllic.train.trials import build

    return build(cfg.trial, config)


def _param_groups(model: FLLIC, cfg: TrainConfig) -> list[dict]:
    """The trainable parameters: a trial's new modules (``new_prefixes``) at ``new_lr_scale`` times the rate."""
    new = getattr(model, "new_prefixes", ())
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for k, p in named if not k.startswith(new)], "scale": 1.0},
              {"params": [p for k, p in named if new and k.startswith(new)], "scale": cfg.new_lr_scale}]
    return [g for g in groups if g["params"]]


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _checkpoint(path: Path, model: torch.nn.Module, opt, step: int, elapsed: float, config: dict, **extra) -> None:
    """A resumable checkpoint (weights on the CPU, whatever the device), written atomically."""
    _save(path, {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "opt": opt.state_dict(),
                 "step": step, "elapsed": elapsed, "config": config, **extra})


def _progress(cfg: TrainConfig, step: int, minutes: float) -> float:
    """How far through the run, 0 to 1: by steps, or by wall time under ``max_minutes``, whichever is further.

    A time budget (a GPU booked for some minutes) fixes the wall time, not the step count, so the cosine follows the clock.
    """
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.max_minutes is not None:
        t = max(t, minutes / cfg.max_minutes)
    return min(1.0, max(0.0, t))


def _lr(cfg: TrainConfig, step: int, minutes: float = 0.0) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if not cfg.cosine:
        return cfg.lr
    t = _progress(cfg, step, minutes)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


class _SamplerStream(torch.utils.data.IterableDataset):
    """Endless batches from ``make(seed)``; each worker process draws from its own seed."""

    def __init__(self, make, batch: int, seed: int):
        self.make, self.batch, self.seed = make, batch, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        sampler = self.make(self.seed + 7919 * (info.id if info is not None else 0))
        while True:
            yield sampler.batch(self.batch)


def _batches(cfg: TrainConfig, make, seed: int):
    """(clean, noisy, sigma) batches: made in this process, or by ``cfg.workers`` processes ahead of the step."""
    if cfg.workers <= 0:
        sampler = make(seed)
        while True:
            yield sampler.batch(cfg.batch)
    loader = torch.utils.data.DataLoader(_SamplerStream(make, cfg.batch, seed), batch_size=None,
                                         num_workers=cfg.workers, prefetch_factor=4,
                                         pin_memory=cfg.device != "cpu")
    yield from loader


def _images(cfg: TrainConfig) -> tuple[list, list]:
    if cfg.targets == "clean":
        from fllic.train.data import clean_targets

        return clean_targets(cfg.data, cfg.workdir / "clean.npz"), []
    return load_cached(cfg.data, cfg.workdir / "images.npz")


def _sample_q(n: int, q_range: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    lo, hi = (math.log(v) for v in q_range)
    return torch.exp(torch.empty(n).uniform_(lo, hi, generator=gen))


def _level(noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(sigma per patch, noise map or None): a map's RMS is the codec's sigma, as in the blind path."""
    if noise.dim() == 1:
        return noise, None
    return noise[:, 0].flatten(1).pow(2).mean(1).sqrt(), noise


def _train_encoder_only(model: FLLIC) -> None:
    """Freeze all but g_a and h_a: the encoder learns to feed a decoder (h_s, g_s, the z prior) that stays as it
    is, so files still decode with the start's shipped decoder part."""
    model.requires_grad_(False)
    model.g_a.requires_grad_(True)
    model.h_a.requires_grad_(True)


def _squared_error(x_hat: torch.Tensor, target: torch.Tensor, grey_output: bool) -> torch.Tensor:
    """Per patch MSE; with ``grey_output`` on the channels' means, which is what a grey image decodes to
    (the decoder averages its three output channels), so colour the decoder adds to a grey image costs nothing."""
    if grey_output:
        x_hat, target = x_hat.mean(1), target.mean(1)
    return ((x_hat - target) ** 2).flatten(1).mean(1)


def train(cfg: TrainConfig) -> None:
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = cfg.workdir / "checkpoint.pt"
    trunk = _trunk_weights(cfg.trunk) if cfg.trunk is not None else None
    model = _build(cfg, _model_config(cfg, trunk, ckpt if ckpt.exists() else cfg.init))
    step, elapsed = 0, 0.0
    state = torch.load(ckpt, map_location="cpu") if ckpt.exists() else None
    if state is not None:
        model.load_state_dict(state["model"])
    else:
        if cfg.init is not None:
            weights = _initial_weights(cfg.init)
            if trunk is not None:  # --trunk replaces whatever trunk the initial weights carry
                weights = {k: v for k, v in weights.items() if not k.startswith("trunk.")}
            _load_except_trunk(model, weights)
        if trunk is not None:
            load_trunk_weights(model.trunk, trunk[1])
    model.bf16 = cfg.bf16_codec
    if model.trunk is not None:
        model.trunk.bf16 = cfg.bf16
        model.trunk.requires_grad_(not cfg.freeze_trunk)
    if cfg.encoder_only:
        _train_encoder_only(model)
    dev = torch.device(cfg.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick its fastest convolutions
    model.to(dev, memory_format=torch.channels_last)  # NHWC convolutions: no reorders around oneDNN's bf16 kernels
    opt = torch.optim.Adam(_param_groups(model, cfg), lr=cfg.lr)
    if state is not None:
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
    colour, grey = _images(cfg)
    if cfg.camera_fraction > 0:
        make = lambda seed: MixedNoiseSampler(colour, cfg.patch, cfg.sigma_max, cfg.camera_fraction, seed=seed,
                                              grey_fraction=cfg.grey_fraction)
    else:
        make = lambda seed: PatchSampler(colour, grey, cfg.patch, cfg.grey_fraction, cfg.sigma_max, seed)
    batches = _batches(cfg, make, cfg.seed + step)
    gen = torch.Generator().manual_seed(cfg.seed + step)
    torch.manual_seed(cfg.seed + step)
    log = open(cfg.workdir / "train.log", "a", buffering=1)
    log.write(f"# resume at step {step}, {len(colour)} colour + {len(grey)} grey images\n")
    acc = {"loss": 0.0, "bpp": 0.0, "mse": 0.0, "n": 0}
    t0 = t_start = time.time()
    model.train()
    while step < cfg.steps:
        minutes = (time.time() - t_start) / 60
        if cfg.max_minutes is not None and minutes >= cfg.max_minutes:
            break
        if step % 50 == 0:
            torch.set_num_threads(_threads_wanted(cfg))
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, minutes) * g.get("scale", 1.0)
        clean, noisy, sigma = (t.to(dev, non_blocking=True) for t in next(batches))
        sigma, level = _level(sigma)
        q = _sample_q(cfg.batch, cfg.q_range, gen).to(dev)
        if cfg.code_estimate and model.trunk is not None and cfg.freeze_trunk:
            # Remote-source coding: with the MMSE estimate fixed, E|x - x_hat|² = mmse + E|est - x_hat|²,
            # so coding the estimate has the same optimum and gradients without the estimation noise.
            with torch.no_grad():
                est = model.estimate(noisy, sigma, level).float().clamp(0, 1)
            out = model.forward_from_estimate(est, sigma, q)
            target = est
        else:
            if level is not None:
                raise ValueError("camera patches need --trunk --freeze-trunk --code-estimate")
            out, target = model(noisy, sigma, q), clean
        mse = _squared_error(out.x_hat, target, cfg.grey_output)
        bpp = bits(out.likelihoods) / (clean.shape[2] * clean.shape[3])
        # The rate term is phased in: the transforms first learn to denoise, then to compress.
        beta = min(1.0, step / cfg.rate_warmup)
        loss = (cfg.lmbda / q**2 * 255**2 * mse + beta * bpp).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc["loss"] += loss.item(); acc["bpp"] += bpp.mean().item()
        acc["mse"] += mse[q < 1.2].mean().item() if (q < 1.2).any() else 0.0
        acc["n"] += 1
        if step % cfg.log_every == 0:
            dt = time.time() - t0
            elapsed += dt
            n = acc["n"]
            psnr = 10 * math.log10(1.0 / max(acc["mse"] / n, 1e-10))
            log.write(f"step {step} loss {acc['loss']/n:.4f} bpp {acc['bpp']/n:.3f} "
                      f"psnr(q<1.2){'-to-estimate' if cfg.code_estimate else ''} {psnr:.2f} lr {opt.param_groups[0]['lr']:.2e} "
                      f"s/step {dt/n:.2f} wall_h {elapsed/3600:.2f}\n")
            acc = {"loss": 0.0, "bpp": 0.0, "mse": 0.0, "n": 0}
            t0 = time.time()
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            _checkpoint(ckpt, model, opt, step, elapsed, vars(model.config), trial=cfg.trial)
    if step % cfg.ckpt_every:  # stopped by the clock between checkpoints
        _checkpoint(ckpt, model, opt, step, elapsed, vars(model.config), trial=cfg.trial)
    log.close()
