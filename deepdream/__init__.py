"""DeepDreamVideo: Caffe Model Zoo nets dreaming on video frames, on PyTorch."""
from .errors import DeepDreamError

__version__ = "0.1.0"
__all__ = ["Net", "load_net", "dream", "dream_batch", "guide_features", "DeepDreamError",
           "extract_frames", "dream_video", "make_movie", "dream_movie", "DreamSettings", "RunOptions",
           "ModuleModel", "Preprocessing", "__version__"]

# The engine and the dream loop import torch, which takes seconds: they are loaded when first
# asked for, so that the frame and movie stages start at once. The three stages, one call
# each: extract_frames, dream_video, make_movie.
_LAZY = {"Net": "engine", "load_net": "engine", "dream": "ascent", "dream_batch": "ascent",
         "guide_features": "ascent", "extract_frames": "extraction",
         "dream_video": "dreaming", "RunOptions": "dreaming", "DreamSettings": "runs",
         "make_movie": "encoding", "dream_movie": "job", "ModuleModel": "torch_module",
         "Preprocessing": "torch_module"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'deepdream' has no attribute {name!r}")
