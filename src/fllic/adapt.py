"""fllic adapt: fit the encoder's denoising trunk to one camera, from its noisy photographs alone.

The FLLIC paper's weakly supervised setting (Zhang & Wu 2024, Sec. 3.3):
no clean reference exists, only the camera's noisy photographs. The trunk
(the encoder-side estimate; the decoder never sees it) is fine-tuned on them
with a noisy-only objective. Neighbor2Neighbor (Huang et al., CVPR 2021):
each 2x2 cell of a noisy crop gives two neighbouring pixels, so the crop
gives two half-resolution sub-images g1(y) and g2(y) of the same scene with
different noise draws; the trunk maps g1(y) to g2(y), and a regulariser
ties that map to the trunk's full-resolution output,

    L = |f(g1(y)) - g2(y)|² + γ |f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y)))|²,

plus an anchor ``anchor`` · |f(g1(y)) - f0(g1(y))|² to the stock trunk f0, so
a few photographs cannot pull it far. Neighbouring pixels of demosaiced
camera noise are correlated (results/real_noise.md), which biases the first
term towards keeping noise; the anchor and the regulariser bound that.

The default objective, ``recorrupt``, suits that correlated noise better: the
Recorrupted-to-Recorrupted construction (Pang et al., CVPR 2021) with the
camera's own noise. The stock trunk's residual on each photograph, over its
noise map, gives samples n' of that camera's noise, correlations included;
the trunk maps y + α n' to y - n' / α, whose noises are uncorrelated with
each other, so in expectation it learns to map to the clean image
(:func:`recorrupt_loss`), with the same anchor. On PolyU-dev (adapted on
half the scenes, measured on the others), at a learning rate of 3e-5 with
the anchor at 0.5 neither objective beat the stock model (recorruption
-0.03 dB in 30 minutes; Neighbor2Neighbor -0.32 dB in 15;
results/real_polyu_adapted_recorrupt_v8.md, results/real_polyu_adapted.md);
the anchor and the small steps held it at the stock trunk. At 1e-4 with the
anchor at 0.1 it gained +0.10 dB at 4 % more bits in 90 minutes on one
thread; at 3e-4 with no anchor, +0.18 dB at 7 % fewer bits in 45
(results/real_polyu_adapted_recorrupt_lr1e-4_v8.md, ..._lr3e-4_free_v8.md),
now the defaults. At these settings, against the stock model, running on to
120 minutes (+0.06 dB), Neighbor2Neighbor (-0.18 dB) and noise samples at
the map's level (-0.08 dB) did worse (..._lr3e-4_free_v8_120min.md,
real_polyu_adapted_n2n_lr3e-4_free_v8.md, ..._level1_v8.md).

The trunk reads the blind noise map of each photograph, as ``fllic
compress`` computes it, so the adapted model is used exactly like the stock
one. Training is bounded by ``minutes`` (or ``steps``), shows a progress
bar, checkpoints to a work folder and resumes from it. Nothing but the
given photographs is read: no reference, no clean image.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fllic._errors import InputError

OBJECTIVES = ("neighbor2neighbor", "recorrupt")
ESTIMATE_SIDE = 1024  # the blind level of a photograph is read on its centre crop of this side


@dataclass
class AdaptOptions:
    minutes: float = 20.0
    steps: int | None = None  # stop after this many steps instead (or as well)
    patch: int = 128  # crop side, a multiple of 16 (the half-resolution sub-images feed an 8-multiple trunk)
    batch: int = 8
    lr: float = 3e-4  # with no anchor: results/real_polyu_adapted_recorrupt_lr3e-4_free_v8.md (PolyU-dev fold b)
    gamma: float = 1.0  # Neighbor2Neighbor's regulariser weight
    anchor: float = 0.0  # weight of the pull towards the stock trunk (0.5 and 0.1 held it back: module docstring)
    threads: int = 2
    seed: int = 0
    checkpoint_every: int = 25
    objective: str = "recorrupt"  # or "neighbor2neighbor" (module docstring; results/real_polyu_adapted*.md)
    alpha: float = 1.0  # the recorruption's scale
    # the noise samples' RMS over the noise map; None: the residual's own (unit_residual; 1.0 lost 0.08 dB on
    # PolyU-dev fold b: results/real_polyu_adapted_recorrupt_level1_v8.md)
    sample_level: float | None = None


@dataclass
class _Photo:
    pixels: np.ndarray  # (H, W, 3) uint8
    level: object  # fllic.noise.NoiseLevel as the base model reads it
    residual: np.ndarray | None = None  # (h, w, 3) float32: the stock trunk's residual over the noise map


def read_photos(paths: list[Path], base) -> list[_Photo]:
    """The noisy photographs as 8-bit RGB, each with its blind noise level (the model's reading)."""
    from fllic.codec import _blind_level, _level_for
    from fllic.imageio import read_image_file

    photos = []
    for path in paths:
        img = read_image_file(path).array
        if img.ndim == 3 and img.shape[2] in (2, 4):
            img = img[..., :-1]
        if img.dtype == np.uint16:
            img = np.rint(img / 257.0).astype(np.uint8)
        if img.ndim == 2 or img.shape[2] == 1:
            img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
        photos.append(_Photo(np.ascontiguousarray(img), _level_for(base, _blind_level(_centre(img)))))
    return photos


def _centre(img: np.ndarray, side: int = ESTIMATE_SIDE) -> np.ndarray:
    i, j = max(0, (img.shape[0] - side) // 2), max(0, (img.shape[1] - side) // 2)
    return img[i : i + side, j : j + side]


class _Crops:
    """Random noisy crops with their noise maps (the trunk's conditioning), flipped and rotated."""

    def __init__(self, photos: list[_Photo], patch: int, seed: int):
        self.photos = [p for p in photos if min(p.pixels.shape[:2]) >= patch]
        if not self.photos:
            raise InputError(f"no photograph is at least {patch}x{patch} pixels; give larger photographs")
        self.patch, self.rng = patch, np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x, maps, noise): ``n`` crops in [0, 1], their (2, H, W) noise maps, and for recorruption a
        sample of the same photograph's noise at each crop's level (None without residuals)."""
        xs, maps, noise = [], [], []
        for _ in range(n):
            photo = self.photos[self.rng.integers(len(self.photos))]
            h, w = photo.pixels.shape[:2]
            i, j = self.rng.integers(0, h - self.patch + 1), self.rng.integers(0, w - self.patch + 1)
            crop = photo.pixels[i : i + self.patch, j : j + self.patch]
            m = _level_maps(crop, photo.level)
            k, flip = self.rng.integers(4), self.rng.integers(2)
            crop, m = np.rot90(crop, k, (0, 1)), np.rot90(m, k, (1, 2))
            if flip:
                crop, m = crop[:, ::-1], m[:, :, ::-1]
            xs.append(np.ascontiguousarray(crop.transpose(2, 0, 1)))
            maps.append(np.ascontiguousarray(m))
            if photo.residual is not None:
                noise.append(self._noise_sample(photo.residual) * m[0] / 255.0)
        x = torch.from_numpy(np.stack(xs).astype(np.float32) / 255.0)
        samples = torch.from_numpy(np.stack(noise).astype(np.float32)) if noise else None
        return x, torch.from_numpy(np.stack(maps).astype(np.float32)), samples

    def _noise_sample(self, residual: np.ndarray) -> np.ndarray:
        """(3, patch, patch): a random crop of a unit-level residual, rotated, flipped and signed at random."""
        h, w = residual.shape[:2]
        i, j = self.rng.integers(0, h - self.patch + 1), self.rng.integers(0, w - self.patch + 1)
        r = np.rot90(residual[i : i + self.patch, j : j + self.patch], self.rng.integers(4), (0, 1))
        if self.rng.integers(2):
            r = r[:, ::-1]
        return (1.0 if self.rng.integers(2) else -1.0) * r.transpose(2, 0, 1)


def _level_maps(crop: np.ndarray, level) -> np.ndarray:
    """(2, H, W): the noise std per pixel (8-bit units) and the noise kind, as the trunk reads them."""
    from fllic.noise import noise_map

    if level.correlated and level.nlf is not None and level.nlf.sigma.size:
        return np.stack([noise_map(crop, level.nlf), np.ones(crop.shape[:2])])
    return np.stack([np.full(crop.shape[:2], level.sigma), np.zeros(crop.shape[:2])])


def unit_residual(teacher, photo: _Photo, side: int = ESTIMATE_SIDE, bound: float = 4.0,
                  level: float | None = None) -> np.ndarray:
    """(h, w, 3): the stock trunk's residual (noisy minus estimate) on the photograph's centre crop, over the
    noise map, clipped to ±``bound``: samples of the camera's own noise, its spatial and cross-channel
    correlation included, at unit level (for recorruption). With ``level``, rescaled to that RMS: the
    stock trunk leaves part of the noise in its estimate, so its residual's RMS is about half the map's,
    and recorruption in theory wants samples as large as the noise. Measured, samples at the map's level
    did worse than the residual's own (AdaptOptions.sample_level), which stays the default."""
    crop = _centre(photo.pixels, side)
    crop = crop[: crop.shape[0] // 16 * 16, : crop.shape[1] // 16 * 16]
    m = _level_maps(crop, photo.level)
    x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))[None].astype(np.float32) / 255.0)
    with torch.no_grad():
        est = teacher(x, torch.from_numpy(m[None].astype(np.float32)))
    r = (x - est)[0].numpy().transpose(1, 2, 0) * 255.0 / np.maximum(m[0], 0.5)[..., None]
    r = np.clip(r, -bound, bound)
    if level is not None:
        r *= level / max(float(np.sqrt(np.mean(r * r))), 1e-6)
    return r.astype(np.float32)


