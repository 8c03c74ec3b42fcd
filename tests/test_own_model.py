"""Your own PyTorch net (--model FILE.py:FACTORY --weights FILE): its numbers, its layers, its
errors, and whole runs with it (objective terms, resume, recipe, Ray)."""
import json

import numpy as np
import pytest
import torch

import own_nets
from deepdream.io import frames
from deepdream.dreamer import objectives
from deepdream.run import loop
from deepdream.run.settings import DreamSettings
from deepdream.run.settings import RunOptions
from deepdream.dreamer.ascent import dream, make_step, make_target, preprocess
from deepdream.errors import DeepDreamError, ModelError, ModelMismatchError
from deepdream.nets.module import ModuleModel, Preprocessing

from conftest import script

OWN = own_nets.__file__
IMAGE = np.random.default_rng(3).uniform(0, 255, (40, 56, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A state_dict of random weights other than the factory's own."""
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("weights") / "small.pt"
    torch.save(own_nets.SmallNet().state_dict(), path)
    return path


def reference(path, preprocessing=None):
    """The model as its author would run it: the factory, the weights, eval mode."""
    module = own_nets.small_net()
    if path:
        module.load_state_dict(torch.load(path))
    return module.eval(), preprocessing or Preprocessing()


def test_the_net_sees_its_own_input_convention_and_steps_are_in_pixels(weights):
    net = ModuleModel.named(f"{OWN}:small_net", weights).load("cpu")
    module, _ = reference(weights)
    x = preprocess(IMAGE, net.mean)[None]                      # the dream loop's convention
    # torchvision's convention: RGB in 0..1, less the mean, over the std
    pixels = torch.tensor(IMAGE.transpose(2, 0, 1)[None].copy(), requires_grad=True)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    y = module.features[:4]((pixels / 255 - mean[:, None, None]) / std[:, None, None])
    np.testing.assert_allclose(net.forward(x, "features.3"), y.detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    # the gradient with respect to the pixels (BGR, as the loop's images are)
    (0.5 * y.square().sum()).backward()
    expected = pixels.grad.numpy()[:, ::-1]
    got = net.input_gradient(x, "features.3")
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-5


def test_bgr_0_to_255_models_get_caffes_input_as_it_is(weights):
    convention = Preprocessing(mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0),
                               channel_order="bgr", input_range=255)
    net = ModuleModel.named(f"{OWN}:small_net", weights, convention).load("cpu")
    np.testing.assert_array_equal(net.mean, [104, 117, 123])
    module, _ = reference(weights)
    x = preprocess(IMAGE, net.mean)[None]
    with torch.no_grad():
        expected = module.features[:2](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x, "features.1"), expected, rtol=1e-5, atol=1e-5)


def test_the_forward_pass_stops_after_the_last_layer_needed(weights):
    net = ModuleModel.named(f"{OWN}:small_net", weights).load("cpu")
    x = net.tensor(preprocess(IMAGE, net.mean)[None])
    counter = type(net.module.late)          # the model file's own class
    before = counter.calls
    net.gradient(x, "features.3")
    assert counter.calls == before            # 'late' and what follows never ran
    net.gradient(x, "fc")
    assert counter.calls == before + 1


def test_layers_are_module_names_listed_in_run_order_with_their_sizes(weights):
    net = ModuleModel.named(f"{OWN}:small_net", weights).load("cpu")
    shapes = net.blob_shapes(40, 56)
    assert list(shapes)[:3] == ["data", "features.0", "features.1"]
    assert shapes["features.6"] == (1, 16, 10, 14) and shapes["fc"] == (1, 10)
    assert list(shapes).index("features") > list(shapes).index("features.6")
    assert "unused" not in shapes                      # never runs: nothing to dream on
    assert net.end_shape(40, 56, "late") == (1, 16, 10, 14)
    with pytest.raises(ModelError, match="'unused' .* does not run"):
        net.gradient(net.tensor(preprocess(IMAGE, net.mean)[None]), "unused")
    with pytest.raises(DeepDreamError, match="did you mean features.3"):
        net.resolve("feature.3")


def test_a_channel_term_raises_its_channel_and_a_class_term_its_score(weights):
    net = ModuleModel.named(f"{OWN}:small_net", weights).load("cpu")
    x = net.tensor(preprocess(IMAGE, net.mean)[None])

    def stepped(spec):
        return make_step(net, x, make_target(net, spec), 1.5, 0, None, None,
                         [np.random.default_rng(0)])[0].numpy()

    def energy_gain(spec):      # each channel's mean squared activation, after / before
        before = net.forward(x.numpy(), "features.3")[0]
        out = dream(net, IMAGE, spec, iter_n=5, octave_n=1, jitter=0)
        after = net.forward(preprocess(out, net.mean)[None], "features.3")[0]
        return (after ** 2).mean(axis=(1, 2)) / (before ** 2).mean(axis=(1, 2))

    channel, whole = energy_gain("features.3:5"), energy_gain("features.3")
    # 1.45 against a median of 1.2, and 1.29 by the whole layer's dream, here
    assert channel[5] > np.median(channel) + 0.15 and channel[5] > whole[5] + 0.1
    scores = net.forward(x.numpy(), "fc")[0]
    for cls in range(10):      # each class's score rises most when it is dreamed, sign or not
        rise = net.forward(stepped(f"fc:{cls}"), "fc")[0] - scores
        assert rise[cls] > 0 and rise[cls] == rise.max(), (cls, scores[cls], rise)


def test_weights_change_the_dream_and_a_checkpoint_or_dataparallel_file_loads(weights,
                                                                             tmp_path):
    kw = dict(iter_n=2, octave_n=2, octave_scale=1.4, jitter=4, seed=1)
    own = dream(ModuleModel.named(f"{OWN}:small_net", weights).load("cpu"), IMAGE,
                "features.4", **kw)
    factory = dream(ModuleModel.named(f"{OWN}:small_net").load("cpu"), IMAGE, "features.4",
                    **kw)
    assert np.abs(own - factory).mean() > 0.5
    state = torch.load(weights)
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}},
               checkpoint)
    again = dream(ModuleModel.named(f"{OWN}:small_net", checkpoint).load("cpu"), IMAGE,
                  "features.4", **kw)
    np.testing.assert_array_equal(again, own)


