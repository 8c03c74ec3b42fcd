"""Settings that follow the film's time and its sound (issue 29), as a user runs them: the step
size following the loudness dreams loud passages more than silent ones, rising keyframes
dream the end more than the start, the sweep moves on at the beats, frames of other settings
are batched apart, a resume with another schedule is refused, a recipe repeats them, and every
mistake is one line before any work."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from deepdream.dreamer import objectives
from deepdream.io import frames
from deepdream.io.sound import analyse
from deepdream.run import timeline
from deepdream.run.settings import DreamSettings

from conftest import script
from media import ffmpeg, make_beep_clip

DREAM = ["-l", "inception_3b/output", "-oct", "1", "-itr", "3", "-b", "0", "--seed", "1"]


@pytest.fixture(scope="module")
def loud_middle(tmp_path_factory):
    """A 3 s movie at 10 fps (96x64) whose sound is silent, then a loud tone from 1 s to 2 s,
    then silent again; its frames extracted by stage 1."""
    folder = tmp_path_factory.mktemp("loud")
    movie = folder / "loud.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=3", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=3", "-filter:a",
           "volume='if(between(t,1,2),1,0)':eval=frame", "-c:v", "libx264", "-pix_fmt",
           "yuv420p", "-c:a", "aac", str(movie))
    script("1_movie2frames.py", movie, folder / "frames", "-q")
    return movie, folder / "frames"


@pytest.fixture(scope="module")
def silent(tmp_path_factory):
    movie = tmp_path_factory.mktemp("silent") / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(movie))
    return movie


def strengths(frames_dir, dreamed_dir) -> dict[int, float]:
    """How far each dreamed frame is from its frame (mean absolute difference, 0..255)."""
    found = {}
    for number, path in frames.list_frames(dreamed_dir).items():
        raw = np.asarray(Image.open(frames_dir / path.name), np.float64)
        found[number] = float(np.abs(np.asarray(Image.open(path), np.float64) - raw).mean())
    return found


def test_the_step_size_follows_the_loudness(loud_middle, tiny_model_dir, tmp_path):
    movie, extracted = loud_middle
    script("2_dreaming_time.py", "-i", extracted, "-o", tmp_path / "o", "-t", tiny_model_dir,
           *DREAM, "-s", "sound:0.3..3")
    found = strengths(extracted, tmp_path / "o")
    loud = np.mean([found[n] for n in range(13, 20)])       # 1.2 s to 1.8 s
    quiet = np.mean([found[n] for n in [*range(2, 9), *range(24, 31)]])
    assert loud >= 3 * quiet, (loud, quiet)
    params = frames.read_json(tmp_path / "o" / "params.json")
    assert params["dream"]["step_size"] == "sound:0.3..3"


def test_rising_keyframes_dream_the_last_second_more_than_the_first(loud_middle,
                                                                    tiny_model_dir, tmp_path):
    movie, _ = loud_middle
    out = tmp_path / "dream.mp4"
    script("-m deepdream", movie, "-o", out, "-t", tiny_model_dir, *DREAM,
           "-s", "0:0.2, 1s:0.2, 2s:3", "--keep-frames", "--work", tmp_path / "work")
    found = strengths(tmp_path / "work" / "frames", tmp_path / "work" / "dreamed")
    first = np.mean([found[n] for n in range(1, 11)])
    last = np.mean([found[n] for n in range(21, 31)])
    assert last >= 3 * first, (first, last)
    assert out.is_file()


def test_frames_of_other_settings_are_batched_apart(loud_middle, tiny_model_dir, tmp_path):
    """With -b 0 each frame is dreamed from its own frame alone: batched segments must give
    the frames a sequential run gives, each with its own iterations."""
    _, extracted = loud_middle
    args = ["-t", tiny_model_dir, "-l", "inception_3b/output", "-oct", "1", "-b", "0",
            "--seed", "3", "-itr", "1:1, 30:4", "-ef", "12"]
    script("2_dreaming_time.py", "-i", extracted, "-o", tmp_path / "seq", *args)
    script("2_dreaming_time.py", "-i", extracted, "-o", tmp_path / "batch", *args,
           "--batch-segments", "3", "--warmup", "0", "--no-scene-cuts")
    for number, path in frames.list_frames(tmp_path / "seq").items():
        a, b = (frames.read_frame(p).astype(int) for p in (path, tmp_path / "batch" / path.name))
        # one batched pass instead of several: equal up to float rounding (a frame dreamed
        # with another frame's steps would be far off: one step against two, below)
        assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.05, number
    found = strengths(extracted, tmp_path / "seq")
    assert found[12] > 1.5 * found[1]               # 1 step against 2: it did change


def test_the_sweep_moves_on_at_the_beats(tmp_path):
    clip = make_beep_clip(tmp_path / "beeps.mp4", (0.5, 1.3, 2.1), 25, duration=2.6)
    layers = ("a", "b", "c")
    settings = DreamSettings(layers=layers, layer_on="beats")
    line = timeline.Timeline.make(settings, timeline.Footage(48, 128, Fraction(25), 0.0, 65,
                                                             clip))
    # frame n is at (n - 1) / 25 s: the layer changes at the first frame after each beat
    chosen = [line.layer(n) for n in range(1, 66)]
    changes = [n for n in range(2, 66) if chosen[n - 1] != chosen[n - 2]]
    assert [abs((n - 1) / 25 - t) <= 0.06 for n, t in zip(changes, (0.5, 1.3, 2.1))] == \
        [True] * 3 and len(changes) == 3
    assert chosen[0] == "a" and chosen[-1] == "a"           # a, b, c, then a again


def test_a_weight_may_follow_the_sound(loud_middle):
    movie, _ = loud_middle
    settings = DreamSettings(layers=("[sound:0..1]*inception_3b/output+conv2/3x3",))
    line = timeline.Timeline.make(settings, timeline.Footage(64, 96, Fraction(10), 0.0, 30,
                                                             movie))
    quiet, loud = (float(line.layer(n).split("*")[0]) for n in (5, 15))
    assert quiet < 0.05 and loud > 0.95
    assert line.layer(15).endswith("*inception_3b/output+conv2/3x3")
    # taken away (joined by '-'), at every frame the same two terms, whatever its value
    # (one as small as 1e-05 is written with an exponent)
    settings = DreamSettings(layers=("conv2/3x3-[sound:0..0.00005]*inception_3b/output",))
    line = timeline.Timeline.make(settings, timeline.Footage(64, 96, Fraction(10), 0.0, 30,
                                                             movie))
    for n in range(1, 31):
        first, second = objectives.parse(line.layer(n))
        assert (first.layer, first.weight) == ("conv2/3x3", 1.0)
        assert second.layer == "inception_3b/output" and -0.00005 <= second.weight <= 0


def test_a_resume_with_another_schedule_is_refused(loud_middle, tiny_model_dir, tmp_path):
    _, extracted = loud_middle
    args = ["-i", extracted, "-o", tmp_path / "o", "-t", tiny_model_dir, *DREAM]
    script("2_dreaming_time.py", *args, "-s", "0:1, 30:2", "-ef", "2")
    result = script("2_dreaming_time.py", *args, "-s", "0:1, 30:3", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'o'} holds frames dreamed with other parameters (step_size: "
        "'0:1, 30:2' -> '0:1, 30:3'); use --overwrite to dream them again, or another output "
        "folder"]
    assert len(frames.list_frames(tmp_path / "o")) == 2


def test_a_recipe_repeats_the_schedules(loud_middle, tiny_model_dir, tmp_path):
    _, extracted = loud_middle
    script("2_dreaming_time.py", "-i", extracted, "-o", tmp_path / "a", "-t", tiny_model_dir,
           *DREAM, "-s", "smooth(0:0.5, 20:2)", "-itr", "sound-beats:2..4", "-ef", "3")
    script("2_dreaming_time.py", "-i", extracted, "-o", tmp_path / "b", "-t", tiny_model_dir,
           "--recipe", tmp_path / "a" / "params.json", "-ef", "3")
    for path in frames.list_frames(tmp_path / "a").values():
        assert (tmp_path / "b" / path.name).read_bytes() == path.read_bytes()
    assert frames.read_json(tmp_path / "b" / "params.json")["dream"]["iterations"] == \
        "sound-beats:2..4"


MISTAKES = {
    "malformed": (["-s", "0:1.5, 4x:3"], 'error: -s/--stepsize: cannot read "4x:3" in '
                                         '"0:1.5, 4x:3"'),
    "out of range": (["-b", "0:0.5, 2s:1.5"], "error: -b/--blend must be from 0 to 1, not "
                                              '1.5 (the keyframe 2s:1.5 of "0:0.5, 2s:1.5")'),
    "out of order": (["-itr", "10:2, 5:3"], "error: -itr/--iterations: keyframe 5:3 comes "
                                            "before 10:2"),
    "unknown sound": (["-s", "sound-treble:1..2"], 'error: -s/--stepsize: unknown sound '
                                                   '"sound-treble"'),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_malformed_schedule_is_one_line_before_any_work(loud_middle, tiny_model_dir,
                                                          tmp_path, mistake):
    movie, _ = loud_middle
    given, words = MISTAKES[mistake]
    result = script("-m deepdream", movie, "-o", tmp_path / "out.mp4", "-t", tiny_model_dir,
                    *DREAM, *given, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith(words), lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("follows", [["-s", "sound:0.5..2"], ["--layer-on", "beats"],
                                     ["-l", "[sound-bass:0..1]*inception_3b/output"]],
                         ids=["step", "sweep", "weight"])
def test_a_sound_schedule_on_a_silent_movie_is_one_line_before_any_work(
        silent, tiny_model_dir, tmp_path, follows):
    result = script("-m deepdream", silent, "-o", tmp_path / "out.mp4", "-t", tiny_model_dir,
                    *DREAM, *follows, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: a setting follows the sound (sound:..., --layer-on beats), but these frames "
        "have no sound: dream a movie with sound, or frames that stage 1 extracted from one"]
    assert list(tmp_path.iterdir()) == []


def test_seconds_need_the_frame_rate(tiny_model_dir, tmp_path):
    """Frames of unknown origin (no movie.json) have frame numbers, not times."""
    src = tmp_path / "in"
    src.mkdir()
    frames.write_frame(src / "00000001.png", np.full((48, 64, 3), 90.0))
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "o", "-t",
                    tiny_model_dir, *DREAM, "-s", "0:1, 2s:2", check=False)
    assert result.returncode == 1 and "the frame rate of these frames is not known" in \
        result.stderr and not (tmp_path / "o").exists()
    script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "o", "-t", tiny_model_dir,
           *DREAM, "-s", "1:1, 20:2")                       # frame numbers do
    assert len(frames.list_frames(tmp_path / "o")) == 1


def test_a_keyframe_past_the_end_is_a_warning(loud_middle, tiny_model_dir, tmp_path):
    _, extracted = loud_middle
    result = script("2_dreaming_time.py", "-i", extracted, "-o", tmp_path / "o", "-t",
                    tiny_model_dir, *DREAM, "-s", "0:1, 10s:3", "-ef", "1")
    assert "-s/--stepsize: keyframe 10s:3 comes after the last frame (30" in result.stderr


def test_the_plot_draws_each_curve_over_the_sound(loud_middle, tmp_path):
    movie, _ = loud_middle
    out = tmp_path / "curves.png"
    result = script("-m deepdream", movie, "--plot", out, "-s", "0:0.3, 2s:3",
                    "-itr", "sound:2..6")
    assert "the curves of 2 scheduled settings over 30 frames" in result.stderr
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)
    curve = (picture[..., 0] > 200) & (picture[..., 1] > 150) & (picture[..., 2] < 120)
    from deepdream.run.plot import MARGIN, STRIP, WIDTH

    def height(strip: int, frame: int) -> float:
        """How high the strip's curve is at frame ``frame`` (1..30), in pixels up."""
        x = int(round(MARGIN + (frame - 1) / 29 * (WIDTH - 2 * MARGIN)))
        top = MARGIN + strip * (STRIP + MARGIN)
        rows = np.nonzero(curve[top:top + STRIP, x])[0]
        return STRIP - rows.mean()
    # the strips in the order of the flags: -itr (the loudness: high in the middle), -s
    assert height(0, 16) > height(0, 3) + 40 and height(0, 16) > height(0, 28) + 40
    assert height(1, 28) > height(1, 3) + 40                # the step size rises
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my picture")
    refused = script("-m deepdream", movie, "--plot", mine, "-s", "sound:1..2", check=False)
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert mine.read_bytes() == b"my picture"


