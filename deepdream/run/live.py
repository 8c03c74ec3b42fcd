"""Dream live (``python -m deepdream --live SOURCE``): a camera, a stream or a movie (at its
own rate) dreamed as it plays, shown on a page (``io.live_server``) and recorded (``io.live``).

Four kinds of thread overlap: ffmpeg's decoding (a reader that keeps the newest frame only,
so a slow dream drops frames instead of falling behind), the dream (this module's loop on
the main thread: the previous dream carried along the optical flow as ``--flow`` carries it,
then a few steps of the deepdream ascent; a scene cut starts afresh; the layer sweep follows
the source's frame numbers, so it advances with time), the output (JPEG for the page, raw
frames to the recording's ffmpeg) and the page's server."""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
import queue
import signal
import threading
import time
import typing
from pathlib import Path

import numpy as np

from ..errors import SettingsError, VideoError
from ..io import flow, frames
from ..io.encoding import check_output
from ..io.live import OPEN_TIMEOUT
from .sequence import Carry, GroupDreamer
from .settings import DreamSettings
from .threads import TorchThreads
from .timeline import Footage, Timeline, needs

if typing.TYPE_CHECKING:
    from .plan import Plan

log = logging.getLogger(__name__)

# the flags' defaults in live mode (a flag given, or a recipe's value, wins): frames 320
# pixels wide, 2 octaves of 3 steps -- about 8 frames a second on a 2-core laptop CPU
LIVE_DEFAULTS = {"preview": 320, "octaves": 2, "iterations": 3}
DEFAULT_PORT = 8765          # the page's, when neither -o nor --serve is given
LOG_EVERY = 5.0              # seconds between the log's lines of frames a second and latency
STALL = 10.0                 # seconds without a frame that end a stream


@dataclasses.dataclass
class LiveOptions:
    """Where live mode's frames come from and go to."""
    source: str                        # a movie, a device (with input_format) or a URL
    width: int = LIVE_DEFAULTS["preview"]  # the working width (0: the source's own)
    output: str | None = None          # a movie file or an ffmpeg output URL to record to
    serve: int | None = None           # the page's port (0: any free one)
    host: str = "127.0.0.1"
    duration: float | None = None      # seconds from the start (the source's opening and
                                       # the net's loading count) to the end
    input_format: str | None = None    # ffmpeg's -f for the source: v4l2, x11grab, ...
    overwrite: bool = False            # replace an existing output file
    open_timeout: float = OPEN_TIMEOUT  # seconds the source may take to give a picture

    def check(self) -> None:
        """Raise a DeepDreamError naming the first option that cannot work, before anything
        is opened or loaded."""
        from ..io.live import is_url
        if self.duration is not None and not self.duration > 0:
            raise SettingsError("--duration must be more than 0 seconds")
        if not self.open_timeout > 0:
            raise SettingsError("--open-timeout must be more than 0 seconds")
        if self.serve is not None and not 0 <= self.serve <= 65535:
            raise SettingsError("--serve takes a port from 0 (any free one) to 65535")
        if self.output is None or is_url(self.output):
            return
        output = Path(self.output)
        if Path(self.source).exists() and frames.same_path(self.source, output):
            raise SettingsError(f"-o {output} is the live source: give another -o")
        check_output(output, overwrite=self.overwrite)     # a trial: the type, the folder


@dataclasses.dataclass
class LiveReport:
    frames: int              # dreamed and shown
    dropped: int             # decoded and never dreamed: a newer frame came first
    seconds: float           # from the start of the dreaming (the source started) to its end
    latency: float           # mean seconds from a frame's decoding to its display
    recorded: int            # frames in the recording
    recorded_seconds: float  # from the recording's first frame to its last


class Stop(KeyboardInterrupt):
    """SIGTERM: the run stops as on Ctrl-C, its recording finalised."""


