"""The kernels behind Caffe's layers where plain PyTorch calls are slower or differ: the
input gradient of a strided first convolution on an image as one stride-1 convolution of
phases (GoogLeNet's and AlexNet's conv1), and cross-channel LRN with Caffe's analytic backward
and its window sums, in a type that holds the squares.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _phase_taps(kernel: int, pad: int, stride: int) -> tuple[int, list[list[tuple[int, int]]]]:
    """For the input gradient of a strided convolution along one axis: input position
    u = stride * a + r gets dy[a + m] * w[r + pad - stride * m] for every m whose kernel index
    is inside the kernel. Returns the lowest m and, for each phase r, its (m, kernel index)."""
    phases = [[(m, r + pad - stride * m)
               for m in range(math.ceil((r + pad - kernel + 1) / stride), (r + pad) // stride + 1)]
              for r in range(stride)]
    return min(m for taps in phases for m, _ in taps), phases


def phase_weight(weight: torch.Tensor, pad: tuple[int, int], stride: int
                 ) -> tuple[torch.Tensor, tuple[int, int]]:
    """The input gradient of a stride-s convolution as one stride-1 convolution of the output
    gradient, whose C * s * s output channels ``pixel_shuffle`` interleaves into the
    gradient (the kernel split into its s x s phases). Returns that kernel and the lowest
    tap offsets (y, x)."""
    out_channels, channels, kh, kw = weight.shape
    (low_y, rows), (low_x, cols) = _phase_taps(kh, pad[0], stride), _phase_taps(kw, pad[1],
                                                                               stride)
    taps_y = max(m for taps in rows for m, _ in taps) - low_y + 1
    taps_x = max(m for taps in cols for m, _ in taps) - low_x + 1
    phased = torch.zeros(channels, stride, stride, out_channels, taps_y, taps_x,
                         dtype=weight.dtype)
    for r, row_taps in enumerate(rows):
        for q, col_taps in enumerate(cols):
            for m, ky in row_taps:
                for n, kx in col_taps:
                    phased[:, r, q, :, m - low_y, n - low_x] = weight[:, :, ky, kx].t()
    return phased.reshape(channels * stride * stride, out_channels, taps_y, taps_x), \
        (low_y, low_x)


class ImageConvolution(torch.autograd.Function):
    """A strided convolution of a few-channel input (the first layer of an image net, as
    GoogLeNet's 7x7/2 conv1 on RGB) whose input gradient is one stride-1 convolution of the
    output gradient with the phase kernel, then ``pixel_shuffle``: oneDNN's own backward pass
    for three output channels is 2.5 times slower."""

    @staticmethod
    def forward(ctx, x, layer):
        ctx.layer, ctx.size = layer, x.shape[2:]
        return F.conv2d(x, layer.weight, layer.bias, layer.stride, layer.pad)

    @staticmethod
    def backward(ctx, dy):
        layer, (height, width) = ctx.layer, ctx.size
        s = layer.stride[0]
        phases = layer.phase_weight
        taps_y, taps_x = phases.shape[2:]
        low_y, low_x = layer.phase_low
        rows, cols = -(-height // s), -(-width // s)   # input positions per phase
        # pad (or crop) dy so that output a of the convolution reads dy[a + low .. ]
        padded = F.pad(dy, (-low_x, cols + taps_x - 1 + low_x - dy.shape[3],
                            -low_y, rows + taps_y - 1 + low_y - dy.shape[2]))
        dx = F.pixel_shuffle(F.conv2d(padded, phases), s)
        return dx[:, :, :height, :width], None


def caffe_ave_pool(x: torch.Tensor, size: int, pad: int) -> torch.Tensor:
    return F.avg_pool2d(x, size, 1, pad, ceil_mode=True, count_include_pad=True)


def squarable(x: torch.Tensor) -> torch.Tensor:
    """``x`` in a type that holds its squares: float32 for fp16 (whose x^2 overflows above
    256); bf16 has float32's range and stays bf16."""
    return x.float() if x.dtype == torch.float16 else x


def negative_power(x: torch.Tensor, beta: float) -> torch.Tensor:
    """x^-beta; for the 0.75 of GoogLeNet's and AlexNet's LRN as rsqrt(x) * rsqrt(x)^0.5,
    several times faster than pow (and as exact, to a few units in the last place)."""
    if beta == 0.75:
        r = x.rsqrt()
        return r.sqrt().mul_(r)
    return x.pow(-beta)


def channel_window_sum(x: torch.Tensor, size: int) -> torch.Tensor:
    """The sum over ``size`` neighbouring channels (zero beyond the edges), by adding shifted
    views: exact, and several times faster than a pooling over a channel axis."""
    half, c = (size - 1) // 2, x.shape[1]
    padded = F.pad(x, (0, 0, 0, 0, half, half))                       # (N, C + 2 half, H, W)
    total = padded[:, :c].clone()
    for i in range(1, size):
        total += padded[:, i:i + c]
    return total


class CrossChannelLRN(torch.autograd.Function):
    """Caffe's ACROSS_CHANNELS LRN, y = x * scale^-beta with scale = k + alpha/n * window
    sum of x^2, and its analytic backward (LRNLayer::CrossChannelBackward_cpu):
    dx = dy * scale^-beta - 2 alpha beta / n * x * window sum of (dy * y / scale)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        wide = squarable(x)
        scale = channel_window_sum(wide * wide, size).mul_(alpha / size).add_(k)
        factor = negative_power(scale, beta)
        y = wide * factor
        ctx.save_for_backward(wide, y, scale, factor)
        ctx.size, ctx.alpha, ctx.beta = size, alpha, beta
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, dy):
        x, y, scale, factor = ctx.saved_tensors
        wide = dy.to(x.dtype)
        ratio = channel_window_sum((wide * y).div_(scale), ctx.size)
        dx = torch.addcmul(wide * factor, x, ratio,
                           value=-2.0 * ctx.alpha * ctx.beta / ctx.size)
        return dx.to(dy.dtype), None, None, None, None
