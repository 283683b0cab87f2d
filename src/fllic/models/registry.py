"""The shipped models: stable ids, what each is for, and lazy loading of their weights."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fllic._deps import ENCODE_HINT
from fllic._errors import ModelMismatchError


@dataclass(frozen=True)
class ModelInfo:
    id: str
    filename: str
    description: str
    retired: bool = False  # its files decode (its decoder part ships), but the wheel carries no encoder for it


SHIPPED: tuple[ModelInfo, ...] = (
    ModelInfo(
        "fllic-awgn-v1",
        "fllic-awgn-v1.pt",
        "supervised FLLIC for additive white Gaussian noise, sigma 0-50; RGB, and grey by replication",
        retired=True,
    ),
    ModelInfo(
        "fllic-awgn-v2",
        "fllic-awgn-v2.pt",
        "v2: an encoder-side denoising trunk ahead of the codec, AWGN sigma 0-50, six quality levels "
        "with a default chosen per sigma",
        retired=True,
    ),
    ModelInfo(
        "fllic-weak-v2",
        "fllic-weak-v2.pt",
        "weakly supervised: the v2 architecture trained from noisy images only (Neighbor2Neighbor for the trunk, "
        "fidelity to the noisy image, a rate budget from the clean image's estimated entropy), AWGN sigma 5-50",
        retired=True,
    ),
    ModelInfo(
        "fllic-camera-v2",
        "fllic-camera-v2.pt",
        "camera noise (signal-dependent, demosaiced, JPEG 75-100): v2 with a trunk that reads a per-pixel noise "
        "map and the noise kind, and a codec fine-tuned on its estimates; auto mode's camera model before "
        "fllic-camera-v3",
        retired=True,
    ),
    ModelInfo(
        "fllic-awgn-v3",
        "fllic-awgn-v3.pt",
        "v3: v2's AWGN trunk ahead of a wider codec (192 latent channels) trained on the estimates of both the AWGN "
        "and the camera trunks, AWGN sigma 0-50",
        retired=True,
    ),
    ModelInfo(
        "fllic-camera-v3",
        "fllic-camera-v3.pt",
        "camera noise: fllic-camera-v2's trunk (noise map and kind) ahead of v3's codec; what --sigma auto picks "
        "for correlated noise in raw conversions (PNG, TIFF); shares fllic-camera-v2's trunk file",
    ),
    ModelInfo(
        "fllic-awgn-v4",
        "fllic-awgn-v4.pt",
        "v4: v3's codec trained 16,758 more steps on a GPU (large patches last, grey patches added), "
        "v2's AWGN trunk ahead of it, AWGN sigma 0-50",
        retired=True,
    ),
    ModelInfo(
        "fllic-camera-v4",
        "fllic-camera-v4.pt",
        "camera noise: fllic-camera-v2's trunk (noise map and kind) ahead of v4's codec",
        retired=True,
    ),
    ModelInfo(
        "fllic-awgn-v5",
        "fllic-awgn-v5.pt",
        "v5: v2's AWGN trunk trained further on a GPU (14,220 steps, +0.3 dB on the held-out crops) ahead of "
        "v4's codec fine-tuned to code its estimate on 384-pixel patches, AWGN sigma 0-50",
        retired=True,
    ),
    ModelInfo(
        "fllic-awgn-v6",
        "fllic-awgn-v6.pt",
        "v6: v5's trunk trained 18,200 more steps on a GPU on cleaner targets (photographs as JPEG 97) ahead "
        "of v5's codec fine-tuned 7,500 steps to code its estimate, AWGN sigma 0-50",
        retired=True,
    ),
    ModelInfo(
        "fllic-awgn-v7",
        "fllic-awgn-v7.pt",
        "v7: fllic-awgn-v6's networks with eight quality levels spaced by a factor of about 1.4 in step "
        "(v6 has six), so the default per sigma sits nearer the 0.2 dB rule, AWGN sigma 0-50; shares v6's "
        "encoder and trunk files",
    ),
    ModelInfo(
        "fllic-awgn-v8",
        "fllic-awgn-v8.pt",
        "v8: v7's codec with a deeper g_s (three ResBlocks at half resolution), trained on, its half and quarter "
        "resolutions narrow layers (10-bit inputs: one exact float32 product each), eight quality levels, AWGN "
        "sigma 0-50; shares v6's trunk file",
    ),
    ModelInfo(
        "fllic-camera-v5",
        "fllic-camera-v5.pt",
        "camera JPEGs (auto mode's choice in fllic 0.13 to 0.15): fllic-awgn-v7 (its trunk, codec and decoder) "
        "reading a per-pixel noise map at twice the blind reading; its files name v7's decoder",
    ),
    ModelInfo(
        "fllic-camera-v6",
        "fllic-camera-v6.pt",
        "camera JPEGs (auto mode's choice in fllic 0.16 and 0.17): fllic-camera-v5 with its trunk run at two "
        "scales, the estimate's coarse band taken from the image averaged over 2x2 pixels; its files name v7's "
        "decoder",
    ),
    ModelInfo(
        "fllic-camera-v7",
        "fllic-camera-v7.pt",
        "camera JPEGs (auto mode's choice in fllic 0.18 and 0.19): fllic-camera-v6 with the blind reading held "
        "to at most six times the PCA reading, so texture is not read as noise; its files name v7's decoder",
    ),
    ModelInfo(
        "fllic-camera-v8",
        "fllic-camera-v8.pt",
        "camera JPEGs: what --sigma auto picks for correlated noise in a camera's own JPEG; fllic-camera-v7 with "
        "the cap lifted where the weakest patches say noise, not texture, fills them, so heavy noise is read "
        "whole; its files name v7's decoder",
    ),
    ModelInfo(
        "fllic-weak-v3",
        "fllic-weak-v3.pt",
        "weakly supervised, from noisy images only: fllic-weak-v2's Neighbor2Neighbor trunk ahead of a codec "
        "retrained to code that trunk's estimate under the clean-entropy rate budget, AWGN sigma 5-50",
        retired=True,
    ),
    ModelInfo(
        "fllic-weak-v4",
        "fllic-weak-v4.pt",
        "weakly supervised, from noisy images only: a trunk distilled from CBM3D's estimates of the stored noisy "
        "images ahead of fllic-weak-v3's codec, fine-tuned to code that trunk's estimate, AWGN sigma 5-50",
        retired=True,
    ),
    ModelInfo(
        "fllic-weak-v5",
        "fllic-weak-v5.pt",
        "weakly supervised, from noisy images only: fllic-weak-v4's distilled trunk ahead of its codec, fine-tuned "
        "on 256-pixel patches of full-size noisy photographs, AWGN sigma 5-50; shares fllic-weak-v4's trunk file",
    ),
)
DEFAULT_MODEL = "fllic-awgn-v8"  # v1 to v6 are retired: their files still decode
DEFAULT_GREY_MODEL = "fllic-awgn-v7"  # grey images: v8 spends 1.6-7.0 % more bits on them (results/quality-v8-grey-dev.md)
CAMERA_MODEL = "fllic-camera-v3"  # what --sigma auto picks for correlated noise in raw conversions (PNG, TIFF)
CAMERA_JPEG_MODEL = "fllic-camera-v8"  # ... and in a camera's own JPEGs (results/real_polyu_camera_v8.md)


def weights_path(info: ModelInfo) -> Path:
    """Where a model's file is: in fllic's weights folder (a checkout holds every file there) or else in the
    fllic-encoders package, which ships the current models' encoders (``pip install 'fllic[encode]'``)."""
    own = Path(str(resources.files("fllic.models") / "weights" / info.filename))
    if own.exists():
        return own
    try:
        from fllic_encoders import WEIGHTS
    except ImportError:
        return own
    return WEIGHTS / info.filename if (WEIGHTS / info.filename).exists() else own


