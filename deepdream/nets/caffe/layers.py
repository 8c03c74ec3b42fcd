"""Caffe's layers on PyTorch, with Caffe's arithmetic: each layer type a small class holding
its weights (which never require gradients), called on its bottom blobs to give its tops.
``LAYERS`` names every type supported; anything else is refused by name.
"""
from __future__ import annotations

import copy
import functools

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ImageTooSmallError, ModelError, ModelMismatchError
from . import caffe_pb2 as pb
from .format import LayerSpec
from .kernels import (CrossChannelLRN, ImageConvolution, caffe_ave_pool, negative_power,
                      phase_weight, squarable)


class Layer:
    """A Caffe layer: ``layer(*bottoms) -> tuple of tops``. Weights are torch tensors listed
    in ``self.weights`` by attribute name, so that ``to(device)`` can move them."""

    weights: tuple[str, ...] = ()

    def __init__(self, spec: LayerSpec, bottom_shapes: list[tuple[int, ...]]):
        self.name, self.type = spec.name, spec.type

    def __call__(self, *bottoms: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def to(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> "Layer":
        moved = copy.copy(self)
        for attr in self.weights:
            tensor = getattr(self, attr)
            if tensor is not None:
                tensor = tensor.to(device, dtype)
                if tensor.dim() == 4:    # convolution weights, laid out as the activations
                    tensor = tensor.contiguous(memory_format=torch.channels_last)
                setattr(moved, attr, tensor)
        return moved

    def mismatch(self, what: str, expected, found) -> ModelMismatchError:
        return ModelMismatchError(
            f"layer '{self.name}' ({self.type}): {what} should have shape {tuple(expected)} "
            f"but the caffemodel has {tuple(found)}: the deploy prototxt and the caffemodel "
            "do not match")

    def take_blob(self, spec: LayerSpec, index: int, expected: tuple[int, ...],
                  what: str) -> torch.Tensor:
        """Blob ``index`` of the layer as a tensor of shape ``expected``. A V1 file stores
        every blob as 4-D (num, channels, height, width) - a bias of 64 as (1, 1, 1, 64), an
        InnerProduct weight as (1, 1, N, K) - so a legacy blob matches when it equals the
        expected shape padded on the left with ones (Caffe's ShapeEquals does the same)."""
        if not spec.blobs and spec.init is not None:
            return torch.from_numpy(spec.init(tuple(expected), what))
        if index >= len(spec.blobs):
            raise ModelMismatchError(f"layer '{self.name}' ({self.type}): the caffemodel has "
                                     f"{len(spec.blobs)} weight blob(s), {what} is missing")
        blob = spec.blobs[index]
        padded = (1,) * (4 - len(expected)) + tuple(expected)
        if blob.shape != tuple(expected) and not (spec.legacy[index] and blob.shape == padded):
            raise self.mismatch(what, expected, blob.shape)
        return torch.from_numpy(np.ascontiguousarray(blob.reshape(expected)))


def _pair(param, name: str, default: int | None) -> tuple[int, int]:
    """Caffe's (h, w) for kernel/pad/stride/dilation: ``name_h``/``name_w`` when set, else
    ``name`` (a scalar, or a repeated field with one value for both axes or one per axis),
    else ``default``."""
    fields = param.DESCRIPTOR.fields_by_name
    if f"{name}_h" in fields and (param.HasField(f"{name}_h") or param.HasField(f"{name}_w")):
        return getattr(param, f"{name}_h"), getattr(param, f"{name}_w")
    field = fields[name if name in fields else f"{name}_size"]
    value = getattr(param, field.name)
    if field.is_repeated:
        values = list(value)
    else:
        values = [value] if param.HasField(field.name) else []
    if len(values) in (1, 2):
        return (values[0], values[-1])
    if not values and default is not None:
        return default, default
    raise ModelError(f"{param.DESCRIPTOR.name}: {field.name} needs 1 or 2 values, "
                     f"not {values}")


class Input(Layer):
    pass


class Convolution(Layer):
    weights = ("weight", "bias", "phase_weight")
    phase_weight = None

    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.convolution_param
        if p.axis != 1 or len(bottom_shapes[0]) != 4:
            raise ModelError(f"layer '{self.name}': only 2-D convolution over axis 1 is "
                             "supported")
        self.kernel = _pair(p, "kernel", None)
        self.pad = _pair(p, "pad", 0)
        self.stride = _pair(p, "stride", 1)
        self.dilation = _pair(p, "dilation", 1)
        self.group = p.group
        channels = bottom_shapes[0][1]
        if channels % self.group or p.num_output % self.group:
            raise ModelError(f"layer '{self.name}': {channels} input channels and "
                             f"{p.num_output} outputs do not divide into {self.group} groups")
        self.weight = self.take_blob(spec, 0, (p.num_output, channels // self.group,
                                               *self.kernel), "weight")
        self.bias = self.take_blob(spec, 1, (p.num_output,), "bias") if p.bias_term else None
        if (channels <= 4 and self.group == 1 and self.dilation == (1, 1)
                and self.stride[0] == self.stride[1] > 1):
            self.phase_weight, self.phase_low = phase_weight(self.weight, self.pad,
                                                             self.stride[0])

    def __call__(self, x):
        if self.phase_weight is not None and x.requires_grad:
            return (ImageConvolution.apply(x, self),)
        return (F.conv2d(x, self.weight, self.bias, self.stride, self.pad, self.dilation,
                         self.group),)


class InnerProduct(Layer):
    weights = ("weight", "bias")

    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.inner_product_param
        self.axis = p.axis % len(bottom_shapes[0])
        k = int(np.prod(bottom_shapes[0][self.axis:]))
        # Caffe keeps the weight as (N, K), or (K, N) with transpose: true.
        shape = (k, p.num_output) if p.transpose else (p.num_output, k)
        weight = self.take_blob(spec, 0, shape, "weight")
        self.weight = weight.t().contiguous() if p.transpose else weight   # (N, K)
        self.bias = self.take_blob(spec, 1, (p.num_output,), "bias") if p.bias_term else None

    def __call__(self, x):
        flat = x.flatten(self.axis)                                          # (..., K)
        if flat.shape[-1] != self.weight.shape[1]:
            raise ImageTooSmallError(
                f"layer '{self.name}' (InnerProduct) takes {self.weight.shape[1]} values but "
                f"gets {flat.shape[-1]}: it only works at the net's training size (224x224 "
                "for GoogLeNet); dream on an earlier layer")
        return (F.linear(flat, self.weight, self.bias),)


class ReLU(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        self.slope = spec.param.relu_param.negative_slope

    def __call__(self, x):
        return (F.leaky_relu(x, self.slope) if self.slope else F.relu(x),)


class Pooling(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.pooling_param
        if p.pool not in (pb.PoolingParameter.MAX, pb.PoolingParameter.AVE):
            raise ModelError(f"layer '{self.name}': only MAX and AVE pooling are supported")
        self.max = p.pool == pb.PoolingParameter.MAX
        self.global_pooling = p.global_pooling
        if not self.global_pooling:
            self.kernel = _pair(p, "kernel", None)
            self.stride = _pair(p, "stride", 1)
            self.pad = _pair(p, "pad", 0)
            if any(pd > k // 2 for pd, k in zip(self.pad, self.kernel)):
                raise ModelError(f"layer '{self.name}': padding {self.pad} larger than half "
                                 f"the kernel {self.kernel} is not supported")
            if any(s > k and not pd for s, k, pd in zip(self.stride, self.kernel, self.pad)):
                raise ModelError(f"layer '{self.name}': a stride larger than the kernel "
                                 "is not supported")

    def __call__(self, x):
        if self.global_pooling:
            kernel, stride, pad = tuple(x.shape[2:]), (1, 1), (0, 0)
        else:
            kernel, stride, pad = self.kernel, self.stride, self.pad
        # PyTorch's ceil mode computes Caffe's output size (including the rule that the last
        # window starts inside the padded input), and its AVE divisor with
        # count_include_pad=True counts the padded cells but not the cells past the padding,
        # as Caffe's does. Max pooling ignores padding in both.
        if self.max:
            y = F.max_pool2d(x, kernel, stride, pad, ceil_mode=True)
        else:
            y = F.avg_pool2d(x, kernel, stride, pad, ceil_mode=True, count_include_pad=True)
        return (y,)


class LRN(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.lrn_param
        if p.local_size % 2 == 0:
            raise ModelError(f"layer '{self.name}': LRN needs an odd local_size "
                             f"(Caffe refuses {p.local_size} too)")
        self.size, self.alpha, self.beta, self.k = p.local_size, p.alpha, p.beta, p.k
        self.across = p.norm_region == pb.LRNParameter.ACROSS_CHANNELS

    def __call__(self, x):
        if self.across:
            return (CrossChannelLRN.apply(x, self.size, self.alpha, self.beta, self.k),)
        # WITHIN_CHANNEL: Caffe builds it from an AVE pooling of the squares and a Power
        # layer with shift 1 (k is not used): scale = 1 + alpha * mean over the window.
        half = (self.size - 1) // 2
        wide = squarable(x)
        scale = 1.0 + self.alpha * caffe_ave_pool(wide.square(), self.size, half)
        return ((wide * negative_power(scale, self.beta)).to(x.dtype),)


class Concat(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.concat_param
        axis = p.axis if p.HasField("axis") else p.concat_dim
        self.axis = axis % len(bottom_shapes[0])

    def __call__(self, *xs):
        return (torch.cat(xs, self.axis),)


class Identity(Layer):
    """Dropout at test time, and Caffe's Split (one bottom copied to several tops)."""

    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        self.copies = max(1, len(spec.tops))

    def __call__(self, x):
        return (x,) * self.copies


class Softmax(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        self.axis = spec.param.softmax_param.axis % len(bottom_shapes[0])

    def __call__(self, x):
        return (F.softmax(x, self.axis),)


class Eltwise(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.eltwise_param
        self.op = p.operation
        self.coeff = list(p.coeff) or [1.0] * len(bottom_shapes)
        if len(self.coeff) != len(bottom_shapes):
            raise ModelError(f"layer '{self.name}': {len(self.coeff)} coefficients for "
                             f"{len(bottom_shapes)} inputs")
        if p.coeff and self.op != pb.EltwiseParameter.SUM:
            raise ModelError(f"layer '{self.name}': coefficients are for SUM only")

    def __call__(self, *xs):
        if self.op == pb.EltwiseParameter.SUM:
            y = functools.reduce(torch.add, (c * x if c != 1 else x
                                             for c, x in zip(self.coeff, xs)))
        elif self.op == pb.EltwiseParameter.PROD:
            y = functools.reduce(torch.mul, xs)
        else:
            # Caffe's MAX keeps the first input among equals (strict >), and its gradient goes
            # to that input alone.
            y = xs[0]
            for x in xs[1:]:
                y = torch.where(x > y, x, y)
        return (y,)


class BatchNorm(Layer):
    weights = ("mean", "inv_std")

    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.batch_norm_param
        channels = bottom_shapes[0][1]
        # Test phase: the stored statistics, unless the prototxt asks for batch statistics.
        self.global_stats = p.use_global_stats if p.HasField("use_global_stats") else True
        self.eps = p.eps
        mean = self.take_blob(spec, 0, (channels,), "mean")
        var = self.take_blob(spec, 1, (channels,), "variance")
        factor = float(self.take_blob(spec, 2, (1,), "moving-average factor")[0])
        # Caffe stores running sums; the factor turns them into averages (0 means unset).
        factor = 0.0 if factor == 0 else 1.0 / factor
        self.mean = mean * factor
        self.inv_std = (var * factor + self.eps).rsqrt()

    def __call__(self, x):
        if self.global_stats:
            per_channel = (1, -1) + (1,) * (x.dim() - 2)
            return ((x - self.mean.reshape(per_channel)) * self.inv_std.reshape(per_channel),)
        dims = [0] + list(range(2, x.dim()))
        centred = x - x.mean(dims, keepdim=True)
        return (centred * (centred.square().mean(dims, keepdim=True) + self.eps).rsqrt(),)


class Scale(Layer):
    """Caffe's Scale (and its optional bias): a learned per-channel scale, or a second bottom."""
    weights = ("scale", "bias")

    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.scale_param
        shape = bottom_shapes[0]
        self.axis = p.axis % len(shape)
        if len(bottom_shapes) > 1:
            self.scale = None
            covered = bottom_shapes[1]
            bias_index = 0
        else:
            end = len(shape) if p.num_axes == -1 else self.axis + p.num_axes
            covered = tuple(shape[self.axis:end])
            self.scale = self.take_blob(spec, 0, covered, "scale")
            bias_index = 1
        self.trailing = len(shape) - self.axis - len(covered)
        self.bias = (self.take_blob(spec, bias_index, tuple(covered), "bias")
                     if p.bias_term else None)

    def _broadcast(self, t):
        return t.reshape(*t.shape, *([1] * self.trailing))

    def __call__(self, x, *rest):
        scale = rest[0] if rest else self.scale
        y = x * self._broadcast(scale)
        if self.bias is not None:
            y = y + self._broadcast(self.bias)
        return (y,)


class Flatten(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.flatten_param
        n = len(bottom_shapes[0])
        self.start, self.end = p.axis % n, p.end_axis % n

    def __call__(self, x):
        return (x.flatten(self.start, self.end),)


class Reshape(Layer):
    def __init__(self, spec, bottom_shapes):
        super().__init__(spec, bottom_shapes)
        p = spec.param.reshape_param
        self.dims = list(p.shape.dim)
        self.axis, self.num_axes = p.axis, p.num_axes
        if self.dims.count(-1) > 1:
            raise ModelError(f"layer '{self.name}': at most one -1 in a Reshape")

    def __call__(self, x):
        shape = list(x.shape)
        start = self.axis if self.axis >= 0 else len(shape) + 1 + self.axis
        end = len(shape) if self.num_axes == -1 else start + self.num_axes
        # 0 copies the replaced range's dimension at that position; -1 is inferred by torch.
        middle = [shape[start + i] if d == 0 else d for i, d in enumerate(self.dims)]
        return (x.reshape(shape[:start] + middle + shape[end:]),)


LAYERS = {"Input": Input, "Convolution": Convolution, "InnerProduct": InnerProduct,
          "ReLU": ReLU, "Pooling": Pooling, "LRN": LRN, "Concat": Concat, "Dropout": Identity,
          "Split": Identity, "Softmax": Softmax, "Eltwise": Eltwise, "BatchNorm": BatchNorm,
          "Scale": Scale, "Flatten": Flatten, "Reshape": Reshape}