def test_a_model_file_imports_its_neighbours(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.path", list(__import__("sys").path))   # restored afterwards
    (tmp_path / "blocks.py").write_text("from torch import nn\n\n"
                                        "def block():\n    return nn.Conv2d(3, 5, 3)\n")
    (tmp_path / "model.py").write_text("from torch import nn\nfrom blocks import block\n\n"
                                       "def make():\n    return nn.Sequential(block())\n")
    net = ModuleModel.named(f"{tmp_path}/model.py:make").load("cpu")
    assert net.end_shape(20, 30, "0") == (1, 5, 18, 28)


def test_a_factory_from_an_installed_package(tmp_path, monkeypatch):
    package = tmp_path / "lab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text("from own_nets import small_net as make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = ModuleModel.named("lab.nets:make")
    assert model.identity()["model"] == "lab.nets:make"
    assert "features.3" in model.load("cpu").layers
    with pytest.raises(ModelError, match="cannot import lab.nope: no module named 'lab.nope'"):
        ModuleModel.named("lab.nope:make").load("cpu")


def test_a_batch_of_frames_dreams_each_as_alone(weights):
    from deepdream.dreamer.ascent import dream_batch
    net = ModuleModel.named(f"{OWN}:small_net", weights).load("cpu")
    images = [IMAGE, IMAGE[::-1].copy(), 255 - IMAGE]
    kw = dict(iter_n=2, octave_n=2, octave_scale=1.4, jitter=8)
    batch = dream_batch(net, images, "features.4+fc:2", seeds=[1, 2, 3], **kw)
    for image, seed, dreamed in zip(images, [1, 2, 3], batch):
        alone = dream(net, image, "features.4+fc:2", seed=seed, **kw)
        np.testing.assert_allclose(dreamed, alone, atol=0.05)
        assert np.abs(alone - image).mean() > 0.5


def test_a_model_that_cannot_run_on_shapes_alone_or_takes_one_size_only():
    # .item() in its forward: the layer sizes come from a real pass on zeros instead
    net = ModuleModel.named(f"{OWN}:no_meta").load("cpu")
    assert net.end_shape(40, 56, "after") == (1, 4, 19, 27)
    assert net.blob_shapes(40, 56)["after"] == (1, 4, 19, 27)
    assert np.abs(dream(net, IMAGE, "after", iter_n=1, octave_n=1) - IMAGE).mean() > 0.1
    # an assertion in the model's own code is the user's matter: one line, no traceback
    fixed = ModuleModel.named(f"{OWN}:fixed_size").load("cpu")
    with pytest.raises(ModelError, match=r"fixed_size fails on input of shape \(1, 3, \d+, "
                                         r"\d+\): AssertionError: input must be 32x32"):
        dream(fixed, IMAGE, "conv", iter_n=1, octave_n=2)


class CaffeAsModule(torch.nn.Module):
    """The fixture's Caffe net, up to ``end``, as a module of one's own whose last step is a
    module of its own (``tap``)."""

    def __init__(self, net, end):
        super().__init__()
        self.net, self.end, self.tap = net, end, torch.nn.Identity()

    def forward(self, x):
        return self.tap(self.net._run(x, self.end))


@pytest.mark.parametrize("end", ["conv2/norm2", "inception_4c/output"])
def test_caffes_net_as_your_own_matches_caffes_numbers(tiny_net, golden, end):
    from conftest import TEST_DEVICE, caffe_input, relative_error
    caffe = Preprocessing(mean=(104.0, 116.0, 122.0), std=(1.0, 1.0, 1.0),
                          channel_order="bgr", input_range=255)
    from deepdream.nets.module import ModuleNet
    own = ModuleNet(CaffeAsModule(tiny_net, end), TEST_DEVICE, caffe)
    x = caffe_input(golden["input/120x160"])
    assert relative_error(own.forward(x, "tap"), golden[f"fwd/{end}/120x160"]) < 1e-4
    grad = own.input_gradient(x, "tap")
    assert relative_error(grad, golden[f"grad/{end}/120x160"]) < 1e-4


def test_bf16_and_tiles_work_unchanged(weights):
    model = ModuleModel.named(f"{OWN}:small_net", weights)
    net32, net16 = model.load("cpu"), model.load("cpu", "bf16")
    x = net32.tensor(preprocess(IMAGE, net32.mean)[None])
    g32, g16 = net32.gradient(x, "features.4"), net16.gradient(x, "features.4")
    cosine = torch.nn.functional.cosine_similarity(g32.flatten(), g16.flatten(), dim=0)
    assert g16.dtype == torch.float32 and cosine > 0.97
    kw = dict(iter_n=1, octave_n=1, jitter=0, seed=0)
    big = np.tile(IMAGE, (2, 2, 1))
    whole = dream(net32, big, "features.1", **kw)
    tiled = dream(net32, big, "features.1", tile=48, **kw)
    assert np.abs(tiled - whole).mean() < 0.5 and np.abs(whole - big).mean() > 0.5


# -- errors, each one line ----------------------------------------------------------------

def frame_folder(path, count=3):
    path.mkdir()
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter
    base = gaussian_filter(rng.uniform(0, 255, (48, 64, 3)), (4, 4, 0))
    base = (base - base.min()) / (base.max() - base.min()) * 255
    for n in range(1, count + 1):
        frames.write_frame(path / frames.frame_name(n, "png"), np.roll(base, 2 * n, axis=1))
    return path


def dreaming(tmp_path, *args, check=False):
    src = tmp_path / "in"
    if not src.exists():
        frame_folder(src)
    return script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "out", "-oct", "2",
                  "-itr", "2", "--seed", "4", *args, check=check)


