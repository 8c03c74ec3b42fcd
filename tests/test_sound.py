"""The sound curves (deepdream.io.sound) of movies made here with known sound: silence, loud and
quiet tones, bass against treble, bursts at known times; decoded by every ffmpeg users have."""
import subprocess
import tracemalloc

import numpy as np
import pytest

from deepdream.errors import SettingsError, VideoError
from deepdream.io import sound, video
from media import beep_onsets, ffmpeg, make_beep_clip, maker_exe

BURSTS = [0.5, 1.23, 2.0, 2.61, 3.3]     # seconds: 1 kHz beeps, then two noise bursts


def movie(path, expression=None, duration=3.0, audio=None):
    """A small movie whose sound is the aevalsrc ``expression`` (or the lavfi source
    ``audio``; neither: no sound), AAC in MP4 as cameras write it."""
    args = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={duration}"]
    if expression:
        audio = f"aevalsrc='{expression}':s=44100:d={duration}"
    if audio:
        args += ["-f", "lavfi", "-i", audio, "-c:a", "aac", "-b:a", "128k"]
    ffmpeg(*args, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sound")
    beeps = "+".join(f"between(t,{b},{b + 0.04})" for b in BURSTS[:3])
    noise = "+".join(f"between(t,{b},{b + 0.03})" for b in BURSTS[3:])
    kicks = "0.6*sin(2*PI*55*mod(t,0.37)*(1+2*exp(-30*mod(t,0.37))))*exp(-8*mod(t,0.37))"
    return {
        # 1 s silence, 1 s loud, 1 s quiet (24 dB less)
        "levels": movie(folder / "levels.mp4", "if(lt(t,1),0,if(lt(t,2),0.8,0.05))"
                                               "*sin(2*PI*440*t)"),
        "bass": movie(folder / "bass.mp4", "0.5*sin(2*PI*if(lt(t,1.5),60,2000)*t)"),
        "bursts": movie(folder / "bursts.mp4", "0.1*sin(2*PI*220*t)+0.7*sin(2*PI*1000*t)*"
                        f"gt({beeps},0)+0.6*(random(0)-0.5)*gt({noise},0)", duration=4.0),
        # kicks every 0.37 s over a tone that swells and fades: 16 s, to seek in
        "long": movie(folder / "long.mp4", f"0.2*sin(2*PI*330*t)*(1+sin(t))+{kicks}",
                      duration=16.0),
        "mute": movie(folder / "mute.mp4"),
        "silent": movie(folder / "silent.mp4", audio="anullsrc=r=44100:cl=stereo:d=3"),
    }


def part(curves, kind, begin, end):
    """Curve ``kind`` sampled every 10 ms from ``begin`` to ``end`` seconds."""
    return curves.at(kind, np.arange(begin, end, 0.01))


@pytest.mark.usefixtures("ffmpeg_binary")
class TestDecoded:
    """Each with every ffmpeg of tests/conftest.py."""

    def test_loudness_is_0_in_silence_1_when_loud_and_between_when_quiet(self, clips):
        curves = sound.analyse(clips["levels"])
        assert curves.start == 0 and abs(curves.duration - 3.0) < 0.05
        assert part(curves, "loudness", 0.05, 0.95).max() < 0.02
        assert part(curves, "loudness", 1.1, 1.9).min() > 0.95
        quiet = part(curves, "loudness", 2.1, 2.9)
        assert 0.2 < quiet.min() and quiet.max() < 0.8
        # a single time and an array give the same; held past the end and before the start
        assert curves.at("loudness", 1.5) == part(curves, "loudness", 1.5, 1.505)[0]
        assert curves.at("loudness", 10.0) == curves.at("loudness", curves.end)

    def test_bass_follows_low_frequencies_not_loudness(self, clips):
        curves = sound.analyse(clips["bass"])
        assert part(curves, "bass", 0.1, 1.4).min() > 0.9            # 60 Hz
        assert part(curves, "bass", 1.6, 2.9).max() < 0.1             # 2 kHz, as loud
        assert abs(part(curves, "loudness", 0.1, 1.4).mean() -
                   part(curves, "loudness", 1.6, 2.9).mean()) < 0.1

    def test_beats_are_found_where_each_burst_starts_and_decay(self, clips):
        curves = sound.analyse(clips["bursts"])
        assert len(curves.beats) == len(BURSTS)
        assert np.abs(curves.beats - BURSTS).max() <= 0.03, curves.beats
        pulse = curves.at("beats", curves.beats[0] + np.array([-0.01, 0, 0.1, 0.3]))
        assert np.allclose(pulse, [0, 1, 0.5, 0.125])
        assert part(curves, "beats", 1.85, 1.99).max() < 0.02           # long after one

    def test_beats_are_on_the_movies_timeline_as_its_frames(self, tmp_path):
        """The picture starts 0.5 s after the sound: times count from the file's start, as
        frame times (video.MovieInfo.first_picture) and the beeps heard do."""
        clip = make_beep_clip(tmp_path / "late.mp4", [0.3, 1.1, 2.05], video_delay=0.5)
        assert video.probe(clip).first_picture == pytest.approx(0.5, abs=0.03)
        assert np.abs(sound.analyse(clip).beats - beep_onsets(clip)).max() <= 0.03

    def test_an_analysis_from_a_start_time_is_the_whole_one_shifted(self, clips):
        whole = sound.analyse(clips["long"])
        assert len(whole.beats) > 30
        for start, end in [(3.0, None), (12.004, 15.5)]:          # the second seeks fast
            piece = sound.analyse(clips["long"], start, end)
            first = round((piece.start - whole.start) / whole.hop)
            assert piece.start == pytest.approx(int(start * 100) / 100)
            assert piece.end == pytest.approx(end or whole.end, abs=0.01)
            inside = slice(10, len(piece.loudness_db) - 10)     # away from the cut ends
            for raw in ("loudness_db", "bass_db"):
                ours = getattr(piece, raw)[inside]
                theirs = getattr(whole, raw)[first:first + len(piece.loudness_db)][inside]
                assert np.abs(ours - theirs).max() < 0.05
            heard = whole.beats[(whole.beats > piece.start + 0.1) &
                                (whole.beats < piece.end - 0.1)]
            assert len(heard) > 5
            assert np.allclose(piece.beats[(piece.beats > piece.start + 0.1) &
                                           (piece.beats < piece.end - 0.1)], heard)

    def test_a_movie_without_sound_is_one_line_naming_it(self, clips):
        with pytest.raises(SettingsError) as error:
            sound.analyse(clips["mute"])
        assert "mute.mp4 has no sound" in str(error.value) and "\n" not in str(error.value)

    def test_a_silent_sound_track_is_one_line(self, clips):
        with pytest.raises(SettingsError, match=r"silent.mp4 is silent") as error:
            sound.analyse(clips["silent"])
        assert "\n" not in str(error.value)

    def test_a_file_ffmpeg_cannot_read_is_one_video_error(self, tmp_path):
        junk = tmp_path / "junk.mp4"
        junk.write_bytes(b"not a movie" * 100)
        for path in (junk, tmp_path / "missing.mp4"):
            with pytest.raises(VideoError) as error:
                sound.analyse(path)
            assert path.name in str(error.value) and "\n" not in str(error.value)


def test_a_long_sound_is_analysed_without_holding_it(tmp_path):
    """30 minutes: 58 MB of decoded samples, never all in memory."""
    long = tmp_path / "long.wav"
    subprocess.run([maker_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=100:sample_rate=8000:duration=1800", "-c:a", "pcm_u8",
                    str(long)], check=True)
    tracemalloc.start()
    try:
        curves = sound.analyse(long)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert curves.duration == pytest.approx(1800, abs=0.05)
    assert peak < 1800 * sound.RATE * 4 / 4, f"{peak / 1e6:.1f} MB"
    assert part(curves, "loudness", 100, 1700).min() > 0.95
