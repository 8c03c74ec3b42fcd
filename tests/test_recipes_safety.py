"""Your own net's code is yours to run: a recipe names it but never runs it, and a run's
identity covers every file of it; a net that cannot run on shapes alone makes one real pass
per size; weights from a safetensors file, with no pickle."""
import json
import pickle
import re

import numpy as np
import pytest
import torch

import own_nets
from deepdream.io import frames
from deepdream.dreamer.ascent import dream
from deepdream.errors import ImageTooSmallError, ModelError
from deepdream.nets.module import ModuleModel

from conftest import ROOT, script
from test_own_model import IMAGE, OWN, dreaming, one_line_error

ZEN = "Beautiful is better than ugly"


def own_net_folder(tmp_path):
    """A net of one's own in a folder of its own: model.py, whose factory builds its first
    layer with blocks.py."""
    folder = tmp_path / "net"
    folder.mkdir()
    (folder / "blocks.py").write_text("from torch import nn\n\n\ndef block():\n"
                                      "    return nn.Conv2d(3, 5, 3, padding=1)\n")
    (folder / "model.py").write_text("import torch\nfrom torch import nn\n\nfrom blocks import "
                                     "block\n\n\ndef make():\n    torch.manual_seed(0)\n"
                                     "    return nn.Sequential(block(), nn.ReLU(), "
                                     "nn.Conv2d(5, 4, 3, stride=2))\n")
    return folder


def edit(path):
    """Change what a module does (the same layers, other weights)."""
    path.write_text(path.read_text().replace("padding=1)", "padding=1, bias=False)"))


def test_a_recipe_names_your_own_net_but_never_runs_its_code(tmp_path):
    folder = own_net_folder(tmp_path)
    own = ["--model", f"{folder}/model.py:make", "-l", "2"]
    dreaming(tmp_path, *own, check=True)
    src, out = tmp_path / "in", tmp_path / "out"
    params = json.loads((out / "params.json").read_text())
    assert set(params["model_code_sha1"]) == {"blocks.py", "model.py"}

    # someone else's recipe naming a file of code, with no sha1 to check it by: not imported
    marker = tmp_path / "ran"
    theirs = tmp_path / "theirs.py"
    theirs.write_text(f"open({str(marker)!r}, 'w').write('ran')\n\n\ndef make():\n"
                      "    raise SystemExit('made')\n")
    # nor an installed module (this prints the Zen of Python when imported)
    for model in [f"{theirs}:make", "this:s"]:
        recipe = tmp_path / "theirs.json"
        recipe.write_text(json.dumps(dict(params, model=model, model_code_sha1=None,
                                          weights=None, model_sha1=None)))
        result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "theirs",
                        "--recipe", recipe, check=False)
        assert result.returncode == 1
        one_line_error(result, re.escape(f"the recipe names your own PyTorch net {model}: "
                                         f"give it with --model {model} to run its code"))
        assert not marker.exists() and ZEN not in result.stdout + result.stderr
        assert not (tmp_path / "theirs").exists()

    # named on the command line, it is the recipe's run again, frame for frame
    script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "again", "--recipe",
           out / "params.json", *own[:2])
    dreamed, again = frames.list_frames(out), frames.list_frames(tmp_path / "again")
    assert list(dreamed) == list(again) == [1, 2, 3]
    assert all(dreamed[n].read_bytes() == again[n].read_bytes() for n in dreamed)
    # ... but not once a module it imports has changed
    edit(folder / "blocks.py")
    one_line_error(script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "third",
                          "--recipe", out / "params.json", *own[:2], check=False),
                   r"the recipe does not fit --model .*model.py:make: blocks.py differs from "
                   r"its run's \(another sha1\)")
    assert not (tmp_path / "third").exists()


def test_a_run_resumes_only_with_the_code_it_began_with(tmp_path):
    folder = own_net_folder(tmp_path)
    own = ["--model", f"{folder}/model.py:make", "-l", "2", "-ef", "2"]
    dreaming(tmp_path, *own, check=True)
    out = tmp_path / "out"
    before = {n: path.read_bytes() for n, path in frames.list_frames(out).items()}
    assert list(before) == [1, 2]
    edit(folder / "blocks.py")          # the factory's file is as it was
    refused = dreaming(tmp_path, *own[:4])
    one_line_error(refused, r"holds frames dreamed with other parameters \(blocks.py: '\w+' "
                            r"-> '\w+'\)")
    assert {n: path.read_bytes() for n, path in frames.list_frames(out).items()} == before


