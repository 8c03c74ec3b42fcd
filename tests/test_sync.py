"""The movie's sound in sync with its pictures, measured on the content: a clip whose frames
show their own numbers and whose sound beeps at known times goes through the three scripts
(as users run them) with each ffmpeg of conftest.TEST_FFMPEGS; in the movie that comes out,
every beep must be heard within one frame of the picture it belongs to, and the sound must
last as long as the pictures."""
import pytest

from conftest import script
from media import assert_in_sync, make_beep_clip, picture_codes

FPS = 25
BEEPS = (0.52, 1.24, 1.67, 2.08, 2.71)            # irregular, so that no shift fits by luck
DREAM = ["-l", "conv2/3x3", "-oct", "1", "-itr", "1", "-b", "0", "-v", "0"]

pytestmark = pytest.mark.usefixtures("ffmpeg_binary")


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beeps")
    return {"plain": make_beep_clip(folder / "plain.mp4", BEEPS, FPS),
            # the picture starts 0.3 s after the sound (a stream delay, as in MPEG-TS
            # recordings and edited files)
            "late picture": make_beep_clip(folder / "late.mkv", BEEPS, FPS, video_delay=0.3)}


@pytest.mark.parametrize("kind", ["plain", "late picture"])
def test_seed_form_in_sync(clips, kind, tiny_model_dir, tmp_path):
    script("1_movie2frames.py", clips[kind], tmp_path / "frames", "-q")
    script("2_dreaming_time.py", "-i", tmp_path / "frames", "-o", tmp_path / "processed",
           "-t", tiny_model_dir, *DREAM)
    script("3_frames2movie.py", "processed", "-q", cwd=tmp_path)
    assert_in_sync(tmp_path / "processed_done.mp4", clips[kind], FPS)


def test_start_frame_in_sync(clips, tiny_model_dir, tmp_path):
    script("1_movie2frames.py", clips["plain"], tmp_path / "frames", "-q")
    script("2_dreaming_time.py", "-i", tmp_path / "frames", "-o", tmp_path / "processed",
           "-t", tiny_model_dir, "-sf", 20, "-ef", 60, *DREAM)
    script("3_frames2movie.py", "processed", "-q", cwd=tmp_path)
    movie = tmp_path / "processed_done.mp4"
    assert picture_codes(movie)[0] == 19           # frame 20 is the source's picture 19
    assert_in_sync(movie, clips["plain"], FPS)


@pytest.mark.parametrize("kind", ["plain", "late picture"])
def test_stage1_start_then_legacy_form_in_sync(clips, kind, tiny_model_dir, tmp_path):
    # the 2015 form names the original movie: movie.json's start still applies
    script("1_movie2frames.py", "ffmpeg", clips[kind], tmp_path / "frames", "png", "--start",
           0.9, "--end", 2.6, "-q")
    script("2_dreaming_time.py", "-i", tmp_path / "frames", "-o", tmp_path / "processed",
           "-t", tiny_model_dir, *DREAM)
    script("3_frames2movie.py", "ffmpeg", "processed", clips[kind], "png", "-q", cwd=tmp_path)
    movie = tmp_path / "processed_done.mp4"
    assert picture_codes(movie)[0] >= 0.9 * FPS - 8   # cut at the start (the late picture's
    assert_in_sync(movie, clips[kind], FPS)                 # frames are numbered from its start)
