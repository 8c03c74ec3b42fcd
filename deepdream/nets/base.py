"""The one small interface behind which every engine runs a net (``loading`` makes them).

Arrays crossing the public interface are numpy, in Caffe's convention: (N, 3, H, W) float32,
BGR, the mean already subtracted. The dream loop talks to ``Net.gradient`` with torch tensors
on ``Net.device`` so that a GPU engine never round-trips through the host.
"""
from __future__ import annotations

import abc
import difflib

import numpy as np
import torch

from .gradients import Objective, guided, l2
from ..errors import DeviceError, UnknownLayerError

# The mean of the ImageNet training images, BGR, that BVLC's GoogLeNet (and most Model Zoo
# nets) subtract from their input. Per-model values live in the model registry.
IMAGENET_MEAN_BGR = (104.0, 116.0, 122.0)

# The arithmetic an engine may compute in (``--precision``): Caffe's float32, or 16-bit
# floats for speed on hardware that has them (GPUs; CPUs with AVX512-BF16 or AMX for bf16).
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Net(abc.ABC):
    """A loaded Caffe net that can run forward to a layer and differentiate an objective."""

    #: blob names in the order the net produces them (the input first)
    blobs: list[str]
    #: layer names in run order
    layers: list[str]
    #: the mean (BGR, per channel) subtracted from images, float32 of shape (3,)
    mean: np.ndarray
    #: the torch device the engine computes on, as a string ("cpu", "cuda:0", ...)
    device: str
    #: the arithmetic it computes in, a key of PRECISIONS; inputs and gradients are float32
    precision: str = "fp32"
    #: the input shape the net was made for (its deploy's): a layer that takes no other size
    #: (a classifier behind a fixed-size InnerProduct) sees each image scaled to it
    input_shape: tuple[int, ...] = (1, 3, 224, 224)
    #: the engine's name in params.json, which a resumed run must match: fixed here, not taken
    #: from the class's name, so that renaming a class never stops a run from resuming
    recorded_name: str

    @abc.abstractmethod
    def forward(self, x: np.ndarray, end: str) -> np.ndarray:
        """Run the layers up to and including ``end`` and return that blob as Caffe shows it
        then (pycaffe's ``net.forward(end=end)``; an in-place ReLU after ``end`` has not run).
        ``end`` may be a layer name or a blob name."""

    @abc.abstractmethod
    def gradient(self, x: torch.Tensor, end: str,
                 objective: Objective = l2) -> torch.Tensor:
        """The gradient of ``objective(blob at end)`` with respect to the input tensor ``x``
        (N, 3, H, W) on ``self.device``."""

    @abc.abstractmethod
    def blob_shapes(self, height: int, width: int) -> dict[str, tuple[int, ...] | None]:
        """The shape of every blob for a (1, 3, height, width) input, in order; None for the
        blobs that an input of that size cannot reach."""

    @abc.abstractmethod
    def end_shape(self, height: int, width: int, end: str) -> tuple[int, ...]:
        """The shape of the blob at ``end`` for a (1, 3, height, width) input, without
        computing it. Raises ImageTooSmallError if the net cannot take that input."""

    def input_gradient(self, x: np.ndarray, end: str,
                       guide: np.ndarray | None = None) -> np.ndarray:
        """The gradient of 0.5 * ||blob at end||^2 with respect to ``x`` (shaped like ``x``);
        with ``guide`` (the C x h x w features of a guide image at ``end``) the original
        script's guided objective instead."""
        objective = l2 if guide is None else guided(guide)
        return self.gradient(self.tensor(x), end, objective).cpu().numpy()

    def tensor(self, x: np.ndarray) -> torch.Tensor:
        """A numpy input as a float32 tensor on ``self.device``."""
        return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self.device)

    def resolve(self, end: str) -> str:
        """Check that ``end`` names a layer or blob; raise UnknownLayerError suggesting the
        nearest names otherwise."""
        if end in self.layers or end in self.blobs:
            return end
        names = list(dict.fromkeys(self.layers + self.blobs))
        near = difflib.get_close_matches(end, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else \
            "; list them with --list-layers"
        raise UnknownLayerError(f"the net has no layer or blob named '{end}'{hint}")


def resolve_device(device: str | int | None) -> str:
    """Map "cpu", "cuda", "cuda:N", "mps", "auto" (or a bare GPU number) to a torch device
    string, raising DeviceError when it is not available here."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    device = str(device)
    if device.isdigit():
        device = f"cuda:{device}"
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{device}' asked for, but this PyTorch "
                              f"({torch.__version__}) sees no CUDA GPU; install a CUDA build "
                              "of torch (see README) or use --device cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device '{device}' asked for, but there are only "
                              f"{torch.cuda.device_count()} CUDA GPU(s)")
        return f"cuda:{index}"
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("device 'mps' asked for, but Apple's Metal is not available")
        return device
    raise DeviceError(f"unknown device '{device}': use cpu, cuda, cuda:N, mps or auto")


def check_precision(precision: str) -> str:
    """``precision`` if it is a key of PRECISIONS, else a DeviceError."""
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision '{precision}': use {', '.join(PRECISIONS)}")
    return precision
