"""The real-Caffe engine: pycaffe behind the same ``Net`` interface as the PyTorch engine
(``--engine caffe``). Build pycaffe with ``scripts/install_caffe.sh``.

Shapes are asked of a PyTorch twin on the meta device rather than of Caffe, because Caffe
aborts the whole process (a failed CHECK) on an input too small for a layer.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from ...errors import DeviceError, ModelError
from ..base import Net
from ..gradients import Objective, l2
from ..gradients import gradient as objective_gradient
from . import format as caffe_format


def import_caffe():
    """pycaffe, or a DeviceError that says how to build it."""
    try:
        import caffe
        caffe.Net   # the empty PyPI placeholder named caffe has no Net
    except Exception as e:     # ImportError, or a pycaffe that fails while importing
        raise DeviceError(f"--engine caffe needs pycaffe, which is not importable ({e}): "
                          "build it with scripts/install_caffe.sh and put its python folder "
                          "on PYTHONPATH") from None
    return caffe


class CaffeNet(Net):
    """A Caffe net run by pycaffe; see ``deepdream.nets.base.Net`` for the interface."""

    recorded_name = "CaffeNet"

    def __init__(self, caffemodel: Path, deploy: Path | None, device: str, mean):
        caffe = import_caffe()
        if deploy is None:
            raise ModelError("--engine caffe needs the deploy prototxt beside the caffemodel")
        if device.startswith("cuda"):
            caffe.set_mode_gpu()           # as the original 2_dreaming_time.py did
            caffe.set_device(int(device.partition(":")[2] or 0))
        else:
            caffe.set_mode_cpu()
        self.device, self.mean = "cpu", np.asarray(mean, dtype=np.float32).reshape(3)
        # Caffe computes input gradients only with force_backward (the original patched it
        # into a tmp.prototxt the same way).
        # The text is kept as it is (a Python layer's parameters too), after the same strict
        # check as the torch engine's.
        text = Path(deploy).read_text()
        caffe_format.parse_prototxt(text, deploy)
        text = re.sub(r"^\s*force_backward\s*:\s*\w+", "", text, flags=re.M) + \
            "\nforce_backward: true\n"
        with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
            f.write(text)
        try:
            self.net = caffe.Net(f.name, str(caffemodel), caffe.TEST)
        finally:
            Path(f.name).unlink()
        self.input_name = self.net.inputs[0]
        self.blobs = list(self.net.blobs.keys())
        self.layers = [name for name, layer in zip(self.net._layer_names, self.net.layers)
                       if layer.type != "Input"]
        from .torch_net import TorchNet
        self._shapes = TorchNet(caffe_format.read_net(caffemodel, deploy), "cpu", mean)
        self.input_shape = self._shapes.input_shape

    def _top(self, end: str) -> str:
        self.resolve(end)
        if end in self.layers:
            return self.net.top_names[end][0]
        return end

    def _layer(self, end: str) -> str:
        """The layer to run up to: ``end`` itself, or the last layer writing blob ``end``."""
        if end in self.layers:
            return end
        return [layer for layer in self.layers if end in self.net.top_names[layer]][-1]

    def _run(self, x: np.ndarray, end: str) -> np.ndarray:
        self.end_shape(x.shape[2], x.shape[3], end)     # refuse what would abort Caffe
        data = self.net.blobs[self.input_name]
        data.reshape(*x.shape)
        data.data[...] = x
        self.net.forward(end=self._layer(end))
        return self.net.blobs[self._top(end)].data

    def forward(self, x: np.ndarray, end: str) -> np.ndarray:
        return self._run(np.asarray(x, dtype=np.float32), end).copy()

    def gradient(self, x: torch.Tensor, end: str,
                 objective: Objective = l2) -> torch.Tensor:
        features = torch.tensor(self._run(x.detach().cpu().numpy(), end))
        diff = objective_gradient(objective, features)
        top = self.net.blobs[self._top(end)]
        top.diff[...] = diff.numpy()
        self.net.backward(start=self._layer(end))
        grad = self.net.blobs[self.input_name].diff.copy()
        return torch.as_tensor(grad, device=x.device)

    def blob_shapes(self, height: int, width: int) -> dict[str, tuple[int, ...] | None]:
        return self._shapes.blob_shapes(height, width)

    def end_shape(self, height: int, width: int, end: str) -> tuple[int, ...]:
        return self._shapes.end_shape(height, width, end)
