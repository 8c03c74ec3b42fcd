"""Errors a user can cause while loading and running a net: one clear sentence each."""

import re

import numpy as np
import pytest

import deepdream
from deepdream.nets.caffe import caffe_pb2 as pb
from deepdream.dreamer.ascent import dream
from deepdream.errors import (DeviceError, ImageTooSmallError, ModelError, ModelMismatchError,
                              UnknownLayerError, ZeroGradientError)
from google.protobuf import text_format

from caffe_nets import layer, write_net
from conftest import FIXTURES, caffe_input

MODEL = FIXTURES / "tiny_googlenet.caffemodel"
DEPLOY = FIXTURES / "tiny_googlenet.prototxt"


def test_unknown_end_layer_suggests_nearest_names(tiny_net, golden):
    x = caffe_input(golden["input/67x83"])
    with pytest.raises(UnknownLayerError, match="inception_4c/output"):
        tiny_net.forward(x, "inception_4c/ouput")
    with pytest.raises(UnknownLayerError, match="no layer or blob named 'nonsense'"):
        dream(tiny_net, golden["input/67x83"], "nonsense")


def test_image_too_small_names_the_smallest_size_that_works(tiny_net):
    with pytest.raises(ImageTooSmallError) as info:
        dream(tiny_net, np.zeros((20, 20, 3), np.uint8), "inception_5b/output", octave_n=8)
    message = str(info.value)
    assert "8 octaves" in message and "at least" in message
    side = int(message.split("at least ")[-1].split("x")[0])
    # the size it names really works (no error before the first step)
    out = dream(tiny_net, np.full((side, side, 3), 128, np.uint8), "inception_5b/output",
                octave_n=8, iter_n=1, jitter=0)
    assert out.shape == (side, side, 3)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_caffemodel(tmp_path, fraction):
    data = MODEL.read_bytes()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ModelError, match=rf"^{re.escape(str(cut))} .*(truncated|corrupt|no "
                                         r"weights)"):
        deepdream.load_net(cut, DEPLOY)


@pytest.mark.parametrize("content", [b"", b"\xff" * 1000, b"not a model at all" * 50],
                         ids=["empty", "garbage", "text"])
def test_corrupt_caffemodel(tmp_path, content):
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match=rf"^{re.escape(str(bad))} (holds no layers|is "
                                         r"truncated or corrupt)"):
        deepdream.load_net(bad, DEPLOY)


def test_missing_files(tmp_path):
    missing = tmp_path / "nope.caffemodel"
    with pytest.raises(ModelError, match=f"^caffemodel not found: {re.escape(str(missing))}$"):
        deepdream.load_net(missing, DEPLOY)
    missing = tmp_path / "nope.prototxt"
    with pytest.raises(ModelError, match=f"^deploy prototxt not found: "
                                         f"{re.escape(str(missing))}$"):
        deepdream.load_net(MODEL, missing)


def test_bad_prototxt(tmp_path):
    bad = tmp_path / "deploy.prototxt"
    bad.write_text("layer { name: 'x' type: ")
    with pytest.raises(ModelError, match=rf"^{re.escape(str(bad))} is not a valid Caffe "
                                         "prototxt"):
        deepdream.load_net(MODEL, bad)


def test_a_misspelt_field_is_refused_naming_it_its_line_and_the_right_name(tmp_path):
    text = DEPLOY.read_text()
    line = text[:text.index("kernel_size: 7")].count("\n") + 1
    bad = tmp_path / "deploy.prototxt"
    bad.write_text(text.replace("kernel_size: 7", "kernal_size: 7", 1))
    with pytest.raises(ModelError, match=rf"deploy.prototxt, line {line}: Caffe's "
                                         r"ConvolutionParameter has no field 'kernal_size'; "
                                         r"did you mean 'kernel_size'\?"):
        deepdream.load_net(MODEL, bad)
    bad.write_text(text.replace("  bottom:", "  bottoms:", 1))
    with pytest.raises(ModelError, match=r"LayerParameter has no field 'bottoms'; did you "
                                         r"mean 'bottom'"):
        deepdream.load_net(MODEL, bad)


