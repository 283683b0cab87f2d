"""The exception hierarchy: every error fllic raises on purpose derives from FllicError."""


class FllicError(Exception):
    """Base class of every error raised by fllic."""


class FormatError(FllicError):
    """The data is not a valid .fllic file: bad magic, version, truncation or corruption."""


class IntegrityError(FormatError):
    """The decoded pixels do not match the CRC32 stored in the file."""


class ModelMismatchError(FllicError):
    """The file names a model that is unknown, or whose weights differ from the shipped ones."""


class LimitError(FllicError):
    """The image is larger than the configured pixel limit (a decompression-bomb guard)."""


class InputError(FllicError):
    """An input array, image file or parameter is invalid."""


class FllicWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. sigma beyond the model's range)."""


class DependencyError(FllicError):
    """An optional dependency that the task needs is not installed (e.g. PyTorch, for encoding)."""
