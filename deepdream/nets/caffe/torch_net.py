"""The PyTorch engine of Caffe nets: ``TorchNet`` runs the layers (``layers.py``) that a
request needs, in Caffe's arithmetic, on CPU, CUDA or MPS, and differentiates with autograd
(weights never require gradients, so only the input's gradient is computed).
"""
from __future__ import annotations

import numpy as np
import torch

from ...errors import DeepDreamError, ModelError, ModelMismatchError, first_line
from ..autograd import AutogradNet, known_failure
from .format import NetSpec
from .layers import LAYERS, Input, Layer


def _wrap_failure(layer: Layer, shapes, error: RuntimeError) -> Exception:
    """Our error for a layer that failed: out of memory, or an input too small for it; any
    other failure (a dtype or device mismatch: a bug, not the user's doing) as it was."""
    return known_failure(error, f"layer '{layer.name}' ({layer.type})",
                         f"at layer '{layer.name}'", shapes) or error


class TorchNet(AutogradNet):
    """A Caffe net on PyTorch. See ``deepdream.nets.base.Net`` for the interface."""

    recorded_name = "TorchNet"

    def __init__(self, spec: NetSpec, device: str, mean, precision: str = "fp32"):
        super().__init__(device, precision)
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3)
        self.input_name = spec.input_name
        shape = spec.input_shape if spec.input_shape and all(spec.input_shape) else None
        self.input_shape = tuple(shape) if shape else (1, 3, 224, 224)

        # Build layer by layer, carrying shapes on the meta device, so each layer checks its
        # weights against the shapes that really reach it.
        shapes = {self.input_name: self.input_shape}
        meta = {self.input_name: torch.empty(self.input_shape, device="meta")}
        built = []
        for layer_spec in spec.layers:
            cls = LAYERS.get(layer_spec.type)
            if cls is None:
                raise ModelError(f"layer '{layer_spec.name}' has type '{layer_spec.type}', "
                                 f"which is not supported (supported: {', '.join(LAYERS)})")
            if cls is Input:
                continue
            bottom_shapes = [shapes[b] for b in layer_spec.bottoms]
            layer = cls(layer_spec, bottom_shapes)
            try:
                tops = layer.to("meta")(*(meta[b] for b in layer_spec.bottoms))
            except RuntimeError as e:
                raise ModelMismatchError(
                    f"layer '{layer.name}' ({layer.type}) does not fit its input of shape "
                    f"{bottom_shapes}: {first_line(e)}") from None
            for name, top in zip(layer_spec.tops, tops):
                shapes[name], meta[name] = tuple(top.shape), top
            built.append((layer, layer_spec.bottoms, layer_spec.tops))

        self._specs = [(l.to(device, self.dtype), b, t) for l, b, t in built]
        self._meta = [(l.to("meta"), b, t) for l, b, t in built]
        self.layers = [l.name for l, _, _ in built]
        self.blobs = list(shapes)
        self._plans: dict[str, tuple[list[int], str]] = {}

    # -- which layers a request needs -------------------------------------------------------
    def _plan(self, end: str) -> tuple[list[int], str]:
        """The indices of the layers that ``end`` needs, and the blob to return."""
        if end in self._plans:
            return self._plans[end]
        self.resolve(end)
        if end == self.input_name:
            plan = ([], end)
        else:
            if end in self.layers:
                last = self.layers.index(end)
                blob = self._specs[last][2][0]
            else:   # a blob name: its value after the last layer that writes it
                last = max(i for i, (_, _, tops) in enumerate(self._specs) if end in tops)
                blob = end
            # Walk back from `last`: a layer is needed if it writes a blob that a needed layer
            # reads at that point (in-place layers read and write the same blob).
            needed, wanted = [last], set(self._specs[last][1])
            for i in range(last - 1, -1, -1):
                _, bottoms, tops = self._specs[i]
                if wanted & set(tops):
                    needed.append(i)
                    wanted = (wanted - set(tops)) | set(bottoms)
            plan = (needed[::-1], blob)
        self._plans[end] = plan
        return plan

    def _run(self, x: torch.Tensor, end: str, layers=None) -> torch.Tensor:
        indices, blob = self._plan(end)
        layers = self._specs if layers is None else layers
        if x.dim() == 4:
            # Channels-last (NHWC) activations: oneDNN's convolutions and PyTorch's pooling
            # kernels are several times faster on them than on NCHW, on CPUs and GPUs.
            x = x.contiguous(memory_format=torch.channels_last)
        values = {self.input_name: x}
        for i in indices:
            layer, bottoms, tops = layers[i]
            inputs = [values[b] for b in bottoms]
            try:
                outputs = layer(*inputs)
            except RuntimeError as e:
                raise _wrap_failure(layer, [tuple(t.shape) for t in inputs], e) from None
            values.update(zip(tops, outputs))
        return values[blob]

    # -- the interface ----------------------------------------------------------------------
    def _blob(self, x: torch.Tensor, end: str) -> torch.Tensor:
        return self._run(x, end)

    def blob_shapes(self, height: int, width: int) -> dict[str, tuple[int, ...] | None]:
        values = {self.input_name: torch.empty((1, self.input_shape[1], height, width),
                                               device="meta")}
        shapes: dict[str, tuple[int, ...] | None] = {self.input_name: (1, self.input_shape[1],
                                                                         height, width)}
        for layer, bottoms, tops in self._meta:
            inputs = [values.get(b) for b in bottoms]
            try:
                outputs = layer(*inputs) if all(t is not None for t in inputs) else None
            except (RuntimeError, DeepDreamError):
                outputs = None       # the input is too small for this layer
            for i, top in enumerate(tops):
                values[top] = outputs[i] if outputs else None
                shapes[top] = tuple(outputs[i].shape) if outputs else None
        return shapes

    def end_shape(self, height: int, width: int, end: str) -> tuple[int, ...]:
        """The shape of the blob at ``end`` for a (1, 3, height, width) input, computed on
        the meta device (no arithmetic). Raises ImageTooSmallError if the input is too small."""
        x = torch.empty((1, self.input_shape[1], height, width), device="meta")
        return tuple(self._run(x, end, self._meta).shape)
