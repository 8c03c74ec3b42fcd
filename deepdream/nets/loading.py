"""The one place that knows every engine: ``load_net`` (a Caffe net on PyTorch or on a real
pycaffe), ``load_model`` (a registry model or your own PyTorch net) and ``random_net``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DeviceError
from .base import IMAGENET_MEAN_BGR, Net, resolve_device
from .caffe import format as caffe_format
from .caffe.pycaffe import CaffeNet
from .caffe.torch_net import TorchNet
from .module import ModuleModel, ModuleNet


def load_net(caffemodel: str | Path, deploy: str | Path | None = None, device: str = "cpu",
             mean=IMAGENET_MEAN_BGR, engine: str = "torch", precision: str = "fp32",
             data: bytes | None = None) -> Net:
    """Load a Caffe net (.caffemodel weights, optional deploy prototxt) onto ``device``.

    Without ``deploy`` the structure saved in the caffemodel is used. ``engine`` "caffe" runs
    it on a real pycaffe instead of PyTorch. ``precision`` (PyTorch engine only) is fp32, bf16
    or fp16. ``data``: the caffemodel's bytes where the caller has read them already (the
    torch engine parses them; pycaffe reads its file itself). Raises ModelError,
    ModelMismatchError or DeviceError with a plain sentence.
    """
    if engine == "caffe":
        if precision != "fp32":
            raise DeviceError(f"--engine caffe computes in fp32 only, not {precision}")
        device = "cpu" if device in (None, "auto", "cpu") else str(device)
        return CaffeNet(Path(caffemodel), Path(deploy) if deploy else None,
                        f"cuda:{device}" if device.isdigit() else device, mean)
    if engine != "torch":
        raise DeviceError(f"unknown engine '{engine}': use torch or caffe")
    spec = caffe_format.read_net(caffemodel, deploy, data)
    return TorchNet(spec, resolve_device(device), mean, precision)


# The --engine of each engine's name in params.json (Net.recorded_name)
ENGINE_OF_RECORDED_NAME = {TorchNet.recorded_name: "torch", ModuleNet.recorded_name: "torch",
                           CaffeNet.recorded_name: "caffe"}


def recorded_name(model) -> str:
    """The name in params.json of the torch engine's net of ``model``, without loading it
    (as a Ray driver records the nets of its workers)."""
    return ModuleNet.recorded_name if isinstance(model, ModuleModel) else TorchNet.recorded_name


def load_model(model, device: str = "auto", engine: str = "torch",
               precision: str = "fp32") -> Net:
    """The net of ``model``: a Caffe model (``registry.ResolvedModel``, with the registry's mean
    where it is known) or your own PyTorch net (``module.ModuleModel``). Each model file is
    read once: its bytes are hashed (``model.identity()`` then knows their sha1) and loaded."""
    if isinstance(model, ModuleModel):
        if engine != "torch":
            raise DeviceError("--engine caffe runs Caffe nets; a PyTorch model "
                              f"({model.name}) runs on the torch engine")
        return model.load(device, precision)
    mean = model.entry.mean_bgr if model.entry else IMAGENET_MEAN_BGR
    data = model.read()
    return load_net(model.caffemodel, model.deploy, device, mean, engine, precision,
                    None if engine == "caffe" else data)


def structure_net(model) -> Net | None:
    """A net of ``model``'s deploy structure whose weights are never filled (no file is read
    but the prototxt): for checking the layers and sizes of a run before its weights are
    downloaded. None for a model without a deploy prototxt of its own."""
    deploy = getattr(model, "deploy", None)
    if deploy is None or not Path(deploy).is_file():
        return None
    spec = caffe_format.read_net(None, deploy)
    for layer in spec.layers:
        layer.init = lambda shape, what: np.empty(shape, np.float32)    # never read
    mean = model.entry.mean_bgr if model.entry else IMAGENET_MEAN_BGR
    return TorchNet(spec, "cpu", mean)


def random_net(deploy: str | Path, seed: int = 0, device: str = "cpu",
               mean=IMAGENET_MEAN_BGR, precision: str = "fp32") -> Net:
    """A net of ``deploy``'s structure with random weights (He-normal weights, biases
    N(0, 0.1), neutral batch-norm statistics): for benchmarks and for checking prototxts
    when no weights can be had."""
    rng = np.random.default_rng(seed)

    def init(shape: tuple[int, ...], what: str) -> np.ndarray:
        if what == "weight":
            fan_in = int(np.prod(shape[1:])) or 1
            return rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        if what == "bias":
            return rng.standard_normal(shape, np.float32) * np.float32(0.1)
        if what == "mean":
            return np.zeros(shape, np.float32)
        return np.ones(shape, np.float32)   # variance, moving-average factor, scale

    spec = caffe_format.read_net(None, deploy)
    for layer in spec.layers:
        layer.init = init
    return TorchNet(spec, resolve_device(device), mean, precision)
