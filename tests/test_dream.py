"""Behaviour of the dream loop: it ascends, it is reproducible, it stays in range."""
import re

import numpy as np
import pytest
import torch

from deepdream.dreamer import objectives
import scipy.ndimage as nd

from deepdream.dreamer.ascent import (dream, guide_features, make_step, octave_pyramid, preprocess,
                                    net_stride, tile_bounds, tiled_gradient, zoom_bilinear)

from conftest import TEST_DEVICE, caffe_input

END = "inception_4c/output"


def test_one_step_raises_the_objective(tiny_net, golden):
    x = tiny_net.tensor(caffe_input(golden["dream/input"]))
    before = objectives.l2(torch.as_tensor(tiny_net.forward(x.cpu().numpy(), END))).item()
    stepped, scale = make_step(tiny_net, x, [(END, 1.0, objectives.l2)], 1.5, 0, None, None,
                               [np.random.default_rng(0)])
    assert scale.shape == (1, 1, 1, 1) and float(scale) > 0
    after = objectives.l2(torch.as_tensor(tiny_net.forward(stepped.cpu().numpy(), END))).item()
    assert after > before * 1.01


def test_dream_is_reproducible_with_a_seed(tiny_net, golden):
    image = golden["dream/input"].astype(np.uint8)
    a = dream(tiny_net, image, END, iter_n=2, octave_n=2, seed=7)
    b = dream(tiny_net, image, END, iter_n=2, octave_n=2, seed=7)
    c = dream(tiny_net, image, END, iter_n=2, octave_n=2, seed=8)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1.0


def test_dream_changes_the_image_and_clips_to_pixel_range(tiny_net, golden):
    image = golden["dream/input"]
    out = dream(tiny_net, image, END, iter_n=3, octave_n=2, seed=0)
    assert out.shape == image.shape and out.dtype == np.float32
    assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3
    assert np.abs(out - image).mean() > 1.0


def test_uint8_and_float_images_dream_alike(tiny_net, golden):
    image = golden["dream/input"]
    a = dream(tiny_net, image.astype(np.uint8), END, iter_n=1, octave_n=1, jitter=0)
    b = dream(tiny_net, image.astype(np.float32), END, iter_n=1, octave_n=1, jitter=0)
    np.testing.assert_array_equal(a, b)


def test_octave_sizes_follow_scipy_zoom():
    base = torch.zeros((3, 100, 141))
    sizes = [tuple(o.shape[1:]) for o in octave_pyramid(base, 4, 1.4)]
    assert sizes == [(100, 141), (71, 101), (51, 72), (36, 51)]


def scipy_zoom(image, factors):
    """The original notebook's resizing."""
    return nd.zoom(image, factors, order=1)


@pytest.mark.parametrize("shape,scale", [((67, 83), 1.4), ((120, 160), 1.4), ((360, 540), 1.5),
                                         ((1, 9), 1.4), ((101, 2), 1.3), ((1080, 1920), 1.5)],
                         ids=str)
def test_pyramid_on_the_device_is_scipys(shape, scale):
    """The original notebook's pyramid and detail resizing on numpy, to float32 rounding
    (on the CPU, or on DEEPDREAM_TEST_DEVICE)."""
    base = np.random.default_rng(0).uniform(-120, 140, (3, *shape)).astype(np.float32)
    ours = [o.cpu() for o in octave_pyramid(torch.as_tensor(base, device=TEST_DEVICE), 4,
                                            scale)]
    expected = base
    for octave in ours:
        assert octave.shape == expected.shape
        np.testing.assert_allclose(octave.numpy(), expected, rtol=0, atol=2e-4)
        expected = scipy_zoom(octave.numpy(), (1, 1.0 / scale, 1.0 / scale))
    # the detail's way up, through sizes that are not a constant factor apart
    for small, big in zip(ours[1:], ours[:-1]):
        (h1, w1), (h, w) = small.shape[1:], big.shape[1:]
        expected = scipy_zoom(small.numpy(), (1, 1.0 * h / h1, 1.0 * w / w1))
        resized = zoom_bilinear(small.to(TEST_DEVICE), h, w).cpu()
        np.testing.assert_allclose(resized.numpy(), expected, rtol=0, atol=2e-4)


