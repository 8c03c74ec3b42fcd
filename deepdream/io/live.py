"""Live mode's ffmpeg ends: ``Source`` decodes a camera, stream or movie (a movie at its own
rate) into raw frames of the working size, keeping only the newest; ``Recorder`` encodes the
dreamed frames as they come, timed by the clock, into a movie file or an ffmpeg output URL.
Both ffmpegs run in a session of their own (Ctrl-C in a terminal reaches us, not them: we
end them in order) and die with us."""
from __future__ import annotations

import collections
import logging
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import VideoError
from . import video

log = logging.getLogger(__name__)

# the network protocols whose output needs a container named (a file's comes from its name)
_STREAM_FORMATS = {"udp": "mpegts", "rtp": "rtp_mpegts", "srt": "mpegts", "tcp": "mpegts",
                   "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}


def is_url(name: str) -> bool:
    """Whether ``name`` is a URL for ffmpeg (``udp://...``) rather than a path."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name) is not None


def _start(args: list[str], **pipes) -> subprocess.Popen:
    """An ffmpeg of ours: its own session (no Ctrl-C from the terminal), dying with us."""
    log.debug("running %s", " ".join(args))
    return subprocess.Popen(args, start_new_session=True, preexec_fn=video.dies_with_us(),
                            **pipes)


def _stop(process: subprocess.Popen, wait: float = 10.0) -> None:
    """End an ffmpeg of ours: it is asked (SIGTERM, after which ffmpeg closes its output
    properly) and killed if it has not ended after ``wait`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Stderr:
    """An ffmpeg's stderr read on a thread of its own: the lines up to a given one are
    waited for, the last ones kept for a message."""

    def __init__(self, stream):
        self.lines: collections.deque[str] = collections.deque(maxlen=40)
        self.header: list[str] = []
        self.changed = threading.Condition()
        self.ended = False
        threading.Thread(target=self._read, args=(stream,), daemon=True,
                         name="ffmpeg-stderr").start()

    def _read(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            with self.changed:
                self.lines.append(line)
                if len(self.header) < 200:
                    self.header.append(line)
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait_for(self, pattern: str, after: str) -> re.Match | None:
        """The match of ``pattern`` in the first header line that matches it after a line
        that begins with ``after``, waiting for it; None if ffmpeg's stderr ended first."""
        with self.changed:
            while True:
                start = next((i for i, line in enumerate(self.header)
                              if line.startswith(after)), len(self.header))
                found = next((m for line in self.header[start:]
                              for m in [re.search(pattern, line)] if m), None)
                if found is not None or self.ended:
                    return found
                self.changed.wait(0.5)

    def tail(self, count: int = 2) -> str:
        """ffmpeg's last ``count`` lines that say something, joined by ' | '."""
        with self.changed:
            lines = [re.sub(r"^\[[\w-]+ @ 0x[0-9a-f]+\] ", "", line) for line in self.lines
                     if line.strip()]
        return " | ".join(lines[-count:]) or "no message"


class Source:
    """Frames decoded by ffmpeg from ``name`` (a movie file, played at its own rate; a
    device with ``input_format``, e.g. v4l2; or any URL ffmpeg opens), scaled to ``width``
    pixels (0: as they come; an even size either way), read on a thread that keeps only the
    newest: a frame that the dream has not taken when the next one comes is dropped.

    Opening waits until ffmpeg has opened the source and raises VideoError in one line if it
    cannot (nothing of the dream is loaded by then)."""

    def __init__(self, name: str, width: int, input_format: str | None = None):
        self.name, self.is_file = name, Path(name).is_file()
        if not (self.is_file or is_url(name) or input_format or Path(name).exists()):
            raise VideoError(f"live source not found: {name} (give a movie, a device with "
                             "--input-format, or a URL such as udp://127.0.0.1:1234)")
        scale = f"trunc({width}/2)*2:-2" if width else "trunc(iw/2)*2:trunc(ih/2)*2"
        args = [video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-threads", "1"]
        args += ["-re"] if self.is_file else []
        args += ["-f", input_format] if input_format else []
        self.args = args + ["-i", video.ffmpeg_path(name) if self.is_file else name,
                            "-map", "0:v:0", "-vf", f"scale={scale}", "-threads", "1",
                            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        log.info("opening %s", name)
        self._open()
        self.frames = 0            # decoded so far
        self.dropped = 0           # decoded, but replaced by a newer one before it was taken
        self._newest: tuple[int, np.ndarray, float] | None = None
        self._ready = threading.Condition()
        self.ended = False
        self._thread = threading.Thread(target=self._read, daemon=True, name="live-decode")
        if not self.is_file:       # read at once: a stream not read overflows its buffers
            self._thread.start()

    def _open(self) -> None:
        """Start ffmpeg and wait until it has opened the source and knows the frames' size.
        Raises VideoError with ffmpeg's last words if it cannot."""
        self.process = _start(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = _Stderr(self.process.stderr)
        try:
            size = self.stderr.wait_for(r"Video: rawvideo.*?, (\d+)x(\d+)", "Output #0")
        except BaseException:       # Ctrl-C while a stream is awaited
            self._kill()
            raise
        if size is None:
            self.process.wait()
            raise VideoError(f"cannot open the live source {self.name}: "
                             f"{self.stderr.tail()}")
        self.width, self.height = map(int, size.groups())

    def start(self) -> None:
        """Start giving frames: a movie from its beginning (opened again: it played on
        while the dream was loading), a stream or camera from now (what came before is
        forgotten, not counted as dropped)."""
        if self.is_file:
            self._kill()
            self._open()
            self._thread.start()
        with self._ready:
            self._newest, self.dropped = None, 0

    def _read(self) -> None:
        size = self.width * self.height * 3
        stdout = self.process.stdout
        while True:
            data = stdout.read(size)
            if len(data) < size:
                break
            frame = np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3)
            with self._ready:
                self.frames += 1
                if self._newest is not None:
                    self.dropped += 1
                self._newest = (self.frames, frame, time.monotonic())
                self._ready.notify_all()
        self.process.wait()
        with self._ready:
            self.ended = True
            self._ready.notify_all()

    def take(self, timeout: float) -> tuple[int, np.ndarray, float] | None:
        """The newest frame not yet taken: (its number from 1, H x W x 3 RGB uint8, when it
        was decoded on ``time.monotonic``'s clock); waits up to ``timeout`` seconds for one.
        None if none came in that time or the source has ended (``ended``)."""
        with self._ready:
            if self._newest is None and not self.ended:
                self._ready.wait(timeout)
            newest, self._newest = self._newest, None
            return newest

    def end_message(self) -> str:
        """Why ffmpeg stopped giving frames, in a few words (its last lines)."""
        return f"ffmpeg exited with code {self.process.returncode}: {self.stderr.tail()}"

    def _kill(self) -> None:
        """End the decoder at once (it has nothing to finish, and may be blocked writing a
        frame that nobody reads)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        self._kill()
        if self._thread.is_alive():
            self._thread.join(5.0)


def _options(options: dict[str, str]) -> list[str]:
    """ffmpeg-python's options dict as command-line words."""
    return [word for key, value in options.items() for word in (f"-{key}", value)]


def output_args(output: str) -> list[str]:
    """The output of the recorder's ffmpeg for ``output``: a URL with its container (udp://
    as MPEG-TS, rtmp:// as FLV), or a file's path as ffmpeg must be given it."""
    if is_url(output):
        scheme = output.split("://", 1)[0].lower()
        return (["-f", _STREAM_FORMATS[scheme]] if scheme in _STREAM_FORMATS else []) + [output]
    options = ["-movflags", "+faststart"] if output.lower().endswith((".mp4", ".mov",
                                                                      ".m4v")) else []
    return options + [video.ffmpeg_path(output)]


class Recorder:
    """The dreamed frames (width x height RGB) encoded by ffmpeg as they are written, each
    timed by the clock when it is written (H.264, variable frame rate: the rate actually
    achieved). A file is written under a temporary name and takes its own at ``close``;
    a URL (udp://, rtmp://, ...) is streamed to. A file there already is replaced only with
    ``overwrite``, also one that appeared while recording. Raises VideoError in one line if
    ffmpeg stops taking frames."""

    def __init__(self, output: str, width: int, height: int, overwrite: bool = False):
        self.output, self.overwrite = output, overwrite
        self.path = None if is_url(output) else Path(output)
        self.part = video.temporary_name(self.path) if self.path else None
        if self.path:
            video.remove_left_by_dead_runs(self.path)
        target = output_args(str(self.part) if self.part else output)
        args = [video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                # each frame timed when it is read, in milliseconds (the encoder's time
                # base follows the input's rate: at the default 25, times fell on 1/25 s
                # and frames less than 40 ms apart were lost)
                "-framerate", "1000", "-use_wallclock_as_timestamps", "1", "-i", "pipe:0",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-threads", "1", *_options(video.frame_rate_mode("vfr")), *target]
        self.process = _start(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = _Stderr(self.process.stderr)
        self.frames, self.first, self.last = 0, None, None

    def write(self, image: np.ndarray) -> None:
        """Hand one H x W x 3 uint8 frame to ffmpeg (it is timed now)."""
        try:
            self.process.stdin.write(np.ascontiguousarray(image).tobytes())
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            self.process.wait()
            raise VideoError(f"ffmpeg stopped recording to {self.output}: "
                             f"{self.stderr.tail()}") from None
        now = time.monotonic()
        self.first = now if self.first is None else self.first
        self.last, self.frames = now, self.frames + 1

    def close(self) -> None:
        """Finish the recording: ffmpeg takes its last frame and closes the file, which
        takes its name (nothing is written when no frame was: the temporary file is
        removed). Raises VideoError if ffmpeg fails."""
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            _stop(self.process)
        failed = self.process.returncode != 0
        if self.part is not None:
            if failed or not self.frames:
                self.part.unlink(missing_ok=True)          # ours: made by this process
            else:
                self._name_the_recording()
        if failed and self.frames:
            raise VideoError(f"ffmpeg could not finish the recording {self.output}: "
                             f"{self.stderr.tail()}")

    def _name_the_recording(self) -> None:
        """Give the finished recording its name: replacing a file there only with
        ``overwrite``; else, if one appeared while recording, the recording keeps a name of
        its own beside it (``NAME.live-PID.EXT``) and a VideoError says so."""
        if self.overwrite:
            os.replace(self.part, self.path)
            return
        for name in (self.path, self.path.with_name(
                f"{self.path.stem}.live-{os.getpid()}{self.path.suffix}")):
            try:
                os.link(self.part, name)          # never over a file that is there
            except FileExistsError:
                continue
            except OSError:                       # a file system without hard links
                if name.exists():
                    continue
                os.replace(self.part, name)
            else:
                self.part.unlink()
            if name != self.path:
                raise VideoError(f"{self.path} appeared while recording and is left as it "
                                 f"is: the recording is {name}")
            return
        raise VideoError(f"{self.path} appeared while recording and is left as it is: the "
                         f"recording is {self.part}")
