"""Live mode's waits end: a UDP stream joined between two keyframes starts at the next one
and is dreamed until --duration; a source that never gives a picture (no sender on the UDP
port, a named pipe with no writer, a stream shorter than ffmpeg's probe) ends in one line
within its opening timeout and --duration; a named pipe with a writer is dreamed. Real
ffmpeg senders on 127.0.0.1, every ffmpeg under test as the receiver."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import script
from media import coded_frame, frame_code, maker_exe
from test_live import DREAM, SENT, free_port, timed_run

from deepdream.errors import VideoError
from deepdream.io.live import Source

GOP = 100                         # frames between keyframes: 4 s at 25 a second
SDT_PID = 0x11


def relay(listen: int, to: int, stop: threading.Event) -> None:
    """Forward the MPEG-TS datagrams that come to port ``listen`` to port ``to``, less
    their service description table: the static ffmpeg 4.2 and 7.0 builds under test
    crash (SIGSEGV) on any SDT, their own included (their iconv), so that the test is of
    the joining, not of that."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inlet, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as outlet:
        inlet.bind(("127.0.0.1", listen))
        inlet.settimeout(0.2)
        while not stop.is_set():
            try:
                data = inlet.recv(65536)
            except TimeoutError:
                continue
            kept = b"".join(data[i:i + 188] for i in range(0, len(data), 188)
                            if ((data[i + 1] & 0x1F) << 8 | data[i + 2]) != SDT_PID)
            if kept:
                outlet.sendto(kept, ("127.0.0.1", to))


@contextlib.contextmanager
def udp_sender(port: int, source: list[str], frames=None):
    """An ffmpeg of the test's sending H.264 in MPEG-TS at its own rate to udp ``port``
    (through ``relay``), a keyframe every GOP frames: from ``source`` (its input
    options), fed ``frames`` (raw RGB pictures) on a thread if given."""
    stop, hop = threading.Event(), free_port(socket.SOCK_DGRAM)
    forward = threading.Thread(target=relay, args=(hop, port, stop), daemon=True)
    forward.start()
    sender = subprocess.Popen([maker_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                               "-re", *source, "-c:v", "libx264", "-preset", "ultrafast",
                               "-tune", "zerolatency", "-g", str(GOP), "-pix_fmt", "yuv420p",
                               "-f", "mpegts", f"udp://127.0.0.1:{hop}?pkt_size=1316"],
                              stdin=subprocess.PIPE if frames else subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if frames:
        def feed():
            with contextlib.suppress(BrokenPipeError, ValueError):
                for picture in frames:
                    sender.stdin.write(picture.tobytes())
                sender.stdin.close()
        threading.Thread(target=feed, daemon=True).start()
    try:
        yield sender
    finally:
        sender.kill()
        sender.wait()
        stop.set()
        forward.join()


def test_udp_stream_joined_mid_gop_starts_at_its_next_keyframe(ffmpeg_binary):
    """Frames numbered in their picture (``coded_frame``): the first one decoded after
    joining a second into a 4 s GOP is a keyframe's (100 or 200), not one of the frames
    before it that cannot be decoded whole, and it comes soon after the keyframe. (The
    source counts the frames it decoded: the first one taken, its nth, tells the first's
    number.)"""
    port = free_port(socket.SOCK_DGRAM)
    pictures = (coded_frame(number % 256) for number in range(300))
    with udp_sender(port, ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x48",
                           "-framerate", "25", "-i", "pipe:0"], pictures):
        time.sleep(1.0)                               # joined a second into the first GOP
        began = time.monotonic()
        source = Source(f"udp://127.0.0.1:{port}", 0, timeout=15)
        try:
            opened = time.monotonic() - began
            source.start()
            first = source.take(timeout=10)
        finally:
            source.close()
    assert first is not None and first[1].shape == (48, 128, 3)
    decoded_first = frame_code(first[1]) - (first[0] - 1)
    assert decoded_first in (GOP, 2 * GOP), (frame_code(first[1]), first[0])
    assert opened < 3.0 + 2.0            # the keyframe 3 s on, less than 2 s of probing


def test_udp_stream_joined_mid_gop_is_dreamed_until_duration(tiny_model_dir):
    """The whole command on a UDP stream joined mid-GOP: ffmpeg says hundreds of decoding
    errors before its output's line, and the run still opens, dreams and ends at
    --duration, counted from its start (the wait for the keyframe and the net's loading
    count; less than 4 s later: Python's exit, on a busy machine)."""
    port, duration = free_port(socket.SOCK_DGRAM), 10
    with udp_sender(port, ["-f", "lavfi", "-i", SENT]):
        time.sleep(1.0)
        code, log, took = timed_run(f"udp://127.0.0.1:{port}", "--serve", "0",
                                    "--duration", duration, "-t", tiny_model_dir, *DREAM)
    assert code == 0 and "Traceback" not in log, log[-3000:]
    assert f"stopped (--duration {duration} s passed)" in log
    dreamed = int(re.search(r"(\d+) frames dreamed", log).group(1))
    assert dreamed >= 2, log[-2000:]
    assert duration < took < duration + 4, (took, log[-2000:])


