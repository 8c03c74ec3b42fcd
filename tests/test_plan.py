"""A run is one plan, made and checked whole before any work (issue 32): a short job reads its
model file once and runs ffmpeg at most six times; each mistake is one line before anything is
extracted or the model loaded; the settings are checked once. What a run does is watched
through Python's audit hooks in the command's own process: the files it opens, the programs
it starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from deepdream.io import frames

from conftest import ROOT
from media import make_beep_clip, stream_length

FPS = 25
DREAM = ["-l", "conv2/3x3", "-oct", "1", "-itr", "1", "-b", "0"]

# The one command, in a process that notes every opening of the model file and every ffmpeg
# it starts, written to a JSON file at its exit (after the command's own exit code).
WATCHED = """
import atexit, json, os, sys
model, report = os.path.realpath(sys.argv[1]), sys.argv[2]
seen = {"model_opened": 0, "ffmpeg": [], "checks": 0}
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.path.realpath(os.fsdecode(args[0])) == model:
            seen["model_opened"] += 1
    elif event == "subprocess.Popen":
        if "ffmpeg" in os.path.basename(os.fsdecode(args[1][0])):
            seen["ffmpeg"].append([os.fsdecode(a) for a in args[1]])
sys.addaudithook(hook)
atexit.register(lambda: open(report, "w").write(json.dumps(seen)))
from deepdream.run import settings
check = settings.DreamSettings.check
def counted(self):
    seen["checks"] += 1
    return check(self)
