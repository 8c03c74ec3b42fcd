"""The three stages: movie -> frames -> dreamed frames -> movie. One entry function each.

The on-disk state of a run (frame files, ``movie.json``, ``params.json``) is the only state:
a resumed run and a fresh run go through the same code.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.ndimage as nd
from PIL import Image

import typing

from . import __version__, flow, frames, scenes, schedules, video
from .errors import FramesError, ResumeError, SettingsError, ZeroGradientError
from .models import sha1_of

if typing.TYPE_CHECKING:     # the engine imports torch: not needed to split or join a movie
    from .engine import Net

log = logging.getLogger(__name__)


# -- stage 1 ---------------------------------------------------------------------------------

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
    existing = [p for ext in frames.FRAME_EXTENSIONS
                for p in frames.list_frames(folder, ext).values()]
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


# -- stage 2 ---------------------------------------------------------------------------------

@dataclasses.dataclass
class DreamSettings:
    """Everything that decides how a frame is dreamed (and is checked when resuming)."""
    layers: tuple[str, ...] = schedules.CUSTOM_LOOP
    octaves: int = 4
    octave_scale: float = 1.5
    iterations: int = 5
    jitter: int = 32
    step_size: float = 1.5
    blend: float | str = 0.5
    preview: int = 0
    zoom: float = 1.0
    guide_image: str | None = None
    seed: int | None = None
    tile: int | None = None            # compute gradients in tiles of this size (4K frames)
    flow: str | None = None            # "dis" or "farneback": carry the dream along the motion
    flow_blend: float = 1.0            # weight of the warped previous dream detail
    flow_decay: float = 0.05           # share of the carried detail dropped each frame
    flow_smooth: float = 0.2           # pull of the fresh dream towards the carried one
    scene_cuts: bool = True            # start afresh where the shot changes
    scene_threshold: float = scenes.DEFAULT_THRESHOLD

    def check(self) -> None:
        """Raise a DeepDreamError naming the first setting that cannot work, before anything
        is loaded or written."""
        rules = [(self.octaves >= 1, "-oct/--octaves must be 1 or more"),
                 (self.octave_scale >= 1, "-octs/--octavescale must be 1 or more"),
                 (self.iterations >= 1, "-itr/--iterations must be 1 or more"),
                 (self.jitter >= 0, "-j/--jitter must be 0 or more"),
                 (self.step_size > 0, "-s/--stepsize must be more than 0"),
                 (self.preview >= 0, "-p/--preview must be a width in pixels, or 0 for none"),
                 (self.zoom > 0, "-z/--zoom must be more than 0"),
                 (self.tile is None or self.tile >= 1, "--tile must be 1 or more pixels"),
                 (0 <= self.flow_decay <= 1, "--flow-decay must be from 0 to 1"),
                 (0 <= self.flow_smooth <= 1, "--flow-smooth must be from 0 to 1"),
                 (self.flow_blend >= 0, "--flow-blend must be 0 or more"),
                 (0 <= self.scene_threshold <= 255, "--scene-threshold must be from 0 to 255"),
                 (len(self.layers) >= 1, "-l/--layers needs at least one layer")]
        for ok, message in rules:
            if not ok:
                raise SettingsError(message)
        if self.guide_image and not Path(self.guide_image).is_file():
            raise FramesError(f"guide image not found: {self.guide_image}")


@dataclasses.dataclass
class DreamReport:
    dreamed: int
    skipped: int
    output: Path


# What decides the pixels of a run, and so must match for a run to be continued: the dream
# settings, the model, the engine and its arithmetic, and the frames it dreams on.
_RUN_IDENTITY = ("dream", "model_sha1", "image_type", "engine", "precision", "input",
                 "input_first_frame")


def _check_params(output: Path, params: dict, overwrite: bool) -> None:
    old = frames.read_json(output / frames.PARAMS)
    if old is None or overwrite:
        return
    # a key that an earlier version did not record is not compared
    changed = [k for k in _RUN_IDENTITY if k in old and old.get(k) != params.get(k)]
    if changed:
        details = []
        for key in changed:
            a, b = old.get(key), params.get(key)
            if isinstance(a, dict) and isinstance(b, dict):
                details += [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                            if a.get(k) != b.get(k)]
            else:
                details.append(f"{key}: {a!r} -> {b!r}")
        raise ResumeError(f"{output} holds frames dreamed with other parameters "
                          f"({'; '.join(details)}); use --overwrite to dream them again, or "
                          "another output folder")


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    pil = Image.fromarray(frames.to_uint8(image))
    return np.asarray(pil.resize((width, height), Image.LANCZOS), dtype=np.float32)


def zoom_in(image: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre of an H x W x 3 image by ``factor``, keeping its size."""
    if factor == 1:
        return image
    h, w = image.shape[:2]
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0, 0.0])
    matrix = np.array([1.0 / factor, 1.0 / factor, 1.0])
    return nd.affine_transform(image, matrix, offset=centre - matrix * centre, order=1,
                               mode="nearest").astype(np.float32)


