"""All ffmpeg work: find the binary, probe a movie, split it into frames, put frames and audio
back together, and read back what was written. Commands are built with ffmpeg-python; probing
parses ``ffmpeg -i`` so that no ffprobe is needed (imageio-ffmpeg's bundled binary has none).
Every path is given to ffmpeg absolute (``ffmpeg_path``), so that none is read as a protocol,
and every ffmpeg started here dies with the Python process that started it."""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import ffmpeg

from ..errors import VideoError
from ..progress import Display, start as start_progress

log = logging.getLogger(__name__)

# Rates that ffmpeg prints rounded; the rationals they stand for.
_NTSC_RATES = {"11.99": Fraction(12000, 1001), "14.99": Fraction(15000, 1001),
               "23.98": Fraction(24000, 1001), "29.97": Fraction(30000, 1001),
               "47.95": Fraction(48000, 1001), "59.94": Fraction(60000, 1001),
               "119.88": Fraction(120000, 1001)}


# The oldest ffmpeg whose commands are tested here (imageio-ffmpeg 0.4.9's 4.2.2; Ubuntu 22.04
# ships 4.4, Debian 12 5.1): older ones are refused rather than half working.
OLDEST_FFMPEG = (4, 2)


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$DEEPDREAM_FFMPEG`` if set, else the system's on PATH (users with
    hardware encoders want theirs), else the one imageio-ffmpeg ships. Raises VideoError if
    none is found, it is not an ffmpeg (its ``-version`` does not begin "ffmpeg version";
    checked once a binary) or it is older than OLDEST_FFMPEG."""
    chosen = os.environ.get("DEEPDREAM_FFMPEG")
    if chosen:
        found = shutil.which(chosen)
        if not found:
            raise VideoError(f"DEEPDREAM_FFMPEG={chosen} is not an ffmpeg that can be run")
    else:
        found = shutil.which("ffmpeg")
    if not found:
        try:
            import imageio_ffmpeg
            found = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError):
            raise VideoError("ffmpeg not found: install it (apt install ffmpeg) or "
                             "pip install imageio-ffmpeg") from None
    if not _version_line(found).startswith("ffmpeg version"):
        raise VideoError(f"DEEPDREAM_FFMPEG={chosen} is not an ffmpeg: set it to an ffmpeg "
                         "binary, or unset it" if chosen else
                         f"{found} is not an ffmpeg: set DEEPDREAM_FFMPEG to one")
    version = ffmpeg_version(found)
    if version is not None and version < OLDEST_FFMPEG:
        raise VideoError(f"{found} is ffmpeg {'.'.join(map(str, version))}, older than the "
                         f"oldest this tool supports ({'.'.join(map(str, OLDEST_FFMPEG))}); "
                         "install a newer one or set DEEPDREAM_FFMPEG")
    return found


@functools.lru_cache(maxsize=None)
def _version_line(exe: str) -> str:
    """The first line ``exe -version`` prints, read once a binary. Raises VideoError if it
    cannot be run."""
    try:
        result = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True,
                                text=True, errors="replace", timeout=30,
                                preexec_fn=dies_with_us())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VideoError(f"cannot run {exe}: {e}") from None
    return result.stdout.lstrip().partition("\n")[0]


@functools.lru_cache(maxsize=None)
def ffmpeg_version(exe: str) -> tuple[int, int] | None:
    """(major, minor) of an ffmpeg binary, from ``ffmpeg -version`` (read once); None for a
    build that gives no release number (a git snapshot: taken as new)."""
    match = re.match(r"ffmpeg version \D{0,2}(\d+)\.(\d+)", _version_line(exe))
    version = (int(match.group(1)), int(match.group(2))) if match else None
    log.debug("using %s, ffmpeg version %s", exe, ".".join(map(str, version)) if version
              else "unknown (a development build)")
    return version


def _find_prctl():
    """Linux's prctl from the C library, looked up once (not in a forked child); None
    elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _find_prctl()


