"""Stage 2's one run loop: the frames of a run as sequences (a whole film, or segments of it
that begin at scene cuts), each frame dreamed from the dream before it, frames of one layer
and size sharing a batch, decoded ahead and written behind. A single process, batched
segments and Ray workers all dream through ``run_frames``."""
from __future__ import annotations

import logging
import typing
from pathlib import Path

import numpy as np

from ..errors import ZeroGradientError
from ..io import flow, frames, scenes
from ..progress import Display, start as start_progress
from . import schedules, transforms
from .settings import DreamReport, DreamSettings, Job, RunOptions, prepare
from .threads import TorchThreads

if typing.TYPE_CHECKING:     # the engine imports torch
    from ..nets.base import Net

log = logging.getLogger(__name__)


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


def dream_frames(input_dir: str | Path, output_dir: str | Path, net: Net,
                 settings: DreamSettings, model=None,
                 options: RunOptions | None = None) -> DreamReport:
    """Dream every frame of ``input_dir`` (frames numbered in their names, taken in numeric
    order) into ``output_dir`` under the same numbers. ``model`` (the model's object, or a
    caffemodel's path) is what params.json records the frames were dreamed with; of
    ``options``, the frames (image type, first, last), ``overwrite``, ``progress``,
    ``batch_segments``, ``warmup`` and ``threads`` apply (the net is loaded already).

    ``options.image_type`` chooses the input frames' type when the folder holds several, and
    the type of the dreamed frames (default: the input's). Frame i is dreamed from
    ``blend(previous dreamed frame, frame i)`` (the first from the raw frame; with --flow, the
    previous dream moved along the motion), on the layer the schedule gives for i, afresh at
    scene cuts. Each frame is written atomically; frames already in ``output_dir`` are kept
    and the run continues after them (resume), refusing an output made with other settings
    unless ``overwrite``. With ``batch_segments`` N > 1 the film is cut into segments (at
    scene cuts, each starting ``warmup`` frames early) of which N are dreamed in one batch.
    Raises a DeepDreamError subclass.
    """
    options = options or RunOptions()
    options.check()
    with frames.folder_lock(output_dir):
        job = prepare(input_dir, output_dir, settings, net.recorded_name, net.device,
                      net.precision, model, options)
        threads = TorchThreads.for_run(net.device, options.threads)
        if options.batch_segments <= 1:
            return run_frames(job, net, settings, [job.todo], progress=options.progress,
                              threads=threads)
        cuts = known_cuts(job, settings)
        length = -(-len(job.todo) // options.batch_segments)
        return run_frames(job, net, settings, segments(job.todo, cuts, length),
                          options.warmup, options.progress, batch=options.batch_segments,
                          threads=threads)


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
                              .astype(np.float32) if n in done else None, io)
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
            source = transforms.blend_source(settings, number, raw, previous)
        elif previous is not None and before.shape == previous.shape == raw.shape:
            # --flow: the previous dream's detail, moved along the motion, decayed
            field, self.mask = self.flows.get(number, before, raw)
            self.moved = flow.moved_detail(previous, before, field, self.mask)
            source = transforms.carried(settings, raw, self.moved)
        return number, source, schedules.layer_for_frame(number, settings.layers)

    def finish(self, number: int, dreamed: np.ndarray) -> bool:
        """Take frame ``number``'s dream; write it unless it is a warm-up frame. Returns
        whether it was written."""
        dreamed = transforms.finish_dream(self.settings, dreamed, self.raw, self.moved,
                                          self.mask)
        self.dreams.put(number, dreamed)
        if number in self.warm:
            return False
        if not self.job.started:
            # params.json goes first: no frame of ours is ever on disk without it
            self.job.started = True
            self.io.write(self.job.save_params)
        self.io.write(_save_dream, self.job, number, dreamed, bool(self.settings.preview))
        return True


def _save_dream(job: Job, number: int, dreamed: np.ndarray, preview: bool) -> None:
    """Write frame ``number``'s dream (a preview scaled back to its input frame's size)."""
    if preview:
        full = frames.read_frame(job.available[number])
        dreamed = transforms.resize(dreamed, full.shape[1], full.shape[0])
    job.save_frame(number, dreamed)


def run_frames(job: Job, net: Net, settings: DreamSettings, pieces: list[list[int]],
               warmup: int | None = None, progress: bool | Display = True,
               record_cuts: bool = True, batch: int = 1,
               threads: TorchThreads | None = None) -> DreamReport:
    """Dream the frames of ``pieces`` (runs of consecutive frame numbers) of ``job``,
    skipping those already written: one piece as a whole run when ``warmup`` is None, else
    each piece as a segment (see ``_Sequence``), ``batch`` segments at a time in lockstep so
    that frames of the same layer and size share one ``dream_batch``; on a CPU with the
    torch threads ``threads`` sets (default: chosen as it runs, or $OMP_NUM_THREADS)."""
    threads = threads or TorchThreads.for_run(net.device)
    done = set() if job.redo else set(job.done)
    cuts = set(job.params["scene_cuts"])
    flows = flow.FlowCache(job.output_dir, settings.flow) if settings.flow else None
    io = frames.BackgroundIO()
    pending = [_Sequence(job, settings, piece, warmup, done, cuts, record_cuts, flows, io)
               for piece in pieces]
    total = sum(seq.to_write for seq in pending)
    count = sum(len(piece) for piece in pieces)
    log.info("%d frames to dream (%d already done) from %s into %s", total, count - total,
             job.input_dir, job.output_dir)
    from ..dreamer.ascent import guide_features

    guide = frames.read_frame(settings.guide_image) if settings.guide_image else None
    features: dict[str, np.ndarray] = {}
    pending = [seq for seq in pending if seq.queue]
    active, pending = pending[:batch], pending[batch:]
    bar = start_progress(progress, total)
    try:
        while active:
            groups: dict[tuple, list] = {}
            for seq in active:
                number, source, end = seq.next()
                groups.setdefault((end, source.shape), []).append((seq, number, source))
            for (end, shape), items in groups.items():
                if guide is not None and end not in features:
                    features[end] = guide_features(net, guide, end)
                with threads.timing(settings, end, *shape[:2], len(items)):
                    dreams = _dream_group(net, settings, end, items, features.get(end))
                for (seq, number, _), dreamed in zip(items, dreams):
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
    from ..dreamer.ascent import dream_batch

    seeds = [schedules.seed_for_frame(settings.seed, number) for _, number, _ in items]
    try:
        return dream_batch(net, [source for _, _, source in items], end, guide=guide,
                           seeds=seeds, **settings.ascent_options())
    except ZeroGradientError as e:
        if len(items) == 1:
            log.warning("frame %d kept as it is: %s", items[0][1], e)
            return [items[0][2]]
        return [_dream_group(net, settings, end, [item], guide)[0] for item in items]
