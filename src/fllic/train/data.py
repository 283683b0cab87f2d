"""Training data: clean images decoded once into a cache, then random noisy patches.

Sources (all training sets, never a test set): CBSD432 and WikipediaPhotos in
colour, the natural photographs of Waterloo, and BSD400 in grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

WATERLOO_NATURAL = ("bird", "frog", "goldhill1", "goldhill2", "mountain", "sail", "tulips", "washsat", "zelda")
COLOUR_SETS = ("CBSD432", "WikipediaPhotos")


def _load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)


def collect_images(data_root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(colour images HxWx3, grey images HxW) as uint8 arrays."""
    colour, grey = [], []
    for name in COLOUR_SETS:
        colour += [_load(p) for p in sorted((data_root / name).glob("*")) if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    for stem in WATERLOO_NATURAL:
        path = data_root / "Waterloo" / f"{stem}.png"
        if not path.exists():
            continue
        img = _load(path)
        (colour if img.ndim == 3 else grey).append(img)
    grey += [_load(p) for p in sorted((data_root / "BSD400").glob("*.png"))]
    return colour, grey


def load_cached(data_root: Path, cache: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if cache.exists():
        with np.load(cache, allow_pickle=False) as f:
            n_c = int(f["n_colour"])
            keys = sorted((k for k in f.files if k.startswith("img")), key=lambda k: int(k[3:]))
            imgs = [f[k] for k in keys]
        return imgs[:n_c], imgs[n_c:]
    colour, grey = collect_images(data_root)
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"img{i}": a for i, a in enumerate(colour + grey)}
    np.savez(cache, n_colour=len(colour), **arrays)
    return colour, grey


class PatchSampler:
    """Random clean/noisy patch pairs; sigma ~ U[0, sigma_max], noise rounded and clipped."""

    def __init__(self, colour, grey, patch: int, grey_fraction: float, sigma_max: float, seed: int):
        self.colour = [c for c in colour if min(c.shape[:2]) >= patch]
        self.grey = [g for g in grey if min(g.shape) >= patch]
        self.patch, self.grey_fraction, self.sigma_max = patch, grey_fraction, sigma_max
        self.rng = np.random.default_rng(seed)

    def _crop(self, img: np.ndarray) -> np.ndarray:
        p, rng = self.patch, self.rng
        i = rng.integers(0, img.shape[0] - p + 1)
        j = rng.integers(0, img.shape[1] - p + 1)
        c = img[i : i + p, j : j + p]
        if c.ndim == 2:
            c = np.repeat(c[..., None], 3, axis=2)
        c = np.rot90(c, rng.integers(4))
        return c[:, ::-1] if rng.integers(2) else c

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(clean, noisy) in [0, 1] as (n, 3, p, p) float tensors, and sigma (n,) in 8-bit units."""
        rng = self.rng
        clean = np.empty((n, self.patch, self.patch, 3), np.float32)
        noisy = np.empty_like(clean)
        sigma = rng.uniform(0.0, self.sigma_max, size=n)
        for k in range(n):
            is_grey = rng.random() < self.grey_fraction
            if is_grey:
                src = self.grey if self.grey and rng.random() < 0.7 else self.colour
                c = self._crop(src[rng.integers(len(src))]).astype(np.float32)
                c = np.repeat(c.mean(axis=2, keepdims=True).round(), 3, axis=2)
                noise = rng.normal(0.0, sigma[k], size=c.shape[:2] + (1,))
            else:
                c = self._crop(self.colour[rng.integers(len(self.colour))]).astype(np.float32)
                noise = rng.normal(0.0, sigma[k], size=c.shape)
            clean[k] = c
            noisy[k] = np.clip(np.rint(c + noise), 0, 255)
        to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous() / 255.0
        return to_t(clean), to_t(noisy), torch.from_numpy(sigma.astype(np.float32))


# -- clean targets for the v2 estimator ---------------------------------------------
VALIDATION_PHOTOS = ("045", "046", "047", "048", "049")  # WikipediaPhotos held out for validation


def _half(img: np.ndarray) -> np.ndarray:
    """Downscale by 2 with an antialiasing filter: removes the BSD images' JPEG blocks."""
    from PIL import Image

    im = Image.fromarray(img)
    return np.asarray(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS))


def clean_targets(data_root: Path, cache: Path) -> list[np.ndarray]:
    """Colour training images with clean targets (grey patches are made from them).

    CBSD432 downscaled by 2 (its JPEG block artifacts shrink below a pixel),
    WikipediaPhotos at full size and downscaled by 2 (less the validation
    photos), and Waterloo's natural colour photographs.
    """
    if cache.exists():
        with np.load(cache, allow_pickle=False) as f:
            return [f[k] for k in sorted(f.files, key=lambda k: int(k[3:]))]
    images = [_half(_load(p)) for p in sorted((data_root / "CBSD432").glob("*.jpg"))]
    for p in sorted((data_root / "WikipediaPhotos").glob("*.png")):
        if p.stem not in VALIDATION_PHOTOS:
            img = _load(p)
            images += [img, _half(img)]
    for stem in WATERLOO_NATURAL:
        path = data_root / "Waterloo" / f"{stem}.png"
        if path.exists() and (img := _load(path)).ndim == 3:
            images.append(img)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **{f"img{i}": a for i, a in enumerate(images)})
    return images