class Progress:
    """A tqdm bar on a terminal; elsewhere a plain log line every few frames."""

    def __init__(self, total: int, enabled: bool = True, description: str = "dreaming"):
        from tqdm import tqdm

        self.total, self.done, self.started = total, 0, time.monotonic()
        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self.every = max(1, total // 20)
        self.bar = tqdm(total=total, desc=description, unit="frame", disable=not self.tty,
                        dynamic_ncols=True)

    def step(self, count: int = 1) -> None:
        """``count`` more frames done."""
        self.done += count
        self.bar.update(count)
        if self.enabled and not self.tty and (self.done // self.every >
                                              (self.done - count) // self.every
                                              or self.done == self.total):
            per = (time.monotonic() - self.started) / self.done
            eta = int(per * (self.total - self.done))
            log.info("%d/%d frames done, %.1f s/frame, ETA %d:%02d:%02d", self.done,
                     self.total, per, eta // 3600, eta // 60 % 60, eta % 60)

    def close(self) -> None:
        self.bar.close()


class _Recent:
    """The frames a loader gave or was given, by number, loaded in the background: a frame,
    the one before it and the one read ahead are all a sequence needs, and each is read
    once."""

    def __init__(self, load, io: frames.BackgroundIO):
        self.load, self.io, self.kept = load, io, {}

    def get(self, number: int):
        self.prefetch(number)
        return self.kept[number].result()

    def prefetch(self, number: int) -> None:
        """Start loading ``number`` if it is not here yet."""
        if number not in self.kept:
            self._keep(number, self.io.read(self.load, number))

    def put(self, number: int, value) -> None:
        from concurrent.futures import Future

        done = Future()
        done.set_result(value)
        self._keep(number, done)

    def _keep(self, number: int, future) -> None:
        self.kept.pop(number, None)
        self.kept[number] = future
        while len(self.kept) > 3:
            del self.kept[next(iter(self.kept))]


def _blend_source(settings: DreamSettings, number: int, raw: np.ndarray,
                  previous: np.ndarray) -> np.ndarray:
    """The original's blend: PIL's Image.blend(previous dream, frame, weight)."""
    weight = schedules.blend_for_frame(number, settings.blend, settings.seed)
    if weight == 0:   # the original's -b 0: raw frames, no blend
        return raw
    previous = _resize(zoom_in(previous, settings.zoom), raw.shape[1], raw.shape[0])
    return previous * (1.0 - weight) + raw * weight


@dataclasses.dataclass
class Job:
    """A dreaming run as it stands on disk: its frames, its output folder and its params."""
    input_dir: Path
    output_dir: Path
    available: dict[int, Path]     # input frames by number
    ext: str                       # type of the dreamed frames
    todo: list[int]                # the frame numbers of this run, in order
    params: dict
    redo: bool                     # --overwrite: frames already written are dreamed again
    started: bool = False          # a frame of this run is written (and so is params.json)

    def output(self, number: int) -> Path:
        """The path of dreamed frame ``number``."""
        return self.output_dir / frames.frame_name(number, self.ext)

    def begin(self) -> None:
        """The run's first frame is written: from now on the output folder is this run's,
        and its params.json says how it was made. (Before that, a run that fails leaves no
        params.json to refuse the next one.)"""
        self.started = True
        self.save_params()

    def save_params(self) -> None:
        """Write params.json (with the scene cuts found so far), once the run has begun."""
        if self.started:
            frames.write_json(self.output_dir / frames.PARAMS, self.params)


def prepare(input_dir: str | Path, output_dir: str | Path, settings: DreamSettings,
            engine: str, device: str, model_path: str | Path | None = None,
            image_type: str | None = None, start_frame: int | None = None,
            end_frame: int | None = None, overwrite: bool = False,
            precision: str = "fp32") -> Job:
    """List the frames of a run, check that ``output_dir`` holds no run made with other
    settings (unless ``overwrite``) and write its ``params.json``."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    available = frames.list_frames(input_dir, image_type)
    if not available and image_type:
        # the original needed -it for the frames it read and wrote; frames of another type
        # are read all the same, and the dreamed frames are written as -it asks
        available = frames.list_frames(input_dir)
    if not available:
        raise FramesError(f"no numbered frames (00000001.png, ...) in {input_dir}")
    ext = image_type or available[next(iter(available))].suffix.lstrip(".").lower()
    first = start_frame if start_frame is not None else next(iter(available))
    last = end_frame if end_frame is not None else next(reversed(available))
    todo = [n for n in available if first <= n <= last]
    if not todo:
        raise FramesError(f"no frames numbered {first} to {last} in {input_dir}")
    settings.check()
    first_path = available[next(iter(available))]
    params = {"version": __version__, "engine": engine, "device": device,
              "precision": precision,
              "input": str(input_dir.resolve()), "image_type": ext,
              "input_first_frame": {"name": first_path.name,
                                    "size": first_path.stat().st_size,
                                    "sha1": sha1_of(first_path)},
              "model": str(model_path) if model_path else None,
              "model_sha1": sha1_of(model_path) if model_path else None,
              "dream": dict(dataclasses.asdict(settings), layers=list(settings.layers),
                            guide_sha1=sha1_of(settings.guide_image)
                            if settings.guide_image else None)}
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_params(output_dir, params, overwrite)
    old = frames.read_json(output_dir / frames.PARAMS)
    frames.remove_stale_parts(output_dir)
    if overwrite and old is not None:
        # the folder holds a run of ours made otherwise: none of its frames may stay
        # among the new ones (also after the new run's last frame)
        for ext_ in frames.FRAME_EXTENSIONS:
            for path in frames.list_frames(output_dir, ext_).values():
                path.unlink()
        (output_dir / frames.PARAMS).unlink()
        old = None
    params["scene_cuts"] = sorted((old or {}).get("scene_cuts", []))
    return Job(input_dir, output_dir, available, ext, todo, params, overwrite,
               started=old is not None)


def dream_frames(input_dir: str | Path, output_dir: str | Path, net: Net,
                 settings: DreamSettings, model_path: str | Path | None = None,
                 image_type: str | None = None, start_frame: int | None = None,
                 end_frame: int | None = None, overwrite: bool = False,
                 progress: bool = True, batch_segments: int = 1,
                 warmup: int = 10) -> DreamReport:
    """Dream every frame of ``input_dir`` (frames numbered in their names, taken in numeric
    order) into ``output_dir`` under the same numbers.

    ``image_type`` chooses the input frames' type when the folder holds several, and the
    type of the dreamed frames (default: the input's). Frame i is dreamed from
    ``blend(previous dreamed frame, frame i)`` (the first from the raw frame; with --flow, the
    previous dream moved along the motion), on the layer the schedule gives for i, afresh at
    scene cuts. Each frame is written atomically; frames already in ``output_dir`` are kept
    and the run continues after them (resume), refusing an output made with other settings
    unless ``overwrite``. With ``batch_segments`` N > 1 the film is cut into segments (at
    scene cuts, each starting ``warmup`` frames early) of which N are dreamed in one batch.
    Raises a DeepDreamError subclass.
    """
    if batch_segments < 1 or warmup < 0:
        raise SettingsError("--batch-segments must be 1 or more and --warmup 0 or more")
    with frames.folder_lock(output_dir):
        job = prepare(input_dir, output_dir, settings, type(net).__name__, net.device,
                      model_path, image_type, start_frame, end_frame, overwrite, net.precision)
        if batch_segments <= 1:
            return run_frames(job, net, settings, [job.todo], progress=progress)
        cuts = known_cuts(job, settings)
        length = -(-len(job.todo) // batch_segments)
        return run_frames(job, net, settings, segments(job.todo, cuts, length), warmup,
                          progress, batch=batch_segments)


def segments(numbers: list[int], cuts: list[int], length: int) -> list[list[int]]:
    """``numbers`` split before every scene cut and wherever they are not consecutive, and
    pieces longer than ``length`` split again into pieces of ``length``."""
    pieces: list[list[int]] = []
    cut_set = set(cuts)
    for n in numbers:
        if not pieces or n in cut_set or len(pieces[-1]) >= length or n != pieces[-1][-1] + 1:
            pieces.append([])
        pieces[-1].append(n)
    return pieces


def known_cuts(job: Job, settings: DreamSettings) -> list[int]:
    """Every scene cut of the run, found up front (a parallel run must know where its
    segments may begin) and recorded in params.json."""
    if settings.scene_cuts:
        found = scenes.find_cuts({n: job.available[n] for n in job.todo},
                                 settings.scene_threshold, settings.preview or None)
        job.params["scene_cuts"] = sorted(set(job.params["scene_cuts"]) | set(found))
        job.save_params()
    return job.params["scene_cuts"]


class _Sequence:
    """Consecutive frames dreamed one after another, each from the one before: a whole run
    (``warmup`` None: its first frame starts afresh, later ones continue from the dream of
    the frame before, in memory or saved) or a segment of a parallel run (whose first frame,
    when still to do, starts afresh ``warmup`` frames earlier; those frames are dreamed and
    not written, so the state at the boundary is close to a sequential run's, and equal at a
    scene cut)."""

    def __init__(self, job: Job, settings: DreamSettings, numbers: list[int],
                 warmup: int | None, done: set[int], cuts: set[int], record_cuts: bool,
                 flows: flow.FlowCache | None, io: frames.BackgroundIO):
        self.job, self.settings, self.cuts, self.flows, self.io = job, settings, cuts, flows, io
        self.record_cuts = record_cuts
        remaining = [n for n in numbers if n not in done]
        warm: list[int] = []
        self.fresh = job.todo[0]
        if warmup is not None:
            self.fresh = numbers[0]
            if remaining and remaining[0] == numbers[0]:
                warm = [n for n in job.available if numbers[0] - warmup <= n < numbers[0]]
                self.fresh = (warm or remaining)[0]
        self.queue, self.warm, self.to_write = warm + remaining, set(warm), len(remaining)
        width = settings.preview or None
        self.raws = _Recent(lambda n: frames.read_frame(job.available[n], width)
                            .astype(np.float32) if n in job.available else None, io)
        self.dreams = _Recent(lambda n: frames.read_frame(job.output(n), width)
                              .astype(np.float32) if job.output(n).exists() else None, io)
        self.moved = self.mask = self.raw = None

    def next(self) -> tuple[int, np.ndarray, str]:
        """The next frame's number, the image it is dreamed from, and its layer."""
        number = self.queue.pop(0)
        settings = self.settings
        raw, before = self.raws.get(number), self.raws.get(number - 1)
        if self.queue:
            self.raws.prefetch(self.queue[0])     # decoded while this one is dreamed
        if before is not None and settings.scene_cuts and number not in self.cuts and \
                scenes.content_score(scenes.small_hsv(before), scenes.small_hsv(raw)) \
                >= settings.scene_threshold:
            self.cuts.add(number)
            log.info("scene cut at frame %d: the dream starts afresh", number)
            if self.record_cuts:
                self.job.params["scene_cuts"] = sorted(self.cuts)
                self.job.save_params()
        source, self.moved, self.raw = raw, None, raw
        previous = None
        if number != self.fresh and before is not None and \
                not (settings.scene_cuts and number in self.cuts):
            previous = self.dreams.get(number - 1)    # the full-precision dream, or the saved
        if previous is not None and self.flows is None:
            source = _blend_source(settings, number, raw, previous)
        elif previous is not None and before.shape == previous.shape == raw.shape:
            # --flow: the previous dream's detail, moved along the motion, decayed
            field, self.mask = self.flows.get(number, before, raw)
            self.moved = flow.moved_detail(previous, before, field, self.mask)
            source = raw + self.moved * np.float32(settings.flow_blend *
                                                   (1.0 - settings.flow_decay))
        return number, source, schedules.layer_for_frame(number, settings.layers)

    def finish(self, number: int, dreamed: np.ndarray) -> bool:
        """Take frame ``number``'s dream; write it unless it is a warm-up frame. Returns
        whether it was written."""
        if self.moved is not None and self.settings.flow_smooth:
            dreamed = flow.smooth(dreamed, self.raw, self.moved, self.mask,
                                  self.settings.flow_smooth)
        self.dreams.put(number, dreamed)
        if number in self.warm:
            return False
        self.io.write(_save_dream, self.job, number, dreamed, bool(self.settings.preview))
        if not self.job.started:
            self.io.write(self.job.begin)       # params.json after the first frame
        return True


def _save_dream(job: Job, number: int, dreamed: np.ndarray, preview: bool) -> None:
    """Write frame ``number``'s dream (a preview scaled back to its input frame's size)."""
    if preview:
        full = frames.read_frame(job.available[number])
        dreamed = _resize(dreamed, full.shape[1], full.shape[0])
    frames.write_frame(job.output(number), dreamed)


def run_frames(job: Job, net: Net, settings: DreamSettings, pieces: list[list[int]],
               warmup: int | None = None, progress: bool = True, record_cuts: bool = True,
               batch: int = 1) -> DreamReport:
    """Dream the frames of ``pieces`` (runs of consecutive frame numbers) of ``job``,
    skipping those already written: one piece as a whole run when ``warmup`` is None, else
    each piece as a segment (see ``_Sequence``), ``batch`` segments at a time in lockstep so
    that frames of the same layer and size share one ``dream_batch``."""
    done = set() if job.redo else set(frames.list_frames(job.output_dir, job.ext))
    cuts = set(job.params["scene_cuts"])
    flows = flow.FlowCache(job.input_dir, settings.flow) if settings.flow else None
    io = frames.BackgroundIO()
    pending = [_Sequence(job, settings, piece, warmup, done, cuts, record_cuts, flows, io)
               for piece in pieces]
    total = sum(seq.to_write for seq in pending)
    count = sum(len(piece) for piece in pieces)
    log.info("%d frames to dream (%d already done) from %s into %s", total, count - total,
             job.input_dir, job.output_dir)
    from .ascent import guide_features

    guide = frames.read_frame(settings.guide_image) if settings.guide_image else None
    features: dict[str, np.ndarray] = {}
    pending = [seq for seq in pending if seq.queue]
    active, pending = pending[:batch], pending[batch:]
    bar = Progress(total, progress)
    try:
        while active:
            groups: dict[tuple, list] = {}
            for seq in active:
                number, source, end = seq.next()
                groups.setdefault((end, source.shape), []).append((seq, number, source))
            for (end, _), items in groups.items():
                if guide is not None and end not in features:
                    features[end] = guide_features(net, guide, end)
                for (seq, number, _), dreamed in zip(items, _dream_group(
                        net, settings, end, items, features.get(end))):
                    if seq.finish(number, dreamed):
                        bar.step()
            active = [seq for seq in active if seq.queue]
            while pending and len(active) < batch:
                active.append(pending.pop(0))
    finally:
        try:
            io.close()      # every frame handed to the writer is on disk
        finally:
            bar.close()
    return DreamReport(total, count - total, job.output_dir)


def _dream_group(net: Net, settings: DreamSettings, end: str, items: list,
                 guide: np.ndarray | None) -> list[np.ndarray]:
    """The dreams of frames (sequence, number, source) that share a layer and a size; a frame
    with nothing to dream (a zero gradient) is kept as it is."""
    from .ascent import dream_batch

    options = dict(iter_n=settings.iterations, octave_n=settings.octaves,
                   octave_scale=settings.octave_scale, jitter=settings.jitter,
                   step_size=settings.step_size, guide=guide, tile=settings.tile)
    seeds = [schedules.seed_for_frame(settings.seed, number) for _, number, _ in items]
    try:
        return dream_batch(net, [source for _, _, source in items], end, seeds=seeds,
                           **options)
    except ZeroGradientError as e:
        if len(items) == 1:
            log.warning("frame %d kept as it is: %s", items[0][1], e)
            return [items[0][2]]
        return [_dream_group(net, settings, end, [item], guide)[0] for item in items]


def layer_table(net: Net, model_name: str, input_dir: str | Path | None = None,
                image_type: str | None = None, preview: int = 0) -> str:
    """The net's blobs and their sizes for the first frame of ``input_dir`` (else 224x224),
    as --list-layers prints them."""
    height, width = 224, 224
    if input_dir:
        found = frames.list_frames(input_dir, image_type)
        if found:
            height, width = frames.read_frame(next(iter(found.values())),
                                              preview or None).shape[:2]
    lines = [f"blobs of {model_name} for a {width}x{height} frame:"]
    for name, shape in net.blob_shapes(height, width).items():
        size = " x ".join(map(str, shape[1:])) if shape else \
            "(the frame is too small to reach it)"
        lines.append(f"  {name:40s} {size}")
    return "\n".join(lines)


# -- stage 3 ---------------------------------------------------------------------------------

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
        offset = probed.video_start - probed.start_time
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
