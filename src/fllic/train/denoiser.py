"""python -m fllic.train.denoiser: train the denoising trunk as a plain denoiser.

The first stage of the v2 recipe (issue 7): the encoder-side estimator is
trained alone, on MSE to the clean image, before the codec learns to code its
output. bf16 autocast on the CPU (AVX-512 BF16) for speed; Adam with a warm-up
and a cosine decay; resumable from ``--workdir``; the PSNR on a held-out
validation split (never a test set) is logged every ``--val-every`` steps.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from fllic.models.trunk import DenoisingTrunk, TrunkConfig, load_trunk_weights
from fllic.train.data import MixedNoiseSampler, PatchSampler, clean_targets, validation_images
from fllic.train.loop import _batches, _checkpoint, _lr, _threads_wanted

VAL_SIGMAS = (15.0, 25.0, 50.0)


@dataclass
class DenoiserConfig:
    data: Path
    workdir: Path
    steps: int = 16_000
    batch: int = 16
    patch: int = 96
    lr: float = 1e-3
    warmup: int = 300
    sigma_max: float = 55.0
    grey_fraction: float = 0.15
    threads: int = 2
    seed: int = 0
    ckpt_every: int = 100
    log_every: int = 20
    val_every: int = 500
    bf16: bool = True
    tiny: bool = False
    init: Path | None = None  # exported weights to start from when the workdir has no checkpoint
    start_from: Path | None = None  # weights to fine-tune from, on a schedule of its own (step 0)
    camera_fraction: float = 0.0  # patches through the camera pipeline, with a noise map (issue 9)
    jpeg_fraction: float = 0.3  # of the camera patches, through JPEG at quality 75-100
    isp_fraction: float = 0.0  # of the camera patches, through an in-camera JPEG engine instead (issue 25)
    shaped_fraction: float = 0.0  # of the camera patches, noise synthesised from camera JPEGs' statistics (issue 25)
    val_real: Path | None = None  # folder of NAME_Real / NAME_mean photographs: validation on real noise
    val_real_fold: str | None = "a"  # which fold of its scenes (fllic.bench.real.folds); None: all
    val_real_gain: float = 2.0  # the blind reading's gain for the trunk's map, as a camera model applies it
    map_jitter: float = 0.1  # log-std of the random factor on the camera patches' true noise map
    device: str = "cpu"  # "cuda" on a GPU
    workers: int = 0  # processes that make patches ahead of the step
    max_minutes: float | None = None  # stop after this much wall time; the cosine then runs over it
    cosine: bool = True  # the learning rate's cosine decay (always, for this trainer)


def _estimate_psnr(model: DenoisingTrunk, noisy: np.ndarray, level: torch.Tensor, reference: np.ndarray) -> float:
    """PSNR (dB) of the trunk's rounded estimate of one (H, W, 3) noisy image against ``reference``."""
    dev = next(model.parameters()).device
    x = torch.from_numpy(noisy.transpose(2, 0, 1)[None].astype(np.float32) / 255).to(dev)
    est = model(x, level.to(dev)).clamp(0, 1)[0].cpu().numpy().transpose(1, 2, 0) * 255
    return 10 * math.log10(255**2 / np.mean((np.rint(est) - reference) ** 2))


VAL_SHOTS = (1e-3, 4e-3)  # camera validation: the middle of the shot-noise range and a darker scene


@torch.no_grad()
def validate_camera(model: DenoisingTrunk, images: list[np.ndarray]) -> dict[float, float]:
    """Mean PSNR (dB) per shot-noise factor under the camera pipeline, against its noise-free output, true map."""
    from fllic.noise.camera import camera_noise, noise_free, sample_params, true_noise_map

    model.eval()
    out = {}
    for shot in VAL_SHOTS:
        vals = []
        for k, img in enumerate(images):
            params = sample_params(np.random.default_rng(k), shot=shot)
            noisy, _ = camera_noise(img.astype(np.uint8), np.random.default_rng(1000 + k), params)
            ref = noise_free(img.astype(np.uint8), params)
            level = torch.from_numpy(np.stack([true_noise_map(noisy, ref), np.ones(ref.shape[:2])])[None].astype(np.float32))
            vals.append(_estimate_psnr(model, noisy, level, ref))
        out[shot] = float(np.mean(vals))
    model.train()
    return out


