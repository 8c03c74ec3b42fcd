#!/usr/bin/env python3
"""Write the deploy prototxts of the registry's nets from their published architectures.

    python models/make_deploys.py        # rewrites models/<name>/deploy.prototxt

Layer names, kernels, strides, pads, groups and widths follow each net's own release (BVLC
Model Zoo, the Places releases, VGG's Caffe release, Kaiming He's ResNet release), so that
their caffemodels' weights match by name. bvlc_googlenet/deploy.prototxt is the BVLC file
itself and is the template of the Places GoogLeNets.
"""
from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import text_format

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from deepdream.nets.caffe import caffe_pb2 as pb  # noqa: E402


class Builder:
    def __init__(self, name: str, size: int):
        self.net = pb.NetParameter(name=name)
        data = self.net.layer.add(name="data", type="Input", top=["data"])
        data.input_param.shape.add(dim=[10, 3, size, size])

    def add(self, name, type_, bottoms, top=None, **params):
        layer = self.net.layer.add(name=name, type=type_, bottom=list(bottoms),
                                   top=[top or name], **params)
        return layer.top[0]

    def conv(self, name, bottom, out, k, s=1, p=0, group=1, bias=True):
        param = dict(num_output=out, kernel_size=[k], bias_term=bias)
        if s != 1:
            param["stride"] = [s]
        if p:
            param["pad"] = [p]
        if group != 1:
            param["group"] = group
        return self.add(name, "Convolution", [bottom], convolution_param=param)

    def relu(self, name, blob):
        return self.add(name, "ReLU", [blob], blob)

    def pool(self, name, bottom, k, s, method=0, p=0):
        param = dict(pool=method, kernel_size=k, stride=s)
        if p:
            param["pad"] = p
        return self.add(name, "Pooling", [bottom], pooling_param=param)

    def lrn(self, name, bottom):
        return self.add(name, "LRN", [bottom],
                        lrn_param=dict(local_size=5, alpha=0.0001, beta=0.75))

    def fc(self, name, bottom, out):
        return self.add(name, "InnerProduct", [bottom], inner_product_param=dict(num_output=out))

    def classifier_head(self, bottom, fc6="fc6", classes=1000):
        x = self.relu("relu6", self.fc(fc6, bottom, 4096))
        x = self.add("drop6", "Dropout", [x], x, dropout_param=dict(dropout_ratio=0.5))
        x = self.relu("relu7", self.fc("fc7", x, 4096))
        x = self.add("drop7", "Dropout", [x], x, dropout_param=dict(dropout_ratio=0.5))
        self.add("prob", "Softmax", [self.fc("fc8", x, classes)])

    def write(self, folder: str):
        (HERE / folder).mkdir(exist_ok=True)
        (HERE / folder / "deploy.prototxt").write_text(text_format.MessageToString(self.net))


def norm_and_pool(b: Builder, x: str, index: str, norm_first: bool) -> str:
    if norm_first:
        return b.pool(f"pool{index}", b.lrn(f"norm{index}", x), 3, 2)
    return b.lrn(f"norm{index}", b.pool(f"pool{index}", x, 3, 2))


def caffenet(alexnet: bool):
    """BVLC CaffeNet (pool before norm) and AlexNet (norm before pool): 227x227 input."""
    b = Builder("AlexNet" if alexnet else "CaffeNet", 227)
    x = b.relu("relu1", b.conv("conv1", "data", 96, 11, s=4))
    x = norm_and_pool(b, x, "1", alexnet)
    x = b.relu("relu2", b.conv("conv2", x, 256, 5, p=2, group=2))
    x = norm_and_pool(b, x, "2", alexnet)
    x = b.relu("relu3", b.conv("conv3", x, 384, 3, p=1))
    x = b.relu("relu4", b.conv("conv4", x, 384, 3, p=1, group=2))
    x = b.relu("relu5", b.conv("conv5", x, 256, 3, p=1, group=2))
    b.classifier_head(b.pool("pool5", x, 3, 2))
    b.write("bvlc_alexnet" if alexnet else "bvlc_reference_caffenet")


def vgg(depth: int):
    """VGG_ILSVRC_16/19_layers: 3x3 convolutions, 2x2 max pools, 224x224 input."""
    per_block = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}[depth]
    b = Builder(f"VGG_ILSVRC_{depth}_layers", 224)
    x = "data"
    for block, (count, width) in enumerate(zip(per_block, (64, 128, 256, 512, 512)), 1):
        for i in range(1, count + 1):
            x = b.relu(f"relu{block}_{i}", b.conv(f"conv{block}_{i}", x, width, 3, p=1))
        x = b.pool(f"pool{block}", x, 2, 2)
    b.classifier_head(x)
    b.write(f"vgg{depth}")


def resnet50():
    """Kaiming He's ResNet-50 (the stride sits on the first 1x1 of each down-sampling
    block): Convolution without bias + BatchNorm + Scale, bottlenecks joined by Eltwise SUM."""
    b = Builder("ResNet-50", 224)

    def conv_bn(name, suffix, bottom, out, k, s=1, p=0, relu=True):
        x = b.conv(f"res{name}_{suffix}" if name else "conv1", bottom, out, k, s, p,
                   bias=False)
        tag = f"{name}_{suffix}" if name else "_conv1"
        x = b.add(f"bn{tag}", "BatchNorm", [x], x,
                  batch_norm_param=dict(use_global_stats=True))
        x = b.add(f"scale{tag}", "Scale", [x], x, scale_param=dict(bias_term=True))
        return b.relu(f"res{name}_{suffix}_relu" if name else "conv1_relu", x) if relu else x

    x = conv_bn("", "", "data", 64, 7, s=2, p=3)
    x = b.pool("pool1", x, 3, 2)
    for stage, blocks, width in ((2, 3, 64), (3, 4, 128), (4, 6, 256), (5, 3, 512)):
        for i in range(blocks):
            name = f"{stage}{'abcdef'[i]}"
            stride = 2 if i == 0 and stage > 2 else 1
            shortcut = conv_bn(name, "branch1", x, 4 * width, 1, stride, relu=False) \
                if i == 0 else x
            y = conv_bn(name, "branch2a", x, width, 1, stride)
            y = conv_bn(name, "branch2b", y, width, 3, 1, 1)
            y = conv_bn(name, "branch2c", y, 4 * width, 1, relu=False)
            x = b.add(f"res{name}", "Eltwise", [shortcut, y])
            x = b.relu(f"res{name}_relu", x)
    x = b.pool("pool5", x, 7, 1, method=1)
    b.add("prob", "Softmax", [b.fc("fc1000", x, 1000)])
    b.write("resnet50")


def places_googlenet(folder: str, classes: int):
    """The Places GoogLeNets: BVLC GoogLeNet's layers with a classifier of ``classes``."""
    net = pb.NetParameter()
    text_format.Parse((HERE / "bvlc_googlenet" / "deploy.prototxt").read_text(), net)
    net.name = f"GoogleNet-{folder}"
    for layer in net.layer:
        if layer.name == "loss3/classifier":
            layer.inner_product_param.num_output = classes
    (HERE / folder).mkdir(exist_ok=True)
    (HERE / folder / "deploy.prototxt").write_text(text_format.MessageToString(net))


if __name__ == "__main__":
    caffenet(alexnet=False)
    caffenet(alexnet=True)
    vgg(16)
    vgg(19)
    resnet50()
    places_googlenet("googlenet_places205", 205)
    places_googlenet("googlenet_places365", 365)
