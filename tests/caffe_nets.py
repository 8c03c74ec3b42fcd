"""Helpers for tests: write small Caffe nets with the project's protobuf module, and plain
numpy references of Caffe's layer formulas (loops over Caffe's own index arithmetic)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from deepdream.nets.caffe import caffe_pb2 as pb


def layer(name, type_, bottoms, tops, blobs=(), **params) -> pb.LayerParameter:
    """A LayerParameter; ``params`` maps e.g. convolution_param to a dict of its fields."""
    msg = pb.LayerParameter(name=name, type=type_, bottom=list(bottoms), top=list(tops),
                            **params)
    for array in blobs:
        blob = msg.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.data.extend(np.asarray(array, dtype=np.float32).ravel().tolist())
    return msg


def write_net(folder: Path, layers: list[pb.LayerParameter], input_shape=(1, 3, 8, 8),
              name="test") -> tuple[Path, Path]:
    """Write ``deploy.prototxt`` (structure only) and ``weights.caffemodel`` (with blobs) for
    ``layers`` behind an Input layer named 'data'. Returns (caffemodel, deploy)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = pb.LayerParameter(name="data", type="Input", top=["data"])
    data.input_param.shape.add().dim.extend(input_shape)
    full = pb.NetParameter(name=name, layer=[data] + list(layers))
    deploy = pb.NetParameter()
    deploy.CopyFrom(full)
    for l in deploy.layer:
        del l.blobs[:]
    deploy_path, model_path = folder / "deploy.prototxt", folder / "weights.caffemodel"
    deploy_path.write_text(text_format.MessageToString(deploy))
    model_path.write_bytes(full.SerializeToString())
    return model_path, deploy_path


# -- numpy references, written from Caffe's C++ loops -------------------------------------

def ref_conv(x, w, b, stride=(1, 1), pad=(0, 0), dilation=(1, 1), group=1):
    n, c, h, wd = x.shape
    out_c, in_per_group, kh, kw = w.shape
    oh = (h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    xp = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]), np.float64)
    xp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    y = np.zeros((n, out_c, oh, ow), np.float64)
    out_per_group = out_c // group
    for o in range(out_c):
        g = o // out_per_group
        for i in range(oh):
            for j in range(ow):
                for ki in range(kh):
                    for kj in range(kw):
                        yy = i * stride[0] + ki * dilation[0]
                        xx = j * stride[1] + kj * dilation[1]
                        patch = xp[:, g * in_per_group:(g + 1) * in_per_group, yy, xx]
                        y[:, o, i, j] += patch @ w[o, :, ki, kj]
        if b is not None:
            y[:, o] += b[o]
    return y


def ref_pool(x, kernel, stride, pad, method):
    n, c, h, w = x.shape
    def size(s, k, st, p):
        out = int(math.ceil((s + 2 * p - k) / st)) + 1
        if p and (out - 1) * st >= s + p:
            out -= 1
        return out
    oh, ow = size(h, kernel[0], stride[0], pad[0]), size(w, kernel[1], stride[1], pad[1])
    y = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
            pool_size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            if method == "MAX":
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                y[:, :, i, j] = window.sum(axis=(2, 3)) / pool_size
    return y


def ref_lrn_across(x, size, alpha, beta, k):
    n, c, h, w = x.shape
    half = (size - 1) // 2
    y = np.zeros_like(x, dtype=np.float64)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch + half + 1)
        scale = k + alpha / size * (x[:, lo:hi] ** 2).sum(axis=1)
        y[:, ch] = x[:, ch] * scale ** -beta
    return y


def ref_lrn_within(x, size, alpha, beta):
    half = (size - 1) // 2
    mean_sq = ref_pool(x.astype(np.float64) ** 2, (size, size), (1, 1), (half, half), "AVE")
    return x * (1.0 + alpha * mean_sq) ** -beta
