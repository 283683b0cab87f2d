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
from fllic.train.data import PatchSampler, load_cached


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


def _threads_wanted(cfg: TrainConfig) -> int:
    """The thread count, which a file workdir/threads can change while training runs."""
    f = cfg.workdir / "threads"
    try:
        return max(1, int(f.read_text().strip()))
    except (OSError, ValueError):
        return cfg.threads


def _initial_weights(path: Path) -> dict[str, torch.Tensor]:
    """Weights from a training checkpoint or from an exported (shipped) model file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    weights = state["model"] if "model" in state else state["state_dict"]
    return {k: v.float() for k, v in weights.items()}


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _sample_q(n: int, q_range: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    lo, hi = (math.log(v) for v in q_range)
    return torch.exp(torch.empty(n).uniform_(lo, hi, generator=gen))


def train(cfg: TrainConfig) -> None:
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = cfg.workdir / "checkpoint.pt"
    model = FLLIC(FllicConfig.tiny() if cfg.tiny else FllicConfig())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, elapsed = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
    elif cfg.init is not None:
        model.load_state_dict(_initial_weights(cfg.init))
    colour, grey = load_cached(cfg.data, cfg.workdir / "images.npz")
    sampler = PatchSampler(colour, grey, cfg.patch, cfg.grey_fraction, cfg.sigma_max, cfg.seed + step)
    gen = torch.Generator().manual_seed(cfg.seed + step)
    torch.manual_seed(cfg.seed + step)
    log = open(cfg.workdir / "train.log", "a", buffering=1)
    log.write(f"# resume at step {step}, {len(colour)} colour + {len(grey)} grey images\n")
    acc = {"loss": 0.0, "bpp": 0.0, "mse": 0.0, "n": 0}
    t0 = time.time()
    model.train()
    while step < cfg.steps:
        if step % 50 == 0:
            torch.set_num_threads(_threads_wanted(cfg))
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        clean, noisy, sigma = sampler.batch(cfg.batch)
        q = _sample_q(cfg.batch, cfg.q_range, gen)
        out = model(noisy, sigma, q)
        mse = ((out.x_hat - clean) ** 2).flatten(1).mean(1)
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
                      f"psnr(q<1.2) {psnr:.2f} lr {opt.param_groups[0]['lr']:.2e} "
                      f"s/step {dt/n:.2f} wall_h {elapsed/3600:.2f}\n")
            acc = {"loss": 0.0, "bpp": 0.0, "mse": 0.0, "n": 0}
            t0 = time.time()
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            _save(ckpt, {"model": model.state_dict(), "opt": opt.state_dict(),
                         "step": step, "elapsed": elapsed, "config": vars(model.config)})
    log.close()