def neighbour_pair(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbor2Neighbor's sub-sampler: the positions (N, H/2 * W/2), 0 to 3, of the two pixels of each
    2x2 cell of ``x`` (N, C, H, W): g1 takes one of the four at random, g2 one of its two edge neighbours."""
    n, _, h, w = x.shape
    cells = (h // 2) * (w // 2)
    first = torch.randint(0, 4, (n, cells), generator=gen)
    # the two edge neighbours within a 2x2 cell of position k = 2 * row + col: flip col, or flip row
    second = torch.where(torch.randint(0, 2, (n, cells), generator=gen).bool(), first ^ 1, first ^ 2)
    return first, second


def sub_image(x: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
    """The half-resolution sub-image of ``x`` (N, C, H, W) taking pixel ``pick`` (N, cells) of each 2x2 cell."""
    n, c, h, w = x.shape
    cells = torch.nn.functional.pixel_unshuffle(x, 2).view(n, c, 4, h // 2, w // 2)
    index = pick.view(n, 1, 1, h // 2, w // 2).expand(n, c, 1, h // 2, w // 2)
    return cells.gather(2, index).squeeze(2)


def n2n_loss(trunk, teacher, x: torch.Tensor, maps: torch.Tensor, gen: torch.Generator,
             gamma: float, anchor: float) -> torch.Tensor:
    """Neighbor2Neighbor's loss with its regulariser, plus the anchor to the stock trunk (module docstring)."""
    first, second = neighbour_pair(x, gen)
    g1, g2 = sub_image(x, first), sub_image(x, second)
    m1 = sub_image(maps, first)
    out = trunk(g1, m1)
    with torch.no_grad():
        full = trunk(x, maps)
        prior = teacher(g1, m1)
    gap = sub_image(full, first) - sub_image(full, second)
    loss = ((out - g2) ** 2).mean() + gamma * ((out - g2 - gap) ** 2).mean()
    return loss + anchor * ((out - prior) ** 2).mean()


def recorrupt_loss(trunk, teacher, x: torch.Tensor, maps: torch.Tensor, noise: torch.Tensor,
                   alpha: float, anchor: float) -> torch.Tensor:
    """Recorrupted-to-Recorrupted (Pang et al., CVPR 2021) with the camera's own noise: with n' a sample of
    noise of the photograph's covariance, y + α n' and y - n' / α carry noises uncorrelated with each other,
    so mapping the first to the second is, in expectation, mapping to the clean image. The samples are the
    stock trunk's residuals elsewhere in the photograph, at each pixel's level (:func:`unit_residual`), so
    spatially correlated noise (demosaicing, JPEG) keeps its correlation. The trunk reads the noise map
    scaled by sqrt(1 + α²), the level of y + α n'; plus the anchor to the stock trunk."""
    scale = torch.ones_like(maps)
    scale[:, 0] = math.sqrt(1.0 + alpha * alpha)
    y_hat, y_bar, m_hat = x + alpha * noise, x - noise / alpha, maps * scale
    out = trunk(y_hat, m_hat)
    with torch.no_grad():
        prior = teacher(y_hat, m_hat)
    return ((out - y_bar) ** 2).mean() + anchor * ((out - prior) ** 2).mean()


@dataclass
class AdaptResult:
    path: Path
    steps: int
    minutes: float
    loss: float


def adapt(photos: list[Path], out: Path, base=None, options: AdaptOptions | None = None,
          workdir: Path | None = None, model_id: str | None = None, progress: bool = True) -> AdaptResult:
    """Fit ``base``'s trunk (default: the camera model auto mode picks) to ``photos`` and write ``out``.

    Resumes from ``workdir`` (default ``~/.cache/fllic/adapt/<out's stem>-work``)
    when it holds a checkpoint of the same photographs and base.
    """
    from tqdm import tqdm

    from fllic.models.adapted import save_adapted, with_trunk
    from fllic.models.registry import CAMERA_JPEG_MODEL, resolve

    opts = options or AdaptOptions()
    if opts.patch % 16 or opts.patch < 32:
        raise InputError(f"patch must be a multiple of 16, at least 32, got {opts.patch}")
    if not photos:
        raise InputError("give at least one noisy photograph to adapt to")
    torch.set_num_threads(opts.threads)
    stock = resolve(base if base is not None else CAMERA_JPEG_MODEL)
    teacher = copy.deepcopy(stock.net.trunk).float().eval()
    trunk = copy.deepcopy(stock.net.trunk).float().train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    optimiser = torch.optim.Adam(trunk.parameters(), lr=opts.lr)
    workdir = workdir or Path.home() / ".cache" / "fllic" / "adapt" / f"{Path(out).stem}-work"
    # Settings left unset stay out of the key, so a work folder from before a setting existed still resumes.
    settings = {k: v for k, v in asdict(opts).items()
                if k not in ("minutes", "steps", "threads", "checkpoint_every") and v is not None}
    # The base's id beside its weights: models that share weights read the noise differently (camera-v6, -v7).
    key = {"photos": sorted(str(Path(p).resolve()) for p in photos), "base": stock.hash.hex(),
           "base_id": stock.meta.get("id"), **settings}
    step, elapsed = _resume(workdir / "checkpoint.pt", key, trunk, optimiser)
    if opts.objective not in OBJECTIVES:
        raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {opts.objective!r}")
    read = read_photos([Path(p) for p in photos], stock)
    if opts.objective == "recorrupt":
        read = [_Photo(p.pixels, p.level, unit_residual(teacher, p, level=opts.sample_level)) for p in read]
    crops = _Crops(read, opts.patch, opts.seed + step)
    gen = torch.Generator().manual_seed(opts.seed + step)
    total = opts.steps
    bar = tqdm(total=total, initial=step, unit="step", desc="adapting", disable=not progress)
    start, loss_avg = time.time(), float("nan")  # --minutes bounds this run; a resumed run adds to the steps
    while (total is None or step < total) and (time.time() - start) / 60 < opts.minutes:
        x, maps, noise = crops.batch(opts.batch)
        if noise is None:
            loss = n2n_loss(trunk, teacher, x, maps, gen, opts.gamma, opts.anchor)
        else:
            loss = recorrupt_loss(trunk, teacher, x, maps, noise, opts.alpha, opts.anchor)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trunk.parameters(), 1.0)
        optimiser.step()
        step += 1
        loss_avg = loss.item() if math.isnan(loss_avg) else 0.9 * loss_avg + 0.1 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.2e}", minutes=f"{(time.time() - start) / 60:.1f}")
        if step % opts.checkpoint_every == 0:
            _checkpoint(workdir / "checkpoint.pt", key, trunk, optimiser, step, elapsed + time.time() - start)
    bar.close()
    minutes = (elapsed + time.time() - start) / 60
    _checkpoint(workdir / "checkpoint.pt", key, trunk, optimiser, step, minutes * 60)
    name = model_id or Path(out).stem
    meta = {"adapt_steps": step, "adapt_minutes": round(minutes, 2), "adapt_photos": len(photos),
            "adapt_objective": opts.objective}
    save_adapted(with_trunk(stock, trunk.state_dict(), name, meta), Path(out))
    return AdaptResult(Path(out), step, minutes, loss_avg)


def _resume(path: Path, key: dict, trunk, optimiser) -> tuple[int, float]:
    """(step, seconds) of a checkpoint of this very run, loaded into ``trunk`` and ``optimiser``; (0, 0) if none."""
    if not path.exists():
        return 0, 0.0
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("key") != key:
        return 0, 0.0
    trunk.load_state_dict(state["trunk"])
    optimiser.load_state_dict(state["optimiser"])
    return int(state["step"]), float(state["seconds"])


def _checkpoint(path: Path, key: dict, trunk, optimiser, step: int, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save({"key": key, "trunk": trunk.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                "seconds": seconds}, tmp)
    tmp.replace(path)
