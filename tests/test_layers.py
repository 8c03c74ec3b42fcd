"""Layer types the Caffe fixtures do not cover, on small nets written with our protobuf module,
against numpy references of Caffe's formulas (tests/caffe_nets.py)."""
import numpy as np
import pytest

import deepdream
from deepdream.errors import ModelError

from caffe_nets import layer, ref_conv, ref_lrn_across, ref_lrn_within, ref_pool, write_net

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def run(tmp_path, layers, x, end, input_shape=None):
    model, deploy = write_net(tmp_path, layers, input_shape or x.shape)
    net = deepdream.load_net(model, deploy)
    return net.forward(x, end)


def close(actual, expected, tol=1e-5):
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= tol * max(1.0, np.abs(expected).max())


CONVS = {
    "dilation": dict(kernel_size=[3], dilation=[2], pad=[2]),
    "group-stride": dict(kernel_size=[3], group=2, stride=[2], pad=[1]),
    "rect-hw": dict(kernel_h=3, kernel_w=1, pad_h=1, pad_w=0, stride_h=1, stride_w=2),
    "no-bias": dict(kernel_size=[2], bias_term=False),
}


@pytest.mark.parametrize("name", CONVS)
def test_convolution(tmp_path, name):
    params = dict(CONVS[name], num_output=4)
    kh = params.get("kernel_h", params.get("kernel_size", [0])[0])
    kw = params.get("kernel_w", kh)
    group = params.get("group", 1)
    w, b = rand(4, 4 // group, kh, kw), rand(4)
    blobs = [w] if params.get("bias_term") is False else [w, b]
    x = rand(1, 4, 9, 11)
    out = run(tmp_path, [layer("c", "Convolution", ["data"], ["c"], blobs,
                               convolution_param=params)], x, "c")
    pad = (params.get("pad_h", params.get("pad", [0])[0]), params.get("pad_w",
                                                                      params.get("pad", [0])[0]))
    stride = (params.get("stride_h", params.get("stride", [1])[0]),
              params.get("stride_w", params.get("stride", [1])[0]))
    d = params.get("dilation", [1])[0]
    ref = ref_conv(x, w, None if len(blobs) == 1 else b, stride, pad, (d, d), group)
    close(out, ref)


# Strided convolutions of a few channels take their input gradient by phases
# (nets.caffe.kernels.ImageConvolution): GoogLeNet's and AlexNet's conv1, and odd cases.
IMAGE_CONVS = {"googlenet-7x7/2": (3, 7, 7, 2, 3, 3, (37, 51)),
               "alexnet-11x11/4": (3, 11, 11, 4, 0, 0, (47, 50)),
               "rect-5x2/3": (1, 5, 2, 3, 2, 1, (20, 17)),
               "pad-beyond-kernel-half-3x3/2": (4, 3, 3, 2, 2, 0, (9, 10))}


@pytest.mark.parametrize("name", IMAGE_CONVS)
def test_input_gradient_of_strided_image_convolution(tmp_path, name):
    import torch
    channels, kh, kw, stride, ph, pw, (h, w) = IMAGE_CONVS[name]
    weight, bias = rand(6, channels, kh, kw), rand(6)
    model, deploy = write_net(tmp_path, [layer(
        "c", "Convolution", ["data"], ["c"], [weight, bias], convolution_param=dict(
            num_output=6, kernel_h=kh, kernel_w=kw, stride=[stride], pad_h=ph, pad_w=pw))],
        (1, channels, h, w))
    x = rand(1, channels, h, w)
    net = deepdream.load_net(model, deploy)
    assert net._specs[0][0].phase_weight is not None       # the phased path is taken
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv2d(xt, torch.tensor(weight, dtype=torch.float64),
                                   torch.tensor(bias, dtype=torch.float64), stride, (ph, pw))
    (0.5 * y.square().sum()).backward()
    close(net.input_gradient(x, "c"), xt.grad.numpy())


POOLS = [("AVE", 3, 2, 1), ("AVE", 2, 2, 1), ("AVE", 3, 1, 1), ("MAX", 3, 2, 1),
         ("MAX", 3, 2, 0), ("AVE", 5, 3, 2)]


@pytest.mark.parametrize("method,kernel,stride,pad", POOLS,
                         ids=[f"{m}-k{k}s{s}p{p}" for m, k, s, p in POOLS])
@pytest.mark.parametrize("size", [(7, 10), (8, 9)], ids=["7x10", "8x9"])
def test_pooling_ceil_mode_and_padding(tmp_path, method, kernel, stride, pad, size):
    x = rand(1, 3, *size)
    out = run(tmp_path, [layer("p", "Pooling", ["data"], ["p"], pooling_param=dict(
        pool=0 if method == "MAX" else 1, kernel_size=kernel, stride=stride, pad=pad))],
        x, "p")
    close(out, ref_pool(x, (kernel, kernel), (stride, stride), (pad, pad), method))


def test_googlenet_pool_rounds_112_to_56_not_55(tmp_path):
    x = rand(1, 2, 112, 112)
    out = run(tmp_path, [layer("p", "Pooling", ["data"], ["p"],
                               pooling_param=dict(pool=0, kernel_size=3, stride=2))], x, "p")
    assert out.shape == (1, 2, 56, 56)


def test_global_pooling(tmp_path):
    x = rand(1, 3, 5, 6)
    out = run(tmp_path, [layer("p", "Pooling", ["data"], ["p"],
                               pooling_param=dict(pool=1, global_pooling=True))], x, "p")
    close(out, x.mean(axis=(2, 3), keepdims=True))


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_lrn_across_channels_uses_k(tmp_path, k):
    x = rand(1, 7, 4, 5) * 10
    out = run(tmp_path, [layer("n", "LRN", ["data"], ["n"], lrn_param=dict(
        local_size=5, alpha=0.01, beta=0.75, k=k))], x, "n")
    close(out, ref_lrn_across(x, 5, 0.01, 0.75, k))


def test_lrn_within_channel(tmp_path):
    x = rand(1, 3, 6, 7) * 10
    out = run(tmp_path, [layer("n", "LRN", ["data"], ["n"], lrn_param=dict(
        local_size=3, alpha=0.1, beta=0.75, k=5.0, norm_region=1))], x, "n")
    close(out, ref_lrn_within(x, 3, 0.1, 0.75))


@pytest.mark.parametrize("op,coeff", [("SUM", [0.5, -2.0]), ("SUM", []), ("PROD", []),
                                      ("MAX", [])])
def test_eltwise(tmp_path, op, coeff):
    a = rand(1, 2, 3, 4)
    # two branches of the input: a (unchanged, by a Scale of ones) and b = 3a (a 1x1 conv)
    layers = [layer("a", "Scale", ["data"], ["a"], [np.ones(2, np.float32)]),
              layer("b", "Convolution", ["data"], ["b"],
                    [3 * np.eye(2, dtype=np.float32).reshape(2, 2, 1, 1),
                     np.zeros(2, np.float32)],
                    convolution_param=dict(num_output=2, kernel_size=[1])),
              layer("e", "Eltwise", ["a", "b"], ["e"], eltwise_param=dict(
                  operation={"PROD": 0, "SUM": 1, "MAX": 2}[op], coeff=coeff))]
    out = run(tmp_path, layers, a, "e")
    b = 3 * a
    ref = {"SUM": (coeff[0] * a + coeff[1] * b) if coeff else a + b, "PROD": a * b,
           "MAX": np.maximum(a, b)}[op]
    close(out, ref)


def test_eltwise_max_gradient_goes_to_the_first_of_equals(tmp_path):
    model, deploy = write_net(tmp_path, [
        layer("s", "Split", ["data"], ["s0", "s1"]),
        layer("e", "Eltwise", ["s0", "s1"], ["e"], eltwise_param=dict(operation=2))],
        (1, 1, 2, 2))
    net = deepdream.load_net(model, deploy)
    x = rand(1, 1, 2, 2)
    # Both inputs are equal everywhere. Caffe routes the whole gradient of 0.5*||e||^2 (= x)
    # through the first input and none through the second; the split sums them back, so the
    # input gets exactly x. A max that gave each of the equals the full gradient would give 2x.
    np.testing.assert_allclose(net.input_gradient(x, "e"), x, rtol=1e-6)


def test_batchnorm_and_scale(tmp_path):
    x = rand(1, 3, 4, 4)
    mean, var, factor = rand(3), np.abs(rand(3)) + 0.5, np.array([2.0], np.float32)
    gamma, beta = rand(3), rand(3)
    out = run(tmp_path, [
        layer("bn", "BatchNorm", ["data"], ["bn"], [mean, var, factor],
              batch_norm_param=dict(eps=1e-3)),
        layer("sc", "Scale", ["bn"], ["bn"], [gamma, beta], scale_param=dict(bias_term=True)),
    ], x, "sc")
    c = (1, 3, 1, 1)
    normed = (x - (mean / 2).reshape(c)) / np.sqrt((var / 2).reshape(c) + 1e-3)
    close(out, normed * gamma.reshape(c) + beta.reshape(c))


def test_inner_product_flatten_softmax_reshape(tmp_path):
    x = rand(1, 2, 3, 3)
    w, b = rand(5, 18), rand(5)
    layers = [layer("ip", "InnerProduct", ["data"], ["ip"], [w, b],
                    inner_product_param=dict(num_output=5)),
              layer("prob", "Softmax", ["ip"], ["prob"]),
              layer("flat", "Flatten", ["data"], ["flat"]),
              layer("rs", "Reshape", ["data"], ["rs"],
                    reshape_param=dict(shape=dict(dim=[0, -1, 3])))]
    model, deploy = write_net(tmp_path, layers, x.shape)
    net = deepdream.load_net(model, deploy)
    logits = x.reshape(1, -1) @ w.T + b
    close(net.forward(x, "ip"), logits)
    e = np.exp(logits - logits.max())
    close(net.forward(x, "prob"), e / e.sum())
    close(net.forward(x, "flat"), x.reshape(1, 18))
    close(net.forward(x, "rs"), x.reshape(1, 6, 3))


def test_relu_negative_slope_and_dropout(tmp_path):
    x = rand(1, 2, 3, 3)
    out = run(tmp_path, [layer("r", "ReLU", ["data"], ["r"], relu_param=dict(
        negative_slope=0.1)), layer("d", "Dropout", ["r"], ["r"])], x, "d")
    close(out, np.where(x > 0, x, 0.1 * x))


def test_unsupported_layer_type_is_named(tmp_path):
    model, deploy = write_net(tmp_path, [layer("weird", "Swish", ["data"], ["weird"])])
    with pytest.raises(ModelError, match="'weird'.*'Swish'"):
        deepdream.load_net(model, deploy)


@pytest.mark.parametrize("size", [(12, 10), (5, 7)], ids=["larger", "smaller"])
def test_a_fixed_size_classifier_sees_the_image_scaled_to_its_size(tmp_path, size):
    # an InnerProduct on an 8x8 input (as GoogLeNet's loss3/classifier on 224x224) takes no
    # other size: the dream's gradient is that of the class score of the image scaled to
    # 8x8, carried back to every pixel. The reference: PIL's bilinear resize (antialiased
    # when it shrinks) of each pixel alone, weighed by the class's weights.
    from PIL import Image

    from deepdream.dreamer.ascent import fixed_view, make_target, target_gradient
    w = rand(4, 3 * 8 * 8)
    model, deploy = write_net(tmp_path, [layer("ip", "InnerProduct", ["data"], ["ip"],
                                               [w, rand(4)],
                                               inner_product_param=dict(num_output=4))],
                              (1, 3, 8, 8))
    net = deepdream.load_net(model, deploy)
    assert fixed_view(net, "ip") == (8, 8)
    x = rand(1, 3, *size)
    g = target_gradient(net, net.tensor(x), make_target(net, "ip:2"), None,
                        np.random.default_rng(0))
    expected = np.zeros_like(x)
    for c, i, j in np.ndindex(3, *size):
        pixel = np.zeros(size, np.float32)
        pixel[i, j] = 1
        view = np.asarray(Image.fromarray(pixel, mode="F").resize((8, 8), Image.BILINEAR))
        expected[0, c, i, j] = w[2].reshape(3, 8, 8)[c].ravel() @ view.ravel()
    assert g.shape == x.shape
    close(g.detach().cpu().numpy(), expected)
