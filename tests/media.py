"""Test clips made with real ffmpeg (lavfi test sources), and measurements of movies."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np


def ffmpeg(*args: str) -> str:
    """Run the test media maker (``maker_exe``), whichever ffmpeg the code under test uses."""
    result = subprocess.run([maker_exe(), "-hide_banner", "-nostdin", "-y", *args],
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
    result = subprocess.run([maker_exe(), "-hide_banner", "-i", str(path)],
                            capture_output=True, text=True)
    match = re.search(rf"Stream #.*?: {kind}: .*", result.stderr)
    return match.group(0) if match else ""


# -- clips whose picture and sound can be read back, to measure sync ----------------------

CODE_BITS = 8          # a frame's number, as 8 black or white blocks across the picture


def maker_exe() -> str:
    """The ffmpeg that makes and measures the test media (the newest: imageio-ffmpeg's),
    whichever ffmpeg the code under test runs."""
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def coded_frame(number: int, width: int = 128, height: int = 48) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    block = width // CODE_BITS
    for bit in range(CODE_BITS):
        if number >> bit & 1:
            image[:, bit * block:(bit + 1) * block] = 255
    return image


def frame_code(image: np.ndarray) -> int:
    """The number ``coded_frame`` wrote into a frame (after lossy encoding and scaling)."""
    image = np.asarray(image, dtype=np.float32)
    block = image.shape[1] / CODE_BITS
    number = 0
    for bit in range(CODE_BITS):
        x0, x1 = int(bit * block + block / 4), int((bit + 1) * block - block / 4)
        if image[:, x0:x1].mean() > 127:
            number |= 1 << bit
    return number


def beep_expression(beeps) -> str:
    """An aevalsrc expression: 1 kHz beeps of 40 ms starting at the times ``beeps``."""
    gates = "+".join(f"between(t,{b},{b + 0.04})" for b in beeps)
    return f"0.8*sin(2*PI*1000*t)*gt({gates},0)"


def make_beep_clip(path: Path, beeps, fps: int = 25, duration: float = 3.0,
                   video_delay: float = 0.0, start_offset: float | None = None) -> Path:
    """A clip whose frame i (from 0) shows the number i (``coded_frame``) and whose sound
    beeps at ``beeps`` seconds. ``video_delay``: the picture starts that much after the
    sound; ``start_offset``: the whole file starts at that time (MPEG-TS, as broadcast
    recordings do)."""
    count = int(round(duration * fps))
    raw = np.concatenate([coded_frame(i) for i in range(count)]).tobytes()
    args = [maker_exe(), "-hide_banner", "-nostdin", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x48", "-r", str(fps)]
    args += ["-i", "-", "-f", "lavfi", "-i",
             f"aevalsrc='{beep_expression(beeps)}':s=48000:d={duration + video_delay}",
             "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-c:a", "aac",
             "-b:a", "192k"]
    if video_delay:
        args += ["-vf", f"setpts=PTS+{video_delay}/TB"]
    if start_offset is not None:
        args += ["-output_ts_offset", str(start_offset), "-f", "mpegts"]
    result = subprocess.run(args + [str(path)], input=raw, capture_output=True)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return path


def beep_onsets(path: Path, threshold: float = 0.2) -> list[float]:
    """The times (seconds from the start of the movie's timeline) at which its sound goes
    from silence to a beep, decoded with the sound placed on the movie's timeline (a delayed
    start padded with silence)."""
    result = subprocess.run([maker_exe(), "-hide_banner", "-nostdin", "-i", str(path),
                             "-map", "0:a:0", "-af", "aresample=async=1:first_pts=0",
                             "-ac", "1", "-ar", "48000", "-f", "f32le", "-"],
                            capture_output=True)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    samples = np.abs(np.frombuffer(result.stdout, np.float32))
    loud = samples > threshold
    onsets, quiet_run = [], 0
    for i in np.flatnonzero(loud):
        if not onsets or i - quiet_run > 48000 * 0.1:
            onsets.append(i / 48000.0)
        quiet_run = i
    return onsets


def sound_duration(path: Path) -> float:
    """Seconds of decoded sound in a movie."""
    return stream_length(path, "a")[1]


def first_picture_time(path: Path) -> float:
    """Where a movie's first picture is on its timeline (as ``beep_onsets`` counts time)."""
    result = subprocess.run([maker_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map",
                             "0:v:0", "-vf", "showinfo", "-frames:v", "1", "-f", "null", "-"],
                            capture_output=True, text=True)
    return float(re.search(r"pts_time:\s*([-\d.]+)", result.stderr).group(1))


def pictures(path: Path, width: int, height: int) -> np.ndarray:
    """Every picture of a movie's first video stream, decoded and scaled to width x height:
    (N, height, width, 3) RGB uint8."""
    result = subprocess.run([maker_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map",
                             "0:v:0", "-s", f"{width}x{height}", "-f", "rawvideo",
                             "-pix_fmt", "rgb24", "-"], capture_output=True)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return np.frombuffer(result.stdout, np.uint8).reshape(-1, height, width, 3)


def picture_codes(path: Path, width: int = 128, height: int = 48) -> list[int]:
    """The numbers ``coded_frame`` wrote into each picture of a movie, in order."""
    return [frame_code(p) for p in pictures(path, width, height)]


def assert_in_sync(movie: Path, source: Path, fps: float) -> None:
    """Each beep of ``source`` within one frame of where it belongs in ``movie``: with the
    picture showing frame i of the source at time t, the beep at source frame position b is
    due at t + (b - i) / fps. And the sound is as long as the pictures."""
    codes = picture_codes(movie)
    assert codes == list(range(codes[0], codes[0] + len(codes))), "pictures out of order"
    start = first_picture_time(movie)
    source_start = first_picture_time(source)
    due = [start + ((beep - source_start) * fps - codes[0]) / fps
           for beep in beep_onsets(source)]
    length = len(codes) / fps
    due = [t for t in due if 0 <= t < length - 0.05]
    heard = beep_onsets(movie)
    assert len(due) >= 2 and len(heard) == len(due), (due, heard)
    for expected, onset in zip(due, heard):
        assert abs(onset - expected) <= 1 / fps, (due, heard)
    assert abs(sound_duration(movie) - length) <= 1 / fps