def validation_images(data_root: Path, size: int = 256) -> list[np.ndarray]:
    """Centre crops of the held-out WikipediaPhotos, float64, for the training curve."""
    out = []
    for stem in VALIDATION_PHOTOS:
        path = data_root / "WikipediaPhotos" / f"{stem}.png"
        if path.exists():
            img = _load(path)
            i, j = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
            out.append(img[i : i + size, j : j + size].astype(np.float64))
    return out


# -- camera noise for the noise-map trunk (issue 9) --------------------------------------
class MixedNoiseSampler:
    """Patches with AWGN or camera noise, each with the per-pixel noise map the trunk reads.

    A ``camera_fraction`` of the patches goes through the camera pipeline
    (:mod:`fllic.noise.camera`: unprocessing, Bayer mosaic, shot and read noise
    over the whole sensor range, demosaicing, reprocessing), a
    ``jpeg_fraction`` of those then through JPEG at quality 75-100, and an
    ``isp_fraction`` of them through a camera's own JPEG engine instead
    (:func:`fllic.noise.camera.isp_noise`: noise reduction, sharpening, JPEG), and a
    ``shaped_fraction`` of them through noise synthesised from real camera JPEGs'
    measured statistics instead (:func:`fllic.noise.camera.shaped_noise`). Their
    target is the pipeline's noise-free output and their map the true
    noise-level function, read as the blind estimator's map is read
    (:func:`fllic.noise.camera.true_noise_map`), scaled by a random factor
    exp(N(0, ``map_jitter``)) so the trunk tolerates the estimator's error. The
    rest is AWGN with sigma ~ U[0, sigma_max] and a constant map, as in
    :class:`PatchSampler`; a ``grey_fraction`` of those is grey (the colour
    crop's mean, with grey noise), so the codec also trains on the grey images
    it codes (v3's mixed phase had none). A second map channel tells the kinds apart (1
    correlated, 0 white): per-pixel std alone cannot, and a trunk fine-tuned
    without it smoothed white noise as if it were camera noise (-1.2 dB at
    sigma 15 on the validation crops after 600 steps).
    """

    def __init__(self, colour, patch: int, sigma_max: float, camera_fraction: float, jpeg_fraction: float = 0.3,
                 map_jitter: float = 0.1, seed: int = 0, grey_fraction: float = 0.0, isp_fraction: float = 0.0,
                 shaped_fraction: float = 0.0):
        self.colour = [c for c in colour if min(c.shape[:2]) >= patch + 16]  # camera patches take a margin
        self.patch, self.sigma_max, self.grey_fraction = patch, sigma_max, grey_fraction
        self.camera_fraction, self.jpeg_fraction, self.map_jitter = camera_fraction, jpeg_fraction, map_jitter
        self.isp_fraction, self.shaped_fraction = isp_fraction, shaped_fraction
        self.rng = np.random.default_rng(seed)

    def _crop(self, side: int) -> np.ndarray:
        rng = self.rng
        img = self.colour[rng.integers(len(self.colour))]
        i, j = rng.integers(0, img.shape[0] - side + 1), rng.integers(0, img.shape[1] - side + 1)
        c = np.rot90(img[i : i + side, j : j + side], rng.integers(4))
        return np.ascontiguousarray(c[:, ::-1] if rng.integers(2) else c)

    def _camera(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from fllic.noise.camera import (camera_noise, isp_noise, noise_free, sample_params, shaped_noise,
                                        true_noise_map)

        rng, p = self.rng, self.patch
        clean = self._crop(p + 16)  # an 8-pixel margin keeps demosaicing's and JPEG's edges out of the patch
        if rng.random() < self.shaped_fraction:
            noisy, ref, _ = shaped_noise(clean, rng)
        elif rng.random() < self.isp_fraction:
            noisy, ref, _ = isp_noise(clean, rng)
        else:
            params = sample_params(rng, jpeg=bool(rng.random() < self.jpeg_fraction))
            noisy, _ = camera_noise(clean, rng, params)
            ref = noise_free(clean, params)
        level = true_noise_map(noisy, ref) * np.exp(rng.normal(0.0, self.map_jitter))
        cut = (slice(8, 8 + p), slice(8, 8 + p))
        return ref[cut], noisy[cut], np.stack([level[cut], np.ones((p, p))])

    def _awgn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        clean = self._crop(self.patch).astype(np.float64)
        sigma = self.rng.uniform(0.0, self.sigma_max)
        if self.grey_fraction and self.rng.random() < self.grey_fraction:
            clean = np.repeat(clean.mean(axis=2, keepdims=True).round(), 3, axis=2)
            noise = np.repeat(self.rng.normal(0.0, sigma, clean.shape[:2] + (1,)), 3, axis=2)
        else:
            noise = self.rng.normal(0.0, sigma, clean.shape)
        noisy = np.clip(np.rint(clean + noise), 0, 255)
        return clean, noisy, np.stack([np.full(clean.shape[:2], sigma), np.zeros(clean.shape[:2])])

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(target, noisy) in [0, 1] as (n, 3, p, p) float tensors, and maps (n, 2, p, p): the noise std in
        8-bit units, and the noise kind (1 correlated, 0 white)."""
        parts = [self._camera() if self.rng.random() < self.camera_fraction else self._awgn() for _ in range(n)]
        to_t = lambda k: torch.from_numpy(np.stack([q[k] for q in parts]).astype(np.float32))
        target, noisy, level = to_t(0), to_t(1), to_t(2)
        return target.permute(0, 3, 1, 2) / 255.0, noisy.permute(0, 3, 1, 2) / 255.0, level
