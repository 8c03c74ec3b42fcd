"""Your own PyTorch net: a factory that returns an ``nn.Module`` -- from a file
(``net.py:Factory``) or an installed package (``torchvision.models:googlenet``) -- with a
state_dict, run behind the same ``Net`` interface as the Caffe nets.

Layers are the names of ``named_modules()`` (``layer3``, ``inception4c``, ``features.28``); a
layer's blob is the output of its first call in the forward pass, caught by a forward hook
that also stops the pass there. The dream loop keeps its images in Caffe's convention (BGR,
0..255 less a mean); the net turns them into the model's own (channel order, input range,
mean, std) as its first, differentiable step, so a step size means pixels for every net.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError, first_line
from .autograd import AutogradNet, known_failure
from .base import resolve_device
from .module_files import is_file_source, build, code_identity, load_weights, short_name
from .registry import model_sha1

__all__ = ["Preprocessing", "ModuleModel", "ModuleNet", "code_identity", "short_name"]

INPUT = "data"     # the name of the input blob, as in the Caffe nets

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How the model wants its input: ``channel_order`` rgb or bgr, pixels in 0..``input_range``
    (1 or 255), then ``(pixel - mean) / std`` per channel, ``mean`` and ``std`` listed in the
    model's channel order and range. The default is torchvision's ImageNet convention."""
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "rgb"
    input_range: float = 1.0

    def check(self) -> None:
        if self.channel_order not in ("rgb", "bgr"):
            raise ModelError(f"--channel-order must be rgb or bgr, not '{self.channel_order}'")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ModelError("--input-mean and --input-std take three numbers each (A,B,C)")
        if min(self.std) <= 0:
            raise ModelError("--input-std must be more than 0 for every channel")
        if self.input_range <= 0:
            raise ModelError("--input-range must be more than 0 (1 or 255)")
        if max(map(abs, self.mean)) > self.input_range:
            raise ModelError(f"--input-mean {','.join(f'{m:g}' for m in self.mean)} lies "
                             f"outside pixels of 0 to {self.input_range:g}: give the mean in "
                             "the net's input range, or --input-range 255")

    def mean_bgr(self) -> np.ndarray:
        """The mean in the dream loop's terms: BGR, in 0..255 pixels."""
        mean = [m * 255.0 / self.input_range for m in self.mean]
        return np.asarray(mean[::-1] if self.channel_order == "rgb" else mean, np.float32)

    def scale(self) -> np.ndarray:
        """Per channel of the model's order, what a Caffe-convention value (pixel less
        ``mean_bgr``) is multiplied by to become the model's input:
        ``(pixel * range / 255 - mean) / std = (pixel - mean_255) * range / (255 * std)``."""
        return np.asarray([self.input_range / (255.0 * s) for s in self.std], np.float32)


@dataclasses.dataclass(frozen=True)
class ModuleModel:
    """A PyTorch model as the flags name it: ``source`` (FILE.py:FACTORY or
    package.module:FACTORY, a file's path absolute), its ``weights`` file (None: the factory's
    own weights) and ``preprocessing``."""
    source: str
    weights: Path | None = None
    preprocessing: Preprocessing = Preprocessing()

    @classmethod
    def named(cls, source: str, weights: str | Path | None = None,
              preprocessing: Preprocessing | None = None) -> "ModuleModel":
        """The model of ``--model SOURCE --weights FILE``, its files checked to be there."""
        place, colon, factory = source.rpartition(":")
        if not colon or not place or not factory.isidentifier():
            raise ModelError(f"'{source}' is not FILE.py:FACTORY or package.module:FACTORY")
        if is_file_source(place):
            path = Path(place).expanduser()
            if not path.is_file():
                raise ModelError(f"model file not found: {path}")
            source = f"{path.resolve()}:{factory}"
        if weights is not None:
            weights = Path(weights).expanduser().resolve()
            if not weights.is_file():
                raise ModelError(f"weights file not found: {weights}")
        preprocessing = preprocessing or Preprocessing()
        preprocessing.check()
        return cls(source, weights, preprocessing)

    @property
    def name(self) -> str:
        return short_name(self.source)

    def identity(self) -> dict:
        """What params.json records of the model, and a resumed run must match: its source,
        its weights' sha1 (of the bytes ``load`` read, once loaded) and its code
        (``code_identity``). Imports nothing."""
        sha1 = _READ_SHA1.get(self) or (model_sha1(self.weights) if self.weights else None)
        return {"model": self.source, "model_sha1": sha1,
                "weights": str(self.weights) if self.weights else None,
                "model_code_sha1": code_identity(self.source),
                "preprocess": {k: list(v) if isinstance(v, tuple) else v   # as JSON has it
                               for k, v in dataclasses.asdict(self.preprocessing).items()}}

    def default_layers(self) -> tuple[str, ...]:
        raise ModelError(f"name the layers to dream on with -l for {self.name} (list them "
                         "with --list-layers)")

    def load(self, device: str = "auto", precision: str = "fp32") -> "ModuleNet":
        """The net: the factory's module, with the weights file read once (its sha1, for
        ``identity``, of the bytes loaded)."""
        module = build(self.source)
        if self.weights is not None:
            try:
                raw = self.weights.read_bytes()
            except OSError as e:
                raise ModelError(f"cannot read {self.weights}: {e.strerror}") from None
            _READ_SHA1[self] = model_sha1(self.weights, raw)
            load_weights(module, self.weights, raw)
        return ModuleNet(module, resolve_device(device), self.preprocessing, precision,
                         self.name)


