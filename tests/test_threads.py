"""torch's thread count: the chooser's choice from given frame times (no clock, no torch), and
the commands' effect -- --threads and OMP_NUM_THREADS pin the count the run uses, and OpenMP's
waiting is passive from the start (unless the user chose), as OpenMP itself reports it."""
import re

import numpy as np
import pytest

from deepdream.io import frames
from deepdream.run import threads as th
from deepdream.run.threads import ThreadChooser

from conftest import script
from media import make_clip

QUIET = {1: 0.58, 2: 0.40}          # seconds a frame on this machine's two cores, quiet
BUSY = {1: 0.55, 2: 1.40}           # ... with one core taken by another process
SWEEP = [1.0, 1.1, 1.2, 1.3, 1.2, 1.1]   # the layers of a sweep cost more or less


def drive(chooser, seconds_of, frames=200, first=1.3, sweep=SWEEP):
    """Dream ``frames`` frames with ``chooser``: frame f with n threads, of layer
    f % len(sweep), takes ``seconds_of(f)[n]`` times the layer's cost, and ``first`` times that
    for the first frame of a layer at a count (set-ups). Returns the counts used, frame by
    frame, and the seconds it took."""
    used, total, seen = [], 0.0, set()
    for f in range(frames):
        n = chooser.threads
        kind = f % len(sweep)
        seconds = seconds_of(f)[n] * sweep[kind] * (first if (n, kind) not in seen else 1)
        seen.add((n, kind))
        chooser.record(n, seconds, work=1.0, kind=kind)
        used.append(n)
        total += seconds
    return used, total


def best_seconds(seconds_of, frames):
    """The seconds of ``frames`` frames dreamed each with the faster count, no set-ups."""
    return sum(min(seconds_of(f).values()) * SWEEP[f % len(SWEEP)] for f in range(frames))


@pytest.mark.parametrize("times,best", [(QUIET, 2), (BUSY, 1)], ids=["quiet", "busy"])
def test_the_chooser_keeps_the_faster_count_and_seldom_tries_the_other(times, best):
    chooser = ThreadChooser(2)
    used, total = drive(chooser, lambda f: times, frames=300)
    assert chooser.settled and chooser.current == best
    assert used[:4].count(best) >= 1 and used[:4].count(3 - best) >= 1   # both tried first
    # later, the slower count is tried now and then: its frames cost the run a few per cent
    other = used[20:].count(3 - best)
    assert 1 <= other
    assert total < 1.10 * best_seconds(lambda f: times, 300)     # tries and set-ups included
    assert other * (times[3 - best] - times[best]) < 0.06 * total


def test_the_chooser_changes_when_the_times_change():
    # quiet for 100 frames, another process takes a core for 100, then quiet again
    def times(f):
        return BUSY if 100 <= f < 200 else QUIET
    chooser = ThreadChooser(2)
    used, total = drive(chooser, times, frames=300)
    assert used[90:100].count(2) >= 8
    assert used[103:200].count(1) >= 0.9 * 97          # within three frames of the load
    assert used[200 + 60:].count(2) >= 0.8 * 40        # back to two once it has looked again
    assert total < 1.15 * best_seconds(times, 300)


@pytest.mark.parametrize("still_busy", [True, False], ids=["busy-now", "a-moment"])
def test_a_slow_frame_makes_it_try_the_other_count_at_once(still_busy):
    chooser = ThreadChooser(2)
    drive(chooser, lambda f: QUIET, frames=40)
    assert chooser.current == 2
    while chooser.threads != 2:          # a try that was due: taken as usual
        chooser.record(chooser.threads, QUIET[chooser.threads], kind=0)
    for _ in range(3):
        chooser.record(2, QUIET[2], kind=0)
        assert chooser.threads == 2      # no try is due so soon after the last
    chooser.record(2, 3 * QUIET[2], kind=0)      # another process took a core
    assert chooser.threads == 1                  # tried at once
    chooser.record(1, BUSY[1], kind=0)
    assert chooser.threads == 2                  # and two again, to see if it lasts
    chooser.record(2, BUSY[2] if still_busy else QUIET[2], kind=0)
    assert chooser.current == chooser.threads == (1 if still_busy else 2)


