"""Test clips made with real ffmpeg (lavfi test sources), and measurements of movies."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from deepdream.video import ffmpeg_exe


def ffmpeg(*args: str) -> str:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def make_clip(path: Path, size="161x121", rate="30000/1001", duration=0.5, audio=True,
              rotation: int | None = None, ts_offset: float | None = None) -> Path:
    """A testsrc clip (odd sizes allowed: yuv444p) with an optional 440 Hz sine track twice
    as long as the picture, so that cutting the sound to length is visible."""
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={duration}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={duration * 2}"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv444p"] + (["-c:a", "aac"] if audio else [])
    if ts_offset is None and rotation is None:
        ffmpeg(*args, str(path))
        return path
    plain = path.with_name("plain_" + path.name.rsplit(".", 1)[0] + ".mp4")
    ffmpeg(*args, str(plain))
    if rotation is not None:
        ffmpeg("-display_rotation:v:0", str(rotation), "-i", str(plain), "-c", "copy",
               str(path))
    else:
        ffmpeg("-i", str(plain), "-c", "copy", "-output_ts_offset", str(ts_offset), "-f",
               "mpegts", str(path))
    return path


def make_vfr_clip(path: Path) -> Path:
    """A variable-frame-rate clip: 10 frames 1/25 s apart, then 10 frames 1/10 s apart."""
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.8",
           "-vf", "setpts='if(lt(N,10),N/25/TB,(10/25+(N-10)/10)/TB)'", "-fps_mode", "vfr",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


def stream_length(path: Path, stream: str) -> tuple[int, float]:
    """(frames or audio packets, seconds) of a movie's video ('v') or audio ('a') stream,
    counted by decoding it."""
    text = ffmpeg("-i", str(path), "-map", f"0:{stream}:0", "-f", "null", "-")
    frames = re.findall(r"frame=\s*(\d+)", text)
    times = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", text)
    h, m, s = times[-1]
    return (int(frames[-1]) if frames else 0), int(h) * 3600 + int(m) * 60 + float(s)


def stream_line(path: Path, kind: str) -> str:
    """The 'Stream ... Video:' or '... Audio:' line ffmpeg prints for a movie ('' if none)."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                            capture_output=True, text=True)
    match = re.search(rf"Stream #.*?: {kind}: .*", result.stderr)
    return match.group(0) if match else ""
