"""Stage 1: a movie split into numbered frames and the ``movie.json`` that stages 2 and 3
read, which records which movie it was (``movie_identity``, checked by ``same_movie``)."""
from __future__ import annotations

import hashlib
import logging
import math
from fractions import Fraction
from pathlib import Path

from PIL import Image

from ..errors import FramesError, plural
from . import frames, ours, video

log = logging.getLogger(__name__)

_HEAD_BYTES = 1 << 20       # the part of a movie whose sha1 identifies it, with its size


def movie_identity(movie: str | Path) -> dict:
    """What ``movie.json`` records of the movie its frames come from, under "identity": its
    resolved path, size, modification time (ns) and the sha1 of its first MiB: cheap to
    compare, and changed by any copy, re-encode or edit of the file. Raises OSError if it
    cannot be read."""
    path = Path(movie).resolve()
    stat = path.stat()
    with open(path, "rb") as f:
        head = hashlib.sha1(f.read(_HEAD_BYTES)).hexdigest()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha1_first_mib": head}


def same_movie(meta: dict | None, movie: str | Path) -> bool:
    """True only if ``meta`` is a movie.json whose identity is ``movie`` as it is now. False
    for a movie.json of an earlier version (it recorded no identity), another movie, or a
    movie that is gone or was changed since."""
    if not meta or not isinstance(meta.get("identity"), dict):
        return False
    try:
        return movie_identity(movie) == meta["identity"]
    except OSError:
        return False


def extract_frames(movie: str | Path, folder: str | Path, fmt: str = "png",
                   start: float | None = None, end: float | None = None,
                   fps: str | Fraction | None = None, jpeg_qscale: int = 2,
                   overwrite: bool = False, progress: bool = True,
                   info: video.MovieInfo | None = None) -> dict:
    """Write every frame of ``movie`` into ``folder`` as 00000001.png ... (or .jpg) at the
    source's frame rate (or ``fps``), from ``start`` to ``end`` seconds, and a ``movie.json``
    that stages 2 and 3 read. Returns that metadata.

    Every value is checked before anything is written: a refusal leaves no folder behind.
    Never deletes what it did not write: a folder that already holds the frames of an
    extraction of ours is refused unless ``overwrite``, which then replaces those frames
    (and only those: numbered pictures of anyone else's, a movie.json or frames.tsv of the
    user's, are refused in one line). ``info``: the movie's ``video.probe``, where the
    caller has it. Raises VideoError or FramesError.
    """
    fmt = {"jpeg": "jpg"}.get(fmt.lower(), fmt.lower())
    if fmt not in ("png", "jpg"):
        raise FramesError(f"frame format must be png or jpg, not '{fmt}'")
    rate = video.parse_rate(str(fps), "--fps") if fps is not None else None
    if any(t is not None and not math.isfinite(t) for t in (start, end)) or \
            (start is not None and start < 0) or (end is not None and end <= 0):
        raise FramesError("--start and --end times are seconds from the movie's start: give "
                          "a --start of 0 or more and an --end after 0")
    if start is not None and end is not None and end <= start:
        raise FramesError(f"--end time {end} is not after --start time {start}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FramesError(f"{folder} is a file, not a folder: give the folder to write the "
                          "frames into")
    info = info or video.probe(movie)
    rate = rate or info.fps
    first_time = video.first_frame_time(info, rate, start)
    if info.duration and first_time >= info.duration:
        raise FramesError(f"{movie} is only {info.duration:g} s long: no frame from "
                          f"{start} s on")
    duration = None if end is None else end - first_time
    if duration is not None and duration <= 0:
        raise FramesError(f"no frame between {start} s and {end} s")
    identity, run = movie_identity(movie), ours.new_run_id()
    ledger = frames.Ledger(folder, "extracted")
    # one extraction at a time into a folder: what is ours there is read under its lock
    with frames.folder_lock(folder), ours.scratch(folder) as scratch:
        existing = _frames_of_ours(folder, overwrite)
        written, report = _extract(movie, scratch, fmt, info, rate, first_time, start,
                                   duration, jpeg_qscale, progress)
        for path in existing:            # the frames an extraction of ours wrote here
            path.unlink()
        (folder / frames.MOVIE_INFO).unlink(missing_ok=True)   # ours, or none: checked
        ledger.path.unlink(missing_ok=True)
        ledger.start(run)
        for path in written:
            ledger.record(path.name, path)
            path.replace(folder / path.name)
    width, height = Image.open(folder / frames.frame_name(1, fmt)).size
    dup, drop = int(report.get("dup_frames", 0) or 0), int(report.get("drop_frames", 0) or 0)
    if dup or drop:
        log.warning("the source's frame rate varies: %d frames duplicated and %d dropped to "
                    "make a constant %s fps sequence", dup, drop, rate)
    meta = {"source": info.path, "identity": identity, "fps": str(rate),
            "frame_count": len(written), "width": width, "height": height,
            "duration": info.duration, "start_time": info.start_time,
            "video_start": info.video_start, "offset": start or 0.0,
            "first_frame_time": first_time, "rotation": info.rotation,
            "has_audio": info.has_audio, "format": fmt, "first_frame": 1,
            "resampled": {"duplicated": dup, "dropped": drop}}
    meta = ours.write_json(folder / frames.MOVIE_INFO, "movie", meta, run)
    log.info("%d frames of %dx%d at %s fps written to %s", len(written), width, height, rate,
             folder)
    return meta


