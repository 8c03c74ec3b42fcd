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
import queue
import signal
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import SettingsError, VideoError
from ..io import flow, frames, scenes
from ..io.encoding import refuse_existing
from . import schedules, transforms
from .settings import DreamSettings
from .threads import TorchThreads

log = logging.getLogger(__name__)

# the flags' defaults in live mode (a flag given, or a recipe's value, wins): frames 320
# pixels wide, 2 octaves of 3 steps -- about 8 frames a second on a 2-core laptop CPU
LIVE_DEFAULTS = {"preview": 320, "octaves": 2, "iterations": 3}
DEFAULT_PORT = 8765          # the page's, when neither -o nor --serve is given
LOG_EVERY = 5.0              # seconds between the log's lines of frames a second and latency
STALL = 10.0                 # seconds without a frame, once frames came, that end a stream


@dataclasses.dataclass
class LiveOptions:
    """Where live mode's frames come from and go to."""
    source: str                        # a movie, a device (with input_format) or a URL
    width: int = LIVE_DEFAULTS["preview"]  # the working width (0: the source's own)
    output: str | None = None          # a movie file or an ffmpeg output URL to record to
    serve: int | None = None           # the page's port (0: any free one)
    host: str = "127.0.0.1"
    duration: float | None = None      # seconds to dream for
    input_format: str | None = None    # ffmpeg's -f for the source: v4l2, x11grab, ...
    overwrite: bool = False            # replace an existing output file

    def check(self) -> None:
        """Raise a DeepDreamError naming the first option that cannot work, before anything
        is opened or loaded."""
        from ..io.live import is_url
        if self.duration is not None and not self.duration > 0:
            raise SettingsError("--duration must be more than 0 seconds")
        if self.serve is not None and not 0 <= self.serve <= 65535:
            raise SettingsError("--serve takes a port from 0 (any free one) to 65535")
        if self.output is None or is_url(self.output):
            return
        output = Path(self.output)
        if Path(self.source).exists() and frames.same_path(self.source, output):
            raise SettingsError(f"-o {output} is the live source: give another -o")
        if not output.parent.is_dir():
            raise VideoError(f"the folder of -o {output} does not exist")
        refuse_existing(output, self.overwrite)


@dataclasses.dataclass
class LiveReport:
    frames: int              # dreamed and shown
    dropped: int             # decoded and never dreamed: a newer frame came first
    seconds: float           # from the start of the dreaming to its end
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
            self.source = Source(options.source, options.width, options.input_format)
        except BaseException:
            self._close_parts()
            raise

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

    def run(self, settings: DreamSettings, model, options) -> LiveReport:
        """Dream the source's frames with ``model``, loaded as ``dreaming.load_model_net``
        loads it with the run ``options`` (``dream`` says the rest)."""
        from .dreaming import load_model_net
        settings.check()
        return self.dream(load_model_net(model, options), settings, options.threads)

    def dream(self, net, settings: DreamSettings, threads: int | None = None) -> LiveReport:
        """Dream the source's frames with ``net`` and ``settings`` (its ``preview`` is the
        working width the source was opened at; on a CPU, with ``threads`` of torch's, else
        $OMP_NUM_THREADS, else the count that is fastest now, as ``threads.TorchThreads``
        measures it, ffmpeg's threads and the page included) until it ends, --duration
        passes, Ctrl-C or SIGTERM.
        Returns the report, also logged; raises VideoError if the source stops (a stream
        ends, a camera is unplugged), DeepDreamError if the settings cannot dream its
        frames."""
        from .dreaming import check_frames
        from ..io.live import Recorder
        source, live = self.source, self.options
        torch_threads = TorchThreads.for_run(net.device, threads)
        flow.require_opencv().setNumThreads(1)
        check_frames(net, settings, source.height, source.width)
        self.settings_line = (f"{source.width}x{source.height}, {', '.join(settings.layers)}"
                              f", {settings.octaves} octaves x {settings.iterations} steps, "
                              f"{net.precision} on {net.device}")
        log.info("dreaming %s live: %s", live.source, self.settings_line)
        recorder = Recorder(live.output, source.width, source.height, live.overwrite) \
            if live.output else None
        self.output = _Output(self.server, recorder, self.stats)
        if self.server is not None:
            self.server.start()
        dreamer = _Dreamer(net, settings)
        source.start()
        started = last_frame = time.monotonic()
        reason = "the movie ended"
        try:
            while True:
                now = time.monotonic()
                if live.duration is not None and now - started >= live.duration:
                    reason = f"--duration {live.duration:g} s passed"
                    break
                item = source.take(timeout=0.25)
                self.output.check()
                if item is None:
                    if source.ended and source.is_file:
                        break
                    if source.ended or (self.stats.frames and now - last_frame > STALL):
                        reason = "the source stopped"
                        raise VideoError(self._lost(source.end_message() if source.ended
                                                    else f"no frame for {STALL:g} s"))
                    continue
                number, frame, captured = item
                last_frame = time.monotonic()
                self.stats.dropped = source.dropped
                with torch_threads.timing(settings, schedules.layer_for_frame(
                        number, settings.layers), *frame.shape[:2]):
                    dreamed = dreamer.dream(number, frame)
                self.output.put(frames.to_uint8(dreamed), captured)
        except KeyboardInterrupt as e:
            reason = "SIGTERM" if isinstance(e, Stop) else "Ctrl-C"
        finally:
            self.stats.dropped = source.dropped
            output, self.output = self.output, None
            try:
                output.close()        # every frame shown and recorded, the recording closed
            finally:
                report = self._finish(started, recorder, reason)
        return report

    def _lost(self, why: str) -> str:
        """The line said when the source stops giving frames mid-run."""
        kept = f"; the recording {self.options.output} is kept" if self.options.output else ""
        return (f"the live source {self.options.source} stopped after {self.stats.frames} "
                f"frames ({why}){kept}")

    def _finish(self, started: float, recorder, reason: str) -> LiveReport:
        seconds = time.monotonic() - started
        stats = self.stats.snapshot()
        report = LiveReport(stats["frames"], stats["dropped"], seconds, stats["mean_latency"],
                            recorder.frames if recorder else 0,
                            (recorder.last - recorder.first) if recorder and recorder.frames
                            else 0.0)
        log.info("stopped (%s): %d frames dreamed in %.1f s, %.1f frames a second, "
                 "%d dropped, latency %.2f s", reason, report.frames, seconds,
                 report.frames / seconds if seconds else 0.0, report.dropped, report.latency)
        if recorder is not None:
            log.info("recorded %d frames over %.2f s into %s", report.recorded,
                     report.recorded_seconds, self.options.output)
        return report