@contextlib.contextmanager
def sigterm_stops():
    """While entered (in the main thread), SIGTERM raises Stop there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Stop
    saved = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


class Live:
    """A live run: entering it binds the page's port and opens the source (so that either
    is refused in one line before the net is loaded), ``run`` dreams, leaving it stops
    every thread and ffmpeg and finalises the recording."""

    def __init__(self, options: LiveOptions):
        from ..io.live import Source
        from ..io.live_server import LiveServer
        self.started = time.monotonic()     # --duration counts from here
        options.check()
        self.options = options
        self.server = self.source = self.output = None
        self.stats = _Stats()
        port = options.serve
        if port is None and options.output is None:
            port = DEFAULT_PORT
            log.info("neither -o nor --serve given: the dream is shown on port %d", port)
        self.settings_line = ""
        try:
            if port is not None:
                self.server = LiveServer(options.host, port, self._status)
            self.source = Source(options.source, options.width, options.input_format,
                                 *self._open_wait())
        except BaseException:
            self._close_parts()
            raise

    def _time_left(self) -> float:
        """Seconds until --duration has passed since the start (inf without one)."""
        if self.options.duration is None:
            return math.inf
        return self.started + self.options.duration - time.monotonic()

    def _open_wait(self) -> tuple[float, str]:
        """How long the source may take to give its first picture, and what says so: the
        --open-timeout, or what is left of --duration if that is less."""
        left = self._time_left()
        if left < self.options.open_timeout:
            return max(left, 0.0), f"--duration {self.options.duration:g} s"
        return self.options.open_timeout, "--open-timeout"

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc) -> None:
        self._close_parts()

    def _close_parts(self) -> None:
        """Stop the source, the output (finalising the recording) and the page."""
        try:
            if self.source is not None:
                self.source.close()
            if self.output is not None:
                self.output.close()
        finally:
            if self.server is not None:
                self.server.close()

    def _status(self) -> dict:
        return dict(self.stats.snapshot(), source=self.options.source,
                    settings=self.settings_line)

    @classmethod
    def planned(cls, live: LiveOptions, settings: DreamSettings, model,
                options) -> tuple[Live, Plan]:
        """A live run and its plan (``plan.make_plan``): the settings and run ``options``
        checked before the page is bound and the source opened (``Live(live)``), the layers
        against the source's size, then the net loaded once. Enter the run and ``dream``
        the plan's net; the run is closed if the plan fails."""
        from .plan import make_plan
        opened: list[Live] = []

        def open_source() -> Footage:
            sound, seconds = needs(settings)
            if (sound or seconds) and not Path(live.source).is_file():
                # a stream's or camera's sound and rate are not known ahead: said at once
                raise SettingsError(f"the live source {live.source} is no movie: settings "
                                    "that follow the sound (sound:..., --layer-on beats) or "
                                    "keyframes in seconds need a movie file; give keyframes "
                                    "as frame numbers")
            opened.append(cls(live))
            return opened[0].footage()
        try:
            plan = make_plan(settings, options, model, open_source)
            return opened[0], plan
        except BaseException:
            if opened:
                opened[0]._close_parts()
            raise

    def footage(self) -> Footage:
        """What the run knows of the source's frames: their size; for a movie, its rate,
        where its first picture is and its sound (settings may follow its time and sound);
        a stream's or camera's frames are known by their numbers alone."""
        height, width = self.source.height, self.source.width
        if not self.source.is_file:
            return Footage(height, width)
        from ..io import video
        return Footage.of_movie(self.options.source, video.probe(self.options.source),
                                height, width)

    def run(self, settings: DreamSettings, model, options) -> LiveReport:
        """Dream the source's frames with ``model``, planned (``plan.make_plan``: checked,
        the net loaded once) with the run ``options`` (``dream`` says the rest)."""
        from .plan import make_plan
        plan = make_plan(settings, options, model, self.footage())
        return self.dream(plan.net, plan.timeline, options.threads)

    def dream(self, net, timeline: Timeline | DreamSettings,
              threads: int | None = None) -> LiveReport:
        """Dream the source's frames with ``net`` and each frame's settings (``timeline``:
        a plan's; or settings, the same for every frame; their ``preview`` is the
        working width the source was opened at; on a CPU, with ``threads`` of torch's, else
        $OMP_NUM_THREADS, else the count that is fastest now, as ``threads.TorchThreads``
        measures it, ffmpeg's threads and the page included) until it ends, --duration
        passes, Ctrl-C or SIGTERM.
        Returns the report, also logged; raises VideoError if the source stops (a stream
        ends, a camera is unplugged), DeepDreamError if the settings cannot dream its
        frames."""
        from ..io.recording import Recorder
        source, live = self.source, self.options
        if isinstance(timeline, DreamSettings):
            timeline = Timeline(timeline, Footage(source.height, source.width))
        settings = timeline.settings
        flow.require_opencv().setNumThreads(1)
        self.settings_line = (f"{source.width}x{source.height}, {', '.join(settings.layers)}"
                              f", {settings.octaves} octaves x {settings.iterations} steps, "
                              f"{net.precision} on {net.device}")
        log.info("dreaming %s live: %s", live.source, self.settings_line)
        recorder = Recorder(live.output, source.width, source.height, live.overwrite) \
            if live.output else None
        self.output = _Output(self.server, recorder, self.stats)
        if self.server is not None:
            self.server.start()
        dreamer = _Dreamer(net, timeline, TorchThreads.for_run(net.device, threads))
        self.dreaming_since = time.monotonic()
        reason, closed = "the error below", False
        try:
            reason = self._dream_frames(dreamer)
        except KeyboardInterrupt as e:
            reason = "SIGTERM" if isinstance(e, Stop) else "Ctrl-C"
        finally:
            self.stats.dropped = source.dropped
            output, self.output = self.output, None
            try:
                output.close()        # every frame shown and recorded, the recording closed
                closed = True
            finally:
                report = self._finish(recorder, reason, closed)
        return report

    def _dream_frames(self, dreamer: _Dreamer) -> str:
        """Dream the source's newest frames until it ends or --duration has passed, and
        return which, in a few words; raises VideoError if the source stops giving frames
        (or gives none for STALL seconds)."""
        source, duration = self.source, self.options.duration
        try:
            source.start(*self._open_wait())       # a movie opened again: from its start
        except VideoError:
            if self._time_left() > 0:
                raise
        self.dreaming_since = last_frame = time.monotonic()
        while True:
            if self._time_left() <= 0:
                return f"--duration {duration:g} s passed"
            item = source.take(timeout=min(0.25, self._time_left()))
            self.output.check()
            if item is None:
                if source.finished:
                    return "the movie ended"
                if source.ended or time.monotonic() - last_frame > STALL:
                    raise VideoError(self._lost(source.end_message() if source.ended
                                                else f"no frame for {STALL:g} s"))
                continue
            number, frame, captured = item
            last_frame = time.monotonic()
            self.stats.dropped = source.dropped
            self.output.put(frames.to_uint8(dreamer.dream(number, frame)), captured)

    def _lost(self, why: str) -> str:
        """The line said when the source stops giving frames mid-run."""
        kept = f"; the recording {self.options.output} is kept" if self.options.output else ""
        return (f"the live source {self.options.source} stopped after {self.stats.frames} "
                f"frames ({why}){kept}")

    def _finish(self, recorder, reason: str, closed: bool) -> LiveReport:
        """The report of a run that stopped for ``reason``, logged, with where the
        recording is if it is whole (else the error or warning that follows says)."""
        seconds = time.monotonic() - self.dreaming_since
        stats = self.stats.snapshot()
        report = LiveReport(stats["frames"], stats["dropped"], seconds, stats["mean_latency"],
                            recorder.frames if recorder else 0,
                            (recorder.last - recorder.first) if recorder and recorder.frames
                            else 0.0)
        log.info("stopped (%s): %d frames dreamed in %.1f s, %.1f frames a second, "
                 "%d dropped, latency %.2f s", reason, report.frames, seconds,
                 report.frames / seconds if seconds else 0.0, report.dropped, report.latency)
        if recorder is not None and recorder.saved:
            log.info("recorded %d frames over %.2f s into %s", report.recorded,
                     report.recorded_seconds, recorder.saved)
        elif recorder is not None and closed:
            log.info("nothing recorded: no frame was dreamed")
        return report


