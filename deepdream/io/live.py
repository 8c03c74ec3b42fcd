"""Live mode's source: ``Source`` decodes a camera, stream, named pipe or movie (a movie at
its own rate) into raw frames of the working size, keeping only the newest; and what live
mode's ffmpegs share (``start``, ``stop``, ``Stderr``: the recording's is in ``recording``).
Both ffmpegs run in a session of their own (Ctrl-C in a terminal reaches us, not them: we
end them in order) and die with us."""
from __future__ import annotations

import collections
import logging
import re
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import VideoError
from . import video

log = logging.getLogger(__name__)


# how long a live source may take to give its first picture (a stream's next keyframe, a
# camera waking), in seconds
OPEN_TIMEOUT = 20.0
STREAM_PROBE_US = 1_000_000  # the microseconds of a stream that ffmpeg reads to probe it


def is_url(name: str) -> bool:
    """Whether ``name`` is a URL for ffmpeg (``udp://...``) rather than a path."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name) is not None


def _is_fifo(path: Path) -> bool:
    """Whether ``path`` is a named pipe (a live stream: read as it comes, never played
    from its start)."""
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def start(args: list[str], **pipes) -> subprocess.Popen:
    """An ffmpeg of ours: its own session (no Ctrl-C from the terminal), dying with us."""
    log.debug("running %s", " ".join(args))
    return subprocess.Popen(args, start_new_session=True, preexec_fn=video.dies_with_us(),
                            **pipes)


def stop(process: subprocess.Popen, wait: float = 10.0) -> None:
    """End an ffmpeg of ours: it is asked (SIGTERM, after which ffmpeg closes its output
    properly) and killed if it has not ended after ``wait`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Stderr:
    """An ffmpeg's stderr read as it comes, on a thread of its own: its last lines kept for
    a message, and the first line that matches ``wanted`` at or after the first line that
    begins with ``after`` kept however many lines come before it (a stream joined between
    two keyframes makes ffmpeg say hundreds of lines before its output's)."""

    LINE = 4096                 # the most characters read as one line (memory stays bounded)

    def __init__(self, stream, wanted: str | None = None, after: str = ""):
        self.lines: collections.deque[str] = collections.deque(maxlen=40)
        self.found: re.Match | None = None
        self._wanted, self._after, self._passed = wanted, after, not after
        self.changed = threading.Condition()
        self.ended = False
        threading.Thread(target=self._read, args=(stream,), daemon=True,
                         name="ffmpeg-stderr").start()

    def _read(self, stream) -> None:
        for raw in iter(lambda: stream.readline(self.LINE), b""):
            line = raw.decode(errors="replace").rstrip()
            with self.changed:
                self.lines.append(line)
                if self._wanted and self.found is None:
                    self._passed = self._passed or line.startswith(self._after)
                    if self._passed:
                        self.found = re.search(self._wanted, line)
                        if self.found:
                            self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait(self, timeout: float) -> re.Match | None:
        """The match of the wanted line, waiting up to ``timeout`` seconds for it; None if
        ffmpeg's stderr ended first (``ended``) or the time passed."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.found is None and not self.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return self.found

    def tail(self, count: int = 2) -> str:
        """ffmpeg's last ``count`` lines that say something, joined by ' | '."""
        with self.changed:
            lines = [re.sub(r"^\[[\w-]+ @ 0x[0-9a-f]+\] ", "", line) for line in self.lines
                     if line.strip()]
        return " | ".join(lines[-count:]) or "no message"


def _exit_words(process: subprocess.Popen, stderr: Stderr) -> str:
    """How an ffmpeg of ours ended, in a few words: its exit code (or the signal that
    killed it: a crash) and its last lines."""
    code = process.returncode
    if code is not None and code < 0:
        try:
            how = f"ffmpeg crashed ({signal.Signals(-code).name})"
        except ValueError:
            how = f"ffmpeg was killed by signal {-code}"
    else:
        how = f"ffmpeg exited with code {code}"
    return f"{how}: {stderr.tail()}"


class Source:
    """Frames decoded by ffmpeg from ``name`` (a movie file, played at its own rate; a
    device with ``input_format``, e.g. v4l2; a named pipe; or any URL ffmpeg opens), scaled
    to ``width`` pixels (0: as they come; an even size either way), read on a thread that
    keeps only the newest: a frame that the dream has not taken when the next one comes is
    dropped. A stream joined between two keyframes starts at the next one.

    Opening waits until ffmpeg has decoded the first picture, ``timeout`` seconds at most
    (``limit`` names what set it, for the message), and raises VideoError in one line if it
    cannot or none came (nothing of the dream is loaded by then)."""

    def __init__(self, name: str, width: int, input_format: str | None = None,
                 timeout: float = OPEN_TIMEOUT, limit: str = ""):
        path = Path(name)
        self.name, self.is_file = name, path.is_file()
        self.is_pipe = _is_fifo(path)
        if not (self.is_file or self.is_pipe or is_url(name) or input_format or
                path.exists()):
            raise VideoError(f"live source not found: {name} (give a movie, a device with "
                             "--input-format, or a URL such as udp://127.0.0.1:1234)")
        scale = f"trunc({width}/2)*2:-2" if width else "trunc(iw/2)*2:trunc(ih/2)*2"
        args = [video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-threads", "1"]
        args += ["-re"] if self.is_file else []
        if self.is_pipe or is_url(name):
            # a stream's probe reads 5 s of it by default before the first picture; the
            # picture's size comes with its first keyframe either way
            args += ["-analyzeduration", str(STREAM_PROBE_US)]
        args += ["-f", input_format] if input_format else []
        self.args = args + ["-i", video.ffmpeg_path(name) if self.is_file or self.is_pipe
                            else name,
                            "-map", "0:v:0", "-vf", f"scale={scale}", "-threads", "1",
                            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        self.input_format = input_format
        log.info("opening %s", name)
        self._open(timeout, limit)
        self.frames = 0            # decoded so far
        self.dropped = 0           # decoded, but replaced by a newer one before it was taken
        self._newest: tuple[int, np.ndarray, float] | None = None
        self._ready = threading.Condition()
        self.ended = False
        self._thread = threading.Thread(target=self._read, daemon=True, name="live-decode")
        if not self.is_file:       # read at once: a stream not read overflows its buffers
            self._thread.start()

    def _open(self, timeout: float, limit: str) -> None:
        """Start ffmpeg and wait, up to ``timeout`` seconds, until it has decoded the first
        picture and so knows the frames' size. Raises VideoError with ffmpeg's last words
        if it cannot, or naming what to check (and ``limit``) if no picture came in time."""
        self.process = start(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = Stderr(self.process.stderr, r"Video: rawvideo.*?, (\d+)x(\d+)",
                              after="Output #0")
        try:
            size = self.stderr.wait(timeout)
        except BaseException:       # Ctrl-C while a stream is awaited
            self._kill()
            raise
        if size is None and not self.stderr.ended:
            self._kill()
            limit = f" ({limit})" if limit else ""
            raise VideoError(f"no picture from the live source {self.name} in "
                             f"{round(timeout, 2):g} s{limit}: check that "
                             f"{self._what_to_check()}")
        if size is None:
            self.process.wait()
            raise VideoError(f"cannot open the live source {self.name}: "
                             f"{_exit_words(self.process, self.stderr)}")
        self.width, self.height = map(int, size.groups())

    def _what_to_check(self) -> str:
        """What keeps a source of this kind from giving a picture, as a user checks it."""
        if self.is_pipe:
            return "a program is writing a movie or stream into this named pipe"
        if is_url(self.name):
            return "the address is right and something is sending to it now"
        if self.input_format:
            return "the device is there and no other program is using it"
        return "the file can be read"

    def start(self, timeout: float = OPEN_TIMEOUT, limit: str = "") -> None:
        """Start giving frames: a movie from its beginning (opened again, as ``__init__``
        opens it: it played on while the dream was loading), a stream or camera from now
        (what came before is forgotten, not counted as dropped)."""
        if self.is_file:
            self._kill()
            self._open(timeout, limit)
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
        return _exit_words(self.process, self.stderr)

    @property
    def finished(self) -> bool:
        """Whether a movie file has ended whole (its ffmpeg exited without an error)."""
        return self.is_file and self.ended and self.process.returncode == 0

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
