"""All ffmpeg work: find the binary, probe a movie, split it into frames, put frames and audio
back together. Commands are built with ffmpeg-python; probing parses ``ffmpeg -i`` so that
no ffprobe is needed (imageio-ffmpeg's bundled binary has none)."""
from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import ffmpeg

from .errors import VideoError

log = logging.getLogger(__name__)

# Rates that ffmpeg prints rounded; the rationals they stand for.
_NTSC_RATES = {"11.99": Fraction(12000, 1001), "14.99": Fraction(15000, 1001),
               "23.98": Fraction(24000, 1001), "29.97": Fraction(30000, 1001),
               "47.95": Fraction(48000, 1001), "59.94": Fraction(60000, 1001),
               "119.88": Fraction(120000, 1001)}


def ffmpeg_exe() -> str:
    """The ffmpeg binary: the system's on PATH, else the one imageio-ffmpeg ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise VideoError("ffmpeg not found: install it (apt install ffmpeg) or "
                         "pip install imageio-ffmpeg") from None


@dataclasses.dataclass
class MovieInfo:
    """What stage 1 learns of a movie; the display size has rotation applied."""
    path: str
    fps: Fraction
    width: int
    height: int
    duration: float | None
    start_time: float
    video_start: float
    rotation: float
    has_audio: bool


def parse_rate(text: str) -> Fraction:
    """A frame rate as ffmpeg prints it ('25', '29.97', '30k', '24000/1001') as a rational."""
    text = text.strip()
    if text.endswith("k"):
        return Fraction(text[:-1]) * 1000
    if text in _NTSC_RATES:
        return _NTSC_RATES[text]
    return Fraction(text).limit_denominator(1001)


def _seconds(text: str) -> float | None:
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not match:
        return None
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def probe(path: str | Path) -> MovieInfo:
    """Read a movie's frame rate, size, rotation, duration, start time and whether it has
    audio from ``ffmpeg -i``. Raises VideoError if it is missing or has no video."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"movie not found: {path}")
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True, text=True, errors="replace")
    text = result.stderr
    video = re.search(r"Stream #\d+:\d+.*?: Video: (.*)", text)
    if not video:
        last = text.strip().splitlines()[-2:] if text.strip() else ["no output"]
        raise VideoError(f"cannot read a video stream from {path}: {' '.join(last)}")
    line = video.group(1)
    size = re.search(r"[ ,](\d{2,5})x(\d{2,5})[ ,\]]", line + " ")
    rate = re.search(r"([\d.]+k?) tbr", line) or re.search(r"([\d.]+k?) fps", line)
    if not size or not rate:
        raise VideoError(f"cannot tell the size and frame rate of {path} from: {line}")
    duration = re.search(r"Duration: ([^,]+), start: ([-\d.]+)", text)
    start = float(duration.group(2)) if duration else 0.0
    stream_start = re.search(r"start ([-\d.]+)", line)
    # Side data printed under the video stream, before the next stream
    after = text[video.end():]
    next_stream = re.search(r"Stream #", after)
    block = after[:next_stream.start()] if next_stream else after
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", block)
    rotation = float(rotation.group(1)) if rotation else 0.0
    width, height = int(size.group(1)), int(size.group(2))
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    return MovieInfo(str(path.resolve()), parse_rate(rate.group(1)), width, height,
                     _seconds(duration.group(1)) if duration else None, start,
                     float(stream_start.group(1)) if stream_start else start, rotation,
                     bool(re.search(r"Stream #\d+:\d+.*?: Audio:", text)))


def run(stream, description: str, total_frames: int | None = None,
        progress: bool = True) -> dict[str, str]:
    """Run an ffmpeg-python stream with our binary, showing a frame progress bar. Returns
    the last values of ffmpeg's progress report (frame, dup_frames, drop_frames, ...);
    raises VideoError with ffmpeg's last lines if it fails."""
    from tqdm import tqdm

    args = stream.global_args("-hide_banner", "-nostdin", "-progress", "pipe:1",
                              "-nostats").compile(cmd=ffmpeg_exe())
    log.debug("running %s", " ".join(args))
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True)
        bar = tqdm(total=total_frames, desc=description, unit="frame", disable=not progress,
                   leave=False)
        report: dict[str, str] = {}
        try:
            for line in process.stdout:
                key, _, value = line.strip().partition("=")
                report[key] = value
                if key == "frame" and value.isdigit():
                    bar.update(int(value) - bar.n)
            process.wait()
        finally:
            bar.close()
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0)
        text = errors.read()
    if process.returncode != 0:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise VideoError(f"ffmpeg failed ({description}): {tail}")
    return report


def extract_stream(movie: str | Path, pattern: str | Path, fps: Fraction,
                   start: float | None = None, duration: float | None = None,
                   jpeg_qscale: int = 2):
    """The ffmpeg command that writes every frame of ``movie`` as a constant-rate ``fps``
    image sequence (frames duplicated or dropped where the source's rate varies), numbered
    from 1, rotation applied (ffmpeg's default autorotate)."""
    source = ffmpeg.input(str(movie), **({"ss": start} if start else {}))
    options = {"fps_mode": "cfr", "r": str(fps), "start_number": 1, "an": None}
    if duration is not None:
        options["t"] = duration
    if str(pattern).lower().endswith((".jpg", ".jpeg")):
        options["q:v"] = jpeg_qscale
    return source.video.output(str(pattern), **options).overwrite_output()


def movie_stream(pattern: str | Path, first: int, count: int, fps: Fraction, output: Path,
                 audio: str | None = None, audio_offset: float = 0.0, crf: int = 18,
                 codec: str = "libx264", size: tuple[int, int] | None = None):
    """The ffmpeg command that encodes ``count`` frames from number ``first`` at ``fps`` into
    ``output`` (H.264 yuv420p, +faststart), with ``audio``'s sound from ``audio_offset``
    seconds cut to exactly count/fps. An odd ``size`` is cropped by one pixel to even, as
    yuv420p needs."""
    video = ffmpeg.input(str(pattern), framerate=str(fps), start_number=first)
    if size and (size[0] % 2 or size[1] % 2):
        video = video.filter("crop", size[0] - size[0] % 2, size[1] - size[1] % 2, 0, 0)
    streams = [video]
    if audio:
        streams.append(ffmpeg.input(str(audio), ss=max(0.0, audio_offset)).audio)
    options = {"frames:v": count, "t": f"{float(count / fps):.6f}", "vcodec": codec,
               "pix_fmt": "yuv420p", "movflags": "+faststart"}
    if codec in ("libx264", "libx265"):
        options["crf"] = crf
    if audio:
        options["acodec"] = "aac"
    return ffmpeg.output(*streams, str(output), **options).overwrite_output()


def gif_stream(pattern: str | Path, first: int, count: int, fps: Fraction, output: Path):
    """The ffmpeg command for an animated GIF with a palette generated from the frames."""
    video = ffmpeg.input(str(pattern), framerate=str(fps), start_number=first)
    split = video.filter_multi_output("split")
    palette = split[0].filter("palettegen")
    return (ffmpeg.filter([split[1], palette], "paletteuse")
            .output(str(output), **{"frames:v": count}).overwrite_output())