def test_a_first_frame_of_a_layer_paying_its_set_up_does_not_move_it():
    # a sweep whose every first frame at a count costs 1.6 times: two threads stay
    chooser = ThreadChooser(2)
    used, _ = drive(chooser, lambda f: QUIET, frames=100, first=1.6)
    assert chooser.current == 2 and used[30:].count(2) >= 0.85 * 70


@pytest.mark.parametrize("maximum", [0, 1, 2, 3, 8, 64])
def test_never_below_one_nor_above_the_maximum(maximum):
    rng = np.random.default_rng(maximum)
    chooser = ThreadChooser(maximum)
    counts = set()
    for f in range(300):
        n = chooser.threads
        counts.add(n)
        assert 1 <= n <= max(1, maximum)
        # any times at all: noise, a count now fast, now slow
        chooser.record(n, float(rng.uniform(0.05, 2.0)) * (1 + (n % 3)), kind=f % 4)
    assert counts == set(th.candidates(max(1, maximum)))
    assert th.candidates(8) == [7, 8, 1] and th.candidates(2) == [1, 2]
    assert th.candidates(1) == [1] and th.candidates(0) == [1]


def test_one_core_is_one_thread_and_nothing_to_choose():
    chooser = ThreadChooser(1)
    assert chooser.settled and chooser.threads == 1
    for seconds in (0.5, 5.0, 0.5):
        chooser.record(1, seconds)
        assert chooser.threads == 1


def test_a_pin_is_the_users():
    assert th.user_pin(3) == (3, "--threads")


@pytest.mark.parametrize("value,expected", [("3", (3, "OMP_NUM_THREADS")),
                                            ("4,2", (4, "OMP_NUM_THREADS")),
                                            ("0", (None, "")), ("many", (None, "")),
                                            ("", (None, ""))])
