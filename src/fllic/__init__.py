"""fllic: functionally lossless image compression (Zhang & Wu, arXiv 2401.13616).

Store the optimally denoised image of a noisy photo, and decode it exactly::

    import fllic
    data = fllic.encode(noisy_uint8, sigma=25)
    denoised = fllic.decode(data)
"""

from fllic._errors import (
    DependencyError,
    FllicError,
    FllicWarning,
    FormatError,
    InputError,
    IntegrityError,
    LimitError,
    ModelMismatchError,
)
from fllic.codec import check, decode, decode_detailed, encode, encode_detailed, info

__version__ = "0.20.0"

__all__ = [
    "DependencyError",
    "FllicError",
    "FllicWarning",
    "FormatError",
    "InputError",
    "IntegrityError",
    "LimitError",
    "ModelMismatchError",
    "__version__",
    "check",
    "decode",
    "decode_detailed",
    "encode",
    "encode_detailed",
    "info",
]
