"""Live mode's recording: the dreamed frames encoded by ffmpeg as they come (``Recorder``),
each timed by us when it is written (a minimal Matroska stream on ffmpeg's input), into a movie
file (written in our scratch folder, named without ever replacing a file) or an ffmpeg output
URL."""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import subprocess
import time
from pathlib import Path

import numpy as np

from ..errors import VideoError
from . import ours, video
from .live import Stderr, is_url, start, stop

log = logging.getLogger(__name__)

# the network protocols whose output needs a container named (a file's comes from its name)
_STREAM_FORMATS = {"udp": "mpegts", "rtp": "rtp_mpegts", "srt": "mpegts", "tcp": "mpegts",
                   "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}
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
    frames, or takes nothing of one for ``stall`` seconds (a stream whose receiver takes no
    more, a stream that waits for a receiver to connect): it is stopped. ``grace``: the
    seconds ``close`` gives ffmpeg to finish."""

    GRACE = 60.0
    STALL = 10.0

    def __init__(self, output: str, width: int, height: int, overwrite: bool = False,
                 grace: float = GRACE, stall: float = STALL):
        self.output, self.overwrite, self.grace, self.stall = output, overwrite, grace, stall
        self.stalled = False
        self.path = None if is_url(output) else Path(output)
        self._scratch = contextlib.ExitStack()     # our scratch folder beside the file
        self.part = self._scratch.enter_context(ours.temporary(self.path)) if self.path \
            else None
        try:
            target = output_args(str(self.part) if self.part else output)
            args = [video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-y",
                    "-f", "matroska", "-i", "pipe:0",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-threads", "1", *_options(video.frame_rate_mode("vfr")), *target]
            self.process = start(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            self._ready = None         # POSIX: written without blocking, as ffmpeg takes it
            if hasattr(select, "poll"):
                os.set_blocking(self.process.stdin.fileno(), False)
                self._ready = select.poll()
                self._ready.register(self.process.stdin.fileno(), select.POLLOUT)
            self.stderr = Stderr(self.process.stderr)
            self.frames, self.first, self.last, self._ms = 0, None, None, -1
            self.saved: str | None = None      # where the whole recording is, once closed
            self.kept: str | None = None       # where what a failed ffmpeg wrote is kept
            self._send(_Matroska.header(width, height))
        except BaseException:
            self._scratch.close()          # what ffmpeg began goes with our scratch folder
            raise

    def _send(self, data: bytes) -> None:
        """Give ``data`` to ffmpeg, as fast as it takes it, waiting ``stall`` seconds at
        most for it to take more (on Windows, as long as it takes)."""
        try:
            if self._ready is None:
                self.process.stdin.write(data)
                self.process.stdin.flush()
                return
            pipe, left = self.process.stdin.fileno(), memoryview(data)
            while left:
                if not self._ready.poll(self.stall * 1000):
                    self.stalled = True
                    raise VideoError(f"ffmpeg took nothing of the recording {self.output} "
                                     f"for {self.stall:g} s (a stream that nothing receives?)"
                                     ": it is stopped")
                try:
                    left = left[os.write(pipe, left):]
                except BlockingIOError:
                    continue
        except (OSError, ValueError):        # ffmpeg ended, or we closed its input
            try:
                self.process.wait(self.grace)
            except subprocess.TimeoutExpired:
                stop(self.process)
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
            if self.stalled:
                raise subprocess.TimeoutExpired(self.process.args, self.stall)
            self.process.wait(self.grace)
        except subprocess.TimeoutExpired:
            stopped = f"still at work {self.grace:g} s after the last frame, so stopped"
            if self.stalled:
                hint = "" if self.path else " (is anything receiving the stream?)"
                stopped = f"it took nothing for {self.stall:g} s{hint}, so stopped"
        except KeyboardInterrupt:
            stopped, interrupted = "stopped by Ctrl-C while it finished", True
        if stopped:
            stop(self.process, min(10.0, self.grace))
        if self.process.returncode == 0 and not self.stalled:   # (7.0 ends 0 at SIGTERM)
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
