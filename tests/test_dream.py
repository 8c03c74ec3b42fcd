"""Behaviour of the dream loop: it ascends, it is reproducible, it stays in range."""
import numpy as np
import pytest
import torch

from deepdream import objectives
from deepdream.ascent import dream, guide_features, make_step, octave_pyramid, preprocess

from conftest import caffe_input

END = "inception_4c/output"


def test_one_step_raises_the_objective(tiny_net, golden):
    x = torch.as_tensor(caffe_input(golden["dream/input"]))
    before = objectives.l2(torch.as_tensor(tiny_net.forward(x.numpy(), END))).item()
    stepped = make_step(tiny_net, x, END, objectives.l2, 1.5, 0, None, None,
                        np.random.default_rng(0))
    after = objectives.l2(torch.as_tensor(tiny_net.forward(stepped.numpy(), END))).item()
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
    base = np.zeros((3, 100, 141), np.float32)
    sizes = [o.shape[1:] for o in octave_pyramid(base, 4, 1.4)]
    assert sizes == [(100, 141), (71, 101), (51, 72), (36, 51)]


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
