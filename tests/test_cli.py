"""The three scripts as users call them (the 2015 README's forms too), in subprocesses."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from deepdream.io import frames

from conftest import ROOT, script
from media import make_clip, stream_length, stream_line

FAST = ["-l", "inception_3b/output", "-oct", "2", "-itr", "1"]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    clip = make_clip(folder / "clip.mp4", duration=0.4)
    script("1_movie2frames.py", "ffmpeg", clip, folder / "frames", "png")
    return folder


def test_original_readme_usage_end_to_end(extracted, tiny_model_dir):
    folder = extracted
    script("2_dreaming_time.py", "-i", folder / "frames", "-o", folder / "processed",
           "-t", tiny_model_dir, *FAST)
    made = frames.list_frames(folder / "processed")
    assert list(made) == list(frames.list_frames(folder / "frames")) == list(range(1, 13))
    first_in = frames.read_frame(folder / "frames" / "00000001.png").astype(float)
    assert np.abs(frames.read_frame(made[1]).astype(float) - first_in).mean() > 0.5
    script("3_frames2movie.py", "processed", cwd=folder)        # ./3_frames2movies.sh processed
    movie = folder / "processed_done.mp4"
    assert stream_length(movie, "v")[0] == 12
    assert "29.97 fps" in stream_line(movie, "Video") and "yuv420p" in stream_line(movie,
                                                                                  "Video")
    assert abs(stream_length(movie, "a")[1] - 12 / (30000 / 1001)) <= 0.1


def test_the_2015_readme_spelling_3_frames2movies(extracted, tmp_path):
    script("3_frames2movies.py", extracted / "frames", "-o", tmp_path / "o.mp4")
    assert stream_length(tmp_path / "o.mp4", "v")[0] == 12


def test_legacy_forms_of_scripts_1_and_3(extracted, tmp_path):
    script("1_movie2frames.py", "avconv", extracted / "clip.mp4", tmp_path / "f", "jpg")
    assert len(frames.list_frames(tmp_path / "f", "jpg")) == 12
    script("3_frames2movie.py", "ffmpeg", tmp_path / "f", extracted / "clip.mp4", "jpg", "-o",
           tmp_path / "o.mp4")
    assert stream_length(tmp_path / "o.mp4", "v")[0] == 12


def test_kill_9_then_the_same_command_resumes(extracted, tiny_model_dir, tmp_path):
    out = tmp_path / "processed"
    command = [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i",
               str(extracted / "frames"), "-o", str(out), "-t", str(tiny_model_dir),
               "-l", "inception_4c/output", "-itr", "6", "-oct", "3", "--seed", "3"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(frames.list_frames(out) if out.exists()
                                              else {}) < 3:
        time.sleep(0.05)
    process.kill()
    process.wait()
    kept = {n: p.read_bytes() for n, p in frames.list_frames(out).items()}
    assert 3 <= len(kept) < 12
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"({len(kept)} already done)" in result.stdout
    final = frames.list_frames(out)
    assert list(final) == list(range(1, 13))
    assert all(final[n].read_bytes() == data for n, data in kept.items())
    assert all(frames.read_frame(p).shape == (121, 161, 3) for p in final.values())
    assert not list(out.glob(".*.part"))


def test_ctrl_c_exits_130_with_how_to_resume(extracted, tiny_model_dir, tmp_path):
    out = tmp_path / "processed"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(extracted / "frames"),
         "-o", str(out), "-t", str(tiny_model_dir), "-l", "inception_4c/output", "-itr", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and frames.list_frames(out)):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "run the same command again to resume" in err and "Traceback" not in err
    assert not list(out.glob(".*.part"))
    assert all(frames.read_frame(p) is not None for p in frames.list_frames(out).values())


BAD = {
    "missing-input": (["-i", "{tmp}/nope"], "frame folder not found"),
    "empty-input": (["-i", "{tmp}/empty"], "no numbered frames"),
    "missing-model-folder": (["-t", "{tmp}/nomodel"], "model not found"),
    "truncated-model": (["-t", "{tmp}/truncated"], "truncated or corrupt"),
    "unknown-layer": (["-l", "inception_9z/output"], "no layer or blob named"),
    "frame-too-small": (["-i", "{tmp}/tiny", "-oct", "12", "-l", "inception_5b/output"],
                        "too small"),
    "unreadable-frame": (["-i", "{tmp}/broken"], "00000001.png"),
    "bad-blend": (["-b", "purple"], "a number from 0 to 1, 'loop', 'random' or keyframes or "
                                  "the sound"),
    "cuda-device-without-cuda": (["--device", "cuda"], "no CUDA GPU"),
    "caffe-in-bf16": (["--engine", "caffe", "--precision", "bf16"], "fp32 only"),
    "zero-octaves": (["-oct", "0"], "-oct/--octaves must be from 1 to 100, not 0"),
    "missing-guide": (["-gi", "{tmp}/none.jpg"], "guide image not found"),
    "zero-workers": (["--ray", "--workers", "0"], "--workers must be 1 or more"),
    "guide-with-terms": (["-l", "inception_3b/output:1", "-gi", "{tmp}/tiny/00000001.png"],
                         "a guide image dreams towards plain layers"),
    "bad-term": (["-l", "inception_3b/output:x"], "give channel numbers"),
    "missing-recipe": (["--recipe", "{tmp}/none.json"], "is not the params.json of a"),
    "unknown-term-layer": (["-l", "0.5*inception_9z/output+conv2/3x3"],
                           "no layer or blob named 'inception_9z/output'"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_non_zero(case, extracted, tiny_model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "tiny").mkdir()
    frames.write_frame(tmp_path / "tiny" / "00000001.png", np.zeros((8, 8, 3)))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "00000001.png").write_bytes(b"")
    (tmp_path / "truncated").mkdir()
    (tmp_path / "truncated" / "deploy.prototxt").write_bytes(
        (tiny_model_dir / "deploy.prototxt").read_bytes())
    data = (tiny_model_dir / "bvlc_googlenet.caffemodel").read_bytes()
    (tmp_path / "truncated" / "bvlc_googlenet.caffemodel").write_bytes(data[:len(data) // 2])
    extra, message = BAD[case]
    args = {"-i": str(extracted / "frames"), "-o": str(tmp_path / "out"),
            "-t": str(tiny_model_dir)}
    flags = [a.format(tmp=tmp_path) for a in extra]
    for i in range(0, len(flags) - 1):
        if flags[i] in args:
            args[flags[i]] = flags[i + 1]
    rest = [f for i, f in enumerate(flags) if f not in args and
            (i == 0 or flags[i - 1] not in args)]
    command = [x for pair in args.items() for x in pair] + rest
    if case == "cuda-device-without-cuda":
        import torch
        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA GPU")
    result = script("2_dreaming_time.py", *command, "-itr", "1", check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_legacy_gpu_flag_and_image_type_work_on_a_cpu_machine(extracted, tiny_model_dir,
                                                              tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "o",
                    "-it", "jpg", "--gpu", "-t", tiny_model_dir, *FAST, "-ef", "2")
    assert "dreamed on the CPU" in result.stderr
    assert list(frames.list_frames(tmp_path / "o", "jpg")) == [1, 2]


@pytest.mark.parametrize("verbose", ["0", "1", "2", "3"])
def test_every_verbosity_works(verbose, extracted, tiny_model_dir, tmp_path):
    result = script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "o",
                    "-t", tiny_model_dir, *FAST, "-ef", "1", "-v", verbose)
    assert list(frames.list_frames(tmp_path / "o")) == [1]
    # 0: nothing but warnings; 1: what is done; 2 and 3: every step of the dream
    assert ("1 frame to dream" in result.stderr) == (int(verbose) >= 1)
    assert ("octave 0 step 0" in result.stderr) == (int(verbose) >= 2)


def test_list_layers(extracted, tiny_model_dir):
    result = script("2_dreaming_time.py", "--list-layers", "-i", extracted / "frames", "-t",
                    tiny_model_dir)
    assert "161x121" in result.stdout and "inception_4c/output" in result.stdout
    assert "64 x 7 x 10" in result.stdout
    assert "pool5/7x7_s1" in result.stdout and "too small to reach it" in result.stdout
    classifier = [line.split(None, 1)[1] for line in result.stdout.splitlines()
                  if line.split()[:1] == ["loss3/classifier"]]
    assert classifier == ["125 (sees the frame scaled to 224x224)"]


def test_hyphenated_readme_spellings_and_loop_blend(extracted, tiny_model_dir, tmp_path):
    common = ["-i", extracted / "frames", "-t", tiny_model_dir, *FAST, "--seed", "4",
              "--start-frame", "3", "--end-frame", "4"]
    script("2_dreaming_time.py", *common, "-o", tmp_path / "o", "-b", "loop",
           "--guide-image", extracted / "frames" / "00000001.png", "-z", "1.05")
    assert list(frames.list_frames(tmp_path / "o")) == [3, 4]
    params = frames.read_json(tmp_path / "o" / "params.json")["dream"]
    assert (params["blend"], params["zoom"]) == ("loop", 1.05)
    # each of the three changes the dream of frame 4 (the first, 3, starts from the raw frame)
    script("2_dreaming_time.py", *common, "-o", tmp_path / "plain")
    for flags, name in [(["-b", "loop"], "loop"), (["-z", "1.05"], "zoom"),
                        (["--guide-image", extracted / "frames" / "00000001.png"], "guide")]:
        script("2_dreaming_time.py", *common, "-o", tmp_path / name, *flags)
        changed = frames.read_frame(tmp_path / name / "00000004.png").astype(int)
        same = frames.read_frame(tmp_path / "plain" / "00000004.png").astype(int)
        assert np.abs(changed - same).mean() > 0.5, name


def test_precision_bf16_dreams_and_is_recorded(extracted, tiny_model_dir, tmp_path):
    script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "o", "-t",
           tiny_model_dir, *FAST, "-ef", "2", "--precision", "bf16")
    made = frames.list_frames(tmp_path / "o")
    assert list(made) == [1, 2]
    raw = frames.read_frame(extracted / "frames" / "00000001.png").astype(float)
    assert np.abs(frames.read_frame(made[1]).astype(float) - raw).mean() > 0.5
    assert frames.read_json(tmp_path / "o" / frames.PARAMS)["precision"] == "bf16"


STAGE_1_AND_3_BAD = {
    "stage1-fps-abc": ("1_movie2frames.py", ["{clip}", "{tmp}/f", "--fps", "abc"],
                       "'abc' is not a frame rate"),
    "stage1-fps-0": ("1_movie2frames.py", ["{clip}", "{tmp}/f", "--fps", "0"],
                     "must be more than 0"),
    "stage1-missing-movie": ("1_movie2frames.py", ["{tmp}/nope.mp4", "{tmp}/f"],
                             "movie not found"),
    "stage1-negative-start": ("1_movie2frames.py", ["{clip}", "{tmp}/f", "--start", "-2"],
                              "0 or more"),
    "stage3-fps-abc": ("3_frames2movie.py", ["{frames}", "--fps", "abc"],
                       "'abc' is not a frame rate"),
    "stage3-fps-0": ("3_frames2movie.py", ["{frames}", "--fps", "0"], "must be more than 0"),
    "stage3-missing-movie": ("3_frames2movie.py", ["ffmpeg", "{frames}", "{tmp}/nope.mp4"],
                             "movie not found"),
    "stage3-no-frames": ("3_frames2movie.py", ["{tmp}"], "no numbered frames"),
    "stage3-missing-folder": ("3_frames2movie.py", ["{tmp}/none"], "frame folder not found"),
    "ffmpeg-too-old": ("1_movie2frames.py", ["{clip}", "{tmp}/f"], "older than the oldest"),
    "ffmpeg-not-there": ("3_frames2movie.py", ["{frames}"], "not an ffmpeg that can be run"),
}


@pytest.mark.parametrize("case", STAGE_1_AND_3_BAD)
def test_stage_1_and_3_bad_input_is_one_line_and_non_zero(case, extracted, tmp_path):
    name, args, message = STAGE_1_AND_3_BAD[case]
    env = dict(os.environ)
    if case == "ffmpeg-too-old":     # an executable that says it is ffmpeg 3.4
        old = tmp_path / "ffmpeg"
        old.write_text("#!/bin/sh\necho 'ffmpeg version 3.4.8 Copyright (c) 2000-2020'\n")
        old.chmod(0o755)
        env["DEEPDREAM_FFMPEG"] = str(old)
    if case == "ffmpeg-not-there":
        env["DEEPDREAM_FFMPEG"] = str(tmp_path / "no-ffmpeg")
    words = [a.format(clip=extracted / "clip.mp4", tmp=tmp_path, frames=extracted / "frames")
             for a in args]
    result = subprocess.run([sys.executable, str(ROOT / name), *words, "-o",
                             str(tmp_path / "o.mp4")] if name.startswith("3") else
                            [sys.executable, str(ROOT / name), *words], env=env,
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1


def test_fps_flag_comes_first_then_movie_json(extracted, tmp_path):
    script("3_frames2movie.py", extracted / "frames", "--fps", "10", "-o", tmp_path / "a.mp4")
    assert "10 fps" in stream_line(tmp_path / "a.mp4", "Video")
    script("3_frames2movie.py", "ffmpeg", extracted / "frames", extracted / "clip.mp4", "-o",
           tmp_path / "b.mp4")
    assert "29.97 fps" in stream_line(tmp_path / "b.mp4", "Video")   # movie.json's


@pytest.mark.parametrize("folder,name", [("my 100% dream", "{n}.png"),        # unpadded
                                         ("four digits", "{n:04d}.png")],   # other tools'
                         ids=["unpadded-in-percent-folder", "four-digits"])
def test_stage_3_takes_any_digits_and_odd_folder_names(extracted, tmp_path, folder, name):
    folder = tmp_path / folder
    folder.mkdir()
    for n, path in frames.list_frames(extracted / "frames").items():
        (folder / name.format(n=n)).write_bytes(path.read_bytes())
    script("3_frames2movie.py", folder, "--fps", "25", "-o", tmp_path / "o.mp4")
    assert stream_length(tmp_path / "o.mp4", "v")[0] == 12


def test_stage_1_into_a_folder_named_with_percent(extracted, tmp_path):
    script("1_movie2frames.py", extracted / "clip.mp4", tmp_path / "50% off", "-q")
    assert list(frames.list_frames(tmp_path / "50% off")) == list(range(1, 13))


def test_verbose_log_names_the_ffmpeg_in_use(extracted, tmp_path):
    from deepdream.io.video import ffmpeg_exe
    result = script("3_frames2movie.py", extracted / "frames", "-v", "2", "-o",
                    tmp_path / "o.mp4")
    assert f"using {ffmpeg_exe()}, ffmpeg version " in result.stderr


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(
        extracted, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(extracted / "frames"),
               "-o", str(out), "-t", str(tiny_model_dir), "-l", "inception_4c/output",
               "-itr", "40", "-oct", "2", "-v", "0"]     # slow enough to be caught running
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "params.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)                       # the first run has begun
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert f"another run is dreaming into {out}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0
    assert list(frames.list_frames(out)) == list(range(1, 13))


def test_objective_terms_on_the_command_line(extracted, tiny_model_dir, tmp_path):
    common = ["-i", extracted / "frames", "-t", tiny_model_dir, "-oct", "2", "-itr", "2",
              "--seed", "1", "-ef", "2"]
    script("2_dreaming_time.py", *common, "-o", tmp_path / "plain", "-l",
           "inception_3b/output")
    script("2_dreaming_time.py", *common, "-o", tmp_path / "terms", "-l",
           "0.5*inception_3b/output:3,7+conv2/3x3")
    params = frames.read_json(tmp_path / "terms" / "params.json")
    assert params["dream"]["layers"] == ["0.5*inception_3b/output:3,7+conv2/3x3"]
    a = frames.read_frame(tmp_path / "plain" / "00000002.png").astype(int)
    b = frames.read_frame(tmp_path / "terms" / "00000002.png").astype(int)
    assert np.abs(a - b).mean() > 0.5


def test_a_recipe_repeats_a_run_exactly_and_flags_override_it(extracted, tiny_model_dir,
                                                              tmp_path):
    script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "a", "-t",
           tiny_model_dir, "-l", "inception_3b/output:2+conv2/3x3", "-oct", "2", "-itr", "2",
           "--seed", "9", "-b", "0.7", "--keep-colors", "-ef", "3")
    recipe = tmp_path / "a" / "params.json"
    # no model, layer or setting named: all from the recipe, and the same frames
    script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "b",
           "--recipe", recipe, "-ef", "3", cwd=tmp_path)
    a, b = frames.list_frames(tmp_path / "a"), frames.list_frames(tmp_path / "b")
    assert list(a) == list(b) == [1, 2, 3]
    assert all(a[n].read_bytes() == b[n].read_bytes() for n in a)
    script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "c",
           "--recipe", recipe, "-itr", "3", "-ef", "1")
    dream = frames.read_json(tmp_path / "c" / "params.json")["dream"]
    assert (dream["iterations"], dream["blend"], dream["seed"], dream["keep_colors"],
            dream["layers"]) == (3, 0.7, 9, True, ["inception_3b/output:2+conv2/3x3"])


def test_named_recipes_set_their_settings_and_flags_override_them(extracted, tiny_model_dir,
                                                                   tmp_path):
    from deepdream.run.recipes import named_recipes
    from deepdream.nets.loading import random_net
    from deepdream.nets.registry import MODELS_DIR
    from deepdream.run.settings import DreamSettings
    googlenet = random_net(MODELS_DIR / "bvlc_googlenet" / "deploy.prototxt")
    assert {"classic", "deep", "subtle", "smooth"} <= set(named_recipes())
    for name, about in named_recipes().items():     # each one reads, and fits GoogLeNet
        recipe = frames.read_json(ROOT / "recipes" / f"{name}.json")
        settings = DreamSettings(**{k: tuple(v) if k == "layers" else v
                                    for k, v in recipe["dream"].items()})
        settings.check()
        assert about and all(googlenet.resolve(layer) for layer in settings.layers)
    script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "smooth",
           "-t", tiny_model_dir, "--recipe", "smooth", "-itr", "1", "-oct", "2", "-ef", "2")
    dream = frames.read_json(tmp_path / "smooth" / "params.json")["dream"]
    assert (dream["flow"], dream["keep_colors"], dream["layers"], dream["iterations"],
            dream["octaves"]) == ("dis", True, ["inception_4c/output"], 1, 2)
    result = script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "x",
                    "-t", tiny_model_dir, "--recipe", "smoth", check=False)
    assert result.returncode == 1 and \
        "nor a named recipe (beats, classic, deep, slow_build, smooth, subtle)" \
        in result.stderr


def test_a_recipe_refuses_a_model_that_changed_since(extracted, tiny_model_dir, tmp_path):
    import shutil
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "a", "-t", model,
           *FAST, "-ef", "1")
    with open(model / "bvlc_googlenet.caffemodel", "ab") as f:
        f.write(b"\0")
    result = script("2_dreaming_time.py", "-i", extracted / "frames", "-o", tmp_path / "b",
                    "--recipe", tmp_path / "a" / "params.json", check=False)
    assert result.returncode == 1 and "has changed since its run" in result.stderr
    assert "Traceback" not in result.stderr
