"""What the nets that PyTorch computes share (the Caffe nets on PyTorch and your own
``nn.Module``): autograd's input gradient in fp32, bf16 or fp16 with the overflow checks, and
the one reading of PyTorch's failures as ours (out of memory, an input too small).
"""
from __future__ import annotations

import logging
import math
import re

import numpy as np
import torch

from ..errors import DeepDreamError, ImageTooSmallError, OutOfMemoryError, PrecisionError, \
    first_line
from . import checks
from .gradients import Objective, l2
from .gradients import gradient as objective_gradient
from .base import PRECISIONS, Net, check_precision

# What PyTorch says when a layer's input is smaller than its kernel or window
TOO_SMALL = re.compile(r"too small|greater than (the )?actual input size|non-positive|"
                       r"smaller than (the )?kernel|output size is", re.IGNORECASE)


def out_of_memory(error: Exception, where: str) -> OutOfMemoryError | None:
    """Our error for a CUDA or CPU allocation failure ``where`` ("computing ..."), else
    None."""
    if isinstance(error, torch.OutOfMemoryError) or (
            isinstance(error, RuntimeError) and "can't allocate memory" in str(error)):
        return OutOfMemoryError(f"out of memory {where}: dream in tiles (--tile 512, or "
                                "smaller), at a smaller size (--preview WIDTH) or with fewer "
                                "octaves")
    return None


def known_failure(error: Exception, who: str, where: str, shape) -> DeepDreamError | None:
    """Our error for ``who`` (a layer, a model; ``where``: "at layer 'x'", "in model")
    failing on input of ``shape``: out of memory, or an input too small for it; None for any
    other failure, which the caller reads as its own."""
    memory = out_of_memory(error, f"{where} for input of shape {shape}")
    if memory is not None:
        return memory
    if TOO_SMALL.search(str(error)):
        return ImageTooSmallError(f"{who} cannot take input of shape {shape}: "
                                  f"{first_line(error)}")
    return None


def slow_precision(device: str, precision: str) -> bool:
    """Whether ``precision`` is emulated on ``device``, and so slower than fp32: 16-bit
    arithmetic on a CPU without AVX512-BF16/AMX (bf16) or AVX512-FP16/AMX-FP16 (fp16)."""
    if not device.startswith("cpu") or precision == "fp32":
        return False
    if precision == "bf16":
        return not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return not torch.ops.mkldnn._is_mkldnn_fp16_supported()


class AutogradNet(Net):
    """A net that PyTorch computes and autograd differentiates, in fp32, bf16 or fp16: what
    the Caffe nets (``TorchNet``) and your own ``nn.Module`` nets (``nets.module.ModuleNet``)
    share. A subclass says how to compute a blob (``_blob``)."""

    def __init__(self, device: str, precision: str):
        self.device = device
        self.precision = check_precision(precision)
        self.dtype = PRECISIONS[precision]
        if device.startswith("cuda"):
            # Caffe's float32 on GPUs: PyTorch lets cuDNN's float32 convolutions round their
            # inputs to TF32 (10 bits, errors of 1e-3) unless told otherwise, for the process.
            torch.backends.cudnn.allow_tf32 = False
            # --seed's promise (the same frames, run after run) on GPUs too: deterministic
            # cuDNN algorithms, chosen by its heuristics, not by timing them (which may choose
            # differently in each run). With autotuning and cuDNN's defaults the same seeded
            # dream twice in one process differed by up to 0.2 (of 255) on an H200; and at
            # 540x360 a frame is launch-bound (BENCHMARKS.md), where autotuning cannot pay.
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        if slow_precision(device, precision):
            logging.getLogger(__name__).warning(
                "this CPU has no %s arithmetic, so --precision %s is emulated and slower "
                "than fp32 (it pays on GPUs%s)", precision, precision,
                "" if precision == "fp16" else " and CPUs with AVX512-BF16 or AMX")

    def _blob(self, x: torch.Tensor, end: str) -> torch.Tensor:
        """The blob at ``end`` for the input ``x`` (already in the net's dtype)."""
        raise NotImplementedError

    def _output(self, x: torch.Tensor, end: str) -> torch.Tensor:
        """The blob at ``end`` for the float32 input ``x``, computed in the net's precision."""
        return self._finite(self._blob(x.to(self.dtype), end), f"the blob '{end}'")

    def forward(self, x: np.ndarray, end: str) -> np.ndarray:
        with torch.no_grad():
            return self._output(self.tensor(x), end).float().cpu().numpy()

    def gradient(self, x: torch.Tensor, end: str,
                 objective: Objective = l2) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = self._output(x, end)
            # The objective's gradient at `end` in float32 (written directly where it is
            # known: the classic dream's is the activations), then back through the net. In
            # 16 bits it is first scaled by a power of two (exact) so that the backward pass
            # neither overflows nor underflows, and the result scaled back.
            dy = objective_gradient(objective, y.detach().float())
            if self.dtype != torch.float32:   # on the device: no wait for it at every step
                largest = dy.abs().amax()
                scale = torch.where(largest > 0, torch.exp2(-torch.ceil(torch.log2(largest))),
                                    1.0)
                dy = (dy * scale).to(y.dtype)
            try:
                (grad,) = torch.autograd.grad(y, x, dy)
            except RuntimeError as e:
                raise out_of_memory(e, f"computing the gradient of a {tuple(x.shape)} input "
                                       f"at '{end}'") or e from None
        if self.dtype != torch.float32:
            grad = grad / scale
        return self._finite(grad, f"the gradient of '{end}'")

    def _finite(self, t: torch.Tensor, what: str) -> torch.Tensor:
        """``t``, after checking that 16-bit arithmetic did not overflow on the way to it:
        at once, or inside ``checks.deferred_checks`` (an octave) when that block ends."""
        if self.dtype == torch.float32:
            return t
        # one float32 sum: an inf or NaN anywhere makes it inf or NaN
        total = torch.sum(t.detach(), dtype=torch.float32)
        error = PrecisionError(f"{what} overflowed in {self.precision} arithmetic: use "
                               "--precision bf16 (the range of fp32) or fp32")
        octave = checks.active_checks()
        if octave is not None:       # total * 0: 0 if it is finite, else NaN (isfinite: 4 ops)
            octave.require(total * 0 == 0, error)
        elif not math.isfinite(total):
            raise error
        return t