@pytest.mark.parametrize("size,new_size", [(240, 160), (61, 86)])
def test_scipys_zero_edge_lines_are_kept(size, new_size):
    # scipy's last coordinate here is 239.00000000000003 (of 240): "outside", so it writes 0
    # there (scipy#4922). The original deepdream ran with it and Caffe's golden dreams hold it.
    image = np.random.default_rng(2).uniform(1, 255, (3, size, 30)).astype(np.float32)
    expected = scipy_zoom(image, (1, new_size / size, 1))
    assert (expected[:, -1] == 0).all()
    np.testing.assert_allclose(zoom_bilinear(torch.as_tensor(image), new_size, 30).numpy(),
                               expected, rtol=0, atol=2e-4)


def test_zoom_bilinear_keeps_a_batch_apart():
    images = torch.as_tensor(np.random.default_rng(1).uniform(0, 255, (4, 3, 30, 50)),
                             dtype=torch.float32)
    together = zoom_bilinear(images, 21, 36)
    for image, resized in zip(images, together):
        torch.testing.assert_close(zoom_bilinear(image, 21, 36), resized, rtol=0, atol=0)


@pytest.mark.parametrize("size", [(40, 30), (96, 96), (300, 500)], ids=str)
def test_guide_of_any_size(tiny_net, size):
    rng = np.random.default_rng(0)
    guide = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    features = guide_features(tiny_net, guide, END)
    assert features.ndim == 3 and features.shape[0] == 64 and min(features.shape[1:]) >= 1
    assert max(features.shape[1:]) <= 224 // 16 + 1  # large guides are shrunk to 224


def test_the_package_exports_the_pinned_interface():
    import deepdream
    assert deepdream.dream is dream and callable(deepdream.load_net)


def test_preprocess_is_bgr_minus_mean():
    image = np.zeros((1, 1, 3), np.float32)
    image[0, 0] = [10, 20, 30]
    x = preprocess(image, np.float32([104, 116, 122]))
    assert x[:, 0, 0].tolist() == [30 - 104, 20 - 116, 10 - 122]


def test_tile_bounds_cover_without_slivers():
    assert tile_bounds(1000, 512) == [(0, 512), (512, 1000)]
    assert tile_bounds(100, 512) == [(0, 100)]
    assert tile_bounds(1000, 512, 16, 100) == [(0, 608), (608, 1000)]   # no 96-px sliver
    for offset in range(0, 512, 48):
        pieces = tile_bounds(2160, 512, 16, offset)
        assert pieces[0][0] == 0 and pieces[-1][1] == 2160
        assert all(b == c for (_, b), (c, _) in zip(pieces, pieces[1:]))
        assert all(256 <= b - a < 768 and a % 16 == 0 for a, b in pieces)


