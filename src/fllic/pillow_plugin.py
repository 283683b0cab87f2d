"""A Pillow plugin: ``Image.open("photo.fllic")`` and ``im.save("x.fllic", sigma=25)``.

Call :func:`register` once; nothing is registered at import time.

Pillow has modes for 8-bit grey, grey + alpha, RGB and RGBA and for 16-bit
grey ("I;16"), but none for 16-bit colour or alpha: such files open as their
8-bit mode holding the high byte of each sample, as Pillow opens 16-bit RGB
PNG and TIFF. ``fllic.decode`` returns them at 16 bits. The ICC profile and
EXIF are in ``im.info`` ("icc_profile", "exif"), and are saved from there or
from the ``icc_profile=`` and ``exif=`` options.

Opening needs the base install only: without PyTorch the reference decoder
(fllic.decoder) decodes, to the same pixels. Saving encodes, which needs
PyTorch (the ``encode`` extra).
"""

from __future__ import annotations

import numpy as np

from fllic import format as fmt
from fllic._errors import FormatError

_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _accept(prefix: bytes) -> bool:
    return prefix[: len(fmt.MAGIC)] == fmt.MAGIC


def _image_file_class():
    from PIL import Image, ImageFile

    class FllicImageFile(ImageFile.ImageFile):
        format = "FLLIC"
        format_description = "functionally lossless image compression"

        def _open(self) -> None:
            self._fllic_data = self.fp.read()
            try:
                c = fmt.unpack(self._fllic_data, max_pixels=1 << 62)
            except FormatError as e:
                raise SyntaxError(str(e)) from e
            h = c.header
            self._mode = "I;16" if h.bit_depth == 16 and h.channels == 1 else _MODES[h.channels]
            self._size = (h.width, h.height)
            if "ICC" in c.sections:
                self.info["icc_profile"] = c.sections["ICC"]
            if "EXIF" in c.sections:
                self.info["exif"] = b"Exif\x00\x00" + c.sections["EXIF"]
            self.tile = []

        def load(self):
            if self._fllic_data is not None:
                from fllic.codec import decode

                pixels = decode(self._fllic_data)
                if pixels.dtype == np.uint16 and pixels.ndim == 3:
                    pixels = (pixels >> 8).astype(np.uint8)
                self.im = Image.fromarray(pixels).im
                self._fllic_data = None
            return Image.Image.load(self)

    return FllicImageFile


def _save(im, fp, filename) -> None:
    from fllic.codec import encode

    opts = im.encoderinfo
    if im.mode.startswith("I;16"):
        array = np.asarray(im).astype(np.uint16)
    else:
        target = im.mode if im.mode in _MODES.values() else ("RGBA" if "A" in im.mode or "transparency" in im.info
                                                             else "RGB")
        array = np.asarray(im.convert(target) if target != im.mode else im)
    icc = opts.get("icc_profile", im.info.get("icc_profile"))
    exif = opts.get("exif", im.info.get("exif"))
    if exif is not None and not isinstance(exif, (bytes, bytearray)):
        exif = exif.tobytes()  # an Image.Exif
    fp.write(encode(array, sigma=opts.get("sigma"), model=opts.get("model"), quality=opts.get("quality"),
                    icc=icc, exif=exif))


def register() -> None:
    """Teach Pillow to open and save .fllic files."""
    from PIL import Image

    cls = _image_file_class()
    Image.register_open(cls.format, cls, _accept)
    Image.register_save(cls.format, _save)
    Image.register_extension(cls.format, ".fllic")
