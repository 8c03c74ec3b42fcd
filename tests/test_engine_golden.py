"""The PyTorch engine against real Caffe 1.0's own numbers (tests/fixtures, see its README)."""
import numpy as np
import pytest

import deepdream
from deepdream.dreamer.ascent import dream

from conftest import FIXTURES, TEST_DEVICE, caffe_input, relative_error
from conftest import GOLDEN_CASES as CASES, GOLDEN_ENDS as ENDS, GOLDEN_SIZES as SIZES


@pytest.fixture(scope="module")
def v1_net():
    return deepdream.load_net(FIXTURES / "tiny_googlenet_v1.caffemodel",
                              FIXTURES / "tiny_googlenet_v1.prototxt", device=TEST_DEVICE)


@pytest.fixture(scope="module")
def saved_structure_net():
    return deepdream.load_net(FIXTURES / "tiny_googlenet.caffemodel",   # deploy=None
                              device=TEST_DEVICE)


@pytest.mark.parametrize("end,size", CASES, ids=[f"{e}@{s}" for e, s in CASES])
def test_forward_matches_caffe(tiny_net, golden, end, size):
    out = tiny_net.forward(caffe_input(golden[f"input/{size}"]), end)
    expected = golden[f"fwd/{end}/{size}"]
    assert out.shape == expected.shape
    assert relative_error(out, expected) < 1e-4


@pytest.mark.parametrize("end,size", CASES, ids=[f"{e}@{s}" for e, s in CASES])
def test_input_gradient_matches_caffe(tiny_net, golden, end, size):
    x = caffe_input(golden[f"input/{size}"])
    grad = tiny_net.input_gradient(x, end)
    assert grad.shape == x.shape
    assert relative_error(grad[0], golden[f"grad/{end}/{size}"]) < 1e-4


@pytest.mark.parametrize("end,size", CASES, ids=[f"{e}@{s}" for e, s in CASES])
def test_v1_format_gives_identical_numbers(tiny_net, v1_net, golden, end, size):
    x = caffe_input(golden[f"input/{size}"])
    np.testing.assert_array_equal(v1_net.forward(x, end), tiny_net.forward(x, end))
    np.testing.assert_array_equal(v1_net.input_gradient(x, end),
                                  tiny_net.input_gradient(x, end))


@pytest.mark.parametrize("size", SIZES)
def test_structure_saved_in_caffemodel_matches_deploy(tiny_net, saved_structure_net, golden,
                                                      size):
    # The caffemodel holds Caffe's Split layers; without a deploy they must be run too.
    x = caffe_input(golden[f"input/{size}"])
    for end in ENDS:
        assert relative_error(saved_structure_net.forward(x, end),
                              golden[f"fwd/{end}/{size}"]) < 1e-4


def test_guide_features_match_caffe(tiny_net, golden):
    features = tiny_net.forward(caffe_input(golden["guide/image"]), "inception_4c/output")[0]
    assert relative_error(features, golden["guide/features/inception_4c/output"]) < 1e-4


def test_guided_gradient_matches_caffe(tiny_net, golden):
    # Caffe's guided gradient in the fixture was taken on the dream input image.
    x = caffe_input(golden["dream/input"])
    grad = tiny_net.input_gradient(x, "inception_4c/output",
                                   guide=golden["guide/features/inception_4c/output"])
    expected = golden["guide/grad/inception_4c/output/120x160"]
    assert relative_error(grad[0], expected) < 1e-4
    # and it is not the plain L2 gradient
    assert relative_error(tiny_net.input_gradient(x, "inception_4c/output")[0], expected) > 0.05


@pytest.mark.parametrize("end", ["inception_3b/output"])
def test_deterministic_dream_matches_caffe(tiny_net, golden, dream_params, end):
    out = dream(tiny_net, golden["dream/input"], end, jitter=0, **dream_params)
    assert out.shape == golden["dream/input"].shape and out.dtype == np.float32
    assert np.abs(out - golden[f"dream/{end}"]).max() < 1e-3


def test_deterministic_guided_dream_matches_caffe(tiny_net, golden, dream_params):
    out = dream(tiny_net, golden["dream/input"], "inception_4c/output", jitter=0,
                guide=golden["guide/features/inception_4c/output"], **dream_params)
    assert np.abs(out - golden["dream/guided/inception_4c/output"]).max() < 1e-3


def test_forward_reports_blob_before_inplace_relu(tiny_net, golden):
    # pycaffe semantics: end=conv2/3x3 stops before its in-place ReLU, so negatives remain.
    out = tiny_net.forward(caffe_input(golden["input/120x160"]), "conv2/3x3")
    assert (out < 0).any()


def test_blob_names_and_layer_list(tiny_net):
    assert tiny_net.blobs[0] == "data"
    assert "inception_4c/output" in tiny_net.blobs
    assert tiny_net.layers.index("inception_4c/output") > tiny_net.layers.index("conv2/3x3")
    assert tiny_net.mean.tolist() == [104.0, 116.0, 122.0]
    assert tiny_net.device.startswith(TEST_DEVICE)