def one_line_error(result, *patterns):
    import re
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for pattern in patterns:
        assert re.search(pattern, lines[0]), lines[0]


def test_user_mistakes_with_a_model_file_are_one_line(tmp_path, weights):
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\n\ndef make(:\n    pass\n")
    failing = tmp_path / "failing.py"
    failing.write_text("import torch\nraise ValueError('no GPU here')\n")
    other = tmp_path / "other.py"
    other.write_text("def make():\n    return {'fc': 1}\n")
    cases = [
        ([f"{OWN}:smal_net"], [r"has no factory 'smal_net'; did you mean small_net"]),
        ([f"{tmp_path}/nothere.py:make"], [r"model file not found: .*nothere.py"]),
        ([f"{broken}:make"], [r"cannot import .*broken.py: SyntaxError: .*\(line 3\)"]),
        ([f"{failing}:make"], [r"cannot import .*failing.py: ValueError: no GPU here "
                               r"\(line 2\)"]),
        ([f"{other}:make"], [r"make\(\) returned a dict, not a torch.nn.Module"]),
        ([f"{OWN}:small_net"], [r"no layer or blob named 'features.30'; did you mean "
                                r"features.3"]),
    ]
    for model, patterns in cases:
        one_line_error(dreaming(tmp_path, "--model", *model, "-l", "features.30"), *patterns)
    one_line_error(dreaming(tmp_path, "--model", f"{OWN}:small_net", "--weights", weights),
                   r"name the layers to dream on with -l for own_nets.py:small_net")
    one_line_error(dreaming(tmp_path, "--weights", weights, "-l", "inception_3b/output"),
                   r"--weights.* are for your own PyTorch net")
    one_line_error(dreaming(tmp_path, "--model", f"{OWN}:small_net", "-l", "features.3",
                            "--engine", "caffe"), r"--engine caffe runs Caffe nets")
    one_line_error(dreaming(tmp_path, "--model", f"{OWN}:small_net", "-l", "features.3",
                            "--input-mean", "123.68,116.78,103.94"),
                   r"--input-mean 123.68,116.78,103.94 lies outside pixels of 0 to 1: .* "
                   r"--input-range 255")
    assert not (tmp_path / "out" / "params.json").exists()


def test_weights_that_do_not_fit_name_the_first_key_and_its_shape(tmp_path, weights):
    state = torch.load(weights)
    wrong = {"missing.pt": {k: v for k, v in state.items() if k != "fc.bias"},
             "extra.pt": {**state, "head.weight": torch.zeros(3, 16)},
             "shape.pt": {**state, "fc.weight": torch.zeros(1000, 16)}}
    for name, value in wrong.items():
        torch.save(value, tmp_path / name)
    pickled = tmp_path / "whole.pt"
    torch.save(own_nets.small_net(), pickled)          # the whole module, not a state_dict
    (tmp_path / "notes.txt").write_text("not weights")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    model = f"{OWN}:small_net"
    expected = {"missing.pt": r"missing.pt does not fit the model: it lacks 'fc.bias' \(10\)",
                "extra.pt": r"it holds 'head.weight' \(3x16\), which the model does not have",
                "shape.pt": r"'fc.weight' is 1000x16 in it but 10x16 in the model",
                "whole.pt": r"whole.pt is not a plain state_dict .* save model.state_dict\(\)",
                "notes.txt": r"notes.txt is not a PyTorch weights file",
                "list.pt": r"list.pt holds no state_dict"}
    for name, pattern in expected.items():
        with pytest.raises((ModelError, ModelMismatchError), match=pattern):
            ModuleModel.named(model, tmp_path / name).load("cpu")
    one_line_error(dreaming(tmp_path, "--model", model, "--weights", tmp_path / "shape.pt",
                            "-l", "fc"), expected["shape.pt"])


# -- whole runs ---------------------------------------------------------------------------

def test_a_run_with_terms_resumes_only_with_the_same_model_and_repeats_from_its_recipe(
        tmp_path, weights):
    own = ["--model", f"{OWN}:small_net", "--weights", weights, "-l", "features.3:1,2",
           "fc:4", "0.5*features.1-0.2*late"]
    dreaming(tmp_path, *own, check=True)
    src, out = tmp_path / "in", tmp_path / "out"
    listed = script("2_dreaming_time.py", "-i", src, "--list-layers", *own[:4]).stdout
    assert "blobs of own_nets.py:small_net for a 64x48 frame:" in listed
    assert [line.split() for line in listed.splitlines() if "features.6" in line] == \
        [["features.6", "16", "x", "12", "x", "16"]]
    params = json.loads((out / "params.json").read_text())
    assert params["engine"] == "ModuleNet" and params["model"].endswith("own_nets.py:small_net")
    assert params["preprocess"]["mean"] == [0.485, 0.456, 0.406]
    dreamed = frames.list_frames(out)
    assert len(dreamed) == 3
    for n, path in dreamed.items():       # every frame dreamed, with every term's layer
        raw = frames.read_frame(src / path.name).astype(float)
        assert np.abs(frames.read_frame(path) - raw).mean() > 1

    # the same run again resumes; other preprocessing is another run
    refused = dreaming(tmp_path, *own, "--input-mean", "0.5,0.5,0.5")
    one_line_error(refused, r"other parameters \(mean: \[0.485, 0.456, 0.406\] -> "
                            r"\[0.5, 0.5, 0.5\]\)")
    other = tmp_path / "other.pt"
    torch.save(own_nets.small_net().state_dict(), other)
    one_line_error(dreaming(tmp_path, *own[:2], "--weights", other, *own[4:]),
                   r"model_sha1: ")

    # --recipe: the net's code runs only when --model names it; then the same frames, byte
    # for byte, with every setting and the weights from params.json
    one_line_error(script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "again",
                          "--recipe", out / "params.json", check=False),
                   r"the recipe names your own PyTorch net .*own_nets.py:small_net: give it "
                   r"with --model .*own_nets.py:small_net to run its code")
    again = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "again", "--recipe",
                   out / "params.json", "--model", OWN + ":small_net")
    assert again.returncode == 0, again.stderr
    for n, path in dreamed.items():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), n
    # a recipe whose weights changed since is refused
    changed = tmp_path / "changed.pt"
    changed.write_bytes(weights.read_bytes())
    recipe = json.loads((out / "params.json").read_text())
    recipe["weights"] = str(changed)
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    torch.save(own_nets.small_net().state_dict(), changed)
    one_line_error(script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "third",
                          "--recipe", tmp_path / "recipe.json", "--model",
                          OWN + ":small_net", check=False),
                   r"recipe's weights file .*changed.pt has changed since its run")