@torch.no_grad()
def validate(model: DenoisingTrunk, images: list[np.ndarray]) -> dict[float, float]:
    """Mean PSNR (dB) per sigma on the validation crops, seeded noise, rounded and clipped."""
    model.eval()
    out = {}
    for sigma in VAL_SIGMAS:
        vals = []
        for k, img in enumerate(images):
            rng = np.random.default_rng(1000 + k)
            noisy = np.clip(np.rint(img + rng.normal(0, sigma, img.shape)), 0, 255)
            vals.append(_estimate_psnr(model, noisy, torch.tensor([sigma]), img))
        out[sigma] = float(np.mean(vals))
    model.train()
    return out


def real_validation_set(folder: Path, fold: str | None, gain: float, crop: int = 256) -> list[tuple]:
    """[(noisy, reference, (2, H, W) map)]: centre crops of real photographs with references, and the noise map
    a camera model's trunk reads for each (the blind reading scaled by ``gain``), computed once."""
    from fllic.bench.real import centre_crop, folds, pairs
    from fllic.codec import _blind_level, _trunk_noise_map
    from fllic.imageio import read_image

    items = pairs(folder)
    keep = set(folds([s for s, _, _ in items])[fold == "b"]) if fold else {s for s, _, _ in items}
    out = []
    for scene, noisy_path, ref_path in items:
        if scene in keep:
            noisy, ref = (centre_crop(read_image(p), crop) for p in (noisy_path, ref_path))
            level = _blind_level(noisy)
            level_map = _trunk_noise_map(noisy, level.scaled(gain)) if level.correlated else None
            if level_map is None:  # read as white: the constant map a camera model is given then
                level_map = np.stack([np.full(noisy.shape[:2], level.sigma * gain), np.zeros(noisy.shape[:2])])
            out.append((noisy, ref, level_map[:, : noisy.shape[0], : noisy.shape[1]].astype(np.float32)))
    return out


@torch.no_grad()
def validate_real(model: DenoisingTrunk, photos: list[tuple]) -> float:
    """Mean PSNR gain (dB) of the trunk's estimate over the noisy photograph, against the references."""
    model.eval()
    from fllic.metrics import psnr

    gains = [_estimate_psnr(model, noisy, torch.from_numpy(level)[None], ref) - psnr(noisy, ref)
             for noisy, ref, level in photos]
    model.train()
    return float(np.mean(gains))


def _log_validation(log, model: DenoisingTrunk, val: list[np.ndarray], step: int, camera: bool,
                    real: list[tuple] | None = None) -> None:
    if real:
        log.write(f"valreal {step} gain {validate_real(model, real):+.3f} dB over {len(real)} photographs\n")
    if not val:
        return
    scores = validate(model, val)
    log.write(f"val {step} " + " ".join(f"sigma{int(s)} {v:.2f}" for s, v in scores.items()) + "\n")
    if camera:
        cam = validate_camera(model, val)
        log.write(f"valcam {step} " + " ".join(f"shot{s:g} {v:.2f}" for s, v in cam.items()) + "\n")


