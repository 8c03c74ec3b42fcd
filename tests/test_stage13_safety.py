"""Stages 1 and 3 as users run them, where they could harm: names ffmpeg could read as a
protocol, a source movie that changed, an output that is one of the inputs, a kill -9 or a
Ctrl-C in the middle, broken frames, and settings that cannot work (each refused in one
line before anything is written)."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepdream.io import extraction, frames, video

from conftest import ROOT, script
from media import make_clip, stream_length, stream_line


def refused(result, *words):
    """Assert a script refused in one line (exit 1, "error: ..."), naming ``words``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    for word in words:
        assert word in lines[0], lines
    assert "Traceback" not in result.stderr
    return lines[0]


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (hidden ones too): what was written."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


def write_frames(folder: Path, count: int, size=(64, 48), ext="png", first=1):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    for n in range(first, first + count):
        frames.write_frame(folder / frames.frame_name(n, ext),
                           rng.integers(0, 255, (size[1], size[0], 3)))
    return folder


# -- 1. paths that ffmpeg could read as a protocol ----------------------------------------

def test_names_with_a_colon_are_files_not_protocols(tmp_path, ffmpeg_binary):
    # "concat:other.mp4" read as a protocol is another movie, other.mp4: its frames would
    # come out (64x48) instead of this movie's (161x121), or "Protocol not found"
    make_clip(tmp_path / "other.mp4", size="64x48", duration=1.0)
    make_clip(tmp_path / "concat:other.mp4", size="161x121", duration=0.5)
    script("1_movie2frames.py", "concat:other.mp4", "take:1", "-q", cwd=tmp_path)
    meta = frames.read_json(tmp_path / "take:1" / "movie.json")
    assert meta["frame_count"] == 15 and (meta["width"], meta["height"]) == (161, 121)
    assert Image.open(tmp_path / "take:1" / "00000001.png").size == (161, 121)
    # stage 3: frames in a folder with a colon, the output named with one, the sound from
    # movie.json's source (no movie named) and from the movie named (the 2015 form)
    script("3_frames2movie.py", "take:1", "-o", "out:1.mp4", "-q", cwd=tmp_path)
    script("3_frames2movie.py", "take:1", "concat:other.mp4", "-o", "out:2.mp4", "-q",
           cwd=tmp_path)
    for out in ("out:1.mp4", "out:2.mp4"):
        assert stream_length(tmp_path / out, "v")[0] == 15
        assert "160x120" in stream_line(tmp_path / out, "Video")
        assert abs(stream_length(tmp_path / out, "a")[1] - 15 / (30000 / 1001)) <= 0.1


@pytest.fixture
def ffmpeg_commands(tmp_path, monkeypatch):
    """The ffmpeg of the scripts and the library, as DEEPDREAM_FFMPEG: one that notes each
    command it is given (its words, a JSON line in a log) and runs the real one in its place
    (exec: the same process, pipes and signals). Returns a function that reads the commands
    noted so far."""
    real = video.ffmpeg_exe()
    log = tmp_path / "ffmpeg-commands.jsonl"
    wrapper = tmp_path / "bin" / "ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!{sys.executable} -S\n"
                       "import json, os, sys\n"
                       f"with open({str(log)!r}, 'a') as f:\n"
                       "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
                       f"os.execv({real!r}, [{real!r}] + sys.argv[1:])\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("DEEPDREAM_FFMPEG", str(wrapper))
    return lambda: [json.loads(line) for line in log.read_text().splitlines()]


# ffmpeg's options that take no value (every other option takes the word after it)
SWITCHES = {"-y", "-n", "-hide_banner", "-nostdin", "-nostats", "-stats", "-re", "-version",
            "-an", "-vn", "-sn", "-dn", "-shortest"}


