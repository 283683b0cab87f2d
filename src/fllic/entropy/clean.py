"""H(I): the code length of the clean image, estimated from the noisy one (Zhang & Wu 2024, Sec. 4).

The weakly supervised half of FLLIC never sees a clean image, yet must not
spend bits on noise: it needs an estimate of what the clean image would cost.
docs/theory.md derives the estimator; in short:

1. An orthonormal colour transform and an 8x8 block DCT keep white noise of
   std sigma white, with the same std, in every coefficient.
2. Each coefficient's variance is measured locally (the same frequency in the
   5x5 neighbouring blocks; the DC term's around its local mean, since the
   decoder predicts it from its neighbours). With noise independent of the image, the noisy
   variance is the clean variance plus sigma^2, so v_clean = max(v_noisy - sigma^2, 0).
   For a Gaussian coefficient this is the entropy power inequality met with
   equality; for heavier-tailed coefficients it is what the second moment allows.
3. A Gaussian coefficient of variance v costs max(0, 1/2 log2(v / D)) bits at
   distortion D (reverse water-filling), so the clean image costs
   sum over coefficients of that, divided by the pixels.
4. D and a gain are calibrated once, on clean *training* images, against the
   operational H(I): the bits the supervised model spends on the clean image
   at its default quality (``calibrate``).
5. The paper regresses H(I) from the noisy image with a learned branch. Here
   that is a ridge regression on the same denoised variances
   (``band_features``: the rate of five luma frequency bands and the chroma at
   three distortions, their products with σ, σ itself), fitted on the
   training images' operational bits (``fit_regressor``). Where a model's
   calibration carries its weights, ``estimate_clean_bpp`` uses them.

The calibrations ship in ``calibration.json``, one entry per model.

Everything is numpy; the DCT is a matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

CALIBRATED_MODEL = "fllic-awgn-v7"  # the model whose bits H(I) estimates when none is named (calibration.json)
BLOCK = 8
WINDOW = 5  # blocks per side of the local variance window
RIDGE = 1e-4  # the learned regressor's ridge (fit_regressor), chosen by cross-validation on training images
# Orthonormal colour transform (luma, two chroma differences): white noise stays white.
_COLOUR = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], np.float64) / np.sqrt([[3], [2], [6]])


@dataclass(frozen=True)
class Calibration:
    """bpp = gain * (Gaussian rate at distortion D, noise power scaled by kappa) + offset.

    kappa >= 1 offsets the upward bias that max(·, D) gives a noisy variance
    estimate; all four are fitted on noisy training images (``calibrate``).
    """

    distortion: float
    gain: float
    offset: float
    kappa: float = 1.0
    model_id: str = ""
    weights: tuple[float, ...] | None = None  # the learned regressor's (fit_regressor); None: the line above
    weights_grey: tuple[float, ...] | None = None  # the regressor fitted on grey images, for grey images

    def line(self) -> "Calibration":
        """The same calibration without its regressors: the calibrated Gaussian rate alone."""
        return replace(self, weights=None, weights_grey=None)


DEFAULT_CALIBRATION = "fllic-awgn-v2"  # the weak trainer's budget: H(I) in v2's bits, the weak models' reference


def load_calibration(model_id: str) -> Calibration:
    """The shipped calibration for ``model_id`` (src/fllic/entropy/calibration.json)."""
    import json
    from importlib import resources

    from fllic._errors import ModelMismatchError

    table = json.loads((resources.files("fllic.entropy") / "calibration.json").read_text())
    if model_id not in table:
        raise ModelMismatchError(f"no H(I) calibration for model {model_id!r}; calibrated: {', '.join(sorted(table))} "
                                 "(python -m fllic.bench.entropy --calibrate makes one)")
    entry = table[model_id]
    weights, grey = entry.get("regressor"), entry.get("regressor_grey")
    return Calibration(entry["distortion"], entry["gain"], entry["offset"], entry.get("kappa", 1.0), model_id,
                       None if weights is None else tuple(float(w) for w in weights),
                       None if grey is None else tuple(float(w) for w in grey))


def _dct_matrix(n: int = BLOCK) -> np.ndarray:
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def coefficients(image: np.ndarray) -> np.ndarray:
    """(channels, blocks_y, blocks_x, 64) orthonormal DCT coefficients of an 8-bit image (edges cropped)."""
    x = np.asarray(image, np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[2] == 3:
        x = x @ _COLOUR.T
    h, w = (x.shape[0] // BLOCK) * BLOCK, (x.shape[1] // BLOCK) * BLOCK
    blocks = x[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, x.shape[2]).transpose(4, 0, 2, 1, 3)
    d = _dct_matrix()
    return np.einsum("ki,cyxij,lj->cyxkl", d, blocks, d).reshape(x.shape[2], h // BLOCK, w // BLOCK, BLOCK * BLOCK)


def _local_mean(a: np.ndarray, k: int = WINDOW) -> np.ndarray:
    """Mean over k x k neighbouring blocks (axes 1 and 2), reflected at the edges."""
    pad = k // 2
    p = np.pad(a, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    c = np.cumsum(np.cumsum(np.pad(p, ((0, 0), (1, 0), (1, 0), (0, 0))), 1), 2)
    return (c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]) / (k * k)


def local_variance(image: np.ndarray) -> np.ndarray:
    """Each DCT coefficient's local noisy variance v_Y (5x5 neighbouring blocks; DC about its local mean)."""
    c = coefficients(image)
    v = _local_mean(c * c)
    # The DC term is predictable from its neighbours: its variance is about the local mean, not zero.
    v[..., 0] -= _local_mean(c[..., :1])[..., 0] ** 2
    return v


