"""Tiled analysis, streamed synthesis: memory bounded by the tile, not by the image.

The file format does not change: the whole latent is entropy coded as one
stream (it is 1/16 of the image's size per side), and only the two big
transforms run tile by tile.

* **Synthesis (exact).** A latent that fits one tile is decoded at once; a
  larger one streams through the integer g_s in bands of latent rows of about
  a tile's area, at most BAND_LATENTS latents for PyTorch's decoder (fllic.models.int_rows; the reference
  decoder's RowStream in numpy): each convolution keeps the few rows its kernel reaches back, so
  every pixel is computed once, with no tile halo recomputed, and is the
  untiled decode's pixel bit for bit, whatever the tile size.
  tests/test_tiling.py checks both decoders' bands against the whole image.
* **Analysis.** g_a (and the v2 trunk) run on tiles of the padded image with a
  halo of ANALYSIS_HALO pixels; the latents of each tile's own region are
  kept. This is encoder-side floating point: the latents differ from an
  untiled analysis by rounding-level amounts near tile edges, and the encoder
  then derives the stored pixels from them exactly as the decoder will.
"""

from __future__ import annotations

import sys
from typing import Iterator

import numpy as np
import torch

from fllic.decoder.synthesis import band_rows  # the reference decoder's bands: the same rows for both decoders

LATENT = 16  # pixels per latent (g_a's downsampling)
ANALYSIS_HALO = 128  # pixels, a multiple of LATENT
DEFAULT_TILE = 768  # pixels per tile side, a multiple of 64
# Streamed bands of PyTorch's g_s hold at most this many latents (0.29 MP): its largest buffers, 64 channels of
# int32 at half resolution, stay near 19 MB, under the 32 MB up to which fllic._heap.reusing keeps freed blocks
# for the next band. Chosen at 6000x4000 on a development scene: 0.93x the time of 752 latents a band at
# 1.61 GB, where 1880 took 0.89x at 1.75 GB and left the encoder 2.16 GB in an ad hoc sample
# (results/large_heap_bands_dev.md).
BAND_LATENTS = 1128


def spans(n: int, tile: int) -> Iterator[tuple[int, int]]:
    """[start, stop) ranges of at most ``tile`` covering 0..n."""
    for start in range(0, n, tile):
        yield start, min(n, start + tile)


def grid(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(r0, r1, c0, c1) of every tile of a height x width grid, in raster order."""
    return [(r0, r1, c0, c1) for r0, r1 in spans(height, tile) for c0, c1 in spans(width, tile)]


def windows(height: int, width: int, tile: int, halo: int):
    """Per tile: its own (r0, r1, c0, c1) and the window around it, halo cells wider where the grid goes on."""
    for r0, r1, c0, c1 in grid(height, width, tile):
        yield (r0, r1, c0, c1), (max(0, r0 - halo), min(height, r1 + halo), max(0, c0 - halo), min(width, c1 + halo))


def progress_bar(total: int, desc: str, progress: bool, unit: str = "tile"):
    """A tqdm bar on stderr, silent unless ``progress`` and there is more than one ``unit`` to count."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not progress or total <= 1, leave=False)


def to_tensor(rgb) -> torch.Tensor:
    """(1, 3, h, w) float in [0, 1] from an (h, w, 3) uint8 or uint16 array, normalised by its peak
    (255 or 65535), or a tensor already."""
    if isinstance(rgb, torch.Tensor):
        return rgb
    peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
    return torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32)).div_(peak)[None]


def pixel_window(x, a0: int, a1: int, b0: int, b1: int) -> torch.Tensor:
    """Rows a0:a1 and columns b0:b1 of an image as :func:`analysis` takes it, as a (1, 3, h, w) float tensor."""
    return to_tensor(x[:, :, a0:a1, b0:b1] if isinstance(x, torch.Tensor) else x[a0:a1, b0:b1])


def noise_window(noise_map: np.ndarray | None, a0: int, a1: int, b0: int, b1: int, device) -> torch.Tensor | None:
    """The same window of an (H, W) or (C, H, W) noise map, as a (1, C, h, w) tensor; None without a map."""
    if noise_map is None:
        return None
    part = torch.from_numpy(np.ascontiguousarray(noise_map[..., a0:a1, b0:b1], np.float32))
    return (part[None] if part.dim() == 2 else part)[None].to(device)


def analysis(net, x, sigma: torch.Tensor, q: torch.Tensor, tile: int = DEFAULT_TILE,
             progress: bool = False, noise_map: np.ndarray | None = None,
             estimates: dict | None = None) -> torch.Tensor:
    """y = g_a(x) (NCHW) computed tile by tile.

    ``x`` is the padded image, H and W multiples of 64: an (H, W, 3) uint8 or
    uint16 array, converted to float one tile at a time (a 24-megapixel image
    never exists in float), or a (1, 3, H, W) float tensor. ``noise_map``, an
    (H, W) or (C, H, W) array, is cut into the same windows for the trunk.
    ``estimates``, a dict kept for one image, sigma and map, holds each
    window's trunk estimate: coding the same image at another level (its
    g_a depends on the level, the trunk does not) skips the trunk.
    """
    if tile % 64:
        raise ValueError(f"tile must be a multiple of 64 pixels, got {tile}")
    h, w = (x.shape[2], x.shape[3]) if isinstance(x, torch.Tensor) else x.shape[:2]
    if h <= tile and w <= tile:
        return _window_analysis(net, x, sigma, q, noise_map, (0, h, 0, w), estimates)
    y = None
    tiles = list(windows(h, w, tile, ANALYSIS_HALO))
    with progress_bar(len(tiles), "analysis", progress) as bar:
        for (r0, r1, c0, c1), (a0, a1, b0, b1) in tiles:
            part = _window_analysis(net, x, sigma, q, noise_map, (a0, a1, b0, b1), estimates)
            if y is None:
                y = part.new_empty((1, part.shape[1], h // LATENT, w // LATENT))
            y[:, :, r0 // LATENT : r1 // LATENT, c0 // LATENT : c1 // LATENT] = part[
                :, :, (r0 - a0) // LATENT : (r1 - a0) // LATENT, (c0 - b0) // LATENT : (c1 - b0) // LATENT
            ]
            bar.update()
    return y


def _window_analysis(net, x, sigma: torch.Tensor, q: torch.Tensor, noise_map, window: tuple, estimates: dict | None):
    """g_a of the trunk's estimate of one window, the estimate taken from ``estimates`` where it is there."""
    est = None if estimates is None else estimates.get(window)
    if est is None:
        device = sigma.device
        est = net.estimate(pixel_window(x, *window).to(device), sigma, noise_window(noise_map, *window, device))
        if estimates is not None:
            estimates[window] = est
    return net.analysis_of_estimate(est, sigma, q)


def synthesis(decoder, u: torch.Tensor, p, sigma: float, q: float, tile: int = DEFAULT_TILE,
              progress: bool = False) -> torch.Tensor:
    """Fixed-point pixels (1, H, W, 3) of the integer g_s: the whole latent at once where it fits a ``tile``,
    else streamed in bands of latent rows about a tile's area (``band_rows``), at most BAND_LATENTS latents;
    identical either way."""
    _, hl, wl, _ = u.shape
    t = max(1, tile // LATENT)
    if hl <= t and wl <= t:
        return decoder.synthesis(u, p, sigma, q)
    band = min(band_rows(wl, tile), max(1, BAND_LATENTS // wl))
    return decoder.streamed_synthesis(u, p, sigma, q, band, progress)