def test_tiled_gradient_agrees_with_the_whole_away_from_tile_borders(tiny_net):
    end, tile, margin, h, w = "conv2/3x3", 160, 40, 330, 480
    x = tiny_net.tensor(caffe_input(np.random.default_rng(0).uniform(0, 255, (h, w, 3))
                                    .astype(np.float32)))
    whole = tiny_net.gradient(x, end)
    rng, replica = np.random.default_rng(5), np.random.default_rng(5)
    align = net_stride(tiny_net, end)
    assert align == 4       # conv1 and pool1, each of stride 2
    dy, dx = (align * int(replica.integers(0, tile // align)) for _ in range(2))
    tiled = tiled_gradient(tiny_net, x, end, objectives.l2, tile, rng)
    assert tiled.shape == whole.shape

    def far(size, offset):   # pixels more than `margin` from every inner seam
        seams = [a for a, _ in tile_bounds(size, tile, align, offset)[1:]]
        index = np.arange(size)
        return np.min([np.abs(index - s) for s in seams] + [np.full(size, size)], axis=0) \
            > margin
    mask = np.outer(far(h, dy), far(w, dx))
    assert mask.sum() > 2000
    difference = (tiled - whole)[0].abs().cpu().numpy()[:, mask]
    assert difference.max() <= 1e-4 * whole.abs().max().item()
    assert (tiled - whole).abs().max() > 1e-3 * whole.abs().max()   # seams do differ


def test_dream_in_tiles(tiny_net, golden):
    image = golden["dream/input"]
    untiled = dream(tiny_net, image, END, iter_n=1, octave_n=2, seed=3)
    assert np.array_equal(dream(tiny_net, image, END, iter_n=1, octave_n=2, seed=3,
                                tile=1000), untiled)         # a tile larger than the frame
    tiled = dream(tiny_net, image, END, iter_n=1, octave_n=2, seed=3, tile=64)
    assert tiled.shape == image.shape and np.abs(tiled - image).mean() > 0.5
    from deepdream.errors import ImageTooSmallError
    with pytest.raises(ImageTooSmallError, match="--tile"):
        dream(tiny_net, image, "inception_5b/output", iter_n=1, octave_n=1, tile=8)


def test_dream_batch_is_each_images_dream(tiny_net, golden):
    from deepdream import dream_batch
    a = golden["dream/input"]
    b = np.ascontiguousarray(a[::-1, ::-1])
    together = dream_batch(tiny_net, [a, b], END, iter_n=2, octave_n=2, seeds=[1, 2])
    alone = [dream(tiny_net, a, END, iter_n=2, octave_n=2, seed=1),
             dream(tiny_net, b, END, iter_n=2, octave_n=2, seed=2)]
    for t, s in zip(together, alone):
        assert np.abs(t - s).max() < 1e-2
    with pytest.raises(ValueError, match="one size"):
        dream_batch(tiny_net, [a, a[:60]], END)


def test_objective_terms_are_read():
    from deepdream.errors import SettingsError
    Term = objectives.Term
    assert objectives.parse("inception_4c/output") == (Term("inception_4c/output"),)
    assert objectives.parse("loss3/classifier:207,208") == (
        Term("loss3/classifier", 1.0, (207, 208)),)
    assert objectives.parse("0.5*a:3+-2*b") == (Term("a", 0.5, (3,)), Term("b", -2.0))
    # weights with exponents (a scheduled weight's value as Python writes it): the sign of
    # an exponent joins no term; a layer's name ending in 'e' keeps its '+'
    assert objectives.parse("a-1e-05*b:3") == (Term("a"), Term("b", -1e-05, (3,)))
    assert objectives.parse("2.5E+3*a+b") == (Term("a", 2500.0), Term("b"))
    assert objectives.parse("conv2e+3*b") == (Term("conv2e"), Term("b", 3.0))
    for bad in ("a:", "a:x", "a:-1", "2*", "+a"):
        with pytest.raises(SettingsError, match=f"^{re.escape(repr(bad))}:? "):   # it is named
            objectives.parse(bad)


def channel_energy(net, image, layer):
    """Each channel's mean squared activation at ``layer`` for ``image``."""
    features = net.forward(caffe_input(image), layer)[0]
    return (features ** 2).mean(axis=(1, 2))


def test_a_channel_term_raises_its_channel_more_than_the_others(tiny_net, golden):
    image = golden["dream/input"]
    layer, channel = "inception_3b/output", 5
    before = channel_energy(tiny_net, image, layer)
    out = dream(tiny_net, image, f"{layer}:{channel}", iter_n=3, octave_n=1, seed=0)
    after = channel_energy(tiny_net, out, layer)
    gain = after / np.maximum(before, 1e-6)
    others = np.delete(gain, channel)
    assert gain[channel] > np.median(others) + 0.3           # 1.55 against 1.04 here
    # and more than the whole layer's dream raises it
    whole = channel_energy(tiny_net, dream(tiny_net, image, layer, iter_n=3, octave_n=1,
                                           seed=0), layer)
    assert gain[channel] > whole[channel] / before[channel] + 0.2


def test_a_class_term_raises_its_class_score_more_than_dreaming_other_classes_does(
        tiny_net, golden):
    # GoogLeNet's classifier takes 224x224 only: it sees every octave of the 160x120 frame
    # scaled to that, and the dream carries its gradient back to every pixel
    from deepdream.dreamer.ascent import fixed_view
    image = golden["dream/input"].astype(np.float32)
    layer, classes = "loss3/classifier", (3, 50, 100)
    assert fixed_view(tiny_net, layer) == (224, 224) and fixed_view(tiny_net, END) is None

    def scores(im):
        view = torch.nn.functional.interpolate(torch.as_tensor(caffe_input(im)), (224, 224),
                                               mode="bilinear", antialias=True)
        return tiny_net.forward(view.numpy(), layer)[0][list(classes)]

    before = scores(image)
    rises = np.stack([scores(dream(tiny_net, image, f"{layer}:{c}", iter_n=3, octave_n=3,
                                   jitter=8, seed=0)) - before
                      for c in classes])                    # row: the class dreamed
    # each class's score rises (scores may be negative: the term raises them, not their
    # squares), and more when it is dreamed than when another class is
    assert (np.diag(rises) > 0).all() and (np.diag(rises) == rises.max(axis=0)).all()
    assert np.diag(rises).min() > 4                         # 6, 11, 16 here


def test_a_layer_of_one_input_size_is_not_scaled_at_that_size(tiny_net, golden):
    from deepdream.dreamer.ascent import make_target, target_gradient
    from PIL import Image
    image = np.asarray(Image.fromarray(golden["dream/input"].astype(np.uint8))
                       .resize((224, 224)), np.float32)
    x = tiny_net.tensor(caffe_input(image))
    objective = objectives.channels((3,), "loss3/classifier")
    torch.testing.assert_close(
        target_gradient(tiny_net, x, make_target(tiny_net, "loss3/classifier:3"), None,
                        np.random.default_rng(0)),
        tiny_net.gradient(x, "loss3/classifier", objective))


def test_weights_change_the_balance_between_layers(tiny_net, golden):
    x = tiny_net.tensor(caffe_input(golden["dream/input"]))
    a, b = "conv2/3x3", "inception_4c/output"
    ga = make_target_gradient(tiny_net, x, a)
    gb = make_target_gradient(tiny_net, x, b)
    # 1*a+0*b is a; and the more weight b has, the more the gradient points b's way
    torch.testing.assert_close(make_target_gradient(tiny_net, x, f"1*{a}+0*{b}"), ga)
    cos = torch.nn.functional.cosine_similarity
    light = make_target_gradient(tiny_net, x, f"{a}+0.1*{b}").flatten()
    heavy = make_target_gradient(tiny_net, x, f"{a}+100*{b}").flatten()
    assert cos(heavy, gb.flatten(), 0) > cos(light, gb.flatten(), 0) + 0.1
    # a negative weight suppresses: the gradient turns away from b's
    assert cos(make_target_gradient(tiny_net, x, f"-1*{b}").flatten(), gb.flatten(), 0) < -0.99


def make_target_gradient(net, x, spec):
    from deepdream.dreamer.ascent import make_target, target_gradient
    return target_gradient(net, x, make_target(net, spec), None, np.random.default_rng(0))


def test_terms_and_guides_and_channels_out_of_range_are_one_line(tiny_net, golden):
    from deepdream.errors import DeepDreamError, SettingsError
    image = golden["dream/input"]
    features = guide_features(tiny_net, image, END)
    with pytest.raises(SettingsError, match="guide image"):
        dream(tiny_net, image, f"{END}:1", iter_n=1, octave_n=1, guide=features)
    with pytest.raises(DeepDreamError, match="has 64 channels .* no channel 99"):
        dream(tiny_net, image, f"{END}:99", iter_n=1, octave_n=1)