def rate_from_variance(v_noisy: np.ndarray, sigma: float, distortion: float, kappa: float = 1.0) -> float:
    """Bits per pixel: sum of max(0, ½log2(max(v_noisy - κσ², 0) / D)) over coefficients, per pixel."""
    if v_noisy.size == 0:
        return 0.0
    v_clean = np.maximum(v_noisy - kappa * float(sigma) ** 2, 0.0)
    bits = 0.5 * np.log2(np.maximum(v_clean / distortion, 1.0))
    return float(bits.sum() / (v_noisy.shape[1] * v_noisy.shape[2] * BLOCK * BLOCK))


def gaussian_rate(image: np.ndarray, sigma: float, distortion: float, kappa: float = 1.0) -> float:
    """Bits per pixel of the clean image under the Gaussian model, from the (noisy) image.

    ``sigma`` is the noise std in 8-bit units (0 for a clean image).
    """
    return rate_from_variance(local_variance(image), sigma, distortion, kappa)


def estimate_clean_bpp(noisy: np.ndarray, sigma: float, calibration: Calibration) -> float:
    """Estimated H(I) in bits per pixel, from the noisy image and its noise std (8-bit units):
    the learned regressor where the calibration has one (its grey fit for a grey image, where there is one),
    else the calibrated Gaussian rate."""
    weights = regressor_for(noisy, calibration)
    if weights is not None:
        return max(0.0, float(band_features(noisy, sigma) @ np.asarray(weights)))
    r = gaussian_rate(noisy, sigma, calibration.distortion, calibration.kappa)
    return max(0.0, calibration.gain * r + calibration.offset)


def regressor_for(image: np.ndarray, calibration: Calibration) -> tuple[float, ...] | None:
    """The regressor weights ``estimate_clean_bpp`` applies to ``image``: the grey fit for a grey image where
    there is one, else the colour fit; None where the calibration has none (the line)."""
    if calibration.weights_grey is not None and (np.ndim(image) == 2 or np.shape(image)[2] == 1):
        return calibration.weights_grey
    return calibration.weights


