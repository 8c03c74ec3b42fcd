"""The whole job in one call, as ``python -m deepdream`` runs it: a movie's frames extracted
into a work folder of ours, dreamed, and put back together with its sound; the same call
after a crash, Ctrl-C or kill -9 continues where it stopped.

The work folder is ours only when we made it and marked it (``job.json``, naming the movie):
a folder of the user's is never emptied (the job gets a marked folder of its own inside it),
and a work folder that holds another movie's job is refused, never reused."""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
from pathlib import Path

from ..errors import DeepDreamError, plural
from ..io import frames, ours, video
from ..io.encoding import DEFAULT_CRF
from .loop import run_plan
from .plan import Plan, make_plan
from .timeline import Footage
from .settings import DreamSettings, RunOptions
from .state import (INPUT_IDENTITY, RUN_IDENTITY, InputFrames, check_params, check_resume,
                    read_params)

log = logging.getLogger(__name__)

MARKER = "job.json"     # in a work folder of ours: the movie it holds the frames of


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (links resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _read_marker(path: Path) -> dict | None:
    """The job.json of ours in ``path`` (None: none there, or one of the user's, which
    makes the folder the user's)."""
    try:
        return ours.read_json(path / MARKER, "job") if path.is_dir() else None
    except ours.NotOursError:
        return None


def _missing(path: Path) -> list[Path]:
    """The folders from ``path`` up that do not exist yet, deepest first."""
    made, missing = [], Path(os.path.abspath(path))
    while not missing.exists():
        made.append(missing)
        missing = missing.parent
    return made


class WorkFolder:
    """The folder where a job keeps its frames: ``frames/`` (stage 1's) and ``dreamed/``
    (stage 2's). ``path`` is the folder the job owns; ``made`` the folders the job makes for
    it (``path`` and its missing parents, deepest first: removed at the end, where empty)."""

    def __init__(self, path: Path, made: list[Path]):
        self.path, self.made = path, made
        self.extracted, self.dreamed = path / "frames", path / "dreamed"

    @classmethod
    def choose(cls, movie: Path, output: Path, work: Path | None) -> WorkFolder:
        """The job's folder for ``movie``: ``work`` if it is new, empty or a job folder of
        ours for this movie; inside ``work`` if it holds anything else of the user's
        (a job.json without our mark too); by default ``.OUTPUT.deepdream`` beside the
        output. Raises DeepDreamError for a job folder of ours that holds another movie's
        frames. Nothing is written."""
        from ..io.extraction import movie_identity
        default = work is None
        path = output.with_name(f".{output.stem}.deepdream") if default else work
        if path.exists() and not path.is_dir():
            raise DeepDreamError(f"the work folder {path} is a file")
        marker = _read_marker(path)
        if path.is_dir() and marker is None and any(path.iterdir()):
            if default:
                raise DeepDreamError(f"{path} holds files that are not a job of ours: move "
                                     "them away, or give another folder with --work")
            # a folder of the user's: our own marked folder beside their files
            path = path / f"{output.stem}.deepdream"       # step [1/3] names it
            marker = _read_marker(path)
            if path.is_dir() and marker is None and any(path.iterdir()):
                raise DeepDreamError(f"{path} holds files that are not a job of ours: move "
                                     "them away, or give another --work")
        if marker is not None and marker.get("movie") != movie_identity(movie):
            raise DeepDreamError(_other_job(path, marker, movie))
        made = [Path(p) for p in marker.get("made", [])] if marker else _missing(path)
        return cls(path, made)

    def mark(self, movie: Path) -> None:
        """Mark the folder as this movie's job (once its lock is held). Raises
        DeepDreamError if a job of another movie marked it meanwhile."""
        from ..io.extraction import movie_identity
        marker = _read_marker(self.path)
        if marker is not None and marker.get("movie") != movie_identity(movie):
            raise DeepDreamError(_other_job(self.path, marker, movie))
        ours.write_json(self.path / MARKER, "job", {
            "movie": movie_identity(movie), "made": [str(p) for p in self.made]},
            ours.run_of(marker) if marker else ours.new_run_id())

    def remove(self) -> None:
        """Remove what the job made: the whole folder if it made the folder (it is marked
        ours) and the parents it made for it where they are empty; else its subfolders
        frames/ and dreamed/ and its marker."""
        for folder in (self.extracted, self.dreamed):     # made by the job, in its folder
            shutil.rmtree(folder, ignore_errors=True)
        if not self.made:
            (self.path / MARKER).unlink(missing_ok=True)
            return
        shutil.rmtree(self.path)          # the folder it made, marked: its mark goes last
        for parent in self.made[1:]:
            try:
                parent.rmdir()
            except OSError:               # something else is in it now: it stays
                break


def _other_job(path: Path, marker: dict, movie: Path) -> str:
    """The line that refuses a job folder of ours holding the frames of another movie (or
    of this one before it changed)."""
    recorded = (marker.get("movie") or {}).get("path", "unknown")
    what = (f"the frames of {movie} as it was before it changed (its size, time or content "
            "differ now)" if recorded == str(movie.resolve()) else
            f"the frames of another movie ({recorded})")
    if frames.is_locked(path):
        return (f"the work folder {path} holds {what}, and a job is running in it: wait "
                "for it, or give another -o or --work")
    return (f"the work folder {path} holds {what}: delete it (it is a job folder of ours, "
            "no job runs in it), or give another -o or --work")


def check_paths(movie: Path, output: Path, work: str | Path | None,
                overwrite: bool = False) -> WorkFolder:
    """The job's work folder, once the paths are checked (nothing is run or written): refused
    a movie that is not there, an output that would replace the movie, lie inside the work
    folder (removed at the end) or a file of the user's (``ours.check_new_file``), and a work
    folder of another movie's job."""
    movie, output = Path(movie), Path(output)
    if not movie.is_file():
        raise DeepDreamError(f"movie not found: {movie}")
    job = WorkFolder.choose(movie, output, Path(work) if work else None)
    if frames.same_path(output, movie):
        raise DeepDreamError(f"the output {output} is the movie itself: give another -o")
    if _inside(output, job.path):
        raise DeepDreamError(f"the output {output} is inside the work folder {job.path}, "
                             "which is removed at the end: give another -o or --work")
    ours.check_new_file(output, "-o", overwrite, "movie")
    return job


@dataclasses.dataclass
class MovieJob:
    """The plan of a whole job (``plan_movie``): the movie (probed once), its output
    (checked, a trial encode made), the work folder and the dream's plan (its net loaded)."""
    movie: Path
    output: Path
    info: video.MovieInfo
    work: WorkFolder
    plan: Plan
    keep_frames: bool
    crf: int


def plan_movie(movie: str | Path, output: str | Path, settings: DreamSettings, model,
               options: RunOptions | None = None, work: str | Path | None = None,
               keep_frames: bool = False, crf: int = DEFAULT_CRF) -> MovieJob:
    """The job of dreaming ``movie`` into ``output``, everything checked before anything is
    extracted or loaded for a job that cannot run: the paths, the movie (probed once), -sf
    and -ef against its frames, the output (a trial encode of one frame, with the movie's
    sound, into the output's own folder), the settings, the layers and octaves against the
    movie's size (``make_plan``, which then loads the net), and a run of ours in the work
    folder made with other settings. Raises a DeepDreamError subclass."""
    from ..io import encoding
    movie, output = Path(movie), Path(output)
    options = options or RunOptions()
    job = check_paths(movie, output, work, options.overwrite)
    probed: list[video.MovieInfo] = []

    def movie_footage() -> Footage:             # once the settings are checked
        info = video.probe(movie)
        footage = Footage.of_movie(movie, info)
        count = footage.last_frame
        if count is not None and options.start_frame is not None and \
                options.start_frame > count:
            raise DeepDreamError(f"-sf/--start_frame {options.start_frame} is past the end "
                                 f"of {movie} ({count} frames)")
        encoding.check_output(output, crf=crf, overwrite=options.overwrite,
                              audio=movie if info.has_audio else None)
        probed.append(info)
        return footage

    # a run of ours in the work folder, made with other settings: refused before loading
    resume = None if options.overwrite else functools.partial(check_resume, job.dreamed)
    plan = make_plan(settings, options, model, movie_footage, before_load=resume)
    info = probed[0]
    if not options.overwrite:      # a run of ours there, for this movie: the same settings?
        old = read_params(job.dreamed) if job.dreamed.is_dir() else None
        check_params(job.dreamed, old, plan.params(None),     # "dream": before loading
                     tuple(k for k in RUN_IDENTITY if k not in (*INPUT_IDENTITY, "dream")))
    return MovieJob(movie, output, info, job, plan, keep_frames, crf)


def run_movie_job(plan: MovieJob) -> Path:
    """Carry out a job's plan: extract (once), dream, encode, in the work folder of ours,
    which is removed at the end unless ``keep_frames``. The same job after a crash, Ctrl-C
    or kill -9 continues where it stopped."""
    from ..io.encoding import make_movie
    from ..io.extraction import extract_frames, same_movie
    job, movie, options = plan.work, plan.movie, plan.plan.options
    with frames.folder_lock(job.path):        # one job at a time, extraction included
        job.mark(movie)
        meta = _read_movie_info(job.extracted)
        if meta is not None and same_movie(meta, movie):
            log.info("[1/3] frames of %s already extracted in %s", movie, job.extracted)
        else:
            log.info("[1/3] extracting the frames of %s into %s", movie, job.extracted)
            # the frames folder is ours (inside our marked work folder): an interrupted
            # extraction's frames are replaced
            extract_frames(movie, job.extracted, options.image_type or "png",
                           overwrite=True, progress=options.progress, info=plan.info)
        log.info("[2/3] dreaming")
        input = InputFrames.listed(job.extracted, options.image_type, options.start_frame,
                                   options.end_frame)
        if options.ray:
            from .cluster import run_on_ray
            report = run_on_ray(plan.plan, input, job.dreamed)
        else:
            report = run_plan(plan.plan, input, job.dreamed)
        log.info("%s dreamed (%d already done)", plural(report.dreamed, "frame"),
                 report.skipped)
        log.info("[3/3] encoding %s", plan.output)
        make_movie(job.dreamed, plan.output, crf=plan.crf, progress=options.progress,
                   overwrite=options.overwrite, checked=True)
        if not plan.keep_frames:
            job.remove()          # under the lock: no other job can have begun in it
    return plan.output


def dream_movie(movie: str | Path, output: str | Path, settings: DreamSettings, model,
                options: RunOptions | None = None, work: str | Path | None = None,
                keep_frames: bool = False, crf: int = DEFAULT_CRF) -> Path:
    """Dream ``movie`` into ``output`` with its sound: the job planned (``plan_movie``:
    everything checked before the first frame is extracted) and carried out
    (``run_movie_job``). Raises a DeepDreamError subclass."""
    return run_movie_job(plan_movie(movie, output, settings, model, options, work,
                                    keep_frames, crf))


def _read_movie_info(folder: Path) -> dict | None:
    """The movie.json of ours in the job's frame folder (None: none). Raises
    DeepDreamError for one that is not ours (in a folder of ours: someone put it there)."""
    try:
        return ours.read_json(folder / frames.MOVIE_INFO, "movie")
    except ours.NotOursError as e:
        raise DeepDreamError(f"{e.path} in the job's work folder was not written by "
                             "deepdream: move it away, or give another --work") from None
