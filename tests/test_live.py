"""Live mode (``python -m deepdream --live``) as a user runs it: a movie at its own rate and a
UDP stream sent by an ffmpeg of the test's as sources, the page read over real HTTP (IPv4 and
IPv6, viewers leaving mid-answer) and in a real headless Chromium, recordings read back with
every ffmpeg under test (frames written at once, an ffmpeg that fails or is stuck), Ctrl-C
and SIGTERM, and the one-line refusals. (Waits: test_live_waits.py.)"""
from __future__ import annotations

import io
import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, script
from media import maker_exe

from deepdream.io import video

CHROMIUM = "/usr/bin/chromium"
# the tiny fixture net, a light dream: the tests are about the plumbing, not the pictures
DREAM = ["-l", "inception_3b/output", "-oct", "2", "-itr", "2"]
SENT = "testsrc2=size=320x180:rate=25"


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """A 3 s, 320x180, 25 fps movie."""
    path = tmp_path_factory.mktemp("live") / "movie.mp4"
    result = subprocess.run([maker_exe(), "-hide_banner", "-nostdin", "-y", "-f", "lavfi",
                             "-i", f"{SENT}:duration=3", "-c:v", "libx264",
                             "-pix_fmt", "yuv420p", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return path


@pytest.fixture(scope="module")
def long_movie(movie):
    """The movie 20 times over: 60 s, longer than any run of the tests."""
    path = movie.with_name("long.mp4")
    subprocess.run([maker_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                    "-stream_loop", "19", "-i", str(movie), "-c", "copy", str(path)],
                   check=True)
    return path


def start_live(*args) -> subprocess.Popen:
    """``python -m deepdream --live ...`` started as a user starts it, its log on stderr."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "deepdream", "--live", *map(str, args)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def timed_run(*args, timeout: float = 120) -> tuple[int, str, float]:
    """``start_live(*args)`` run to its end: (its exit status, its log, the seconds from its
    "opening" line -- the run's start, as near as its log tells -- to its exit)."""
    live = start_live(*args)
    watchdog = threading.Timer(timeout, live.kill)         # a run that hangs fails
    watchdog.start()
    lines, opened = [], None
    try:
        while line := live.stderr.readline():
            lines.append(line)
            opened = opened or (time.monotonic() if line.startswith("opening ") else None)
        live.wait()
        ended = time.monotonic()
    finally:
        watchdog.cancel()
        if live.poll() is None:
            live.kill()
            live.wait()
    log = "".join(lines)
    assert opened is not None and live.returncode != -signal.SIGKILL, log[-2000:]
    return live.returncode, log, ended - opened


def page_url(process: subprocess.Popen, lines: list[str], timeout: float = 120) -> str:
    """The page's address, read from the run's log as it comes (kept in ``lines``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"shown at (http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError("no page address in the log: " + "".join(lines)[-2000:])


def summary(log: str) -> tuple[int, float, int, float]:
    """(frames dreamed, seconds, frames recorded, seconds between the first and last
    recorded) from the run's last lines."""
    dreamed = re.search(r"(\d+) frames dreamed in ([\d.]+) s", log)
    recorded = re.search(r"recorded (\d+) frames over ([\d.]+) s", log)
    assert dreamed and recorded, log[-2000:]
    return (int(dreamed.group(1)), float(dreamed.group(2)), int(recorded.group(1)),
            float(recorded.group(2)))


def picture_times(path: Path) -> list[float]:
    """The times of a movie's pictures in seconds, in order, read with the ffmpeg in use."""
    result = subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
                             "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    base = re.search(r"#tb 0: (\d+)/(\d+)", result.stdout)
    scale = int(base.group(1)) / int(base.group(2))
    return sorted(int(line.split(",")[2]) * scale for line in result.stdout.splitlines()
                  if line.strip() and not line.startswith("#"))


def assert_recording_matches(path: Path, log: str) -> int:
    """The recording holds as many frames as the run says it dreamed and recorded, over as
    long (its first to its last picture, to 50 ms: each picture is timed when ffmpeg reads
    it); returns its frame count."""
    dreamed, _, recorded, span = summary(log)
    times = picture_times(path)
    assert len(times) == recorded == dreamed and dreamed >= 2, (len(times), log[-1500:])
    assert abs((times[-1] - times[0]) - span) <= 0.05, (times, span)
    assert video.written_length(path)[0] == dreamed             # every packet, none lost
    return dreamed


def mjpeg_frames(url: str, count: int) -> list[np.ndarray]:
    """The first ``count`` JPEG frames of an MJPEG stream, decoded."""
    pictures = []
    with urllib.request.urlopen(url, timeout=60) as stream:
        assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(pictures) < count:
            headers = {}
            line = stream.readline()
            while line in (b"\r\n", b"\n"):
                line = stream.readline()
            assert line.strip().startswith(b"--"), f"the stream ended or broke: {line!r}"
            while (line := stream.readline().strip()):
                key, _, value = line.decode().partition(":")
                headers[key.lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            data = stream.read(int(headers["content-length"]))
            pictures.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32))
    return pictures


def read_status(url: str) -> dict:
    with urllib.request.urlopen(url + "status.json", timeout=30) as reply:
        return json.load(reply)


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_movie_dreamed_at_its_own_rate_recorded_as_the_log_says(ffmpeg_binary, long_movie,
                                                                   tiny_model_dir, tmp_path):
    """--duration counts from the run's start: the source's opening and the net's loading
    are in it, the dreaming is the rest, and the run ends then (less than 4 s later: its
    recording finished, Python's exit, on a busy machine)."""
    out, duration = tmp_path / "live.mp4", 6
    code, log, took = timed_run(long_movie, "-o", out, "--duration", duration,
                                "-t", tiny_model_dir, *DREAM)
    assert code == 0 and f"stopped (--duration {duration} s passed)" in log, log[-2000:]
    dreamed, seconds, _, _ = summary(log)
    assert 0.5 <= seconds < duration < took < duration + 4, (seconds, took)
    assert assert_recording_matches(out, log) == dreamed
    assert re.search(r"[\d.]+ frames a second, \d+ dropped, latency [\d.]+ s", log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.mp4"]   # no scratch left


def test_udp_stream_shown_over_http_and_recorded_until_sigterm(tiny_model_dir, tmp_path):
    port, out = free_port(socket.SOCK_DGRAM), tmp_path / "live.mp4"
    sender = subprocess.Popen([maker_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                               "-re", "-f", "lavfi", "-i", SENT, "-c:v", "libx264",
                               "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10",
                               "-pix_fmt", "yuv420p", "-f", "mpegts",
                               f"udp://127.0.0.1:{port}?pkt_size=1316"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live = start_live(f"udp://127.0.0.1:{port}", "--serve", "0", "-o", out,
                      "-t", tiny_model_dir, *DREAM)
    lines: list[str] = []
    try:
        url = page_url(live, lines)
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as page:
            assert b'<img src="/stream.mjpg"' in page.read()
        pictures = mjpeg_frames(url + "stream.mjpg", 4)
        assert all(p.shape == (180, 320, 3) for p in pictures)
        assert all(np.abs(a - b).mean() > 1 for a, b in itertools.pairwise(pictures))
        status = read_status(url)
        assert status["fps"] > 0 and status["latency"] > 0
        assert "inception_3b/output" in status["settings"]
        deadline = time.monotonic() + 30               # the stream goes on being dreamed
        while read_status(url)["frames"] < status["frames"] + 5:
            assert time.monotonic() < deadline and live.poll() is None
            time.sleep(0.2)
        live.send_signal(signal.SIGTERM)
        rest = live.communicate(timeout=60)[1]
    finally:
        for process in (live, sender):
            if process.poll() is None:
                process.kill()
                process.wait()
    log = "".join(lines) + rest
    assert live.returncode == 0, log[-2000:]
    assert "stopped (SIGTERM)" in log
    assert_recording_matches(out, log)


def test_page_in_headless_chromium_shows_the_dream_and_ctrl_c_keeps_the_recording(
        long_movie, tiny_model_dir, tmp_path):
    if not Path(CHROMIUM).is_file():
        # CI must test the page; a developer's machine may lack the browser
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to test the live page "
                    "in a browser")
    out = tmp_path / "live.mp4"
    live = start_live(long_movie, "--serve", "0", "-o", out, "-t", tiny_model_dir, *DREAM)
    lines: list[str] = []
    try:
        url = page_url(live, lines)
        mjpeg_frames(url + "stream.mjpg", 2)                  # the dream has begun
        dreamed = screenshot(url, tmp_path / "dream.png")
        live.send_signal(signal.SIGINT)
        rest = live.communicate(timeout=60)[1]
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    # the frame above the status line: a picture of many colours, where a page without it
    # is one colour (the background)
    picture = dreamed[:180]
    assert picture.std() > 30 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 1000
    assert len(np.unique(dreamed[220:].reshape(-1, 3), axis=0)) < 50       # the status text
    log = "".join(lines) + rest
    assert live.returncode == 0 and "stopped (Ctrl-C)" in log, log[-2000:]
    assert_recording_matches(out, log)


def screenshot(url: str, path: Path) -> np.ndarray:
    """A 320x240 screenshot of ``url`` in headless Chromium (a profile of its own)."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                                 f"--screenshot={path}", "--window-size=320,240",
                                 "--hide-scrollbars", "--disable-quic", "--no-first-run",
                                 "--disable-background-networking",
                                 "--disable-component-update", "--disable-sync",
                                 f"--user-data-dir={profile}", url],
                                capture_output=True, text=True, timeout=90)
    assert path.is_file(), result.stderr[-2000:]
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def test_source_that_ends_mid_run_is_one_line_and_the_recording_kept(tiny_model_dir,
                                                                     tmp_path):
    out = tmp_path / "live.mp4"
    result = script("-m deepdream", "--live", f"{SENT}:duration=8,realtime", "--input-format",
                    "lavfi", "-o", out, "-t", tiny_model_dir, *DREAM, check=False)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stopped after" in errors[0] and str(out) in errors[0]
    assert video.written_length(out)[0] >= 1


def test_missing_source_is_one_line(tiny_model_dir, tmp_path):
    missing, out = tmp_path / "nothing.mp4", tmp_path / "live.mp4"
    result = script("-m deepdream", "--live", missing, "-o", out, "-t", tiny_model_dir,
                    check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [(f"error: live source not found: {missing} (give "
                                           "a movie, a device with --input-format, or a URL "
                                           "such as udp://127.0.0.1:1234)")]
    assert sorted(tmp_path.iterdir()) == []                  # nothing written


def test_busy_port_is_one_line(movie, tiny_model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = script("-m deepdream", "--live", movie, "--serve", port,
                        "-t", tiny_model_dir, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [(f"error: port {port} on 127.0.0.1 is in use: "
                                           "stop what serves there, or give another with "
                                           "--serve PORT")]


def test_a_file_of_yours_is_never_replaced_by_a_recording(movie, tmp_path):
    """Refused before anything opens (from the library too, not only the command line), and a
    file that appears at -o while recording is left as it is, the recording kept beside it."""
    from deepdream.errors import VideoError
    from deepdream.io.recording import Recorder
    from deepdream.run.live import Live, LiveOptions

    mine = tmp_path / "mine.mp4"
    mine.write_bytes(b"my movie")
    # a source that opens: the refusal is -o's alone
    refusals = {mine: f"{mine} already exists: give another -o, or --overwrite to replace it",
                tmp_path: f"the output {tmp_path} is a folder: give the movie's file name, "
                          f"e.g. {tmp_path / 'dream.mp4'}"}
    for output, message in refusals.items():
        with pytest.raises(VideoError) as refused:
            Live(LiveOptions(str(movie), output=str(output)))
        assert str(refused.value) == message
    assert mine.read_bytes() == b"my movie" and sorted(tmp_path.iterdir()) == [mine]

    later = tmp_path / "later.mp4"
    recorder = Recorder(str(later), 64, 48)
    for shade in range(0, 250, 50):
        recorder.write(np.full((48, 64, 3), shade, np.uint8))
        time.sleep(0.02)                     # each frame is timed by the clock, to the ms
    later.write_bytes(b"appeared while recording")
    with pytest.raises(VideoError, match="appeared while recording") as kept:
        recorder.close()
    assert later.read_bytes() == b"appeared while recording"
    beside = Path(re.search(r"the recording is (\S+)$", str(kept.value)).group(1))
    assert beside.parent == tmp_path and beside.name.startswith("later.live-")
    assert video.written_length(beside)[0] >= 1              # the recording, playable
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mine.mp4", "later.mp4",
                                                                 beside.name])


def test_a_recording_that_fails_is_the_last_word_of_the_log(long_movie, tiny_model_dir):
    """The recording's ffmpeg cannot send (nothing listens on the tcp:// port): the run
    stops, and its log says it stopped for the error that follows, never that the movie
    ended, nor what was recorded."""
    output = f"tcp://127.0.0.1:{free_port()}"
    result = script("-m deepdream", "--live", long_movie, "-o", output, "--duration", 30,
                    "-t", tiny_model_dir, *DREAM, check=False)
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[-1].startswith("error: ffmpeg ") and output in lines[-1], lines[-3:]
    assert re.match(r"stopped \(the error below\): \d+ frames dreamed", lines[-2]), lines[-3:]
    assert not [line for line in lines if "movie ended" in line or "recorded" in line]


def raw_request(port: int, path: str, host: str = "127.0.0.1", read: int = 0) -> None:
    """GET ``path`` and go away mid-answer: after ``read`` bytes of it (0: before any),
    the connection reset (SO_LINGER 0), as a browser tab closed."""
    with socket.create_connection((host, port), timeout=30) as viewer:
        viewer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        viewer.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        received = b""
        while len(received) < read:
            chunk = viewer.recv(read - len(received))
            assert chunk, f"{path} ended after {len(received)} bytes"
            received += chunk


def test_viewers_that_go_away_mid_answer_print_nothing(long_movie, tiny_model_dir):
    """The stream, the page, the frame and the status each left mid-answer, twice: the run
    goes on dreaming and showing, and its output holds no traceback."""
    live = start_live(long_movie, "--serve", "0", "-t", tiny_model_dir, *DREAM)
    lines: list[str] = []
    try:
        url = page_url(live, lines)
        port = int(re.search(r":(\d+)/$", url).group(1))
        mjpeg_frames(url + "stream.mjpg", 1)                    # the dream has begun
        for _ in range(2):
            raw_request(port, "/stream.mjpg", read=20000)       # a frame and a bit
            for path in ("/stream.mjpg", "/", "/frame.jpg", "/status.json"):
                raw_request(port, path)
        time.sleep(1.5)                                          # the server's writes fail
        shown = read_status(url)["frames"]
        assert len(mjpeg_frames(url + "stream.mjpg", 3)) == 3
        assert read_status(url)["frames"] > shown and live.poll() is None
        live.send_signal(signal.SIGTERM)
        rest = live.communicate(timeout=60)[1]
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    log = "".join(lines) + rest
    assert live.returncode == 0 and "stopped (SIGTERM)" in log, log[-2000:]
    assert "Traceback" not in log and "Error" not in log, log[-3000:]


def test_page_served_on_ipv6_loopback():
    """--host ::1: the page, its status and its frame over http://[::1]:PORT/."""
    from deepdream.io.live_server import LiveServer
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"this machine has no IPv6 loopback (binding ::1: {e})")
    assert socket.has_ipv6
    server = LiveServer("::1", 0, lambda: {"source": "a test", "settings": "none", "fps": 1.0,
                                           "latency": 0.5, "dropped": 0, "frames": 1})
    try:
        server.start()
        assert server.url == f"http://[::1]:{server.port}/"
        picture = np.zeros((48, 64, 3), np.uint8)
        picture[:, 32:] = 255
        server.publish(picture)
        with urllib.request.urlopen(server.url, timeout=30) as page:
            assert b'<img src="/stream.mjpg"' in page.read()
        assert read_status(server.url)["settings"] == "none"
        with urllib.request.urlopen(server.url + "frame.jpg", timeout=30) as frame:
            shown = np.asarray(Image.open(io.BytesIO(frame.read())).convert("L"), np.float32)
        assert shown[:, :28].mean() < 20 and shown[:, 36:].mean() > 235
    finally:
        server.close()


def recording_times(path: Path) -> list[float]:
    """``picture_times`` from the first picture, in seconds."""
    times = picture_times(path)
    return [t - times[0] for t in times]


def test_frames_written_at_once_are_all_recorded_each_at_its_time(ffmpeg_binary, tmp_path):
    """Five frames written at once (well within 1 ms of each other), then three 0.1 s on:
    eight pictures, each timed when it was written to the ms (those written within one ms
    1 ms apart)."""
    from deepdream.io.recording import Recorder
    out = tmp_path / "bunched.mp4"
    recorder = Recorder(str(out), 64, 48)
    written = []
    for batch, count in enumerate((5, 3)):
        time.sleep(0.1 * batch)
        for shade in range(count):
            written.append(time.monotonic())
            recorder.write(np.full((48, 64, 3), 40 * shade, np.uint8))
    recorder.close()
    times = recording_times(out)
    assert len(times) == recorder.frames == 8 and video.written_length(out)[0] == 8
    assert all(b > a for a, b in itertools.pairwise(times))
    for number, (time_written, recorded) in enumerate(zip(written, times)):
        assert abs(recorded - (time_written - written[0])) <= 0.0015 + 0.001 * number, \
            (times, [t - written[0] for t in written])


def test_a_recording_whose_ffmpeg_is_stuck_is_kept_beside_your_file(ffmpeg_binary, tmp_path):
    """The recording's ffmpeg stops (SIGSTOP: a hung disk) and has not finished ``grace``
    seconds after the last frame: it is killed and what it wrote kept, byte for byte, under
    a name of its own (never over a file there, --overwrite or not), and one line says
    where and that it may be incomplete."""
    from deepdream.errors import VideoError
    from deepdream.io.recording import Recorder
    out = tmp_path / "show.mkv"
    out.write_bytes(b"your movie")
    recorder = Recorder(str(out), 160, 96, overwrite=True, grace=1)
    noise = np.random.default_rng(0)
    while not recorder.part.exists() or recorder.part.stat().st_size < 20000:
        recorder.write(noise.integers(0, 256, (96, 160, 3), np.uint8))
    os.kill(recorder.process.pid, signal.SIGSTOP)
    time.sleep(0.2)
    written = recorder.part.read_bytes()
    began = time.monotonic()
    with pytest.raises(VideoError) as failed:
        recorder.close()
    assert time.monotonic() - began < 1 + 1 + 1          # the grace, the SIGTERM's wait
    kept = tmp_path / f"show.live-{os.getpid()}.mkv"
    assert str(failed.value) == (f"ffmpeg could not finish the recording {out} (still at "
                                 f"work 1 s after the last frame, so stopped); what it wrote "
                                 f"is kept as {kept} and may be incomplete")
    assert out.read_bytes() == b"your movie" and kept.read_bytes() == written
    assert len(picture_times(kept)) >= 1                     # pictures that play
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show.live-%d.mkv" % os.getpid(),
                                                          "show.mkv"]


def test_a_stream_that_nothing_receives_ends_the_recording_in_one_line(ffmpeg_binary):
    """A recording to a stream that waits for its receiver (tcp://...?listen=1, to which
    nothing connects): ffmpeg takes frames until it has looked at enough of its input, then
    nothing. ``stall`` seconds later the recording stops in one line, and ``close`` stops its
    ffmpeg at once (the live run waited on it for ever)."""
    from deepdream.errors import VideoError
    from deepdream.io.recording import Recorder
    url = f"tcp://127.0.0.1:{free_port()}?listen=1"
    recorder = Recorder(url, 160, 96, stall=1)
    noise = np.random.default_rng(0)
    written = 0
    with pytest.raises(VideoError) as stalled:
        for written in range(2000):       # 92 MB: far more than ffmpeg looks at (5 MB)
            recorder.write(noise.integers(0, 256, (96, 160, 3), np.uint8))
    assert 0 < written < 2000
    assert str(stalled.value) == (f"ffmpeg took nothing of the recording {url} for 1 s (a "
                                  "stream that nothing receives?): it is stopped")
    began = time.monotonic()
    with pytest.raises(VideoError) as closed:
        recorder.close()
    assert time.monotonic() - began < 10 + 1        # SIGTERM's wait at most, not the grace
    assert recorder.process.poll() is not None
    assert str(closed.value) == (f"ffmpeg could not finish the recording {url}: it took "
                                 "nothing for 1 s (is anything receiving the stream?), so "
                                 "stopped")


INTERRUPT_AT = """
import os, signal, sys
AT = sys.argv[1]
def interrupt(frame, event, arg):
    if event == "call" and frame.f_code.co_name == AT:
        sys.setprofile(None)
        os.kill(os.getpid(), signal.SIGINT)         # Ctrl-C, now
sys.argv = ["deepdream", *sys.argv[2:]]
from deepdream.cli.main import entry
sys.setprofile(interrupt)
entry()
"""


@pytest.mark.parametrize("at", ["setup_logging", "require_opencv"])
def test_ctrl_c_of_a_live_run_gives_no_hint_of_stage_2(tiny_model_dir, at):
    """Ctrl-C (a real SIGINT, sent when the named function is called: before live mode's own
    code, then in it) ends a live run before its dream with exit status 130 and no word of
    "finished frames" to continue from (stage 2's hint), nor a traceback."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", INTERRUPT_AT, at, "--live",
                             f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}", "--serve", "0",
                             "-t", str(tiny_model_dir)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Finished frames" not in result.stderr and "Traceback" not in result.stderr, \
        result.stderr[-2000:]
    assert "opening" not in result.stderr              # stopped where it was sent