# The regressor's frequency bands: k + l of the 8x8 DCT frequency (k, l), from the DC term to the finest.
BANDS = ((0, 0), (1, 2), (3, 5), (6, 9), (10, 14))
BAND_DISTORTIONS = (32.0, 90.0, 256.0)  # each band's Gaussian rate is taken at these distortions
BAND_KAPPA = 1.1  # the regressor's noise subtraction, κσ² (the line's fitted κ for v1, v2 and v7)


def band_features(image: np.ndarray, sigma: float, kappa: float = BAND_KAPPA) -> np.ndarray:
    """The learned regressor's inputs: per band, the Gaussian rate of the denoised variances, at three distortions.

    The luma's five bands and the chroma's total, each at the three ``BAND_DISTORTIONS``
    (18 rates), the same 18 times σ/50 (so the weights may move with the noise), σ/50 and 1.
    A grey image is its own luma: its variances count three times (a replicated grey's luma is √3·g)
    with noise 3σ², and its chroma rates are zero.
    """
    v = local_variance(image)
    luma_scale = 3.0 if v.shape[0] == 1 else 1.0
    luma = np.maximum(luma_scale * (v[0] - kappa * float(sigma) ** 2), 0.0)
    chroma = np.maximum(v[1:] - kappa * float(sigma) ** 2, 0.0)
    pixels = v.shape[1] * v.shape[2] * BLOCK * BLOCK
    k, l = np.meshgrid(np.arange(BLOCK), np.arange(BLOCK), indexing="ij")
    band = (k + l).ravel()
    rates = []
    for d in BAND_DISTORTIONS:
        r = 0.5 * np.log2(np.maximum(luma / d, 1.0))
        rates += [r[..., (band >= lo) & (band <= hi)].sum() / pixels for lo, hi in BANDS]
        rates.append(0.5 * np.log2(np.maximum(chroma / d, 1.0)).sum() / pixels)
    rates = np.asarray(rates)
    return np.concatenate([rates, rates * float(sigma) / 50.0, [float(sigma) / 50.0, 1.0]])


def fit_regressor(features: np.ndarray, operational_bpp: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Weights w minimising Σ ((features·w − H) / H)² + ridge·|w|² (the constant unpenalised): least squares on
    the relative error, the figure of merit, with a ridge that keeps 38 weights steady on a few hundred images."""
    a = np.asarray(features, np.float64) / np.asarray(operational_bpp, np.float64)[:, None]
    penalty = ridge * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(a.T @ a + penalty, a.T @ np.ones(len(a)))


def calibrate(noisy: list[np.ndarray], sigmas: list[float], operational_bpp: list[float], model_id: str = "",
              distortions=tuple(2.0 ** np.arange(0, 8, 0.5)), kappas=(1.0, 1.1, 1.2, 1.35, 1.5)) -> Calibration:
    """The calibration whose estimate on noisy training images best matches the clean images' operational bits.

    For each (D, kappa) on the grid a line, fitted by least squares on the
    relative error, maps the Gaussian rate to the operational bpp; the pair with the least mean absolute relative
    error wins. Each noisy image comes with its sigma and its clean image's bits.
    """
    target = np.asarray(operational_bpp, np.float64)
    variances = [local_variance(img) for img in noisy]
    best = None
    for d in distortions:
        for kappa in kappas:
            r = np.array([rate_from_variance(v, s, float(d), kappa) for v, s in zip(variances, sigmas)])
            # Least squares on the relative error (weights 1/target): the figure of merit is relative.
            gain, offset = np.polyfit(r, target, 1, w=1.0 / target) if np.ptp(r) > 0 else (1.0, 0.0)
            err = np.mean(np.abs(np.maximum(gain * r + offset, 0.0) - target) / target)
            if best is None or err < best[0]:
                best = (err, Calibration(float(d), float(gain), float(offset), float(kappa), model_id))
    return best[1]