class _Dreamer:
    """Each frame dreamed from the previous dream carried along the optical flow between
    the previous frame dreamed and this one (``--flow``'s carry, decay and smoothing), the
    first frame and each scene cut's afresh."""

    def __init__(self, net, settings: DreamSettings):
        self.net, self.settings = net, settings
        self.raw = self.dreamed = self.small = None
        self.guide = frames.read_frame(settings.guide_image) if settings.guide_image else None
        self.features: dict[str, np.ndarray] = {}

    def _cut(self, raw: np.ndarray) -> bool:
        """Whether ``raw`` starts a new scene after the previous frame dreamed."""
        small, self.small = self.small, scenes.small_hsv(raw)
        return self.settings.scene_cuts and small is not None and \
            scenes.content_score(small, self.small) >= self.settings.scene_threshold

    def dream(self, number: int, frame: np.ndarray) -> np.ndarray:
        """Frame ``number`` of the source (H x W x 3 uint8 RGB) dreamed: H x W x 3 float32."""
        from ..dreamer.ascent import dream, guide_features
        from ..errors import ZeroGradientError
        s, raw = self.settings, frame.astype(np.float32)
        source, moved, mask = raw, None, None
        if self._cut(raw):
            log.info("scene cut at frame %d: the dream starts afresh", number)
        elif self.raw is not None:
            field, mask = flow.flow_and_mask(self.raw, raw, s.flow)
            moved = flow.moved_detail(self.dreamed, self.raw, field, mask)
            source = transforms.carried(s, raw, moved)
        layer = schedules.layer_for_frame(number, s.layers)
        if self.guide is not None and layer not in self.features:
            self.features[layer] = guide_features(self.net, self.guide, layer)
        try:
            dreamed = dream(self.net, source, layer, guide=self.features.get(layer),
                            seed=schedules.seed_for_frame(s.seed, number),
                            **s.ascent_options())
        except ZeroGradientError as e:
            log.debug("frame %d kept as it is: %s", number, e)
            dreamed = source
        dreamed = transforms.finish_dream(s, dreamed, raw, moved, mask)
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
        """Show and record every frame put, then finalise the recording."""
        self.frames.put(None)
        self.thread.join()
        try:
            if self.recorder is not None:
                self.recorder.close()
        finally:
            self.check()