def dies_with_us():
    """The preexec_fn that makes a child die (SIGKILL) when this process dies, so that a
    kill -9 never leaves an ffmpeg of ours writing on (prctl PR_SET_PDEATHSIG; it acts when
    the starting thread ends, which outlives the child here, as every call waits for its
    ffmpeg); None where there is no prctl, where the child outlives a kill -9."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def die_with_parent() -> None:
        _prctl(1, int(signal.SIGKILL))                      # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:                          # we died before the prctl
            os.kill(os.getpid(), signal.SIGKILL)
    return die_with_parent


def _stopped_by_ctrl_c(returncode: int, text: str) -> bool:
    """Whether an ffmpeg ended because it got SIGINT: Ctrl-C in a terminal goes to ffmpeg and
    to us, and is an interruption, not a failure (also where our process ignores SIGINT, as a
    background job of a shell script does, and ffmpeg alone reacts to it)."""
    return returncode == -signal.SIGINT or "received signal 2." in text.lower()


def _run_to_end(args: list[str]) -> subprocess.CompletedProcess:
    """Run a short ffmpeg command (dying with us) and return its result, text decoded.
    Raises KeyboardInterrupt if it was stopped by Ctrl-C."""
    result = subprocess.run(args, capture_output=True, text=True, errors="replace",
                            preexec_fn=dies_with_us())
    if _stopped_by_ctrl_c(result.returncode, result.stderr):
        raise KeyboardInterrupt
    return result


def ffmpeg_path(path: str | Path) -> str:
    """``path`` as ffmpeg must be given it: absolute, so that no name is read as a protocol
    ('take:1.mp4' is not the protocol 'take', 'concat:a|b' not a concatenation) or, starting
    with '-', as an option."""
    return os.path.abspath(path)


def _at_least(version: tuple[int, int]) -> bool:
    """Whether the ffmpeg in use is at least ``version`` (an unknown build counts as new)."""
    found = ffmpeg_version(ffmpeg_exe())
    return found is None or found >= version


@dataclasses.dataclass
class MovieInfo:
    """What stage 1 learns of a movie; the display size has rotation applied. Times are in
    seconds on the movie's timeline as ffmpeg shows it: ``start_time`` is where the file
    begins (its earliest stream), ``video_start`` where its first picture is (later than
    start_time where the sound starts first: MPEG-TS recordings, edit lists)."""
    path: str
    fps: Fraction
    width: int
    height: int
    duration: float | None
    start_time: float
    video_start: float
    rotation: float
    has_audio: bool

    @property
    def first_picture(self) -> float:
        """Where the first picture is, in seconds from the file's start (as -ss counts)."""
        return self.video_start - self.start_time


def parse_rate(text: str, flag: str = "") -> Fraction:
    """A frame rate as ffmpeg prints it or a user types it ('25', '29.97', '30k',
    '24000/1001') as a rational. Raises VideoError for anything else, or a rate that is not
    positive (naming ``flag``, the user's, where given)."""
    text = str(text).strip()
    named = f"{flag} " if flag else ""
    try:
        if text.endswith("k"):
            rate = Fraction(text[:-1]) * 1000
        elif text in _NTSC_RATES:
            rate = _NTSC_RATES[text]
        else:
            rate = Fraction(text).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        raise VideoError(f"{named}'{text}' is not a frame rate: give frames a second, e.g. 25, "
                         "29.97 or 30000/1001") from None
    if rate <= 0:
        raise VideoError(f"the frame rate {named}must be more than 0, not {text}")
    return rate