def test_the_library_and_ray_dream_an_own_net_as_one_process_does(tmp_path, weights):
    import deepdream
    from deepdream.run import cluster
    src = frame_folder(tmp_path / "in", 4)
    model = ModuleModel.named(f"{OWN}:small_net", weights)
    settings = DreamSettings(layers=("features.4", "fc:1"), octaves=2, iterations=2,
                                  seed=3)
    report = deepdream.dream_video(src, tmp_path / "one", settings, model,
                                   deepdream.RunOptions(device="cpu", progress=False))
    assert report.dreamed == 4
    cluster.dream_frames_ray(src, tmp_path / "ray", model, settings, RunOptions(
        device="cpu", workers=2, segment_length=2, warmup=0, progress=False), threads=1)
    one, ray = frames.list_frames(tmp_path / "one"), frames.list_frames(tmp_path / "ray")
    assert list(one) == list(ray) == [1, 2, 3, 4]
    # the segments after the first start afresh on Ray (warmup 0), so compare the first's
    for n in (1, 2):
        assert one[n].read_bytes() == ray[n].read_bytes(), n
    params = json.loads((tmp_path / "ray" / "params.json").read_text())
    assert params["engine"] == "ModuleNet" and params["weights"] == str(weights)
    # a resume of the Ray run in one process is the same run
    resumed = loop.dream_frames(src, tmp_path / "ray", model.load("cpu"), settings,
                                     model, RunOptions(progress=False))
    assert resumed.skipped == 4


def test_the_objective_syntax_joins_negative_weights_by_their_sign():
    Term = objectives.Term
    assert objectives.parse("a-0.5*b:1,2") == (Term("a"), Term("b", -0.5, (1, 2)))
    assert objectives.parse("2*a - 1 * b") == (Term("a", 2.0), Term("b", -1.0))
    assert objectives.parse("conv1-1") == (Term("conv1-1"),)
