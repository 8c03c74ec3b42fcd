"""``python -m deepdream``: the whole job in one command, resumable after kill -9, and the
contact sheet of layers."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from deepdream.io import frames
from deepdream.run import sheet

from conftest import ROOT, script
from media import assert_in_sync, make_beep_clip

FPS = 25
DREAM = ["-l", "conv2/3x3", "-oct", "1", "-itr", "1", "-b", "0"]


def one_command(*args):
    return script("-m deepdream", *args)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_beep_clip(tmp_path_factory.mktemp("one") / "clip.mp4",
                          (0.52, 1.24, 1.67, 2.08), FPS, duration=2.4)


def test_one_command_makes_the_movie_with_its_sound(clip, tiny_model_dir, tmp_path):
    out = tmp_path / "dream.mp4"
    result = one_command(clip, "-o", out, "-t", tiny_model_dir, *DREAM)
    for stage in ("[1/3] extracting", "[2/3] dreaming", "[3/3] encoding"):
        assert stage in result.stderr
    assert_in_sync(out, clip, FPS)                            # every frame, and the sound
    assert not (tmp_path / ".dream.deepdream").exists()       # the work folder is gone


def test_killed_while_dreaming_the_same_command_finishes_the_movie(clip, tiny_model_dir,
                                                                     tmp_path):
    out, work = tmp_path / "dream.mp4", tmp_path / "work"
    command = [sys.executable, "-m", "deepdream", str(clip), "-o", str(out), "--work",
               str(work), "-t", str(tiny_model_dir), "-l", "inception_4c/output", "-oct", "2",
               "-itr", "3", "-b", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    dreamed = work / "dreamed"
    while time.monotonic() < deadline and (not dreamed.exists() or
                                           len(frames.list_frames(dreamed)) < 5):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = len(frames.list_frames(dreamed))
    assert 5 <= kept < 60 and not out.exists()
    result = subprocess.run(command + ["--keep-frames"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already extracted" in result.stderr
    assert f"({kept} already done)" in result.stderr
    assert len(frames.list_frames(dreamed)) == 60              # --keep-frames kept them
    assert_in_sync(out, clip, FPS)


def test_contact_sheet_has_a_labelled_tile_per_layer(clip, tiny_model_dir, tmp_path):
    layers = ["conv2/3x3", "inception_3a/output", "inception_3b/output"]
    one_command(clip, "--sheet", tmp_path / "sheet.png", "-t", tiny_model_dir, "-l", *layers,
                "-oct", "2", "-itr", "2")
    picture = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB")).astype(int)
    height, width = 48 + sheet.LABEL_HEIGHT, 128                # the clip's frames
    assert picture.shape == (2 * height, 2 * width, 3)           # 4 tiles in a 2 x 2 grid
    tiles = [picture[r * height:r * height + 48, c * width:(c + 1) * width]
             for r in range(2) for c in range(2)]
    labels = [picture[r * height + 48:(r + 1) * height, c * width:(c + 1) * width]
              for r in range(2) for c in range(2)]
    assert all((label > 128).any() for label in labels)         # each has its name written
    raw = tiles[0]
    for tile in tiles[1:]:                                       # each layer dreams its own
        assert np.abs(tile - raw).mean() > 1
    assert np.abs(tiles[1] - tiles[3]).mean() > 1


@pytest.mark.parametrize("theirs", [{}, {"__init__.py": "mine = 1\n", "notes.txt": "mine"}],
                         ids=["folder", "package"])
def test_a_folder_named_deepdream_where_it_runs_is_not_taken_for_the_package(
        clip, tiny_model_dir, tmp_path, theirs):
    """``python -m`` looks in the current folder first: a user's folder named deepdream there
    (empty, or a package of theirs) neither breaks the command nor is touched by it."""
    folder = tmp_path / "deepdream"
    folder.mkdir()
    for name, text in theirs.items():
        (folder / name).write_text(text)
    result = script("-m deepdream", clip, "-o", "out.mp4", "-t", tiny_model_dir, *DREAM,
                    cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert_in_sync(tmp_path / "out.mp4", clip, FPS)
    assert {p.name: p.read_text() for p in folder.iterdir() if p.is_file()} == theirs


def test_list_layers_of_the_movies_frames(clip, tiny_model_dir, tiny_net):
    listed = one_command(clip, "--list-layers", "-t", tiny_model_dir).stdout
    assert listed.splitlines()[0] == "blobs of bvlc_googlenet.caffemodel for a 128x48 frame:"
    sizes = dict(line.split(None, 1) for line in listed.splitlines()[1:])
    expected = tiny_net.blob_shapes(48, 128)                  # the clip's frames: 128x48
    reached = {name: " x ".join(map(str, shape[1:])) for name, shape in expected.items()
               if shape}
    assert list(sizes) == list(expected) and len(reached) > 5
    assert {name: sizes[name] for name in reached} == reached
