"""Issue #22: the model and metrics commands, and a run's model, fail fast in one line (no
traceback) on a cache that is not a folder, a mirror folder, a missing or broken registry,
frames of two sizes and bad arguments; and write nothing when they do."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from deepdream.io import frames
from deepdream.nets import registry as models

from conftest import FIXTURES, ROOT

TINY = (FIXTURES / "tiny_googlenet.caffemodel").read_bytes()


def run(cwd, *args, **env):
    """``python ARGS...`` as a user runs it, in ``cwd``, with ``env`` added to the
    environment (None removes a variable)."""
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = str(value)
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=300)


def one_line(result, *words) -> str:
    """The one line of stderr of a failed command, which starts with 'error:' and holds
    ``words``."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def tree(folder):
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {p: None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.fixture
def place(tmp_path):
    """A working folder: a registry (models/) whose default bvlc_googlenet is the tiny
    fixture net, a folder of frames (in/), and a cache folder not made yet."""
    registry = tmp_path / "models"
    (registry / "bvlc_googlenet").mkdir(parents=True)
    (registry / "bvlc_googlenet" / "deploy.prototxt").write_bytes(
        (FIXTURES / "tiny_googlenet.prototxt").read_bytes())
    entry = json.loads((models.MODELS_DIR / "registry.json").read_text())["bvlc_googlenet"]
    entry["weights"] = {"url": "http://127.0.0.1:9/tiny.caffemodel",
                        "file": "bvlc_googlenet.caffemodel", "size": len(TINY),
                        "sha1": hashlib.sha1(TINY).hexdigest()}
    (registry / "registry.json").write_text(json.dumps({"bvlc_googlenet": entry}))
    (tmp_path / "in").mkdir()
    frames.write_frame(tmp_path / "in" / "00000001.png", np.full((40, 50, 3), 120))
    return tmp_path


def dreaming(place, *args, **env):
    env.setdefault("DEEPDREAM_MODELS", place / "models")
    return run(place, ROOT / "2_dreaming_time.py", "-i", "in", "-o", "out", "-oct", "1",
               "-itr", "1", "-l", "inception_3b/output", "-v", "0", *args,
               DEEPDREAM_MIRROR=None, **env)


@pytest.mark.parametrize("home", ["a-file", "a-file/cache"], ids=["file", "under-a-file"])
def test_a_cache_that_cannot_be_a_folder_is_one_line(place, home):
    (place / "a-file").write_text("mine")
    before = tree(place)
    for command in (["-m", "deepdream.models", "download", "bvlc_googlenet"], None):
        result = run(place, *command, DEEPDREAM_HOME=place / home,
                     DEEPDREAM_MODELS=place / "models") if command else \
            dreaming(place, DEEPDREAM_HOME=place / home)           # a run without -t
        one_line(result, "cannot keep models in", "set DEEPDREAM_HOME")
        assert tree(place) == before


def test_a_mirror_may_be_a_plain_folder(place):
    mirror = place / "mirror"
    mirror.mkdir()
    (mirror / "bvlc_googlenet.caffemodel").write_bytes(TINY)
    result = run(place, "-m", "deepdream.models", "download", "bvlc_googlenet", "--mirror",
                 "mirror", "-q", DEEPDREAM_HOME=place / "cache",
                 DEEPDREAM_MODELS=place / "models")
    assert result.returncode == 0, result.stderr
    fetched = place / "cache" / "bvlc_googlenet" / "bvlc_googlenet.caffemodel"
    assert result.stdout.strip() == str(fetched) and fetched.read_bytes() == TINY
    assert (mirror / "bvlc_googlenet.caffemodel").read_bytes() == TINY
    # a mirror that is neither a URL nor a folder
    before = tree(place)
    one_line(dreaming(place, "--mirror", "no-such-folder", DEEPDREAM_HOME=place / "cache2"),
             "the mirror 'no-such-folder' is neither a URL", "nor a folder")
    assert tree(place) == before


@pytest.mark.parametrize("registry", ["missing", "not-json", "a-list", "no-url"])
def test_a_missing_or_broken_registry_is_one_line_naming_deepdream_models(place, registry):
    folder = place / "models"
    text = {"not-json": '{"bvlc_googlenet": ', "a-list": "[]",
            "no-url": json.dumps({"bvlc_googlenet": dict(json.loads(
                (folder / "registry.json").read_text())["bvlc_googlenet"],
                weights={"file": "bvlc_googlenet.caffemodel"})})}
    if registry == "missing":
        (folder / "registry.json").unlink()
    else:
        (folder / "registry.json").write_text(text[registry])
    before = tree(place)
    for result in (run(place, "-m", "deepdream.models", "list", DEEPDREAM_MODELS=folder),
                   dreaming(place, DEEPDREAM_HOME=place / "cache")):
        one_line(result, f"{folder / 'registry.json'} ($DEEPDREAM_MODELS)")
        assert tree(place) == before
    # a model folder (-t) needs no registry: the run goes on, and says what it went without
    model = place / "model"
    model.mkdir()
    (model / "deploy.prototxt").write_bytes((FIXTURES / "tiny_googlenet.prototxt").read_bytes())
    (model / "bvlc_googlenet.caffemodel").write_bytes(TINY)
    result = dreaming(place, "-t", model, DEEPDREAM_HOME=place / "cache")
    assert result.returncode == 0, result.stderr
    assert "$DEEPDREAM_MODELS" in result.stderr and "without the registry's" in result.stderr
    assert list(frames.list_frames(place / "out")) == [1]


def test_metrics_of_frames_of_two_sizes_is_one_line(tmp_path):
    originals, dreamed = tmp_path / "frames", tmp_path / "dreamed"
    for folder in (originals, dreamed):
        folder.mkdir()
    for n in (1, 2, 3):
        frames.write_frame(originals / frames.frame_name(n, "png"),
                           np.full((48, 64, 3), 40 * n, np.uint8))
    for n, shape in ((1, (48, 64, 3)), (2, (48, 64, 3)), (3, (64, 64, 3))):
        frames.write_frame(dreamed / frames.frame_name(n, "png"), np.full(shape, 9, np.uint8))
    before = tree(tmp_path)
    one_line(run(tmp_path, "-m", "deepdream.metrics", originals, dreamed),
             "00000003.png is 64x64", "00000001.png 64x48", "of one size")
    one_line(run(tmp_path, "-m", "deepdream.metrics", dreamed, originals), "of one size")
    assert tree(tmp_path) == before                   # no flow worked out, none kept
    # every dreamed frame of one shape, another than the originals'
    (dreamed / "00000003.png").unlink()
    for n in (1, 2):
        frames.write_frame(dreamed / frames.frame_name(n, "png"),
                           np.full((64, 64, 3), 9, np.uint8))
    before = tree(tmp_path)
    one_line(run(tmp_path, "-m", "deepdream.metrics", originals, dreamed),
             "is not of the shape of", "(64x48)")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("args,words", [
    (["-m", "deepdream.models"], ["required: command"]),
    (["-m", "deepdream.models", "fetch", "x"], ["invalid choice: 'fetch'"]),
    (["-m", "deepdream.models", "download"], ["required: name", "download --help"]),
    (["-m", "deepdream.models", "list", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["-m", "deepdream.metrics", "a"], ["required: dreamed_dir"]),
    (["-m", "deepdream.metrics", "a", "b", "--method", "x"], ["--method: invalid choice"]),
], ids=["models-none", "models-unknown", "models-no-name", "models-option", "metrics-one",
        "metrics-method"])
def test_bad_arguments_are_one_line(tmp_path, args, words):
    one_line(run(tmp_path, *args), *words)
    assert not list(tmp_path.iterdir())
