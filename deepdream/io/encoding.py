"""Stage 3: numbered frames and the original's sound, in sync and cut to length, back into a
movie (or an animated GIF): every frame checked before, the movie read back after, and only
a whole movie of every frame put in place."""
from __future__ import annotations

import logging
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

from PIL import Image

from ..errors import FramesError, VideoError, first_line
from . import frames, ours, video
from .extraction import same_movie

log = logging.getLogger(__name__)

CRF_RANGE = range(0, 52)        # libx264's and libx265's for 8-bit video
DEFAULT_CRF = 18                # visually lossless for most footage


def _link(target: Path, link: Path) -> None:
    """``link`` pointing at ``target`` (a copy where the filesystem has no links)."""
    try:
        link.symlink_to(target.resolve())
    except OSError:
        shutil.copyfile(target, link)


def _movie_info_for(frames_dir: Path) -> dict | None:
    """Stage 1's movie.json, found in the frame folder or through stage 2's params.json: a
    file of ours only (one of the user's, or of an earlier version without our mark, is not
    used, with a warning)."""
    try:
        info = ours.read_json(frames_dir / frames.MOVIE_INFO, "movie")
        if info is None:
            params = ours.read_json(frames_dir / frames.PARAMS, "params")
            if params and params.get("input"):
                info = ours.read_json(Path(params["input"]) / frames.MOVIE_INFO, "movie")
    except ours.NotOursError as e:
        log.warning("%s was not written by this version of deepdream (an earlier version's, "
                    "or not ours): its frame rate and sound are not used, and the movie will "
                    "be silent unless you name the original movie after the frame folder",
                    e.path)
        return None
    return info


def make_movie(frames_dir: str | Path, output: str | Path | None = None,
               movie: str | Path | None = None, fps: str | None = None,
               image_type: str | None = None, gif: bool = False, crf: int = DEFAULT_CRF,
               codec: str = "libx264", progress: bool = True,
               overwrite: bool = False, checked: bool = False) -> Path:
    """Encode the numbered frames of ``frames_dir`` into a movie with the original's sound
    cut to the frames' length (or an animated GIF: ``gif``, or an output named .gif). The
    frame rate is ``fps``, else stage 1's (movie.json), else ``movie``'s, else 25 with a
    warning; the sound is ``movie``'s, else that of the movie stage 1 split if it is still
    that movie, from the time of the first frame. Frames numbered with any number of digits
    are taken in numeric order, each scaled to frame 1's size. Returns the path written
    (default ``<frames_dir name>_done.mp4`` in the current folder).

    Every setting, the output's name and every frame are checked before anything is written
    (a refusal writes nothing); an existing output is replaced only with ``overwrite``; the
    movie is written under a name of this process, read back, and put in place only if it
    holds every frame. ``checked``: the caller made ``check_output``'s trial of the output
    already (it is not made again).
    Raises FramesError or VideoError.
    """
    frames_dir = Path(frames_dir)
    rate = video.parse_rate(str(fps), "--fps") if fps is not None else None
    _check_crf(crf)
    output, gif = _output_for(output, frames_dir, gif)
    video.ffmpeg_exe()                  # which ffmpeg, and whether it will do, before anything
    available = _numbered_frames(frames_dir, image_type)
    numbers = list(available)
    first = numbers[0]
    count = next((i for i, n in enumerate(numbers) if n != first + i), len(numbers))
    if count < len(numbers):
        log.warning("frame %d is missing: the movie ends at frame %d, %d later frames are "
                    "left out", first + count, first + count - 1, len(numbers) - count)
    used = [available[n] for n in numbers[:count]]
    width, height = _check_whole_frames(used)
    info = _movie_info_for(frames_dir)
    _refuse_own_inputs(output, [movie, info and info.get("source")], available.values())
    refuse_existing(output, overwrite)

    probed = video.probe(movie) if movie else None
    if rate is None:                         # the one order: --fps, movie.json, the movie
        rate = Fraction(info["fps"]) if info else probed.fps if probed else None
    if rate is None:
        rate = Fraction(25)
        log.warning("no frame rate known (no movie.json from 1_movie2frames.py and no "
                    "original movie given): using 25 fps; set it with --fps")
    audio = None if gif else _sound(info, probed)
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

    ext = used[0].suffix.lstrip(".")
    with ours.scratch(tempfile.gettempdir()) as links:
        # the frames as 00000001.ext, ... in a folder of ours: names with any number of
        # digits, and folders whose names hold '%' or spaces, are all the same to ffmpeg
        for i, path in enumerate(used, 1):
            _link(path, links / frames.frame_name(i, ext))
        pattern = video.image_pattern(links, ext)

        def command(frame_count: int, target: Path):
            if gif:
                return video.gif_stream(pattern, frame_count, rate, target, (width, height))
            return video.movie_stream(pattern, frame_count, rate, target, audio, offset,
                                      crf, codec, (width, height))

        if not checked:
            _try_output(command(1, links / f"first-frame{output.suffix}"), output, codec)
        if not gif and (width % 2 or height % 2):
            log.info("frames are %dx%d: cropped to %dx%d (H.264 yuv420p needs even sizes)",
                     width, height, width - width % 2, height - height % 2)
        with frames.new_folder(output.parent):
            _encode(command, count, rate, output, gif, progress, overwrite)
    log.info("%d frames at %s fps%s written to %s", count, rate,
             " with sound" if audio else "", output)
    return output


