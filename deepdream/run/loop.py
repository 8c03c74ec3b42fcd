"""Stage 2's one run loop: the frames of a run as sequences (a whole film, or segments of it
that begin at scene cuts), each frame dreamed from the dream before it, frames of one layer
and size sharing a batch, decoded ahead and written behind. A single process, batched
segments and Ray workers all dream through ``run_frames``."""
from __future__ import annotations

import logging
import typing
from pathlib import Path

import numpy as np

from ..errors import plural
from ..io import flow, frames, ours, scenes
from ..progress import Display, start as start_progress
from . import transforms
from .sequence import Carry, GroupDreamer
from .plan import Plan, plan_frames
from .settings import DreamReport, DreamSettings, RunOptions
from .state import InputFrames, RunState, open_output
from .threads import TorchThreads
from .timeline import Timeline

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
    order) into ``output_dir`` under the same numbers, with ``net`` (loaded already).
    ``model`` (the model's object, or a caffemodel's path) is what params.json records the
    frames were dreamed with; of ``options``, the frames (image type, first, last),
    ``overwrite``, ``progress``, ``batch_segments``, ``warmup`` and ``threads`` apply. The
    run is planned
    (``plan.make_plan``: everything checked) and carried out by ``run_plan``.
    Raises a DeepDreamError subclass."""
    plan, input = plan_frames(input_dir, output_dir, settings, options or RunOptions(),
                              model, net)
    return run_plan(plan, input, output_dir)


def run_plan(plan: Plan, input: InputFrames, output_dir: str | Path) -> DreamReport:
    """Carry out ``plan`` on ``input`` into ``output_dir``, resuming a run already there.

    Frame i is dreamed from ``blend(previous dreamed frame, frame i)`` (the first from the
    raw frame; with --flow, the previous dream moved along the motion), on the layer the
    schedule gives for i, afresh at scene cuts. Each frame is written atomically; frames
    already in ``output_dir`` are kept and the run continues after them (resume), refusing
    an output made with other settings unless ``overwrite``. With ``batch_segments`` N > 1
    the film is cut into segments (at scene cuts, each starting ``warmup`` frames early) of
    which N are dreamed in one batch. Raises a DeepDreamError subclass."""
    options, settings = plan.options, plan.settings
    # our scratch folder held for the run (its frames are written through it)
    with frames.folder_lock(output_dir), ours.scratch(output_dir):
        job = open_output(output_dir, input, plan.params(input), options.overwrite)
        threads = TorchThreads.for_run(plan.net.device, options.threads)
        if options.batch_segments <= 1:
            return run_frames(job, plan.net, plan.timeline, [job.todo],
                              progress=options.progress, threads=threads)
        cuts = known_cuts(job, settings)
        length = -(-len(job.todo) // options.batch_segments)
        return run_frames(job, plan.net, plan.timeline, segments(job.todo, cuts, length),
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


def known_cuts(job: RunState, settings: DreamSettings) -> list[int]:
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

    def __init__(self, job: RunState, timeline: Timeline, numbers: list[int],
                 warmup: int | None, done: set[int], cuts: set[int], record_cuts: bool,
                 flows: flow.FlowCache | None, io: frames.BackgroundIO):
        settings = timeline.settings
        self.job, self.timeline, self.settings = job, timeline, settings
        self.cuts, self.flows, self.io = cuts, flows, io
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
        self.carry = Carry(timeline, flows)

    def next(self) -> tuple[int, np.ndarray, str]:
        """The next frame's number, the image it is dreamed from, and its layer (with its
        settings: ``timeline.at``)."""
        number = self.queue.pop(0)
        settings = self.settings
        raw, before = self.raws.get(number), self.raws.get(number - 1)
        if self.queue:
            self.raws.prefetch(self.queue[0])     # decoded while this one is dreamed
        if number not in self.cuts and self.carry.is_cut(before, raw):
            self.cuts.add(number)
            log.info("scene cut at frame %d: the dream starts afresh", number)
            if self.record_cuts:
                self.job.params["scene_cuts"] = sorted(self.cuts)
                self.job.save_params()
        previous = None
        if number != self.fresh and before is not None and \
                not (settings.scene_cuts and number in self.cuts):
            previous = self.dreams.get(number - 1)    # the full-precision dream, or the saved
        source = self.carry.source(number, raw, before, previous)
        return number, source, self.timeline.layer(number)

    def finish(self, number: int, dreamed: np.ndarray) -> bool:
        """Take frame ``number``'s dream; write it unless it is a warm-up frame. Returns
        whether it was written."""
        dreamed = self.carry.finish(dreamed)
        self.dreams.put(number, dreamed)
        if number in self.warm:
            return False
        if not self.job.begun:
            # params.json and the ledger go first: no frame of ours is on disk without them
            self.job.begun = True
            self.io.write(self.job.begin)
        self.io.write(_save_dream, self.job, number, dreamed, bool(self.settings.preview))
        return True


def _save_dream(job: RunState, number: int, dreamed: np.ndarray, preview: bool) -> None:
    """Write frame ``number``'s dream (a preview scaled back to its input frame's size)."""
    if preview:
        full = frames.read_frame(job.available[number])
        dreamed = transforms.resize(dreamed, full.shape[1], full.shape[0])
    job.save_frame(number, dreamed)


def run_frames(job: RunState, net: Net, timeline: Timeline, pieces: list[list[int]],
               warmup: int | None = None, progress: bool | Display = True,
               record_cuts: bool = True, batch: int = 1,
               threads: TorchThreads | None = None) -> DreamReport:
    """Dream the frames of ``pieces`` (runs of consecutive frame numbers) of ``job``, each
    with its settings and layer (``timeline``), skipping those already written: one piece as
    a whole run when ``warmup`` is None, else each piece as a segment (see ``_Sequence``),
    ``batch`` segments at a time in lockstep so that frames of the same layer, size and
    settings share one ``dream_batch``; on a CPU with the torch threads ``threads`` sets
    (default: chosen as it runs, or $OMP_NUM_THREADS)."""
    settings = timeline.settings
    threads = threads or TorchThreads.for_run(net.device)
    done = set(job.done)
    cuts = set(job.params["scene_cuts"])
    flows = flow.FlowCache(job.output_dir, settings.flow) if settings.flow else None
    io = frames.BackgroundIO()
    pending = [_Sequence(job, timeline, piece, warmup, done, cuts, record_cuts, flows, io)
               for piece in pieces]
    total = sum(seq.to_write for seq in pending)
    count = sum(len(piece) for piece in pieces)
    log.info("%s to dream (%d already done) from %s into %s", plural(total, "frame"),
             count - total, job.input_dir, job.output_dir)
    dreamer = GroupDreamer(net, settings)
    pending = [seq for seq in pending if seq.queue]
    active, pending = pending[:batch], pending[batch:]
    bar = start_progress(progress, total)
    try:
        while active:
            groups: dict[tuple, list] = {}
            for seq in active:
                number, source, end = seq.next()
                options = timeline.at(number).ascent_options()
                groups.setdefault((end, source.shape, tuple(options.items())), []).append(
                    (seq, number, source))
            for (end, shape, _), items in groups.items():
                frame_settings = timeline.at(items[0][1])
                with threads.timing(frame_settings, end, *shape[:2], len(items)):
                    dreams = dreamer.dream(end, [(n, source) for _, n, source in items],
                                           frame_settings)
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