def find(model_id: str) -> ModelInfo:
    for info in SHIPPED:
        if info.id == model_id:
            return info
    known = ", ".join(i.id for i in SHIPPED)
    raise ModelMismatchError(f"unknown model {model_id!r}; shipped models: {known}")


@functools.lru_cache(maxsize=4)
def load(model_id: str):
    """The CodingModel of a shipped model id, loaded once per process."""
    info = find(model_id)
    path = weights_path(info)
    if not path.exists():
        if info.retired:
            raise ModelMismatchError(f"{model_id} is retired: fllic decodes its files but no longer encodes with it; "
                                     f"encode with {DEFAULT_MODEL} (the default) or see `fllic models`")
        raise ModelMismatchError(f"{model_id}'s encoder (the fllic-encoders package) is not installed: {ENCODE_HINT}")
    model = load_file(path)
    model.meta.setdefault("id", info.id)
    return model


def load_file(path: Path):
    """The CodingModel of a model file: a whole model (format 2) or a trunk on a shipped base."""
    from fllic.models.adapted import is_adapted_file, load_adapted
    from fllic.models.fllic_net import CodingModel

    return load_adapted(path) if is_adapted_file(path) else CodingModel.load(path)


def resolve(model=None):
    """A CodingModel from None (the default), a shipped id, a path to an exported file, or itself."""
    from fllic.models.fllic_net import CodingModel

    if model is None:
        return load(DEFAULT_MODEL)
    if isinstance(model, CodingModel):
        return model
    if isinstance(model, (str, Path)) and Path(model).is_file():
        return load_file(Path(model))
    if isinstance(model, str):
        return load(model)
    raise ModelMismatchError(f"cannot use {model!r} as a model; pass a model id or a CodingModel")


def auto_model(level=None, from_jpeg: bool = False, grey: bool = False) -> str:
    """The model for an image without a ``model``: for correlated noise (a blind estimate, fllic.noise.NoiseLevel),
    the camera model, or for an image decoded from a JPEG the camera-JPEG model, when installed; otherwise the
    default, for a ``grey`` image the grey default (v8's deeper g_s spends more bits on grey than v7).

    A camera's own JPEG engine reduces noise and sharpens before it compresses:
    the noise it leaves is coarser grained (correlated over 8 pixels, mostly
    luma; results/real_noise.md) than demosaicing alone leaves in a raw
    conversion, which fllic-camera-v3's trunk learned; v7's trunk reading
    twice the blind level gains +2.7 dB on real camera JPEGs
    (results/real_polyu.md). On raw-converted
    camera noise the reverse holds (results/blind_camera_v5.md).
    """
    if level is None or not level.correlated:
        return DEFAULT_GREY_MODEL if grey else DEFAULT_MODEL
    for model_id in ((CAMERA_JPEG_MODEL,) if from_jpeg else ()) + (CAMERA_MODEL,):
        if any(i.id == model_id for i in SHIPPED) and weights_path(find(model_id)).exists():
            return model_id
    return DEFAULT_MODEL
