"""DeepDreamVideo: Caffe Model Zoo nets dreaming on video frames, on PyTorch.

The package's folders are its layers; each imports only those before it:
``io`` (ffmpeg, frame folders: no torch) -> ``nets`` (the Net interface, the Caffe reader and
engines, your own net, the registry) -> ``dreamer`` (objectives, octaves, the step) -> ``run``
(settings, resume, schedules, the run loop, Ray, the whole job) -> ``cli`` (the commands),
which nothing in the library imports. ``errors`` and ``progress`` serve every layer.
"""
from .errors import DeepDreamError

__version__ = "0.1.0"
THIS_PACKAGE = True       # tells this package from a folder of the same name (__main__)
__all__ = ["Net", "load_net", "dream", "dream_batch", "guide_features", "DeepDreamError",
           "extract_frames", "dream_video", "make_movie", "dream_movie", "DreamSettings",
           "RunOptions", "ModuleModel", "Preprocessing", "__version__"]

# The engine and the dream loop import torch, which takes seconds: they are loaded when first
# asked for, so that the frame and movie stages start at once. The three stages, one call
# each: extract_frames, dream_video, make_movie.
_LAZY = {"Net": "nets.base", "load_net": "nets.loading", "dream": "dreamer.ascent",
         "dream_batch": "dreamer.ascent", "guide_features": "dreamer.ascent",
         "extract_frames": "io.extraction", "dream_video": "run.dreaming",
         "RunOptions": "run.settings", "DreamSettings": "run.settings",
         "make_movie": "io.encoding", "dream_movie": "run.job", "ModuleModel": "nets.module",
         "Preprocessing": "nets.module"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'deepdream' has no attribute {name!r}")
