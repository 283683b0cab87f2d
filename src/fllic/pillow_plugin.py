"""A Pillow plugin: ``Image.open("photo.fllic")`` and ``im.save("x.fllic", sigma=25)``.

Call :func:`register` once; nothing is registered at import time.
"""

from __future__ import annotations

import numpy as np

from fllic import format as fmt
from fllic._errors import FormatError


def _accept(prefix: bytes) -> bool:
    return prefix[: len(fmt.MAGIC)] == fmt.MAGIC


def _image_file_class():
    from PIL import Image, ImageFile

    class FllicImageFile(ImageFile.ImageFile):
        format = "FLLIC"
        format_description = "functionally lossless image compression"

        def _open(self) -> None:
            from fllic.codec import info

            self._fllic_data = self.fp.read()
            try:
                meta = info(self._fllic_data)
            except FormatError as e:
                raise SyntaxError(str(e)) from e
            self._mode = "L" if meta["channels"] == 1 else "RGB"
            self._size = (meta["width"], meta["height"])
            self.tile = []

        def load(self):
            if self._fllic_data is not None:
                from fllic.codec import decode

                self.im = Image.fromarray(decode(self._fllic_data)).im
                self._fllic_data = None
            return Image.Image.load(self)

    return FllicImageFile


def _save(im, fp, filename) -> None:
    from fllic.codec import encode

    opts = im.encoderinfo
    array = np.asarray(im.convert("RGB" if im.mode not in ("L", "RGB") else im.mode))
    fp.write(encode(array, sigma=opts.get("sigma"), model=opts.get("model"), quality=opts.get("quality")))


def register() -> None:
    """Teach Pillow to open and save .fllic files."""
    from PIL import Image

    cls = _image_file_class()
    Image.register_open(cls.format, cls, _accept)
    Image.register_save(cls.format, _save)
    Image.register_extension(cls.format, ".fllic")