def files_of(command: list[str]) -> list[str]:
    """The files an ffmpeg command names: its inputs (-i FILE) and outputs (the words that
    are neither an option nor an option's value)."""
    files, i = [], 0
    while i < len(command):
        word = command[i]
        if word == "-i":
            files.append(command[i + 1])
        elif word != "-" and word.startswith("-"):
            i += 1 if word in SWITCHES else 2
            continue
        else:
            files.append(word)
            i += 1
            continue
        i += 2
    return files


def test_every_path_given_to_ffmpeg_is_absolute(tmp_path, ffmpeg_commands, monkeypatch):
    """Every command the stages run, as users run them with relative names that ffmpeg would
    read as a protocol ('concat:m.mp4', 'take:1', 'out:1.mp4'): stage 1 (probe, extraction),
    stage 3 (its trial, the encoding with the movie's sound, the GIF, the read-back), the
    trial of an -o before a job and live mode's source and recorder (in this process: no
    net is needed to build and run them)."""
    from deepdream.io.live import Source
    from deepdream.io.recording import Recorder
    from deepdream.run.live import LiveOptions
    work = tmp_path / "work"
    work.mkdir()
    make_clip(work / "concat:m.mp4", size="64x48", rate="25", duration=0.4)
    script("1_movie2frames.py", "concat:m.mp4", "take:1", "-q", cwd=work)
    script("3_frames2movie.py", "take:1", "-o", "out:1.mp4", "-q", cwd=work)
    script("3_frames2movie.py", "take:1", "concat:m.mp4", "-o", "out:2.mp4", "-q", cwd=work)
    script("3_frames2movie.py", "take:1", "-o", "out:3.gif", "-q", cwd=work)
    monkeypatch.chdir(work)
    LiveOptions("concat:m.mp4", output="rec:1.mp4").check()     # the trial of -o
    source = Source("concat:m.mp4", 64)
    try:
        source.start()
        frame = source.take(timeout=10)[1]
    finally:
        source.close()
    recorder = Recorder("rec:1.mp4", 64, 48)
    for _ in range(2):
        recorder.write(frame)
        time.sleep(0.01)
    recorder.close()
    # what was written is where it was named (not a protocol's idea of it)
    assert sorted(p.name for p in work.iterdir()) == ["concat:m.mp4", "out:1.mp4", "out:2.mp4",
                                                      "out:3.gif", "rec:1.mp4", "take:1"]
    commands = ffmpeg_commands()

    given = ("concat:m.mp4", "take:1", "out:", "rec:1")
    for command in commands:
        for name in files_of(command):
            assert os.path.isabs(name) or name in ("-", "pipe:0", "pipe:1"), (name, command)
        for word in command:             # also where the walk of the options went astray
            assert not any(name in word for name in given) or os.path.isabs(word), command

    movie = os.path.realpath(work / "concat:m.mp4")
    ran = {
        "probe": lambda c, files: "showinfo" in c and movie in files,
        "extraction": lambda c, files: movie in files and files[-1].endswith("%08d.png"),
        "stage 3's trial": lambda c, files: files[-1].endswith("first-frame.mp4"),
        "-o's trial": lambda c, files: files[-1].endswith("trial.mp4"),
        "encoding with the sound": lambda c, files: movie in files and
        files[-1].endswith("out:2.mp4"),
        "GIF": lambda c, files: "palettegen" in " ".join(c) and files[-1].endswith("out:3.gif"),
        "read-back": lambda c, files: "framecrc" in c,
        "live source": lambda c, files: "-re" in c and files == [movie, "pipe:1"],
        "recorder": lambda c, files: files[0] == "pipe:0" and files[-1].endswith("rec:1.mp4"),
    }
    for kind, found in ran.items():
        assert any(files and found(c, [os.path.realpath(f) if os.path.isabs(f) else f
                                       for f in files])
                   for c in commands for files in [files_of(c)]), f"no {kind} command"


# -- 2. which movie the frames came from --------------------------------------------------