class _Dreamer:
    """Each frame dreamed from the previous dream carried along the optical flow between
    the previous frame dreamed and this one (``sequence.Carry``: --flow's carry, decay and
    smoothing), the first frame and each scene cut's afresh."""

    def __init__(self, net, timeline: Timeline, threads: TorchThreads):
        self.timeline, self.threads = timeline, threads
        self.carry = Carry(timeline, flow.FlowCache(None, timeline.settings.flow)
                           if timeline.settings.flow else None)
        self.dreamer = GroupDreamer(net, timeline.settings)
        self.raw = self.dreamed = None

    def dream(self, number: int, frame: np.ndarray) -> np.ndarray:
        """Frame ``number`` of the source (H x W x 3 uint8 RGB) dreamed: H x W x 3 float32,
        with the torch threads that are fastest now (the flow's time counted too)."""
        settings, layer = self.timeline.at(number), self.timeline.layer(number)
        with self.threads.timing(settings, layer, *frame.shape[:2]):
            raw, previous = frame.astype(np.float32), self.dreamed
            if self.carry.is_cut(self.raw, raw):
                log.info("scene cut at frame %d: the dream starts afresh", number)
                previous = None
            source = self.carry.source(number, raw, self.raw, previous)
            dreamed = self.carry.finish(self.dreamer.dream(layer, [(number, source)],
                                                           settings)[0])
        self.raw, self.dreamed = raw, dreamed
        return dreamed


