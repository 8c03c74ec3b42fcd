"""Stage 3: numbered frames and the original's sound, in sync and cut to length, back into a
movie (or an animated GIF)."""
from __future__ import annotations

import logging
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

from PIL import Image

from . import frames, video
from .errors import FramesError

log = logging.getLogger(__name__)


def _link(target: Path, link: Path) -> None:
    """``link`` pointing at ``target`` (a copy where the filesystem has no links)."""
    try:
        link.symlink_to(target.resolve())
    except OSError:
        shutil.copyfile(target, link)


def _movie_info_for(frames_dir: Path) -> dict | None:
    """Stage 1's movie.json, found in the frame folder or through stage 2's params.json."""
    info = frames.read_json(frames_dir / frames.MOVIE_INFO)
    if info is None:
        params = frames.read_json(frames_dir / frames.PARAMS)
        if params and params.get("input"):
            info = frames.read_json(Path(params["input"]) / frames.MOVIE_INFO)
    return info


def make_movie(frames_dir: str | Path, output: str | Path | None = None,
               movie: str | Path | None = None, fps: str | None = None,
               image_type: str | None = None, gif: bool = False, crf: int = 18,
               codec: str = "libx264", progress: bool = True) -> Path:
    """Encode the numbered frames of ``frames_dir`` into a movie with the original's sound
    cut to the frames' length (or an animated GIF). The frame rate is ``fps``, else stage
    1's (movie.json), else ``movie``'s, else 25 with a warning; the sound is ``movie``'s,
    else that of the movie stage 1 split, from the time of the first frame. Frames numbered
    with any number of digits are taken in numeric order. Returns the path written
    (default ``<frames_dir name>_done.mp4`` in the current folder).
    Raises FramesError or VideoError.
    """
    frames_dir = Path(frames_dir)
    available = frames.list_frames(frames_dir, image_type)
    if not available:
        raise FramesError(f"no numbered frames (00000001.png, ...) in {frames_dir}")
    video.ffmpeg_exe()                  # which ffmpeg, and whether it will do, before anything
    numbers = list(available)
    first = numbers[0]
    count = next((i for i, n in enumerate(numbers) if n != first + i), len(numbers))
    if count < len(numbers):
        log.warning("frame %d is missing: the movie ends at frame %d, %d later frames are "
                    "left out", first + count, first + count - 1, len(numbers) - count)
    ext = available[first].suffix.lstrip(".")

    info = _movie_info_for(frames_dir)
    probed = video.probe(movie) if movie else None
    if fps:                                  # the one order: --fps, movie.json, the movie
        rate = video.parse_rate(str(fps))
    elif info:
        rate = Fraction(info["fps"])
    elif probed:
        rate = probed.fps
    else:
        rate = Fraction(25)
        log.warning("no frame rate known (no movie.json from 1_movie2frames.py and no "
                    "original movie given): using 25 fps; set it with --fps")
    audio = None
    if probed is not None:
        audio = probed.path if probed.has_audio else None
    elif info and info.get("has_audio") and Path(info["source"]).is_file():
        audio = info["source"]
    elif info and info.get("has_audio"):
        log.warning("the original movie %s is gone: the movie will be silent", info["source"])
    # where frame 1 of the extraction is on the original's timeline: stage 1's metadata
    # knows (also when the movie is named: it may have been cut with --start), else the
    # named movie's first picture
    if info and "first_frame_time" in info:
        offset = info["first_frame_time"]
    elif info:   # a movie.json of an earlier version
        offset = info.get("offset", 0.0) + info["video_start"] - info["start_time"]
    elif probed is not None:
        offset = probed.first_picture
    else:
        offset = 0.0
    offset += (first - 1) / float(rate)

    suffix = ".gif" if gif else ".mp4"
    output = Path(output) if output else Path.cwd() / f"{frames_dir.resolve().name}_done{suffix}"
    output.parent.mkdir(parents=True, exist_ok=True)
    width, height = Image.open(available[first]).size
    if not gif and (width % 2 or height % 2):
        log.info("frames are %dx%d: cropped to %dx%d (H.264 yuv420p needs even sizes)",
                 width, height, width - width % 2, height - height % 2)
    partial = output.with_name(f".{output.stem}.part{output.suffix}")
    with tempfile.TemporaryDirectory(prefix="deepdream-frames-") as links:
        # the frames as 00000001.ext, ... in a folder of ours: names with any number of
        # digits, and folders whose names hold '%' or spaces, are all the same to ffmpeg
        for i, number in enumerate(numbers[:count], 1):
            _link(available[number], Path(links) / frames.frame_name(i, ext))
        pattern = video.image_pattern(links, ext)
        if gif:
            stream = video.gif_stream(pattern, count, rate, partial)
        else:
            stream = video.movie_stream(pattern, count, rate, partial, audio, offset, crf,
                                        codec, (width, height))
        try:
            video.run(stream, "encoding movie", count, progress)
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
    log.info("%d frames at %s fps%s written to %s", count, rate,
             " with sound" if audio and not gif else "", output)
    return output
