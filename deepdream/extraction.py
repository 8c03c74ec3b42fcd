"""Stage 1: a movie split into numbered frames and the ``movie.json`` that stages 2 and 3
read."""
from __future__ import annotations

import logging
import shutil
from fractions import Fraction
from pathlib import Path

from PIL import Image

from . import frames, video
from .errors import FramesError

log = logging.getLogger(__name__)


def extract_frames(movie: str | Path, folder: str | Path, fmt: str = "png",
                   start: float | None = None, end: float | None = None,
                   fps: str | Fraction | None = None, jpeg_qscale: int = 2,
                   overwrite: bool = False, progress: bool = True) -> dict:
    """Write every frame of ``movie`` into ``folder`` as 00000001.png ... (or .jpg) at the
    source's frame rate (or ``fps``), from ``start`` to ``end`` seconds, and a ``movie.json``
    that stages 2 and 3 read. Returns that metadata.

    Never deletes what it did not write: a folder that already holds numbered frames is
    refused unless ``overwrite``, which then replaces only those frames.
    Raises VideoError or FramesError.
    """
    fmt = {"jpeg": "jpg"}.get(fmt.lower(), fmt.lower())
    if fmt not in ("png", "jpg"):
        raise FramesError(f"frame format must be png or jpg, not '{fmt}'")
    info = video.probe(movie)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    existing = frames.every_frame(folder)
    if existing and not overwrite:
        raise FramesError(f"{folder} already holds {len(existing)} frames; use --overwrite to "
                          "replace them (nothing else in the folder is touched), or choose "
                          "another folder")
    rate = video.parse_rate(str(fps)) if fps else info.fps
    if start is not None and end is not None and end <= start:
        raise FramesError(f"end time {end} is not after start time {start}")
    if (start is not None and start < 0) or (end is not None and end <= 0):
        raise FramesError("start and end times are seconds from the movie's start: give "
                          "numbers of 0 or more")
    first_time = video.first_frame_time(info, rate, start)
    duration = None if end is None else end - first_time
    if duration is not None and duration <= 0:
        raise FramesError(f"no frame between {start} s and {end} s")
    staging = folder / ".extracting"
    shutil.rmtree(staging, ignore_errors=True)   # left by an interrupted run of ours
    staging.mkdir()
    expected = None
    if info.duration:
        expected = int((min(info.duration, end or info.duration) - first_time) * rate) + 1
    report = video.run(video.extract_stream(movie, video.image_pattern(staging, fmt), rate,
                                            first_time, start, duration, jpeg_qscale),
                       "extracting frames", expected, progress)
    written = frames.list_frames(staging, fmt)
    if not written:
        shutil.rmtree(staging, ignore_errors=True)
        raise FramesError(f"ffmpeg wrote no frames from {movie} (is the start time past its "
                          "end?)")
    for path in existing:
        path.unlink()
    for path in written.values():
        path.replace(folder / path.name)
    staging.rmdir()
    width, height = Image.open(folder / frames.frame_name(1, fmt)).size
    dup, drop = int(report.get("dup_frames", 0) or 0), int(report.get("drop_frames", 0) or 0)
    if dup or drop:
        log.warning("the source's frame rate varies: %d frames duplicated and %d dropped to "
                    "make a constant %s fps sequence", dup, drop, rate)
    meta = {"source": info.path, "fps": str(rate), "frame_count": len(written),
            "width": width, "height": height, "duration": info.duration,
            "start_time": info.start_time, "video_start": info.video_start,
            "offset": start or 0.0, "first_frame_time": first_time,
            "rotation": info.rotation, "has_audio": info.has_audio,
            "format": fmt, "first_frame": 1,
            "resampled": {"duplicated": dup, "dropped": drop}}
    frames.write_json(folder / frames.MOVIE_INFO, meta)
    log.info("%d frames of %dx%d at %s fps written to %s", len(written), width, height, rate,
             folder)
    return meta