def _seconds(text: str) -> float | None:
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not match:
        return None
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def probe(path: str | Path) -> MovieInfo:
    """Read a movie's frame rate, size, rotation, duration, start time, where its first
    picture is and whether it has audio, from ``ffmpeg -i`` decoding one frame (no ffprobe
    needed). Raises VideoError if it is missing or has no video."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"movie not found: {path}")
    exe = ffmpeg_exe()
    # the header, and the time of the first picture as the showinfo filter sees it (relative
    # to the file's start, edit lists and stream delays applied)
    result = _run_to_end([exe, "-hide_banner", "-nostdin", "-i", ffmpeg_path(path), "-map",
                          "0:v:0", "-vf", "showinfo", "-frames:v", "1", "-f", "null", "-"])
    text = result.stderr
    if result.returncode < 0:
        raise VideoError(f"{exe} crashed (signal {-result.returncode}) reading {path}: try "
                         "another ffmpeg (DEEPDREAM_FFMPEG=/path/to/ffmpeg)")
    video = re.search(r"Stream #\d+:\d+.*?: Video: (.*)", text)
    if not video:
        raise VideoError(_no_video(path, text))
    line = video.group(1)
    size = re.search(r"[ ,](\d{2,5})x(\d{2,5})[ ,\]]", line + " ")
    rate = re.search(r"([\d.]+k?) tbr", line) or re.search(r"([\d.]+k?) fps", line)
    if not size or not rate:
        raise VideoError(f"cannot tell the size and frame rate of {path} from: {line}")
    duration = re.search(r"Duration: ([^,]+), start: ([-\d.]+)", text)
    start = float(duration.group(2)) if duration else 0.0
    first_picture = re.search(r"Parsed_showinfo.*? pts_time:\s*([-\d.]+)", text)
    # Side data printed under the video stream, before the next stream
    after = text[video.end():]
    next_stream = re.search(r"Stream #", after)
    block = after[:next_stream.start()] if next_stream else after
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", block)
    rotation = float(rotation.group(1)) if rotation else 0.0
    width, height = int(size.group(1)), int(size.group(2))
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    video_start = start + max(0.0, float(first_picture.group(1))) if first_picture else start
    return MovieInfo(str(path.resolve()), parse_rate(rate.group(1)), width, height,
                     _seconds(duration.group(1)) if duration else None, start, video_start,
                     rotation, bool(re.search(r"Stream #\d+:\d+.*?: Audio:", text)))


def _no_video(path: Path, text: str) -> str:
    """Why ``path`` gave no video stream, in the user's words (ffmpeg's ``text`` read)."""
    if path.stat().st_size == 0:
        return f"{path} is empty (0 bytes): it is not a movie"
    if re.search(r"Stream #\d+:\d+.*?: Audio:", text):
        return f"{path} has no picture, only sound: give a movie with a video stream"
    lines = [re.sub(r"^\[[^\]]+ @ 0x[0-9a-f]+\] ", "", line) for line in text.splitlines()
             if line.strip()]
    about = [line.split(": ", 1)[1] for line in lines
             if line.startswith(ffmpeg_path(path) + ": ")]        # "/x/y.mp4: Invalid data ..."
    reason = re.sub(r"^Error opening input( files?)?: ", "",   # ffmpeg 7 on
                    (about or lines or ["no output"])[-1])
    return f"cannot read a movie from {path} ({reason})"


def run(stream, description: str, total_frames: int | None = None,
        progress: bool | Display = True) -> dict[str, str]:
    """Run an ffmpeg-python stream with our binary, telling of its frames as ``progress``
    says (``deepdream.progress``). Returns
    the last values of ffmpeg's progress report (frame, dup_frames, drop_frames, ...).
    Raises VideoError with ffmpeg's last lines if it fails, KeyboardInterrupt if it was
    stopped by Ctrl-C."""
    args = stream.global_args("-hide_banner", "-nostdin", "-progress", "pipe:1",
                              "-nostats").compile(cmd=ffmpeg_exe())
    log.debug("running %s", " ".join(args))
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   preexec_fn=dies_with_us())
        bar, shown = start_progress(progress, total_frames, description), 0
        report: dict[str, str] = {}
        try:
            for line in process.stdout:
                key, _, value = line.strip().partition("=")
                report[key] = value
                if key == "frame" and value.isdigit() and int(value) > shown:
                    bar.step(int(value) - shown)
                    shown = int(value)
            process.wait()
        finally:
            bar.close()
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0)
        text = errors.read()
    if _stopped_by_ctrl_c(process.returncode, text):
        raise KeyboardInterrupt
    if process.returncode != 0:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise VideoError(f"ffmpeg failed ({description}): {tail}")
    return report


def image_pattern(folder: str | Path, ext: str) -> str:
    """The ffmpeg image-sequence pattern of 00000001.EXT, ... in ``folder``, a '%' in the
    folder's own name escaped (ffmpeg reads '%%' as one '%')."""
    return ffmpeg_path(folder).replace("%", "%%") + f"/%08d.{ext}"