settings.DreamSettings.check = counted
sys.argv = ["deepdream", *sys.argv[3:]]
from deepdream.cli.main import entry
entry()
"""


def watched(tmp_path, model, *args) -> tuple[subprocess.CompletedProcess, dict]:
    """``python -m deepdream ARGS`` run in ``tmp_path``, and what it did (``WATCHED``)."""
    report = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", WATCHED, str(model), str(report),
                             *map(str, args)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    seen = json.loads(report.read_text())
    report.unlink()
    return result, seen


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_beep_clip(tmp_path_factory.mktemp("plan") / "clip.mp4", (0.2, 0.6), FPS,
                          duration=0.8)


def test_a_short_job_reads_its_model_once_and_runs_ffmpeg_six_times_at_most(
        clip, tiny_model_dir, tmp_path):
    model = tiny_model_dir / "bvlc_googlenet.caffemodel"
    result, seen = watched(tmp_path, model, clip, "-o", "out.mp4", "-t", tiny_model_dir,
                           *DREAM)
    assert result.returncode == 0, result.stderr[-2000:]
    assert stream_length(tmp_path / "out.mp4", "v")[0] == stream_length(clip, "v")[0]
    assert seen["model_opened"] == 1, seen
    assert len(seen["ffmpeg"]) <= 6, "\n".join(" ".join(c) for c in seen["ffmpeg"])
    assert seen["checks"] == 1                      # the settings checked once, by the plan


def _not_a_picture(tmp_path):
    (tmp_path / "guide.png").write_bytes(b"not a picture at all")
    return ["-gi", tmp_path / "guide.png"]


def _misspelt_recipe(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"dream": {"octave": 3, "preveiw": 100}}))
    return ["--recipe", tmp_path / "r.json"]


MISTAKES = {
    "device tpu": (lambda tmp: ["--device", "tpu"], "unknown device 'tpu'"),
    "device cuda:7": (lambda tmp: ["--device", "cuda:7"], "device 'cuda:7' asked for"),
    "guide not a picture": (_not_a_picture, "-gi/--guide_image"),
    "start past the end": (lambda tmp: ["-sf", "999"], "-sf/--start_frame 999 is past the end"),
    "no such channel": (lambda tmp: ["-l", "conv2/3x3:9999"],
                        "-l conv2/3x3:9999: conv2/3x3 has 24 channels (0 to 23): there is no "
                        "channel 9999"),
    "misspelt recipe": (_misspelt_recipe, "unknown key 'octave'; did you mean 'octaves'?"),
    "too many octaves": (lambda tmp: ["-oct", "100"], "-oct/--octaves 100: a 128x48 frame is "
                                                      "too small for 100 octaves"),
    "octaves past the limit": (lambda tmp: ["-oct", "100000000"],
                               "-oct/--octaves must be from 1 to 100, not 100000000"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_is_one_line_before_anything_is_extracted_or_loaded(
        clip, tiny_model_dir, tmp_path, mistake):
    given, words = MISTAKES[mistake]
    model = tiny_model_dir / "bvlc_googlenet.caffemodel"
    args = [clip, "-o", "out.mp4", "-t", tiny_model_dir, *DREAM, *given(tmp_path)]
    before = sorted(p.name for p in tmp_path.iterdir())
    result, seen = watched(tmp_path, model, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines == [lines[0]] and lines[0].startswith("error: "), \
        result.stderr[-2000:]
    assert words in lines[0], lines[0]
    assert seen["model_opened"] == 0                                      # nothing loaded
    assert not [c for c in seen["ffmpeg"] if "%08d" in c[-1]]     # nor extracted (to frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == before           # nothing left


def test_a_live_recording_of_no_known_type_is_one_line_before_anything_opens(
        clip, tiny_model_dir, tmp_path):
    model = tiny_model_dir / "bvlc_googlenet.caffemodel"
    result, seen = watched(tmp_path, model, "--live", clip, "-o", "rec.xyz", "-t",
                           tiny_model_dir)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: ffmpeg cannot tell what kind of movie to write from the extension .xyz of "
        "rec.xyz: name it .mp4, .mkv, .mov or .gif"]
    assert seen["model_opened"] == 0 and not any("-re" in c for c in seen["ffmpeg"])
    assert "opening" not in result.stderr and "recorded" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def watched_stage2(tmp_path, model, *args) -> tuple[subprocess.CompletedProcess, dict]:
    """``2_dreaming_time.py ARGS`` on two frames of ``tmp_path/in`` (made if missing), and
    what it did (``WATCHED``)."""
    src = tmp_path / "in"
    if not src.is_dir():
        src.mkdir()
        for n in (1, 2):
            frames.write_frame(src / frames.frame_name(n, "png"),
                               np.full((48, 64, 3), 40.0 * n))
    code = WATCHED.replace('from deepdream.cli.main import entry\nentry()',
                           'import runpy\nsys.argv[0] = "2_dreaming_time.py"\n'
                           f'runpy.run_path("{ROOT / "2_dreaming_time.py"}", '
                           'run_name="__main__")')
    report = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code, str(model), str(report), "-i", src,
                             *map(str, args)], env=env, capture_output=True, text=True,
                            timeout=300)
    seen = json.loads(report.read_text())
    report.unlink()
    return result, seen


def test_stage2_settings_are_checked_once(tiny_model_dir, tmp_path):
    """The settings of a stage-2 run are checked by its plan alone."""
    result, seen = watched_stage2(tmp_path, tiny_model_dir / "x", "-o", tmp_path / "out",
                                  "-t", tiny_model_dir, *DREAM)
    assert result.returncode == 0, result.stderr[-2000:]
    assert seen["checks"] == 1
    assert len(frames.list_frames(tmp_path / "out")) == 2


def test_a_resume_with_other_settings_is_refused_before_the_model_is_read(
        clip, tiny_model_dir, tmp_path):
    """A run of ours continued with another setting (-itr 2 after -itr 1) is one line naming
    it, said before the model is read: by stage 2, and by the one command for the frames it
    kept in its work folder (nor is the movie extracted again)."""
    model = tiny_model_dir / "bvlc_googlenet.caffemodel"
    args = ["-o", tmp_path / "out", "-t", tiny_model_dir, *DREAM]
    assert watched_stage2(tmp_path, model, *args)[0].returncode == 0
    other = [*args, "-itr", "2"]
    job = ["-t", tiny_model_dir, *DREAM, "--work", tmp_path / "w", "--keep-frames"]
    assert watched(tmp_path, model, clip, "-o", tmp_path / "a.mp4", *job)[0].returncode == 0
    kept = {n: p.stat().st_mtime_ns
            for n, p in frames.list_frames(tmp_path / "w" / "frames").items()}
    for result, seen in (watched_stage2(tmp_path, model, *other),
                         watched(tmp_path, model, clip, "-o", tmp_path / "b.mp4", *job,
                                 "-itr", "2")):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr[-2000:]
        assert "holds frames dreamed with other parameters (iterations: 1 -> 2)" in lines[0]
        assert seen["model_opened"] == 0, seen
        assert not [c for c in seen["ffmpeg"] if "%08d" in c[-1]], seen["ffmpeg"]
    assert not (tmp_path / "b.mp4").exists()
    assert {n: p.stat().st_mtime_ns for n, p in
            frames.list_frames(tmp_path / "w" / "frames").items()} == kept


def test_huge_numbers_end_at_once(clip, tiny_model_dir, tmp_path):
    """Runs that would never end: -p far wider than the movie is dreamed at the movie's own
    width (with a warning, memory bounded), and a recipe's 1e23 octaves is one line."""
    model = tiny_model_dir / "bvlc_googlenet.caffemodel"
    result, _ = watched(tmp_path, model, clip, "-o", "out.mp4", "-t", tiny_model_dir, *DREAM,
                        "-p", "100000")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "-p/--preview 100000 is wider than the frames (128 pixels): they are dreamed at " \
        "their own width" in result.stderr
    assert stream_length(tmp_path / "out.mp4", "v")[0] == stream_length(clip, "v")[0]
    (tmp_path / "r.json").write_text(json.dumps({"dream": {"octaves": 1e23}}))
    result, seen = watched(tmp_path, model, clip, "-o", "again.mp4", "-t", tiny_model_dir,
                           "--recipe", tmp_path / "r.json")
    assert result.returncode == 1 and seen["model_opened"] == 0
    assert result.stderr.strip().splitlines() == [
        f"error: the recipe {tmp_path / 'r.json'}: 'octaves' is 1e+23, not a whole number "
        "from 1 to 100 or a schedule (keyframes, sound:...)"]