def check_output(output: str | Path, crf: int = DEFAULT_CRF, codec: str = "libx264",
                 overwrite: bool = False, audio: str | Path | None = None) -> None:
    """Refuse, in one line and before any frame is extracted or dreamed, a movie that stage
    3 could not write at the end: a folder, a name without an extension, a file of the
    user's (unless ``overwrite``), a folder we cannot write into, a container or codec this
    ffmpeg cannot write (tried on one black frame, with ``audio``'s sound where given, in a
    scratch folder of ours in the output's own folder), a --crf out of range. Raises
    VideoError or FramesError."""
    _check_crf(crf)
    output, gif = _output_for(output, Path.cwd(), False)
    refuse_existing(output, overwrite)
    with ours.scratch(output.parent) as folder:      # the output's own folder
        import numpy as np
        frames.write_frame(folder / frames.frame_name(1, "png"), np.zeros((64, 64, 3)))
        pattern, trial = video.image_pattern(folder, "png"), folder / f"trial{output.suffix}"
        stream = video.gif_stream(pattern, 1, Fraction(25), trial, (64, 64)) if gif else \
            video.movie_stream(pattern, 1, Fraction(25), trial, audio, 0.0, crf, codec,
                               (64, 64))
        _try_output(stream, output, codec)


def _check_crf(crf: int) -> None:
    if crf not in CRF_RANGE:
        raise VideoError(f"the quality --crf must be from 0 (lossless) to 51, not {crf}")


def _output_for(output: str | Path | None, frames_dir: Path, gif: bool) -> tuple[Path, bool]:
    """The movie to write (default ``<frames_dir name>_done.mp4``, or .gif, in the current
    folder) and whether it is a GIF (``gif``, or an output named .gif). Raises VideoError for
    a folder, a name without an extension, or --gif with another extension."""
    if output is None:
        name = f"{frames_dir.resolve().name}_done{'.gif' if gif else '.mp4'}"
        return Path.cwd() / name, gif
    output = Path(output)
    if output.is_dir():
        raise VideoError(f"the output {output} is a folder: give the movie's file name, e.g. "
                         f"{output / 'dream.mp4'}")
    if not output.suffix:
        raise VideoError(f"the output {output} has no extension, which tells ffmpeg what kind "
                         f"of movie to write: name it {output.name}.mp4 (or .mkv, .mov, .gif)")
    if output.suffix.lower() == ".gif":
        return output, True
    if gif:
        raise VideoError(f"--gif writes a GIF, not {output.suffix}: name the output "
                         f"{output.stem}.gif, or leave --gif out")
    return output, False


def refuse_existing(output: Path, overwrite: bool) -> None:
    """Raise VideoError if ``output`` cannot be written (``ours.check_new_file``): a movie of
    the user's is never replaced unasked."""
    try:
        ours.check_new_file(output, "-o", overwrite, "movie")
    except FramesError as e:
        raise VideoError(str(e)) from None


def _numbered_frames(frames_dir: Path, image_type: str | None) -> dict[int, Path]:
    """The frames to encode ({number: path}, in order), of ``image_type`` if given. Raises
    FramesError if there are none, or several types and ``image_type`` does not choose."""
    if image_type is None:
        types = sorted({p.suffix.lstrip(".").lower() for p in frames.every_frame(frames_dir)})
        if len(types) > 1:
            raise FramesError(f"{frames_dir} holds frames of several types ({', '.join(types)})"
                              ": name the one to encode, png or jpg, after the folder")
    available = frames.list_frames(frames_dir, image_type)
    if not available:
        raise FramesError(f"no numbered frames (00000001.png, ...) in {frames_dir}")
    return available