def train(cfg: DenoiserConfig) -> None:
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = cfg.workdir / "checkpoint.pt"
    base = TrunkConfig.tiny() if cfg.tiny else TrunkConfig()
    model = DenoisingTrunk(replace(base, kind_input=cfg.camera_fraction > 0))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, elapsed = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
    elif cfg.init is not None or cfg.start_from is not None:
        # --init: a new machine, the committed resume point (Adam restarts, the schedule goes on);
        # --from: fine-tuning, a schedule of its own from step 0.
        state = torch.load(cfg.init or cfg.start_from, map_location="cpu", weights_only=True)
        load_trunk_weights(model, _trunk_weights(state))
        if cfg.init is not None:
            step, elapsed = int(state["step"]), float(state.get("elapsed", 0.0))
    dev = torch.device(cfg.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(dev)
    opt.load_state_dict(opt.state_dict())  # moves a resumed optimizer's state to the model's device
    colour = clean_targets(cfg.data, cfg.workdir / "images.npz")
    val = validation_images(cfg.data)
    real = real_validation_set(cfg.val_real, cfg.val_real_fold, cfg.val_real_gain) if cfg.val_real else None
    if cfg.camera_fraction > 0:
        make = lambda seed: MixedNoiseSampler(colour, cfg.patch, cfg.sigma_max, cfg.camera_fraction,
                                              cfg.jpeg_fraction, cfg.map_jitter, seed=seed,
                                              isp_fraction=cfg.isp_fraction, shaped_fraction=cfg.shaped_fraction)
    else:
        make = lambda seed: PatchSampler(colour, [], cfg.patch, cfg.grey_fraction, cfg.sigma_max, seed)
    batches = _batches(cfg, make, cfg.seed + step)
    torch.manual_seed(cfg.seed + step)
    log = open(cfg.workdir / "train.log", "a", buffering=1)
    log.write(f"# resume at step {step}, {len(colour)} training images, {len(val)} validation crops\n")
    if (val or real) and step == 0:  # where fine-tuning starts from
        _log_validation(log, model, val, step, cfg.camera_fraction > 0, real)
    acc, n_acc, t0 = 0.0, 0, time.time()
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
        clean, noisy, sigma = (t.to(dev, non_blocking=True) for t in next(batches))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            est = model(noisy, sigma)
        loss = ((est.float() - clean) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc, n_acc = acc + loss.item(), n_acc + 1
        if step % cfg.log_every == 0:
            dt = time.time() - t0
            elapsed += dt
            log.write(f"step {step} mse {acc / n_acc:.3e} psnr {10 * math.log10(1 / max(acc / n_acc, 1e-12)):.2f} "
                      f"lr {opt.param_groups[0]['lr']:.2e} s/step {dt / n_acc:.2f} wall_h {elapsed / 3600:.2f}\n")
            acc, n_acc, t0 = 0.0, 0, time.time()
        if (val or real) and (step % cfg.val_every == 0 or step == cfg.steps):
            _log_validation(log, model, val, step, cfg.camera_fraction > 0, real)
            t0 = time.time()
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            _checkpoint(ckpt, model, opt, step, elapsed, asdict(model.config))
    if step % cfg.ckpt_every:  # stopped by the clock between checkpoints
        _checkpoint(ckpt, model, opt, step, elapsed, asdict(model.config))
    log.close()


def _trunk_weights(state: dict) -> dict[str, torch.Tensor]:
    """Trunk parameters, float32, from an exported trunk (denoiser.export) or a model's trunk file (trunk.* keys)."""
    weights = state["state_dict"]
    return {k.removeprefix("trunk."): v.float() for k, v in weights.items()}


def trunk_of(path: Path) -> DenoisingTrunk:
    """The denoising trunk of a shipped model (its id or its file), of this trainer's checkpoint or exported
    trunk, or of a codec trainer's checkpoint or float resume point (its trunk.* weights)."""
    state = torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
    if state is None or "decoder" in state:
        from fllic.models.registry import resolve

        return resolve(str(path)).net.trunk.float().eval()
    if "channels" in state.get("config", {}):
        config, weights = state["config"], state.get("model", state.get("state_dict"))
    else:
        from fllic.train.export import _float_weights

        codec_config, all_weights, _ = _float_weights(path)
        config = {"channels": codec_config["trunk"], "blocks": codec_config["trunk_blocks"],
                  "kind_input": codec_config.get("trunk_kind", False)}
        weights = {k.removeprefix("trunk."): v for k, v in all_weights.items() if k.startswith("trunk.")}
    model = DenoisingTrunk(TrunkConfig(**{**config, "channels": tuple(config["channels"])}))
    load_trunk_weights(model, {k: v.float() for k, v in weights.items()})
    return model


def export(checkpoint: Path, out: Path) -> None:
    """Write the trunk's weights as float16 (the shipped size) with its config and step."""
    state = torch.load(checkpoint, map_location="cpu")
    weights = {k: v.half() for k, v in state["model"].items()}
    torch.save({"format": 1, "config": state["config"], "state_dict": weights, "step": state["step"],
                "elapsed": state["elapsed"]}, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.train.denoiser", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with CBSD432, WikipediaPhotos, Waterloo")
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "fllic" / "trunk", help="checkpoints and logs (outside the repo)")
    p.add_argument("--steps", type=int, default=16_000, help="total steps of the cosine schedule")
    p.add_argument("--batch", type=int, default=16, help="patches per step")
    p.add_argument("--patch", type=int, default=96, help="patch side, a multiple of 8")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=300, help="learning-rate warm-up steps")
    p.add_argument("--ckpt-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=20, help="steps between log lines")
    p.add_argument("--threads", type=int, default=2, help="torch threads (a file 'threads' in the workdir overrides it live)")
    p.add_argument("--seed", type=int, default=0, help="seed of the patch sampler")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32")
    p.add_argument("--tiny", action="store_true", help="a tiny trunk, for smoke tests")
    p.add_argument("--val-every", type=int, default=500, help="steps between validation runs")
    p.add_argument("--export", type=Path, default=None, help="write the checkpoint's weights (float16) here and stop")
    p.add_argument("--validate", type=Path, default=None, metavar="CHECKPOINT",
                   help="print the PSNR of this checkpoint's trunk (any trainer's) on the validation crops and stop")
    p.add_argument("--init", type=Path, default=None,
                   help="start from exported weights (e.g. weights/trunk-v2-resume.pt) when the workdir has no checkpoint")
    p.add_argument("--from", dest="start_from", type=Path, default=None,
                   help="fine-tune from these trunk weights (an exported trunk or a model's -trunk.pt) on a new schedule")
    p.add_argument("--camera-fraction", type=float, default=0.0,
                   help="fraction of patches through the camera pipeline, with a per-pixel noise map (issue 9)")
    p.add_argument("--jpeg-fraction", type=float, default=0.3, help="fraction of camera patches then JPEG-compressed")
    p.add_argument("--isp-fraction", type=float, default=0.0,
                   help="fraction of camera patches through an in-camera JPEG engine (noise reduction, sharpening, JPEG)")
    p.add_argument("--shaped-fraction", type=float, default=0.0,
                   help="fraction of camera patches with noise synthesised from camera JPEGs' measured statistics")
    p.add_argument("--val-real", type=Path, default=None, metavar="DIR",
                   help="also validate on real photographs (NAME_Real / NAME_mean pairs, a development set): the "
                        "trunk reading the blind noise map at --val-real-gain, on one fold of the scenes")
    p.add_argument("--val-real-fold", choices=("a", "b"), default="a", help="the fold --val-real measures")
    p.add_argument("--val-real-gain", type=float, default=2.0, help="gain on the blind reading (a camera model's)")
    p.add_argument("--map-jitter", type=float, default=0.1,
                   help="log-std of the random factor on camera patches' true noise map (the estimator's error)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda on a GPU (bf16 autocast there too)")
    p.add_argument("--workers", type=int, default=0, help="processes making patches ahead of the step (for a GPU)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this many minutes of training; the cosine follows the clock")
    args = p.parse_args(argv)
    if args.init is not None and args.start_from is not None:
        print("error: give --init (resume) or --from (fine-tune), not both", file=sys.stderr)
        return 2
    if args.validate is not None:
        torch.set_num_threads(args.threads)
        scores = validate(trunk_of(args.validate), validation_images(args.data))
        print(f"{args.validate}: " + " ".join(f"sigma{int(k)} {v:.2f} dB" for k, v in scores.items()))
        return 0
    if args.export is not None:
        if not (args.workdir / "checkpoint.pt").exists():
            print(f"error: no checkpoint in {args.workdir} to export", file=sys.stderr)
            return 1
        export(args.workdir / "checkpoint.pt", args.export)
        return 0
    if args.patch % 8:
        print("error: --patch must be a multiple of 8", file=sys.stderr)
        return 2
    kw = {k: v for k, v in vars(args).items() if k not in ("export", "validate")}
    train(DenoiserConfig(**kw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