@pytest.mark.parametrize("kind", ["no sender", "shorter than the probe"])
def test_udp_stream_that_never_gives_a_picture_is_one_line_in_time(ffmpeg_binary, kind):
    """No sender on the port, or one that sent 0.3 s and stopped (ffmpeg's probe waits for
    1 s of it, and UDP never ends): VideoError in one line, naming the source, the time
    waited and what to check, at the timeout."""
    port = free_port(socket.SOCK_DGRAM)
    url = f"udp://127.0.0.1:{port}"
    outcome: dict = {}

    def open_source():
        began = time.monotonic()
        try:
            Source(url, 320, timeout=3, limit="--open-timeout").close()
        except VideoError as e:
            outcome["error"] = str(e)
        outcome["took"] = time.monotonic() - began
    waiting = threading.Thread(target=open_source)
    waiting.start()
    if kind == "shorter than the probe":
        time.sleep(0.5)                               # the receiver is listening
        with udp_sender(port, ["-f", "lavfi", "-i", f"{SENT}:duration=0.3"]) as sender:
            sender.wait(10)
    waiting.join(30)
    assert not waiting.is_alive()
    assert outcome.get("error") == (f"no picture from the live source {url} in 3 s "
                                    "(--open-timeout): check that the address is right and "
                                    "something is sending to it now"), outcome
    assert 3 <= outcome["took"] < 4.5


def test_udp_port_with_no_sender_is_one_line_from_the_command(tiny_model_dir):
    port = free_port(socket.SOCK_DGRAM)
    began = time.monotonic()
    result = script("-m deepdream", "--live", f"udp://127.0.0.1:{port}", "--open-timeout", 2,
                    "--serve", 0, "-t", tiny_model_dir, check=False)
    assert time.monotonic() - began < 2 + 10       # Python's start: a few s
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: no picture from the live source udp://127.0.0.1:{port} in 2 s "
                      "(--open-timeout): check that the address is right and something is "
                      "sending to it now"], result.stderr
    assert "Traceback" not in result.stderr


def test_named_pipe_with_no_writer_ends_at_duration(tiny_model_dir, tmp_path):
    """A named pipe is a source (it exists), opened as a stream: with no writer, ffmpeg
    waits in its opening for ever, and the run ends at --duration (sooner than the opening
    timeout) in one line."""
    pipe = tmp_path / "camera.fifo"
    os.mkfifo(pipe)
    began = time.monotonic()
    result = script("-m deepdream", "--live", pipe, "--duration", 2, "--serve", 0,
                    "-t", tiny_model_dir, check=False)
    assert time.monotonic() - began < 2 + 10
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.fullmatch(          # what was left of the 2 s: 1.9x
        rf"error: no picture from the live source {re.escape(str(pipe))} in (2|1\.9\d?) s "
        r"\(--duration 2 s\): check that a program is writing a movie or stream into this "
        r"named pipe", errors[0]), result.stderr
    assert "Traceback" not in result.stderr


def test_named_pipe_with_a_writer_is_opened_and_read(ffmpeg_binary, tmp_path, monkeypatch):
    """A named pipe whose name reads as a protocol to ffmpeg ('live:1', relative): opened
    as the file it is, and its frames come as the writer writes them (at 25 a second)."""
    monkeypatch.chdir(tmp_path)
    os.mkfifo("live:1")
    count = 50
    writer = subprocess.Popen([maker_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                               "-y", "-re", "-f", "rawvideo", "-pix_fmt", "rgb24",
                               "-s", "128x48", "-framerate", "25", "-i", "pipe:0",
                               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "nut",
                               "file:live:1"],
                              stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def feed():
        with contextlib.suppress(BrokenPipeError, ValueError):
            writer.stdin.write(b"".join(coded_frame(n).tobytes() for n in range(count)))
            writer.stdin.close()
    threading.Thread(target=feed, daemon=True).start()
    try:
        source = Source("live:1", 0, timeout=15)
        try:
            source.start()
            numbers = []
            while (item := source.take(timeout=15)) is not None:
                numbers.append(frame_code(item[1]))
        finally:
            source.close()
    finally:
        writer.kill()
        writer.wait()
    assert source.ended and numbers and numbers == sorted(numbers) and numbers[-1] == count - 1
