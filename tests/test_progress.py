"""Progress reaches the caller through deepdream.progress: a display it passes is told the
work still to do (frames an earlier run dreamed left out, so the ETA after -sf or a resume is
right) and each step; without one the library logs lines with the ETA; only the command line
draws bars (tests/test_architecture.py checks that the library never imports it)."""
import logging
import re

from deepdream import progress
from deepdream.io import frames
from deepdream.run import loop
from deepdream.run.settings import DreamSettings, RunOptions

from test_stage2 import FAST, frame_folder


class Recorder:
    """A display of the caller's: records what it is told."""
    made: list["Recorder"] = []

    def __init__(self, total, description, unit):
        self.total, self.description, self.unit, self.steps = total, description, unit, []
        self.closed = False
        Recorder.made.append(self)

    def step(self, count=1):
        self.steps.append(count)

    def close(self):
        self.closed = True


def test_a_display_is_told_the_frames_left_and_each_frame(tiny_net, tmp_path):
    src, out = frame_folder(tmp_path / "in", count=5), tmp_path / "out"
    settings = DreamSettings(**FAST)
    loop.dream_frames(src, out, tiny_net, settings, options=RunOptions(end_frame=2,
                                                                       progress=False))
    Recorder.made.clear()
    report = loop.dream_frames(src, out, tiny_net, settings,
                               options=RunOptions(progress=Recorder))
    assert report.dreamed == 3 and report.skipped == 2
    (shown,) = Recorder.made
    assert (shown.total, shown.description, shown.unit) == (3, "dreaming", "frame")
    assert shown.steps == [1, 1, 1] and shown.closed
    assert len(frames.list_frames(out)) == 5


def test_without_a_display_the_library_logs_the_eta(tiny_net, tmp_path, caplog):
    src = frame_folder(tmp_path / "in", count=4)
    with caplog.at_level(logging.INFO, logger="deepdream.progress"):
        loop.dream_frames(src, tmp_path / "out", tiny_net, DreamSettings(**FAST),
                          options=RunOptions(start_frame=3))
    lines = [r.getMessage() for r in caplog.records if r.name == "deepdream.progress"]
    assert [re.match(r"dreaming: (\d)/2 frames, [\d.e+-]+ s/frame, ETA \d+:\d\d:\d\d$",
                     line).group(1) for line in lines] == ["1", "2"], lines


def test_false_says_nothing(caplog):
    with caplog.at_level(logging.DEBUG):
        reporter = progress.start(False, 10)
        reporter.step(10)
        reporter.close()
    assert caplog.records == []


def test_the_log_line_counts_from_its_own_start_and_ends_at_zero():
    log = progress.LogProgress(40, "extracting frames")
    for _ in range(40):
        log.step()
    assert re.fullmatch(r"extracting frames: 40/40 frames, \S+ s/frame, ETA 0:00:00",
                        log.line())