def test_parameters_of_caffe_layers_we_never_run_are_passed_over(tmp_path, golden):
    # a Python data layer (braces inside its param_str) and a DummyData layer: Caffe knows
    # their fields; the torch engine drops data layers after the input, as it always did
    extra = """layer {
  name: "feed"  # a data layer of one's own
  type: "Python"
  top: "feed"
  python_param { module: "my.layers" layer: "Feed" param_str: "{'size': [1, 2]}" }
}
layer { name: "noise" type: "DummyData" top: "noise" dummy_data_param { shape { dim: 1 } } }
"""
    text = DEPLOY.read_text()
    second = text.index("layer {", text.index("layer {") + 1)     # after the Input layer
    text = text[:second] + extra + text[second:]
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(text)
    net = deepdream.load_net(MODEL, deploy)
    assert "feed" not in net.layers and "noise" not in net.layers
    x = caffe_input(golden["input/120x160"])
    reference = deepdream.load_net(MODEL, DEPLOY)
    np.testing.assert_array_equal(net.forward(x, "inception_3a/output"),
                                  reference.forward(x, "inception_3a/output"))
    # a field the blocks do not excuse is still refused after them
    deploy.write_text(text.replace("kernel_size: 7", "kernal_size: 7", 1))
    with pytest.raises(ModelError, match="no field 'kernal_size'"):
        deepdream.load_net(MODEL, deploy)
    # a layer type of a Caffe fork (SSD's Permute) is refused by its type, not by its block;
    # a near miss of a block of ours is a misspelling
    fork = """layer { name: "perm" type: "Permute" bottom: "conv1/7x7_s2" top: "perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
"""
    deploy.write_text(text + fork)
    with pytest.raises(ModelError, match="layer 'perm' has type 'Permute', which is not "
                                         "supported"):
        deepdream.load_net(MODEL, deploy)
    deploy.write_text(text.replace("convolution_param", "convolution_parm", 1))
    with pytest.raises(ModelError, match="no field 'convolution_parm'; did you mean "
                                         "'convolution_param'"):
        deepdream.load_net(MODEL, deploy)


def test_deploy_and_caffemodel_shapes_do_not_match(tmp_path):
    net = pb.NetParameter()
    text_format.Parse(DEPLOY.read_text(), net)
    conv = next(l for l in net.layer if l.name == "conv2/3x3")
    conv.convolution_param.num_output = 40
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(text_format.MessageToString(net))
    with pytest.raises(ModelMismatchError) as info:
        deepdream.load_net(MODEL, deploy)
    message = str(info.value)
    assert "conv2/3x3" in message and "(40, 8, 3, 3)" in message and "(24, 8, 3, 3)" in message


def test_deploy_layer_without_weights(tmp_path):
    net = pb.NetParameter()
    text_format.Parse(DEPLOY.read_text(), net)
    next(l for l in net.layer if l.name == "conv2/3x3").name = "conv2/renamed"
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(text_format.MessageToString(net))
    with pytest.raises(ModelMismatchError, match="'conv2/renamed'.*has no weights"):
        deepdream.load_net(MODEL, deploy)


def test_caffemodel_layers_missing_from_deploy_are_ignored(tmp_path):
    # a deploy that stops early: the caffemodel's later layers are simply not used
    net = pb.NetParameter()
    text_format.Parse(DEPLOY.read_text(), net)
    keep = [l for l in net.layer][:10]
    del net.layer[:]
    net.layer.extend(keep)
    deploy = tmp_path / "short.prototxt"
    deploy.write_text(text_format.MessageToString(net))
    short = deepdream.load_net(MODEL, deploy)
    assert short.layers == [l.name for l in keep[1:]]


def test_zero_gradient_is_a_clear_error(tmp_path):
    model, deploy = write_net(tmp_path, [
        layer("c", "Convolution", ["data"], ["c"],
              [np.zeros((2, 3, 3, 3), np.float32), np.zeros(2, np.float32)],
              convolution_param=dict(num_output=2, kernel_size=[3]))], (1, 3, 16, 16))
    net = deepdream.load_net(model, deploy)
    with pytest.raises(ZeroGradientError, match="zero"):
        dream(net, np.full((16, 16, 3), 100, np.uint8), "c", octave_n=1, iter_n=2)


def test_unknown_device():
    with pytest.raises(DeviceError, match="^unknown device 'tpu'"):
        deepdream.load_net(MODEL, DEPLOY, device="tpu")


def test_v1_caffemodel_alone_builds_from_its_saved_structure(golden):
    net = deepdream.load_net(FIXTURES / "tiny_googlenet_v1.caffemodel")
    x = caffe_input(golden["input/67x83"])
    expected = golden["fwd/inception_4c/output/67x83"]
    assert np.abs(net.forward(x, "inception_4c/output") - expected).max() \
        < 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("message", [
    "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
    "tried to allocate 1600000000000 bytes", "CUDA out of memory. Tried to allocate 2 GiB"],
    ids=["cpu", "cuda"])
def test_running_out_of_memory_says_what_to_do(tiny_net, message):
    import torch
    from deepdream.errors import OutOfMemoryError
    from deepdream.nets.caffe.torch_net import _wrap_failure
    error = torch.OutOfMemoryError(message) if "CUDA" in message else RuntimeError(message)
    layer = tiny_net._specs[0][0]
    wrapped = _wrap_failure(layer, [(1, 3, 2160, 3840)], error)
    assert isinstance(wrapped, OutOfMemoryError) and "--tile" in str(wrapped)
    assert not isinstance(_wrap_failure(layer, [(1, 3, 4, 4)], RuntimeError("size")),
                          OutOfMemoryError)