def _refuse_own_inputs(output: Path, movies, frame_paths) -> None:
    """Raise VideoError if ``output`` (links resolved) is one of ``movies`` (None skipped) or
    FramesError if it is one of the frames: the movie is never written over its inputs."""
    target = output.resolve()
    for movie in movies:
        if movie and Path(movie).resolve() == target:
            raise VideoError(f"the output {output} is the original movie {movie}: write the "
                             "new movie under another name")
    for path in frame_paths:
        if path.resolve() == target:
            raise FramesError(f"the output {output} is the frame {path}: write the movie "
                              "under another name")


def _sound(info: dict | None, probed: video.MovieInfo | None) -> str | None:
    """The movie whose sound goes in: the movie named (``probed``), else stage 1's source if
    it is still the movie the frames came from (movie.json's identity). A source that is gone
    or changed gives a silent movie with a warning rather than another movie's sound: the
    frames are the user's hours of work, and the warning says how to add the sound."""
    if probed is not None:
        return probed.path if probed.has_audio else None
    if not info or not info.get("has_audio"):
        return None
    source = info["source"]
    if not Path(source).is_file():
        problem = f"the original movie {source} is gone"
    elif not same_movie(info, source):
        problem = f"{source} has changed since its frames were extracted"
    else:
        return source
    log.warning("%s: the movie will be silent (name the original movie after the frame "
                "folder to take its sound)", problem)
    return None


def _check_whole_frames(paths: list[Path]) -> tuple[int, int]:
    """Every frame checked whole before anything is encoded: a PNG's chunks and their
    checksums (a twentieth of the time of decoding it: empty, cut short and damaged files
    fail), any other type decoded. A frame that passes and that ffmpeg still cannot decode
    is missing from what it writes, which the read-back refuses. Returns frame 1's size, to
    which frames of other sizes are scaled (with a warning). Raises FramesError naming the
    first frame that cannot be read."""
    sizes: dict[tuple[int, int], int] = {}
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes[image.size] = sizes.get(image.size, 0) + 1
                if image.format == "PNG":
                    image.verify()
                else:
                    image.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise FramesError(f"cannot read frame {path}: it is empty or not a whole image "
                              f"({first_line(e)}); nothing was written") from None
    size = next(iter(sizes))
    if len(sizes) > 1:
        log.warning("the frames have %d sizes: %d of them are scaled to %dx%d, frame 1's",
                    len(sizes), len(paths) - sizes[size], *size)
    return size


def _try_output(stream, output: Path, codec: str) -> None:
    """Run ``stream`` (the encoding command for one frame, into our temporary folder) to
    check, before the long encode, that this ffmpeg can write a movie named like ``output``
    with ``codec``. Raises VideoError in one line if it cannot."""
    reason = video.try_command(stream)
    if reason is None:
        return
    if "output format" in reason:        # 4.2: "find a suitable", later: "choose an"
        raise VideoError(f"ffmpeg cannot tell what kind of movie to write from the extension "
                         f"{output.suffix} of {output}: name it .mp4, .mkv, .mov or .gif")
    raise VideoError(f"ffmpeg cannot write {output.name} with --codec {codec}: {reason}")


def _encode(command, count: int, rate: Fraction, output: Path, gif: bool,
            progress: bool, overwrite: bool) -> None:
    """Encode the ``count`` frames with ``command(count, path)`` under a temporary name in
    our scratch folder beside ``output``, read it back and put it in place only if it holds
    the frames asked for (over an existing file only with ``overwrite``). On failure or
    Ctrl-C the temporary file is removed and ``output`` is untouched. Raises VideoError."""
    def write(partial: Path) -> None:
        video.run(command(count, partial), "encoding movie", count, progress)
        pictures, seconds = video.written_length(partial)
        wanted = float(count / rate)
        # GIF delays are whole hundredths of a second: each frame may be off by one
        slack = 1 / float(rate) + (0.01 * count if gif else 0.05)
        if pictures != count or (seconds is not None and abs(seconds - wanted) > slack):
            length = f"{seconds:.2f} s" if seconds is not None else "unknown length"
            raise VideoError(f"ffmpeg wrote {pictures} frames ({length}) where {count} "
                             f"({wanted:.2f} s) were asked: {output} was not written")
    ours.write_new(output, write, "-o", overwrite)