def test_omp_num_threads_pins_it_when_it_is_a_count(monkeypatch, value, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert th.user_pin(None) == expected


# the commands, on the tiny net: what the run used, from its log and from OpenMP's own report

def frame_folder(path, count):
    path.mkdir()
    rng = np.random.default_rng(0)
    for n in range(1, count + 1):
        frames.write_frame(path / frames.frame_name(n, "png"), rng.uniform(0, 255, (48, 64, 3)))
    return path


STAGE_2 = ["-l", "inception_3b/output", "-oct", "2", "-itr", "1", "-j", "0"]
SPIN = re.compile(r"GOMP_SPINCOUNT = '(\d+)'")


def omp_report(stderr: str) -> tuple[str, int]:
    """The waiting policy and spin count OpenMP (torch's libgomp) started with, as it shows
    them with OMP_DISPLAY_ENV=VERBOSE: PASSIVE is a spin count of 0 (unset, 300000)."""
    policy = re.search(r"OMP_WAIT_POLICY = '(\w+)'", stderr)
    spin = SPIN.search(stderr)
    assert policy and spin, stderr[-2000:]
    return policy.group(1), int(spin.group(1))


def test_stage_2_chooses_within_the_cores_with_openmps_own_waiting(
        tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("OMP_DISPLAY_ENV", "VERBOSE")
    src = frame_folder(tmp_path / "in", 6)
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "out", "-t",
                    tiny_model_dir, *STAGE_2, "-v", "2")
    # OpenMP's own policy (threads spin briefly while they wait): 1.5x faster on free cores
    # than passive waiting (BENCHMARKS.md), and on a busy core the chooser takes fewer threads
    assert omp_report(result.stderr)[1] == 300000
    maximum = min(th.usable_cores(), int(re.search(r"OMP_NUM_THREADS = '(\d+)'",
                                                   result.stderr).group(1)))
    settled = re.findall(r"torch dreams with (\d+) threads of (\d+), the fastest now",
                         result.stderr)
    assert len(settled) == 1 and int(settled[0][1]) == maximum, result.stderr[-3000:]
    changes = re.findall(r"torch threads (\d+) -> (\d+)", result.stderr)
    assert all(1 <= int(n) <= maximum for change in changes for n in change)
    assert "as --threads asks" not in result.stderr
    assert len(frames.list_frames(tmp_path / "out")) == 6


def test_threads_pins_stage_2(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    src = frame_folder(tmp_path / "in", 4)
    # 3 threads: a count the chooser would not take on a machine of fewer cores
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "out", "-t",
                    tiny_model_dir, *STAGE_2, "--threads", "3", "-v", "2")
    assert result.stderr.count("torch dreams with 3 threads, as --threads asks") == 1
    assert "torch threads" not in result.stderr and "the fastest now" not in result.stderr
    assert len(frames.list_frames(tmp_path / "out")) == 4


def test_the_one_command_keeps_the_users_omp_settings(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("OMP_DISPLAY_ENV", "VERBOSE")
    movie = make_clip(tmp_path / "m.mp4", size="64x48", rate="25", duration=0.2, audio=False)
    result = script("-m deepdream", movie, "-o", tmp_path / "dream.mp4", "-t", tiny_model_dir,
                    *STAGE_2, "-v", "2")
    assert omp_report(result.stderr)[0] == "ACTIVE"
    assert omp_report(result.stderr)[1] > 300000
    assert result.stderr.count("torch dreams with 3 threads, as OMP_NUM_THREADS asks") == 1
    assert "torch threads" not in result.stderr and "the fastest now" not in result.stderr
    assert (tmp_path / "dream.mp4").stat().st_size > 0


def test_threads_below_one_is_one_line(tmp_path, tiny_model_dir):
    src = frame_folder(tmp_path / "in", 1)
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "out", "-t",
                    tiny_model_dir, "--threads", "0", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --threads must be 1 or more"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode", ["--live", "--sheet"])
def test_threads_pins_live_and_the_contact_sheet(mode, tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    movie = make_clip(tmp_path / "m.mp4", size="64x48", rate="25", duration=4, audio=False)
    args = ["--live", movie, "-o", tmp_path / "live.mp4", "--duration", "8", "-p", "64"] \
        if mode == "--live" else [movie, "--sheet", tmp_path / "sheet.png"]
    result = script("-m deepdream", *args, "-t", tiny_model_dir, *STAGE_2, "--threads", "3",
                    "-v", "2")
    assert result.stderr.count("torch dreams with 3 threads, as --threads asks") == 1
    assert "torch threads" not in result.stderr and "the fastest now" not in result.stderr


def test_a_moments_slowness_does_not_try_a_count_many_times_slower():
    # one core taken for good: two threads 30 times slower than one (as a user measured)
    times = {1: 0.072, 2: 2.2}
    chooser = ThreadChooser(2)
    used, _ = drive(chooser, lambda f: times, frames=30, sweep=[1.0])
    assert chooser.current == 1
    tries = used.count(2)
    for _ in range(20):      # now and then a frame twice as slow: the machine's other work
        chooser.record(1, times[1], kind=0)
        assert chooser.threads == 1
        chooser.record(1, 2 * times[1], kind=0)
        assert chooser.threads == 1
    assert tries <= 2        # the start's (its frames' cost is the budget's: no try since)


def test_scheduled_weights_do_not_make_each_frame_a_new_kind():
    """A term weight that follows a schedule ('[sound:0..1]*LAYER') is another number every
    frame: frames differing only in weights are one kind to the chooser (else each frame
    counted as a first, a set-up, and the chooser never learnt a pace); other layers,
    channels, sizes and batches are other kinds."""
    kind = th.frame_kind("0.25*inception_3b/output+0.75*conv2/3x3:3", 48, 64)
    assert kind == th.frame_kind("0.9*inception_3b/output-1e-05*conv2/3x3:3", 48, 64)
    assert kind == th.frame_kind("inception_3b/output+conv2/3x3:3", 48, 64)
    others = [th.frame_kind("inception_3b/output+conv2/3x3:4", 48, 64),
              th.frame_kind("inception_3b/output", 48, 64),
              th.frame_kind("0.25*inception_3b/output+0.75*conv2/3x3:3", 96, 64),
              th.frame_kind("0.25*inception_3b/output+0.75*conv2/3x3:3", 48, 64, 2)]
    assert len({kind, *others}) == 5
