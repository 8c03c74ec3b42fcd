"""Live mode's ffmpeg ends: ``Source`` decodes a camera, stream, named pipe or movie (a movie
at its own rate) into raw frames of the working size, keeping only the newest; ``Recorder``
encodes the dreamed frames as they come, each timed when it is written, into a movie file
or an ffmpeg output URL.
Both ffmpegs run in a session of their own (Ctrl-C in a terminal reaches us, not them: we
end them in order) and die with us."""
from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import re
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import VideoError
from . import ours, video

log = logging.getLogger(__name__)

# the network protocols whose output needs a container named (a file's comes from its name)
_STREAM_FORMATS = {"udp": "mpegts", "rtp": "rtp_mpegts", "srt": "mpegts", "tcp": "mpegts",
                   "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}

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


def _exit_words(process: subprocess.Popen, stderr: _Stderr) -> str:
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
        self.process = _start(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = _Stderr(self.process.stderr, r"Video: rawvideo.*?, (\d+)x(\d+)",
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


class _Matroska:
    """Frames in the few Matroska elements that give each its own time, in ms: how the
    recorder's ffmpeg is given them. (Raw video timed by ffmpeg's clock gave a frame the
    time it was read, not written, and frames read within one ms one time: all but one of
    them were lost.) Uncompressed RGB (``V_UNCOMPRESSED``, fourcc ``RGB\\x18``), a cluster
    a frame, the segment of unknown size, as a live stream's."""

    @staticmethod
    def element(tag: int, body: bytes | int | str) -> bytes:
        """One EBML element: its ID, its size (8 bytes, always allowed) and its body."""
        if isinstance(body, int):
            body = body.to_bytes(max(1, (body.bit_length() + 7) // 8), "big")
        elif isinstance(body, str):
            body = body.encode()
        return (tag.to_bytes((tag.bit_length() + 7) // 8, "big") +
                (len(body) | 1 << 56).to_bytes(8, "big") + body)

    @classmethod
    def header(cls, width: int, height: int) -> bytes:
        """The EBML header, the segment's start, its info and its one video track."""
        e = cls.element
        ebml = e(0x1A45DFA3, e(0x4286, 1) + e(0x42F7, 1) + e(0x42F2, 4) + e(0x42F3, 8) +
                 e(0x4282, "matroska") + e(0x4287, 4) + e(0x4285, 2))  # versions, doctype
        segment = bytes.fromhex("18538067" "01ffffffffffffff")         # of unknown size
        info = e(0x1549A966, e(0x2AD7B1, 1_000_000) +                   # times in ms
                 e(0x4D80, "deepdream") + e(0x5741, "deepdream"))       # muxer, writer
        picture = e(0xE0, e(0xB0, width) + e(0xBA, height) +            # pixels across, down
                    e(0x2EB524, b"RGB\x18"))                            # colour space
        # number 1, uid 1, video, uncompressed; a default duration of 1 ms: ffmpeg's rate
        # for the stream, so that the encoder's time base is 1 ms (at its default of 1/25 s,
        # frames under 40 ms apart were lost)
        track = e(0xAE, e(0xD7, 1) + e(0x73C5, 1) + e(0x83, 1) + e(0x86, "V_UNCOMPRESSED") +
                  e(0x23E383, 1_000_000) + picture)
        return ebml + segment + info + e(0x1654AE6B, track)                 # the tracks

    @classmethod
    def frame(cls, ms: int, data: bytes) -> bytes:
        """A cluster at ``ms`` holding one simple block: a key frame of track 1 at the
        cluster's time (track 0x81, relative time 0, flags 0x80: key)."""
        return cls.element(0x1F43B675, cls.element(0xE7, ms) +
                           cls.element(0xA3, b"\x81\x00\x00\x80" + data))


class Recorder:
    """The dreamed frames (width x height RGB) encoded by ffmpeg as they are written, each
    timed when it is written, to the ms (H.264, variable frame rate: the rate actually
    achieved; frames written within one ms are timed 1 ms apart, none lost). A file is
    written under a temporary name and takes its own at ``close``; a URL (udp://, rtmp://,
    ...) is streamed to. A file there already is replaced only with ``overwrite``, also one
    that appeared while recording. Raises VideoError in one line if ffmpeg stops taking
    frames. ``grace``: the seconds ``close`` gives ffmpeg to finish."""

    GRACE = 60.0

    def __init__(self, output: str, width: int, height: int, overwrite: bool = False,
                 grace: float = GRACE):
        self.output, self.overwrite, self.grace = output, overwrite, grace
        self.path = None if is_url(output) else Path(output)
        self._scratch = contextlib.ExitStack()     # our scratch folder beside the file
        self.part = self._scratch.enter_context(ours.temporary(self.path)) if self.path \
            else None
        target = output_args(str(self.part) if self.part else output)
        args = [video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-y",
                "-f", "matroska", "-i", "pipe:0",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-threads", "1", *_options(video.frame_rate_mode("vfr")), *target]
        self.process = _start(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = _Stderr(self.process.stderr)
        self.frames, self.first, self.last, self._ms = 0, None, None, -1
        self.saved: str | None = None      # where the whole recording is, once closed
        self.kept: str | None = None       # where what a failed ffmpeg wrote is kept
        self._send(_Matroska.header(width, height))

    def _send(self, data: bytes) -> None:
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            self.process.wait()
            raise VideoError(f"ffmpeg stopped recording to {self.output}: "
                             f"{self.stderr.tail()}") from None

    def write(self, image: np.ndarray) -> None:
        """Hand one H x W x 3 uint8 frame to ffmpeg, timed now (to the ms; 1 ms after the
        frame before at least)."""
        now = time.monotonic()
        first = now if self.first is None else self.first
        ms = max(round((now - first) * 1000), self._ms + 1)
        self._send(_Matroska.frame(ms, np.ascontiguousarray(image).tobytes()))
        self.first, self._ms, self.frames = first, ms, self.frames + 1
        self.last = first + ms / 1000

    def close(self) -> None:
        """Finish the recording: ffmpeg takes its last frame and closes the file, which
        takes its name (nothing is written when no frame was: the temporary file is
        removed). An ffmpeg that fails, is still at work after ``grace`` seconds or meets
        Ctrl-C meanwhile (both: it is stopped) leaves what it wrote under a name of its
        own, never over a file: a VideoError says where (at Ctrl-C, a warning, and the
        KeyboardInterrupt goes on)."""
        with self._scratch:                # what is left in it goes with it
            self._close()

    def _close(self) -> None:
        stopped, interrupted = "", False
        try:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            self.process.wait(self.grace)
        except subprocess.TimeoutExpired:
            stopped = f"still at work {self.grace:g} s after the last frame, so stopped"
        except KeyboardInterrupt:
            stopped, interrupted = "stopped by Ctrl-C while it finished", True
        if stopped:
            _stop(self.process, min(10.0, self.grace))
        if self.process.returncode == 0:
            self.saved = self._name_the_recording() if self.part else self.output
            if interrupted:
                raise KeyboardInterrupt
            return
        why = stopped or self.stderr.tail()
        if self.part is not None and self.frames and _holds_data(self.part):
            self.kept = str(self._link(self._free_names()))
            message = (f"ffmpeg could not finish the recording {self.output} ({why}); what "
                       f"it wrote is kept as {self.kept} and may be incomplete")
        else:                                  # the temporary file goes with our scratch
            message = f"ffmpeg could not finish the recording {self.output}: {why}"
        if interrupted:
            if self.kept:
                log.warning("%s", message)
            raise KeyboardInterrupt
        if self.frames:
            raise VideoError(message)

    def _name_the_recording(self) -> str | None:
        """Give the finished recording its name, and return it (None when no frame was
        written: the temporary file is removed): the file there is replaced only with
        ``overwrite``; else, if one appeared while recording, the recording keeps a name
        of its own beside it (``NAME.live-PID.EXT``) and a VideoError says so."""
        if not self.frames:
            return None                        # the temporary file goes with our scratch
        if self.overwrite:
            ours.put_in_place(self.part, self.path, replace=True)
            return str(self.path)
        name = self._link(self._free_names())
        if name != self.path:
            raise VideoError(f"{self.path} appeared while recording and is left as it "
                             f"is: the recording is {name}")
        return str(name)

    def _free_names(self):
        """The names the recording may take, in order: its own, then ``NAME.live-PID.EXT``
        beside it, then those with -1, -2, ... added."""
        yield self.path
        stem = f"{self.path.stem}.live-{os.getpid()}"
        yield self.path.with_name(f"{stem}{self.path.suffix}")
        for number in itertools.count(1):
            yield self.path.with_name(f"{stem}-{number}{self.path.suffix}")

    def _link(self, names) -> Path:
        """Give the temporary file the first of ``names`` that no file has, never over a
        file that is there (``ours.put_in_place``), and return it."""
        return next(name for name in names if ours.put_in_place(self.part, name))


def _holds_data(path: Path) -> bool:
    """Whether ``path`` is a file with something in it."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False