# The sha1 of the weights each model's ``load`` read, by model (a frozen dataclass)
_READ_SHA1: dict[ModuleModel, str] = {}


class _Reached(BaseException):
    """Raised by the hook on the last layer needed, to stop the forward pass there. A
    BaseException, so that a model's own ``except Exception`` does not swallow it."""


def _first_tensor(output):
    """The tensor of a module's output (the first, of a tuple or named tuple), else None."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((t for t in output if isinstance(t, torch.Tensor)), None)
    return None


def _needs_numbers(error: Exception) -> bool:
    """Whether ``error``, raised on the meta device, says that the code needs real numbers
    (``.item()``, numpy, an operation with no shapes-only version) rather than that the input
    does not fit (which a real pass would say too)."""
    return isinstance(error, NotImplementedError) or "meta" in str(error).lower()


class ModuleNet(AutogradNet):
    """An ``nn.Module`` behind the ``Net`` interface. ``Net.forward``/``gradient`` take
    Caffe-convention input; the module sees its own."""

    input_name = INPUT
    recorded_name = "ModuleNet"

    def __init__(self, module: torch.nn.Module, device: str,
                 preprocessing: Preprocessing = Preprocessing(), precision: str = "fp32",
                 name: str = "model"):
        super().__init__(device, precision)
        self.name = name
        self.module = module.eval().requires_grad_(False).to(device, self.dtype) \
            .to(memory_format=torch.channels_last)
        self._named = dict(module.named_modules())
        self.layers = [n for n in self._named if n]
        self.blobs = [INPUT] + self.layers
        self.mean = preprocessing.mean_bgr()
        self._order = [2, 1, 0] if preprocessing.channel_order == "rgb" else [0, 1, 2]
        self._scale = torch.as_tensor(preprocessing.scale(), device=device,
                                      dtype=self.dtype).reshape(1, 3, 1, 1)
        self._meta_params = None         # its parameters on the meta device
        self._real_shapes = False        # its code needs real numbers
        self._shape_memory: dict = {}

    def _model_input(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last activations, as for the Caffe nets: faster convolutions and pooling
        return (x[:, self._order] * self._scale).contiguous(memory_format=torch.channels_last)

    def _blob(self, x: torch.Tensor, end: str) -> torch.Tensor:
        self.resolve(end)
        if end == INPUT:
            return x
        return self._until(self._model_input(x), end)

    def _until(self, x: torch.Tensor, end: str) -> torch.Tensor:
        """Run the module on ``x`` until ``end`` has its output, and return that."""
        caught = []

        def hook(_module, _inputs, output):
            caught.append(output)
            raise _Reached

        handle = self._named[end].register_forward_hook(hook)
        try:
            self.module(x)
        except _Reached:
            pass
        except Exception as e:       # whatever the model's code raises: one line
            raise self._failure(e, x) from None
        finally:
            handle.remove()
        if not caught:
            raise ModelError(f"layer '{end}' of {self.name} does not run in its forward "
                             "pass (an unused or training-only module): choose another")
        tensor = _first_tensor(caught[0])
        if tensor is None or not tensor.is_floating_point():
            raise ModelError(f"layer '{end}' of {self.name} gives no tensor of numbers to "
                             "dream on: choose another")
        return tensor

    def _failure(self, error: Exception, x: torch.Tensor) -> Exception:
        """Our error for the model's failure on ``x``: out of memory, an input too small for
        it, or anything else its code raised (a fixed input size, say), in one line."""
        shape = tuple(x.shape)
        known = known_failure(error, self.name, f"in {self.name}", shape)
        if known is not None:
            return known
        what = first_line(error)           # the type's name alone when there is no message
        if str(error).strip():
            what = f"{type(error).__name__}: {what}"
        return ModelError(f"{self.name} fails on input of shape {shape}: {what}")

    # -- shapes ------------------------------------------------------------------------------
    def _shapes(self, height: int, width: int) -> tuple[dict, Exception | None]:
        """Every layer's output for a (1, 3, height, width) input, in run order, as (shape,
        whether it is a tensor of numbers) of its first call; and our error for what stopped
        the pass before its end, else None. The pass runs on the meta device (shapes without
        arithmetic) where the model's code allows; a model whose code needs real numbers
        (``.item()``, numpy) gets one real pass on zeros at that size instead, from then on.
        Remembered by size: every layer's shape at a size costs one pass."""
        key = (height, width)
        if key not in self._shape_memory:
            if len(self._shape_memory) > 64:        # tiles and octaves of many sizes
                self._shape_memory.clear()
            self._shape_memory[key] = self._shape_pass(height, width)
        return self._shape_memory[key]

    def _shape_pass(self, height: int, width: int) -> tuple[dict, Exception | None]:
        shapes: dict[str, tuple[tuple[int, ...], bool]] = {}

        def record(name):
            def hook(_module, _inputs, output):
                tensor = _first_tensor(output)
                if name not in shapes and tensor is not None:
                    shapes[name] = (tuple(tensor.shape), tensor.is_floating_point())
            return hook

        handles = [self._named[n].register_forward_hook(record(n)) for n in self.layers]
        try:
            if not self._real_shapes:
                x = torch.empty((1, 3, height, width), device="meta", dtype=self.dtype)
                try:
                    torch.func.functional_call(self.module, self._meta_state(), (x,))
                    return shapes, None
                except Exception as e:
                    if not _needs_numbers(e):     # the model's own failure at this size
                        return shapes, self._failure(e, x)
                    log.debug("%s cannot run on shapes alone (%s): its sizes come from "
                              "real passes", self.name, first_line(e))
                    self._real_shapes = True
                    shapes.clear()
            x = torch.zeros((1, 3, height, width), device=self.device, dtype=self.dtype)
            try:
                with torch.no_grad():
                    self.module(x)
            except Exception as e:
                return shapes, self._failure(e, x)
            return shapes, None
        finally:
            for handle in handles:
                handle.remove()

    def _meta_state(self) -> dict[str, torch.Tensor]:
        """The module's parameters and buffers on the meta device."""
        if self._meta_params is None:
            state = dict(self.module.named_parameters())
            state.update(self.module.named_buffers())
            self._meta_params = {k: torch.empty_like(v, device="meta") for k, v in state.items()}
        return self._meta_params

    def end_shape(self, height: int, width: int, end: str) -> tuple[int, ...]:
        self.resolve(end)
        if end == INPUT:
            return (1, 3, height, width)
        shapes, error = self._shapes(height, width)
        if end not in shapes:
            if error is not None:
                raise error.with_traceback(None)
            raise ModelError(f"layer '{end}' of {self.name} does not run in its forward "
                             "pass (an unused or training-only module): choose another")
        shape, numbers = shapes[end]
        if not numbers:
            raise ModelError(f"layer '{end}' of {self.name} gives no tensor of numbers to "
                             "dream on: choose another")
        return shape

    def blob_shapes(self, height: int, width: int) -> dict[str, tuple[int, ...] | None]:
        """In run order (a container after its children), then with None the layers that an
        input of this size cannot reach; layers that never run are left out."""
        shapes, error = self._shapes(height, width)
        found: dict[str, tuple[int, ...] | None] = {INPUT: (1, 3, height, width)}
        found.update((name, shape) for name, (shape, _) in shapes.items())
        if error is not None:
            # the input is too small for a layer: it and those after it cannot be reached
            found.update((name, None) for name in self.layers if name not in found)
        return found