def test_a_recipe_of_an_engine_we_lack_is_one_line(clip, tiny_model_dir, tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"engine": "WarpNet", "dream": {}}))
    result, _ = watched(tmp_path, tiny_model_dir / "bvlc_googlenet.caffemodel", clip, "-o",
                        "out.mp4", "-t", tiny_model_dir, "--recipe", tmp_path / "r.json")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: the recipe {tmp_path / 'r.json'}'s engine 'WarpNet' is none we have "
        "(CaffeNet, ModuleNet, TorchNet)"]


@pytest.mark.parametrize("name", ["1_movie2frames.py", "2_dreaming_time.py",
                                  "3_frames2movie.py", "-m deepdream"])
def test_help_says_no_default_of_none(name):
    from conftest import script
    text = script(name, "--help").stdout
    assert "--help" in text and "(default: None)" not in text and "default: False" not in text


def test_the_extraction_counts_as_many_frames_as_it_writes(clip, tmp_path):
    """The bar's total is the frames written (it was one over: 75/76)."""
    from deepdream.io.extraction import extract_frames
    totals = []

    class Shown:
        def __init__(self, total, description, unit):
            totals.append(total)

        def step(self, count=1):
            pass

        def close(self):
            pass
    meta = extract_frames(clip, tmp_path / "f", progress=Shown)
    assert totals == [meta["frame_count"]] == [len(frames.list_frames(tmp_path / "f"))]


def test_whole_numbers_given_as_decimals_or_text_dream(clip, tiny_model_dir, tmp_path):
    """-oct 1.0 on the command line, "iterations": "1" in a recipe: the numbers they are (a
    float where a count is wanted crashed after the extraction)."""
    (tmp_path / "r.json").write_text(json.dumps({"dream": {"iterations": "1",
                                                           "step_size": "1.5"}}))
    result, _ = watched(tmp_path, tiny_model_dir / "bvlc_googlenet.caffemodel", clip, "-o",
                        "out.mp4", "-t", tiny_model_dir, "-l", "conv2/3x3", "-oct", "1.0",
                        "-b", "0", "--recipe", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert stream_length(tmp_path / "out.mp4", "v")[0] == stream_length(clip, "v")[0]


def test_overwrite_keeps_a_run_made_with_the_same_settings(clip, tiny_model_dir, tmp_path):
    """The one command's --overwrite replaces the movie; the frames of ours dreamed with the
    same settings are continued, not dreamed again."""
    from conftest import script
    args = [clip, "-o", tmp_path / "out.mp4", "-t", tiny_model_dir, *DREAM, "--work",
            tmp_path / "w", "--keep-frames"]
    script("-m deepdream", *args)
    dreamed = frames.list_frames(tmp_path / "w" / "dreamed")
    stamps = {n: p.stat().st_mtime_ns for n, p in dreamed.items()}
    result = script("-m deepdream", *args, "--overwrite")
    assert "0 frames dreamed (" in result.stderr, result.stderr
    assert {n: p.stat().st_mtime_ns for n, p in
            frames.list_frames(tmp_path / "w" / "dreamed").items()} == stamps


def test_a_refusal_of_a_file_not_ours_crosses_processes():
    """A Ray worker's error comes back pickled: NotOursError too."""
    import pickle
    from deepdream.io.ours import NotOursError
    error = pickle.loads(pickle.dumps(NotOursError("/x/params.json", "params")))
    assert str(error).startswith("/x/params.json was not written by deepdream")
    error = pickle.loads(pickle.dumps(NotOursError("/x/frames.tsv", "dreamed", "extracted")))
    assert (error.kind, error.other) == ("dreamed", "extracted")
