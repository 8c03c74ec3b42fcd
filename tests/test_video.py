"""Stages 1 and 3 on real ffmpeg with clips the tests make."""
import json
import os
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from deepdream.io import encoding, extraction, frames, video, ours
from deepdream.errors import FramesError, VideoError

from media import ffmpeg, make_clip, make_vfr_clip, stream_length, stream_line

# every test here runs with each ffmpeg of conftest.TEST_FFMPEGS (the system's, the bundled)
pytestmark = pytest.mark.usefixtures("ffmpeg_binary")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def test_probe_reads_rate_size_audio_without_ffprobe(clip):
    info = video.probe(clip)
    assert info.fps == Fraction(30000, 1001)
    assert (info.width, info.height) == (161, 121)
    assert info.has_audio and info.rotation == 0


def test_probe_errors(tmp_path):
    with pytest.raises(VideoError, match=f"^movie not found: .*{os.sep}none.mp4$"):
        video.probe(tmp_path / "none.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match=r"^cannot read a movie from .*junk.mp4 \(Invalid data"):
        video.probe(tmp_path / "junk.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"^\S*empty.mp4 is empty \(0 bytes\): it is not a movie$"):
        video.probe(tmp_path / "empty.mp4")


def test_a_sound_without_picture_is_said_in_words(tmp_path, ffmpeg_binary):
    sound = tmp_path / "song.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-c:a", "aac", str(sound))
    with pytest.raises(VideoError) as refused:
        video.probe(sound)
    assert str(refused.value) == f"{sound} has no picture, only sound: give a movie with a " \
        "video stream"


def test_extract_every_frame_at_source_rate_odd_size_kept(clip, tmp_path):
    meta = extraction.extract_frames(clip, tmp_path / "f", progress=False)
    found = frames.list_frames(tmp_path / "f")
    assert list(found) == list(range(1, 16))          # 0.5 s at 29.97 fps, from 00000001
    assert found[1].name == "00000001.png"
    assert Image.open(found[15]).size == (161, 121)
    assert meta["fps"] == "30000/1001" and meta["frame_count"] == 15 and meta["has_audio"]
    assert json.loads((tmp_path / "f" / "movie.json").read_text()) == meta


def test_extract_jpg_and_time_range(clip, tmp_path):
    meta = extraction.extract_frames(clip, tmp_path / "f", "jpg", start=0.1, end=0.3,
                                   progress=False)
    assert meta["frame_count"] == len(frames.list_frames(tmp_path / "f", "jpg"))
    assert 5 <= meta["frame_count"] <= 7 and meta["offset"] == 0.1


def test_extract_applies_rotation(tmp_path):
    rotated = make_clip(tmp_path / "r.mp4", rotation=90)
    meta = extraction.extract_frames(rotated, tmp_path / "f", progress=False)
    assert (meta["width"], meta["height"]) == (121, 161)
    assert Image.open(tmp_path / "f" / "00000001.png").size == (121, 161)


def test_extract_variable_rate_resamples_to_constant(tmp_path):
    meta = extraction.extract_frames(make_vfr_clip(tmp_path / "v.mp4"), tmp_path / "f",
                                   progress=False)
    # 10 frames over 0.4 s then 10 frames over 1 s: a constant 25 fps needs duplicates.
    # The last frame (shown for 0.1 s) is held for its whole duration by ffmpeg 9 (35
    # frames), up to its start by 4.2-7.0 (33): the one difference between versions left.
    assert meta["fps"] == "25" and meta["resampled"]["duplicated"] > 0
    assert meta["frame_count"] in (10 + 23, 10 + 25)


def test_extract_refuses_folder_with_frames_and_never_deletes_other_files(clip, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "00000001.jpg").write_bytes(b"old frame")
    # a numbered picture that no extraction of ours made: --overwrite leaves it too
    for overwrite in (False, True):
        with pytest.raises(FramesError, match="no extraction of ours made .*00000001.jpg"):
            extraction.extract_frames(clip, folder, overwrite=overwrite, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["00000001.jpg", "notes.txt"]
    assert (folder / "00000001.jpg").read_bytes() == b"old frame"
    (folder / "00000001.jpg").unlink()                 # the user moves it away
    extraction.extract_frames(clip, folder, "jpg", progress=False)
    with pytest.raises(FramesError, match="already holds 15 frames of an earlier extraction"
                                          ".*--overwrite"):
        extraction.extract_frames(clip, folder, progress=False)
    # --overwrite replaces our own extraction's frames, and only those
    (folder / "00000099.png").write_bytes(b"dropped in later")
    with pytest.raises(FramesError, match="00000099.png"):
        extraction.extract_frames(clip, folder, overwrite=True, progress=False)
    assert len(frames.list_frames(folder, "jpg")) == 15
    (folder / "00000099.png").unlink()
    extraction.extract_frames(clip, folder, overwrite=True, progress=False)
    assert (folder / "notes.txt").read_text() == "mine"
    assert not frames.list_frames(folder, "jpg")      # the jpgs of ours were replaced
    assert len(frames.list_frames(folder)) == 15


def test_movie_has_frame_count_rate_h264_and_sound_cut_to_length(clip, tmp_path):
    extraction.extract_frames(clip, tmp_path / "f", progress=False)
    out = encoding.make_movie(tmp_path / "f", tmp_path / "out.mp4", progress=False)
    frames_out, _ = stream_length(out, "v")
    _, audio_seconds = stream_length(out, "a")
    line = stream_line(out, "Video")
    assert frames_out == 15
    assert "h264" in line and "yuv420p" in line and "160x120" in line and "29.97 fps" in line
    assert abs(audio_seconds - 15 / (30000 / 1001)) <= 0.1      # the sine is 1 s long


def test_movie_from_a_clip_without_sound_is_silent(tmp_path):
    silent = make_clip(tmp_path / "n.mp4", audio=False)
    extraction.extract_frames(silent, tmp_path / "f", progress=False)
    out = encoding.make_movie(tmp_path / "f", tmp_path / "out.mp4", progress=False)
    assert stream_line(out, "Audio") == "" and stream_length(out, "v")[0] == 15


def test_movie_without_metadata_defaults_to_25_fps(tmp_path, caplog):
    folder = tmp_path / "f"
    folder.mkdir()
    for n in range(1, 6):
        frames.write_frame(folder / frames.frame_name(n, "png"), np.full((20, 30, 3), n * 40))
    out = encoding.make_movie(folder, tmp_path / "o.mp4", progress=False)
    assert "25 fps" in stream_line(out, "Video") and "using 25 fps" in caplog.text
    assert "30 fps" in stream_line(encoding.make_movie(folder, tmp_path / "p.mp4", fps="30",
                                                       progress=False), "Video")


def test_movie_stops_at_a_gap(tmp_path, caplog):
    folder = tmp_path / "f"
    folder.mkdir()
    for n in (1, 2, 3, 5):
        frames.write_frame(folder / frames.frame_name(n, "png"), np.zeros((16, 16, 3)))
    out = encoding.make_movie(folder, tmp_path / "o.mp4", progress=False)
    assert stream_length(out, "v")[0] == 3 and "frame 4 is missing" in caplog.text


def test_gif(tmp_path, clip):
    extraction.extract_frames(clip, tmp_path / "f", progress=False)
    out = encoding.make_movie(tmp_path / "f", tmp_path / "o.gif", gif=True, progress=False)
    assert out.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert stream_length(out, "v")[0] == 15


def test_movie_command_cuts_sound_from_the_first_frames_offset(tmp_path):
    args = video.movie_stream(str(tmp_path / "%08d.png"), 50, Fraction(25), tmp_path / "o.mp4",
                              "movie.mp4", 1.0, size=(101, 80)).get_args()
    assert args[args.index("-start_number") + 1] == "1"
    assert args[args.index("-ss") + 1] == "1.000000"
    assert args.index("-ss") < args.index(video.ffmpeg_path("movie.mp4"))
    # the length by -t alone: a frame limit cut the sound short on ffmpeg 5.1
    assert args[args.index("-t") + 1] == "2.000000" and "-frames:v" not in args
    assert "crop=100:80:0:0" in " ".join(args)
    assert "+faststart" in args and "yuv420p" in args


def test_frame_offset_moves_the_sound_start(tmp_path, clip):
    extraction.extract_frames(clip, tmp_path / "f", progress=False)
    dreamed = tmp_path / "d"
    dreamed.mkdir()
    for n in range(6, 16):   # as if dreamed with -sf 6
        (dreamed / frames.frame_name(n, "png")).write_bytes(
            (tmp_path / "f" / frames.frame_name(n, "png")).read_bytes())
    ours.write_json(dreamed / frames.PARAMS, "params", {"input": str(tmp_path / "f")})
    out = encoding.make_movie(dreamed, tmp_path / "o.mp4", progress=False)
    assert stream_length(out, "v")[0] == 10
    assert abs(stream_length(out, "a")[1] - 10 / (30000 / 1001)) <= 0.1


def test_source_with_a_non_zero_start_time_keeps_sound_in_step(tmp_path, ffmpeg_binary):
    ts = make_clip(tmp_path / "clip.ts", ts_offset=1.4)
    if subprocess.run([ffmpeg_binary, "-hide_banner", "-i", str(ts)],
                      capture_output=True).returncode < 0:
        # the static builds of 4.2.2 and 7.0.2 (imageio-ffmpeg 0.4.9, 0.6.0) crash on any
        # MPEG-TS file: the user is told so in one line, and which way out there is
        with pytest.raises(VideoError, match=r"crashed \(signal 11\).*DEEPDREAM_FFMPEG"):
            video.probe(ts)
        pytest.skip(f"{ffmpeg_binary} crashes on any MPEG-TS file: the sync of a source with "
                    "a non-zero start time cannot be measured with it")
    info = video.probe(ts)
    assert info.start_time > 1 and info.video_start >= info.start_time
    meta = extraction.extract_frames(ts, tmp_path / "f", progress=False)
    assert meta["frame_count"] == 15 and meta["height"] == 121
    out = encoding.make_movie(tmp_path / "f", tmp_path / "o.mp4", progress=False)
    assert stream_length(out, "v")[0] == 15
    assert abs(stream_length(out, "a")[1] - 15 / (30000 / 1001)) <= 0.1