class _Stats:
    """Frames shown, frames a second over the last few seconds, latency; read by the page
    and the log from other threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.frames, self.dropped, self.latency_sum = 0, 0, 0.0
        self.latency = 0.0
        self.recent: collections.deque[float] = collections.deque(maxlen=120)

    def shown(self, captured: float) -> None:
        now = time.monotonic()
        with self.lock:
            self.frames += 1
            self.latency = now - captured
            self.latency_sum += self.latency
            self.recent.append(now)

    def snapshot(self) -> dict:
        with self.lock:
            recent = [t for t in self.recent if t >= time.monotonic() - 3.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and \
                recent[-1] > recent[0] else 0.0
            return {"frames": self.frames, "dropped": self.dropped, "fps": fps,
                    "latency": self.latency,
                    "mean_latency": self.latency_sum / self.frames if self.frames else 0.0}


class _Output:
    """The dreamed frames shown on the page and recorded, on a thread of its own (the dream
    never waits on a viewer or ffmpeg, unless frames pile up), with the log's line every
    LOG_EVERY seconds. An error of the recording's is raised in the dream's thread by
    ``check``, ``put`` or ``close``."""

    def __init__(self, server, recorder, stats: _Stats):
        self.server, self.recorder, self.stats = server, recorder, stats
        self.frames: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="live-output")
        self.thread.start()

    def _run(self) -> None:
        logged = None
        while (item := self.frames.get()) is not None:
            if self.error is not None:
                continue                 # drain, so that put never blocks
            image, captured = item
            try:
                if self.server is not None:
                    self.server.publish(image)
                if self.recorder is not None:
                    self.recorder.write(image)
            except BaseException as e:   # raised in the dream's thread
                self.error = e
                continue
            self.stats.shown(captured)
            logged = logged or time.monotonic()
            if time.monotonic() - logged >= LOG_EVERY:
                logged = time.monotonic()
                now = self.stats.snapshot()
                log.info("live: %.1f frames a second, %d dropped, latency %.2f s",
                         now["fps"], now["dropped"], now["latency"])

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, image: np.ndarray, captured: float) -> None:
        self.check()
        self.frames.put((image, captured))

    def close(self) -> None:
        """Show and record every frame put, then finalise the recording (also at Ctrl-C
        while the frames are awaited: those not recorded by then are left out)."""
        try:
            self.frames.put(None)
            self.thread.join()
        except KeyboardInterrupt:
            if self.recorder is not None:
                self.recorder.close()
            raise
        if self.recorder is not None:
            self.recorder.close()
        self.check()