def extract_stream(movie: str | Path, pattern: str, fps: Fraction, first_time: float,
                   start: float | None = None, duration: float | None = None,
                   jpeg_qscale: int = 2):
    """The ffmpeg command that writes every frame of ``movie`` from ``start`` (seconds on its
    timeline; None: its first picture) as a constant-rate ``fps`` image sequence (frames
    duplicated or dropped where the source's rate varies), numbered from 1, rotation applied
    (ffmpeg's default autorotate). Frame 1 is the first picture at ``first_time`` or later
    (``first_frame_time``), and frame n is shown (n - 1) / fps after it.

    Written to give the same frames on every ffmpeg from 4.2 on: the picture's timestamps are
    made to start at 0 by a filter (not left to each version's rules for a stream that starts
    late), the start is cut by the trim filter after a fast seek to a few seconds before it
    (an input seek alone lands on the wrong frame in MPEG-TS files), and the rate is forced by
    -vsync before ffmpeg 5.1, by -fps_mode from then on."""
    seek = max(0.0, start - 10.0) if start is not None else 0.0   # fast, to a keyframe
    stream = ffmpeg.input(ffmpeg_path(movie), **({"ss": f"{seek:.6f}"} if seek > 0 else {})).video
    # a quarter of a frame early: the picture at first_time, not the one before it, whatever
    # the rounding of timestamps
    cut = first_time - 0.25 / float(fps) - seek
    if start is not None and cut > 0:
        stream = stream.filter("trim", start=f"{cut:.6f}")
    stream = stream.filter("setpts", "PTS-STARTPTS")
    options = {**frame_rate_mode("cfr"), "r": str(fps), "start_number": 1}
    if duration is not None:
        options["t"] = f"{duration:.6f}"
    if pattern.lower().endswith((".jpg", ".jpeg")):
        options["q:v"] = jpeg_qscale
    return stream.output(pattern, **options).overwrite_output()


def frame_rate_mode(mode: str) -> dict[str, str]:
    """The output option that sets how frames are timed: ``cfr`` (duplicated or dropped to a
    constant rate), ``passthrough`` (each frame once, as it comes: a frame ffmpeg cannot
    decode is missing from the output, where cfr filled the gap with its neighbour). It is
    -vsync before ffmpeg 5.1, -fps_mode from then on."""
    return {"fps_mode" if _at_least((5, 1)) else "vsync": mode}


def first_frame_time(info: MovieInfo, fps: Fraction, start: float | None) -> float:
    """Where on the movie's timeline frame 1 of an extraction from ``start`` at ``fps`` is:
    the first picture, or the first time on its frame grid at or after ``start``."""
    first = info.first_picture
    if start is None or start <= first:
        return first
    steps = math.ceil((start - first) * fps - 1e-6)
    return first + steps / float(fps)


def _frames_input(pattern: str, fps: Fraction, size: tuple[int, int] | None):
    """The frames of ``pattern`` (numbered from 1) at ``fps``, each scaled to ``size`` (frame
    1's) where given. The filters are not restarted when a frame of another size comes
    (-reinit_filter 0): the scale filter takes each frame as it is, where a restart lost the
    GIF palette's queued frames (6 frames in, 3 out)."""
    video = ffmpeg.input(pattern, framerate=str(fps), start_number=1,
                         **({"reinit_filter": 0} if size else {}))
    return video.filter("scale", size[0], size[1]) if size else video