def test_movie_json_records_the_movie_and_same_movie_checks_it(tmp_path, ffmpeg_binary):
    clip = make_clip(tmp_path / "clip.mp4")
    meta = extraction.extract_frames(clip, tmp_path / "f", progress=False)
    identity = meta["identity"]
    assert identity == extraction.movie_identity(clip)
    assert identity["path"] == str(clip.resolve()) and identity["size"] == clip.stat().st_size
    assert extraction.same_movie(meta, clip)
    assert extraction.same_movie(frames.read_json(tmp_path / "f" / "movie.json"), clip)
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    assert extraction.same_movie(meta, link)                  # the same file, through a link
    copy = shutil.copy(clip, tmp_path / "copy.mp4")
    assert not extraction.same_movie(meta, copy)              # another file
    assert not extraction.same_movie({k: v for k, v in meta.items() if k != "identity"}, clip)
    assert not extraction.same_movie(None, clip)
    assert not extraction.same_movie(meta, tmp_path / "gone.mp4")
    with open(clip, "r+b") as f:                              # edited in place, same size
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    assert not extraction.same_movie(meta, clip)


def test_stage3_never_puts_another_movies_sound_in(tmp_path, ffmpeg_binary):
    clip = make_clip(tmp_path / "clip.mp4")
    script("1_movie2frames.py", clip, tmp_path / "f", "-q")
    # the movie is replaced by another one with sound under the same name
    other = make_clip(tmp_path / "other.mp4", size="64x48", duration=2.0)
    os.replace(other, clip)
    result = script("3_frames2movie.py", tmp_path / "f", "-o", tmp_path / "o.mp4")
    warnings = [line for line in result.stderr.splitlines() if "silent" in line]
    assert len(warnings) == 1 and "changed" in warnings[0] and str(clip) in warnings[0]
    assert stream_line(tmp_path / "o.mp4", "Audio") == ""
    assert stream_length(tmp_path / "o.mp4", "v")[0] == 15
    # an earlier version's movie.json, without an identity or our mark: not vouched for either
    meta = frames.read_json(tmp_path / "f" / "movie.json")
    del meta["identity"], meta["made_by"]
    frames.write_json(tmp_path / "f" / "movie.json", meta)
    result = script("3_frames2movie.py", tmp_path / "f", "-o", tmp_path / "p.mp4")
    assert "earlier version" in result.stderr and "silent" in result.stderr
    assert stream_line(tmp_path / "p.mp4", "Audio") == ""


# -- 3. an output that is one of the inputs -----------------------------------------------

@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
@pytest.mark.parametrize("mine", ["movie.json", "frames.tsv", "00000002.png"])
def test_stage1_never_takes_a_users_file_for_its_own(tmp_path, mine, overwrite):
    """A movie.json or frames.tsv of the user's, or a numbered picture that no extraction of
    ours wrote, in the folder: refused in one line, every file left byte for byte, with
    --overwrite too."""
    clip = make_clip(tmp_path / "clip.mp4")
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / mine).write_bytes(b'{"title": "my film"}\n' if mine != "00000002.png" else
                                (tmp_path / "clip.mp4").read_bytes()[:100])
    before = listing(folder)
    line = refused(script("1_movie2frames.py", clip, folder, *overwrite, check=False))
    assert mine in line and ("deepdream did not write" in line or
                             "no extraction of ours made" in line), line
    assert listing(folder) == before