def test_the_sound_analysis_is_of_the_frames_movie(loud_middle):
    """What a stage-2 run reads of its frames: their movie's rate, place and sound."""
    from deepdream.run.plan import footage_of
    from deepdream.run.state import InputFrames
    movie, extracted = loud_middle
    footage = footage_of(InputFrames.listed(extracted))
    assert (footage.fps, footage.last_frame, footage.sound) == (Fraction(10), 30, movie)
    curves = analyse(footage.sound)
    assert curves.at("loudness", np.array([0.5]))[0] < 0.05 < 0.95 < \
        curves.at("loudness", np.array([1.5]))[0]
    assert json.loads((extracted / "movie.json").read_text())["has_audio"]


def test_live_refuses_a_sound_schedule_of_a_stream_at_once(tiny_model_dir):
    """A stream's sound is not known ahead: one line before anything opens (no wait for a
    stream nobody sends)."""
    import socket
    import time
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = script("-m deepdream", "--live", f"udp://127.0.0.1:{port}", "--serve", "0",
                    "-t", tiny_model_dir, "-s", "sound:0.5..2", check=False)
    assert result.returncode == 1 and time.monotonic() - started < 15
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: the live source udp://127.0.0.1:{port} is no movie: settings that "
                     "follow the sound (sound:..., --layer-on beats) or keyframes in seconds "
                     "need a movie file; give keyframes as frame numbers"], lines


def test_live_follows_a_movies_sound(loud_middle, tiny_model_dir, tmp_path):
    movie, _ = loud_middle
    out = tmp_path / "live.mp4"
    result = script("-m deepdream", "--live", movie, "-o", out, "-t", tiny_model_dir,
                    "-l", "inception_3b/output", "-oct", "1", "-itr", "sound:1..3",
                    "-s", "0:0.5, 2s:2", "--duration", "20")
    assert "dreaming" in result.stderr and "sound:1..3" in result.stderr
    from deepdream.io import video
    assert video.written_length(out)[0] >= 2
