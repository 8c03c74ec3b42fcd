"""DeepDreamVideo: Caffe Model Zoo nets dreaming on video frames, on PyTorch."""
from .engine import Net, load_net
from .errors import DeepDreamError
from .ascent import dream, dream_batch, guide_features

__version__ = "0.1.0"
__all__ = ["Net", "load_net", "dream", "dream_batch", "guide_features", "DeepDreamError", "__version__"]