def test_stage1_overwrite_replaces_only_its_own_frames(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    script("1_movie2frames.py", clip, tmp_path / "f", "--format", "jpg", "-q")
    (tmp_path / "f" / "notes.txt").write_text("mine")
    script("1_movie2frames.py", clip, tmp_path / "f", "--overwrite", "-q")
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == sorted(
        [frames.frame_name(n, "png") for n in range(1, 16)] +
        ["frames.tsv", "movie.json", "notes.txt"])
    assert frames.read_json(tmp_path / "f" / "movie.json")["format"] == "png"


def test_stage1_refuses_a_frame_folder_that_is_a_file(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    before = listing(tmp_path)
    refused(script("1_movie2frames.py", clip, clip, check=False), "is a file")
    link = tmp_path / "link"
    link.symlink_to(clip)
    refused(script("1_movie2frames.py", clip, link, check=False), "is a file")
    link.unlink()
    assert listing(tmp_path) == before


def test_stage3_refuses_to_write_over_the_movie_or_a_frame(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    script("1_movie2frames.py", clip, tmp_path / "f", "-q")
    (tmp_path / "link.mp4").symlink_to(clip)
    before = listing(tmp_path)
    # the movie named, movie.json's source (through a link), a frame
    refused(script("3_frames2movie.py", tmp_path / "f", clip, "-o", clip, check=False),
            "original movie")
    refused(script("3_frames2movie.py", tmp_path / "f", "-o", tmp_path / "link.mp4",
                   check=False), "original movie")
    refused(script("3_frames2movie.py", tmp_path / "f", "-o",
                   tmp_path / "f" / "00000003.png", check=False), "00000003.png")
    assert listing(tmp_path) == before


# -- 4. kill -9: no ffmpeg left writing, no half-written movie in place -------------------

def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")          # dead, not reaped (yet) by whoever adopted it


@pytest.fixture(scope="module")
def long_frames(tmp_path_factory):
    """Frames whose encoding takes seconds: 360 noisy 320x240 JPEGs."""
    folder = tmp_path_factory.mktemp("long") / "frames"
    folder.mkdir()
    subprocess.run([video.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=25,noise=alls=80:allf=t", "-frames:v", "360",
                    "-q:v", "3", str(folder / "%08d.jpg")], check=True)
    return folder


def start(args, **options):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            **options)


def wait_for_ffmpeg(process, ready) -> int:
    """The pid of ``process``'s ffmpeg child, once ``ready()`` is true."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        found = children(process.pid)
        if found and ready():
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no ffmpeg at work in time")


def test_killed_while_encoding_its_ffmpeg_dies_and_the_rerun_writes_a_whole_movie(
        long_frames, tmp_path):
    out = tmp_path / "out.mp4"
    command = [ROOT / "3_frames2movie.py", long_frames, "-o", out, "--fps", "25", "-q"]
    process = start(command)
    encoder = wait_for_ffmpeg(process, lambda: any(
        p.stat().st_size > 0 for p in tmp_path.glob(".deepdream-scratch-*/*-out.mp4")))
    process.kill()
    process.wait()
    deadline = time.monotonic() + 10
    while not gone(encoder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(encoder), "ffmpeg kept running after its parent was killed"
    assert not out.exists()
    script("3_frames2movie.py", *command[1:])   # the same command again
    check = subprocess.run([video.ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "null",
                            "-"], capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == ""
    assert stream_length(out, "v")[0] == 360
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]   # the killed run's part too
    # and its folder of links to the frames, in the temporary folder
    assert not [p for p in Path(tempfile.gettempdir()).glob(".deepdream-scratch-*")
                if f"-{process.pid}-" in p.name]


def script_ignoring_ctrl_c(*args):
    """Start a script as a shell script's background job is started: SIGINT ignored (Python
    keeps it ignored; ffmpeg installs its own handler), in a process group of its own."""
    return start(args, start_new_session=True,
                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))


@pytest.mark.parametrize("to", ["group", "pid"])
@pytest.mark.parametrize("stage", ["1", "3"])
def test_ctrl_c_during_ffmpeg_says_stopped_not_failed(stage, to, long_frames, tmp_path):
    """Ctrl-C at a terminal (SIGINT to the whole group), or a SIGINT sent to the stage's own
    process alone (kill -INT PID), also where it was started ignoring SIGINT (a shell's
    background job): stopped, its ffmpeg gone, nothing left behind."""
    if stage == "1":
        movie = tmp_path / "long.mp4"
        subprocess.run([video.ffmpeg_exe(), "-v", "error", "-framerate", "25", "-i",
                        str(long_frames / "%08d.jpg"), "-c:v", "libx264", "-preset",
                        "ultrafast", str(movie)], check=True)
        target = tmp_path / "frames"
        process = script_ignoring_ctrl_c(ROOT / "1_movie2frames.py", movie, target)
        ready = lambda: len(list(target.glob(".deepdream-scratch-*/extracting/*.png"))) > 5  # noqa
    else:
        target = tmp_path / "out.mp4"
        process = script_ignoring_ctrl_c(ROOT / "3_frames2movie.py", long_frames, "-o",
                                         target)
        ready = lambda: any(p.stat().st_size  # noqa: E731
                            for p in tmp_path.glob(".deepdream-scratch-*/*-out.mp4"))
    encoder = wait_for_ffmpeg(process, ready)
    if to == "group":
        os.killpg(process.pid, signal.SIGINT)              # Ctrl-C: the whole group
    else:
        os.kill(process.pid, signal.SIGINT)                # to the stage alone
    stderr = process.communicate(timeout=60)[1]
    deadline = time.monotonic() + 10
    while not gone(encoder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(encoder), "its ffmpeg kept running"
    assert process.returncode == 130, stderr
    assert "stopped" in stderr and "ffmpeg failed" not in stderr and "error" not in stderr
    assert [p.name for p in tmp_path.iterdir() if p.name != "long.mp4"] == []


# -- 5. what stage 3 writes is every frame ------------------------------------------------

def test_gif_of_frames_of_two_sizes_holds_every_frame(tmp_path, ffmpeg_binary):
    folder = write_frames(tmp_path / "f", 3, (64, 48))
    write_frames(folder, 3, (80, 60), first=4)
    for name, flags in (("o.gif", ["--gif"]), ("o.mp4", [])):
        result = script("3_frames2movie.py", folder, "-o", tmp_path / name, *flags)
        assert "6 frames at 25 fps written" in result.stderr
        assert stream_length(tmp_path / name, "v")[0] == 6          # decoded
        assert "64x48" in stream_line(tmp_path / name, "Video")


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40],
                         ids=["empty", "broken"])
def test_an_unreadable_frame_is_named_and_nothing_written(tmp_path, content):
    folder = write_frames(tmp_path / "f", 6)
    (folder / "00000004.png").write_bytes(content)
    before = listing(tmp_path)
    refused(script("3_frames2movie.py", folder, "-o", tmp_path / "o.mp4", check=False),
            "00000004.png")
    assert listing(tmp_path) == before


def corrupt_image_data(path: Path) -> None:
    """Garble a PNG's compressed pixels, keeping every chunk's checksum right: a frame that
    looks whole to a quick check and that ffmpeg cannot decode."""
    data = path.read_bytes()
    out, pos = bytearray(data[:8]), 8
    while pos < len(data):
        length, = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IDAT":
            body = body[:2] + bytes(b ^ 0xFF for b in body[2:40]) + body[40:]
        out += struct.pack(">I", length) + kind + body + struct.pack(">I",
                                                                     zlib.crc32(kind + body))
        pos += 12 + length
    path.write_bytes(bytes(out))


def test_a_movie_short_of_frames_is_not_put_in_place(tmp_path, ffmpeg_binary):
    folder = write_frames(tmp_path / "f", 6)
    corrupt_image_data(folder / "00000003.png")
    (tmp_path / "o.mp4").write_bytes(b"the user's movie")
    before = listing(tmp_path)
    line = refused(script("3_frames2movie.py", folder, "-o", tmp_path / "o.mp4", "--fps", "25",
                          "-q", "--overwrite", check=False), "5 frames", "6", "not written")
    assert "o.mp4" in line
    assert listing(tmp_path) == before


# -- 6. settings that cannot work: one line, before anything is written -------------------

@pytest.mark.parametrize("flags,words", [
    (["--fps", "0"], ["frame rate", "0"]), (["--fps", "-1"], ["frame rate", "-1"]),
    (["--fps", "fast"], ["fast"]), (["--start", "-1"], ["start"]),
    (["--start", "0.3", "--end", "0.2"], ["0.2", "0.3"]),
    (["--start", "0.3", "--end", "0.3"], ["0.3"]), (["--start", "5"], ["long"]),
], ids=["fps-0", "fps-negative", "fps-junk", "start-negative", "end-before-start",
        "end-at-start", "start-past-the-end"])
def test_stage1_refuses_settings_before_making_the_folder(flags, words, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    before = listing(tmp_path)
    refused(script("1_movie2frames.py", clip, tmp_path / "new" / "frames", *flags,
                   check=False), *words)
    assert listing(tmp_path) == before


# (--fps 25 where the rate is not under test: frames without movie.json warn otherwise)
STAGE3_REFUSALS = {
    "crf-52": (["--crf", "52"], ["--crf", "52"]),
    "crf-negative": (["--crf", "-1"], ["--crf"]),
    "fps-0": (["--fps", "0"], ["frame rate"]),
    "fps-negative": (["--fps", "-2"], ["frame rate"]),
    "fps-junk": (["--fps", "fast"], ["fast"]),
    "a-folder": (["-o", "{tmp}"], ["is a folder"]),
    "no-extension": (["-o", "{tmp}/movie"], ["no extension"]),
    "unknown-extension": (["--fps", "25", "-o", "{tmp}/movie.xyz"], [".xyz"]),
    "gif-flag-mp4-name": (["--gif", "-o", "{tmp}/movie.mp4"], ["--gif", ".gif"]),
    "unknown-codec": (["--fps", "25", "--codec", "nosuchcodec", "-o", "{tmp}/movie.mp4"],
                      ["nosuchcodec"]),
}


@pytest.mark.parametrize("case", STAGE3_REFUSALS)
def test_stage3_refuses_settings_before_writing(case, tmp_path, ffmpeg_binary):
    folder = write_frames(tmp_path / "f", 4)
    flags, words = STAGE3_REFUSALS[case]
    before = listing(tmp_path)
    refused(script("3_frames2movie.py", folder, *[f.format(tmp=tmp_path) for f in flags],
                   check=False, cwd=tmp_path), *words)
    assert listing(tmp_path) == before


def test_stage3_names_its_own_way_to_choose_a_frame_type(tmp_path):
    folder = write_frames(tmp_path / "f", 3)
    write_frames(folder, 3, ext="jpg")
    line = refused(script("3_frames2movie.py", folder, "-o", tmp_path / "o.mp4",
                          check=False), "jpg, png")
    assert "--image_type" not in line and "-it" not in line
    script("3_frames2movie.py", folder, "jpg", "-o", tmp_path / "o.mp4", "-q")
    assert stream_length(tmp_path / "o.mp4", "v")[0] == 3


def test_gif_extension_makes_a_gif(tmp_path):
    folder = write_frames(tmp_path / "f", 4)
    script("3_frames2movie.py", folder, "-o", tmp_path / "o.gif", "-q")
    assert (tmp_path / "o.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert stream_length(tmp_path / "o.gif", "v")[0] == 4


@pytest.mark.parametrize("stage", ["1", "3"])
def test_a_deepdream_ffmpeg_that_is_not_ffmpeg_is_named(stage, tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4")
    folder = write_frames(tmp_path / "f", 3)
    before = listing(tmp_path)
    monkeypatch.setenv("DEEPDREAM_FFMPEG", shutil.which("true"))
    if stage == "1":
        result = script("1_movie2frames.py", clip, tmp_path / "new", check=False)
    else:
        result = script("3_frames2movie.py", folder, "-o", tmp_path / "o.mp4", check=False)
    refused(result, "DEEPDREAM_FFMPEG", "not an ffmpeg")
    assert listing(tmp_path) == before