def _frames_of_ours(folder: Path, overwrite: bool) -> list[Path]:
    """The numbered frames in ``folder`` that an extraction of ours wrote (its ledger vouches
    for them), which ``overwrite`` replaces. Raises FramesError, before anything is written,
    for a folder that holds frames without ``overwrite``, numbered pictures that no
    extraction of ours wrote, or a movie.json or frames.tsv of the user's."""
    if not folder.is_dir():
        return []
    existing = frames.every_frame(folder)
    ledger = frames.Ledger(folder, "extracted")
    try:
        ours.read_json(folder / frames.MOVIE_INFO, "movie")
        ledger.run()
    except ours.NotOursError as e:
        raise e.refusal("give another folder, or move it away") from None
    mine = ledger.only_ours(existing, "extraction of ours",
                            "give another folder, or move them away")
    if mine and not overwrite:
        raise FramesError(f"{folder} already holds {plural(len(mine), 'frame')} of an earlier "
                          "extraction; use --overwrite to replace them (nothing else in the "
                          "folder is touched), or choose another folder")
    return mine


def expected_frames(duration: float, rate: Fraction) -> int:
    """How many frames at ``rate`` fall in ``duration`` seconds from the first: the frames
    at 0, 1/rate, ... before its end."""
    return max(1, math.ceil(duration * rate - 1e-6))


def _extract(movie, scratch: Path, fmt: str, info: video.MovieInfo, rate: Fraction,
             first_time: float, start: float | None, duration: float | None,
             jpeg_qscale: int, progress: bool) -> tuple[list[Path], dict[str, str]]:
    """Run ffmpeg's extraction into a folder inside our ``scratch`` folder (removed with it).
    Returns the frames written there, in order, and ffmpeg's report. Raises VideoError or
    FramesError."""
    staging = scratch / "extracting"
    staging.mkdir()
    expected = None
    if info.duration:
        end = min(info.duration, first_time + duration) if duration else info.duration
        expected = expected_frames(end - first_time, rate)
    report = video.run(video.extract_stream(movie, video.image_pattern(staging, fmt), rate,
                                            first_time, start, duration, jpeg_qscale),
                       "extracting frames", expected, progress)
    written = list(frames.list_frames(staging, fmt).values())
    if not written:
        raise FramesError(f"ffmpeg wrote no frames from {movie} (is the start time past its "
                          "end?)")
    return written, report