def test_an_installed_packages_code_is_its_version_and_a_package_of_yours_its_files(
        tmp_path, monkeypatch):
    from deepdream.nets.module import code_identity
    assert code_identity("torch.nn:Conv2d") == {"torch": f"version {torch.__version__}"}
    package = tmp_path / "workshop"     # a name no other test imports
    (package / "layers").mkdir(parents=True)
    for name in ("__init__.py", "nets.py", "layers/__init__.py", "layers/conv.py"):
        (package / name).write_text(f"# {name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = code_identity("workshop.nets:make")
    assert list(code) == ["workshop/__init__.py", "workshop/layers/__init__.py",
                          "workshop/layers/conv.py", "workshop/nets.py"]
    (package / "layers" / "conv.py").write_text("# changed\n")
    changed = code_identity("workshop.nets:make")
    assert [name for name in code if changed[name] != code[name]] == ["workshop/layers/conv.py"]


def test_a_net_that_cannot_run_on_shapes_alone_makes_one_pass_per_size():
    def passes(net):
        """The sizes of the real passes the net made (its inputs, noted by its class)."""
        inputs = type(net.module).inputs         # the class of own_nets.py as the net loaded it
        real = [size for device, size in inputs if device != "meta"]
        assert [device for device, _ in inputs].count("meta") <= 1    # tried once
        inputs.clear()
        return real

    net = ModuleModel.named(f"{OWN}:no_meta").load("cpu")
    passes(net)
    dreamed = dream(net, IMAGE, "after", iter_n=1, octave_n=2, octave_scale=1.4)
    assert np.abs(dreamed - IMAGE).mean() > 0.1
    # no input larger than the frame (40x56): a shape pass and a step at each octave
    assert passes(net) == [(29, 40), (29, 40), (40, 56), (40, 56)]

    # the layer list of a 540x360 frame: one real pass at that size, and the right sizes
    net = ModuleModel.named(f"{OWN}:no_meta").load("cpu")
    assert net.blob_shapes(360, 540) == {"data": (1, 3, 360, 540), "conv": (1, 4, 360, 540),
                                         "after": (1, 4, 179, 269)}
    assert net.end_shape(360, 540, "after") == (1, 4, 179, 269)
    assert passes(net) == [(360, 540)]

    # too small: the size it needs, found with inputs no larger than twice that
    with pytest.raises(ImageTooSmallError, match=r"needs at least 3x3"):
        dream(net, IMAGE[:3, :3], "after", iter_n=1, octave_n=2, octave_scale=1.4)
    sizes = passes(net)
    assert sizes and max(max(size) for size in sizes) <= 6, sizes


def test_safetensors_weights_are_read_without_pickle(tmp_path):
    # safetensors is in requirements.txt (safetensors>=0.4): without it this fails, loudly
    from safetensors.torch import save_file
    torch.manual_seed(7)
    state = own_nets.SmallNet().state_dict()
    pt, safe = tmp_path / "small.pt", tmp_path / "small.safetensors"
    torch.save(state, pt)
    save_file(state, str(safe))
    x = (IMAGE.transpose(2, 0, 1)[None] - 120).astype(np.float32)
    from_pt = ModuleModel.named(f"{OWN}:small_net", pt).load("cpu").forward(x, "fc")
    from_safe = ModuleModel.named(f"{OWN}:small_net", safe).load("cpu").forward(x, "fc")
    factory = ModuleModel.named(f"{OWN}:small_net").load("cpu").forward(x, "fc")
    np.testing.assert_array_equal(from_safe, from_pt)
    assert np.abs(from_safe - factory).max() > 1e-3

    # a pickle named .safetensors is refused, and what it would run never runs
    marker = tmp_path / "ran"

    class Trap:
        def __reduce__(self):
            return open, (str(marker), "w")

    disguised = tmp_path / "trap.safetensors"
    disguised.write_bytes(pickle.dumps({"fc.weight": Trap()}))
    with pytest.raises(ModelError, match=r"trap.safetensors is not a safetensors weights "
                                         r"file"):
        ModuleModel.named(f"{OWN}:small_net", disguised).load("cpu")
    assert not marker.exists()
    # weights that do not fit are named as for a state_dict
    part = tmp_path / "part.safetensors"
    save_file({k: v for k, v in state.items() if k != "fc.bias"}, str(part))
    with pytest.raises(ModelError, match=r"it lacks 'fc.bias' \(10\)"):
        ModuleModel.named(f"{OWN}:small_net", part).load("cpu")


@pytest.mark.parametrize("field, value, wanted", [
    ("octaves", "x", "a whole number from 1 to 100 or a schedule (keyframes, sound:...)"),
    ("layers", 5, "a list of layer names"),
    ("blend", 7, "a number from 0 to 1, 'loop', 'random' or a schedule (keyframes, "
                 "sound:...)"),
    ("model", {"factory": "evil.py:make"}, "a file name"),
    ("flow", "os.system", "'dis', 'farneback' or null")],
    ids=["octaves", "layers", "blend", "model", "flow"])
def test_a_malformed_recipe_is_one_line(tiny_model_dir, tmp_path, field, value, wanted):
    """A recipe whose values are not what its flags take: one line naming the recipe, the
    key and what it takes, nothing written (it was a traceback)."""
    src = tmp_path / "in"
    src.mkdir()
    frames.write_frame(src / "00000001.png", np.full((48, 64, 3), 90.0))
    recipe = json.loads((ROOT / "recipes" / "classic.json").read_text())
    if field == "model":
        recipe["model"] = value
    else:
        recipe["dream"][field] = value
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "out", "-t",
                    tiny_model_dir, "--recipe", tmp_path / "r.json", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: the recipe {tmp_path / 'r.json'}: "
                                          f"'{field}' is {value!r}, not {wanted}"]
    assert not (tmp_path / "out").exists()


def test_a_recipe_knows_every_dream_setting_and_nothing_else():
    """The recipe reader's dream keys are DreamSettings' fields (and the guide's sha1 that
    params.json adds): a setting added to one is added to the other."""
    import dataclasses
    from deepdream.run import recipes
    from deepdream.run.settings import DreamSettings
    assert set(recipes._DREAM_VALUES) == \
        {f.name for f in dataclasses.fields(DreamSettings)} | {"guide_sha1"}