def movie_stream(pattern: str, count: int, fps: Fraction, output: Path,
                 audio: str | None = None, audio_offset: float = 0.0, crf: int = 18,
                 codec: str = "libx264", size: tuple[int, int] | None = None):
    """The ffmpeg command that encodes the ``count`` frames of ``pattern`` (numbered from 1,
    each scaled to ``size``, each written once) at ``fps`` into ``output`` (H.264 yuv420p,
    +faststart), with ``audio``'s sound from ``audio_offset`` seconds on its timeline, cut
    to exactly count/fps. An odd ``size`` is cropped by one pixel to even, as yuv420p needs.

    The length is set by -t alone, which every ffmpeg from 4.2 on applies to each stream
    (as trim filters): with a frame limit (-frames:v) on an output with sound, Debian 12's
    ffmpeg 5.1 closed the sound too as soon as the picture had its frames, while sound was
    still queued (0.05 s of sound under 2 s of frames)."""
    video = _frames_input(pattern, fps, size)
    if size and (size[0] % 2 or size[1] % 2):
        video = video.filter("crop", size[0] - size[0] % 2, size[1] - size[1] % 2, 0, 0)
    streams = [video]
    if audio:
        streams.append(ffmpeg.input(ffmpeg_path(audio),
                                    ss=f"{max(0.0, audio_offset):.6f}").audio)
    options = {"t": f"{float(count / fps):.6f}", "vcodec": codec, "pix_fmt": "yuv420p",
               "movflags": "+faststart", **frame_rate_mode("passthrough")}
    if codec in ("libx264", "libx265"):
        options["crf"] = crf
    if audio:
        options["acodec"] = "aac"
    return ffmpeg.output(*streams, ffmpeg_path(output), **options).overwrite_output()


def gif_stream(pattern: str, count: int, fps: Fraction, output: Path,
               size: tuple[int, int] | None = None):
    """The ffmpeg command for an animated GIF of the ``count`` frames of ``pattern``
    (numbered from 1, each scaled to ``size``, each written once), with a palette generated
    from the frames."""
    split = _frames_input(pattern, fps, size).filter_multi_output("split")
    palette = split[0].filter("palettegen")
    return (ffmpeg.filter([split[1], palette], "paletteuse")
            .output(ffmpeg_path(output), **{"frames:v": count},
                    **frame_rate_mode("passthrough")).overwrite_output())


def written_length(path: str | Path) -> tuple[int, float | None]:
    """(pictures in the first video stream, the file's duration in seconds or None) of a
    movie we wrote, read back with our ffmpeg: its packets listed (framecrc of a stream copy,
    nothing decoded: quick; ffmpeg 7.0 counts no frames in a copy's progress report).
    Raises VideoError if ffmpeg cannot read it."""
    result = _run_to_end([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", ffmpeg_path(path),
                          "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"])
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-2:])
        raise VideoError(f"cannot read back the movie ffmpeg wrote ({tail})")
    packets = sum(1 for line in result.stdout.splitlines()
                  if line.strip() and not line.startswith("#"))
    duration = re.search(r"Duration: (\d+:\d+:[\d.]+)", result.stderr)
    return packets, _seconds(duration.group(1)) if duration else None


def try_command(stream) -> str | None:
    """Run a short ffmpeg-python command to its end, errors only: None if it succeeded, else
    ffmpeg's first error line. Raises KeyboardInterrupt if it was stopped by Ctrl-C."""
    args = stream.global_args("-hide_banner", "-nostdin", "-v", "error").compile(
        cmd=ffmpeg_exe())
    log.debug("running %s", " ".join(args))
    result = _run_to_end(args)
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
    return re.sub(r"^\[\w+ @ 0x[0-9a-f]+\] ", "", lines[0])
