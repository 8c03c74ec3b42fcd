"""The exceptions a user can cause: each carries one plain sentence that the scripts print."""


class DeepDreamError(Exception):
    """Base of every error caused by input, files or settings rather than by a bug.

    The scripts print ``str(error)`` and exit non-zero, without a traceback
    (set ``DEEPDREAM_DEBUG=1`` to see one).
    """


def first_line(error: BaseException) -> str:
    """An exception's message in one line (its first), or its type's name if it has none:
    how an error from a library or a model's own code is quoted in one of ours."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def plural(count: int, noun: str) -> str:
    """'1 frame', '2 frames': a count and its noun, as a sentence says them."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


class ModelError(DeepDreamError):
    """A model file is missing, truncated, corrupt, or uses something we do not support."""


class ModelMismatchError(ModelError):
    """The deploy prototxt and the caffemodel's weights do not fit together."""


class UnknownLayerError(DeepDreamError):
    """A layer or blob name that the net does not have."""


class ImageTooSmallError(DeepDreamError):
    """The image is too small for the requested octaves and layer."""


class OutOfMemoryError(DeepDreamError):
    """The device ran out of memory for a frame of this size."""


class ZeroGradientError(DeepDreamError):
    """The objective's gradient is zero everywhere, so there is no direction to dream in."""


class DeviceError(DeepDreamError):
    """The requested device (CUDA, MPS) is not available."""


class PrecisionError(DeepDreamError):
    """The net's values do not fit the 16-bit precision asked for (--precision)."""


class FramesError(DeepDreamError):
    """A frame folder or frame file is missing, empty or unreadable."""


class VideoError(DeepDreamError):
    """ffmpeg is missing or could not read or write a movie."""


class ResumeError(DeepDreamError):
    """An output folder holds a run made with other parameters."""


class SettingsError(DeepDreamError):
    """A dream setting (a flag's value) that cannot work."""


class PortInUseError(DeepDreamError):
    """The port asked for with --serve is taken."""
