"""How many CPU threads torch dreams with: the count that is fastest now, chosen from the run's
own frames (``ThreadChooser``, pure; ``TorchThreads`` sets torch's count between frames), or
the user's (--threads, OMP_NUM_THREADS); and OpenMP's passive waiting, set before torch loads.

A machine that is doing other things has a busy core now and then. OpenMP's threads wait for
each other at the end of every operation, so one thread whose core is taken holds up all of
them: on two cores with one taken, two threads dream several times slower than one. No count
suits every moment, so the run measures its frames, tries the others now and then (at a cost
kept to a few per cent of its time) and at once when a frame is much slower than its pace."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import Hashable

log = logging.getLogger(__name__)

WAIT_POLICY = "OMP_WAIT_POLICY"
NUM_THREADS = "OMP_NUM_THREADS"

EXPLORE_FRAMES = 2   # frames each count is tried for at the start, at most
WARM_UP = 1.6        # the most a count's first frame of a kind takes over its pace (set-up)
SLOW = 1.5           # a frame this many times its count's pace: the other counts are tried
MARGIN = 0.95        # another count takes over when its pace is this share of the current's
BUDGET = 0.04        # share of the run's time that trying slower counts may cost
MIN_GAP = 4          # frames at least between two tries of a count
MAX_GAP = 120.0      # seconds at most between two tries of a count
SMOOTH = 0.5         # weight of the newest frame in a count's pace


def worker_environment() -> dict[str, str]:
    """The environment a worker process (a Ray actor) starts with: the user's OpenMP waiting
    policy, where they set one (else OpenMP's own: threads that spin briefly while they wait,
    the fastest while the cores are free; when one is taken, the chooser takes fewer)."""
    return {WAIT_POLICY: os.environ[WAIT_POLICY]} if WAIT_POLICY in os.environ else {}


def user_pin(threads: int | None = None) -> tuple[int | None, str]:
    """The thread count the user fixed and where: ``threads`` (--threads), else the first
    number of $OMP_NUM_THREADS; (None, "") if neither."""
    if threads is not None:
        return threads, "--threads"
    first = os.environ.get(NUM_THREADS, "").split(",")[0].strip()
    if first.isdigit() and int(first) >= 1:
        return int(first), NUM_THREADS
    return None, ""


def candidates(maximum: int) -> list[int]:
    """The counts worth trying, the first tried first: every core but one (left to the
    machine's other work), every core, and on more than two cores, one."""
    counts = (maximum - 1, maximum, 1 if maximum > 2 else 0)
    return list(dict.fromkeys(c for c in counts if c >= 1)) or [1]


class ThreadChooser:
    """Chooses the thread count for each frame from the seconds the frames took.

    ``threads`` is the count for the next frame; ``record`` takes what one took: its count,
    its seconds, its work (pixel-steps: frames of other sizes compare) and its kind (a frame
    of a kind first seen at a count pays set-ups: its time is a bound, not a pace). At the
    start each candidate is tried; the fastest is kept (``settled``), and each other is tried
    again for one frame when its last try's loss would cost the run no more than BUDGET of
    its time (MIN_GAP frames to MAX_GAP seconds apart), or at once when a frame takes SLOW
    times its count's pace and theirs could beat it (if the frame after those tries is slow
    too, the fastest takes over). A count takes over when it is faster by 1 - MARGIN or more.
    Pure: no torch, no clock."""

    def __init__(self, maximum: int):
        self.maximum = max(1, int(maximum))
        self.counts = candidates(self.maximum)
        self.current = self.counts[0]
        self.settled = len(self.counts) == 1
        self.pace: dict[int, float] = {}      # seconds per unit of work, by count
        self._measured: set[int] = set()      # counts whose pace is past their set-up
        self._seen: set[tuple[int, Hashable]] = set()
        self._trying = [] if self.settled else list(self.counts)   # counts to try, in turn
        self._tries = 0                       # frames the first of them has had
        self._frame, self._clock = 0, 0.0     # frames and seconds recorded
        self._work = 1.0                      # the last frame's work
        self._due: dict[int, tuple[int, float]] = {}   # count -> (frame, clock) of next try
        self._last: dict[int, int] = {}       # count -> the last frame it dreamed
        self._calm: float | None = None       # the current's pace before a slow frame

    @property
    def threads(self) -> int:
        """The count to dream the next frame with."""
        return self._trying[0] if self._trying else self.current

    def record(self, threads: int, seconds: float, work: float = 1.0,
               kind: Hashable = None) -> None:
        """Take the time of a frame dreamed with ``threads``: ``seconds`` for ``work``."""
        self._frame += 1
        self._clock += seconds
        self._work = work
        self._last[threads] = self._frame
        pace = seconds / max(work, 1e-12)
        first = (threads, kind) not in self._seen
        self._seen.add((threads, kind))
        if not self.settled:
            self._explore(threads, pace, first)
        elif self._trying and self._trying[0] == threads:
            self._try(threads, pace, first)
        elif threads == self.current:
            self._steady(pace, first)
        else:                      # a count this chooser did not ask for: noted, no more
            self._note(threads, pace, first, fresh=False)
        if self.settled and not self._trying and self._calm is None:
            due = [c for c in self.counts if c != self.current and c in self._due and
                   self._frame >= self._due[c][0] and self._clock >= self._due[c][1]]
            self._trying = due[:1]

    def _note(self, count: int, pace: float, first: bool, fresh: bool) -> None:
        """Update ``count``'s pace: a frame past set-up replaces a pace made of set-up
        frames, is averaged into one (or replaces it, when ``fresh``: a try after a pause),
        and a set-up frame is kept only while nothing better is known."""
        if not first:
            old = self.pace.get(count)
            keep = count in self._measured and not fresh
            self.pace[count] = (1 - SMOOTH) * old + SMOOTH * pace if keep else pace
            self._measured.add(count)
        elif count not in self._measured:
            self.pace[count] = min(self.pace.get(count, math.inf), pace)

    def _explore(self, count: int, pace: float, first: bool) -> None:
        self._note(count, pace, first, fresh=False)
        if not self._trying or count != self._trying[0]:
            return
        self._tries += 1
        best = min((p for c, p in self.pace.items() if c != count), default=None)
        decided = count in self._measured or self._tries >= EXPLORE_FRAMES or (
            best is not None and (pace < MARGIN * best or pace / WARM_UP > best))
        if not decided:
            return
        self._trying.pop(0)
        self._tries = 0
        if not self._trying:
            self.current = min(self.pace, key=self.pace.get)
            self.settled = True
            self._schedule_others()

    def _steady(self, pace: float, first: bool) -> None:
        before = self.pace.get(self.current)
        self._note(self.current, pace, first, fresh=False)
        if before is None:
            return
        slow = pace > SLOW * (WARM_UP if first else 1.0) * (self._calm or before)
        if self._calm is not None:
            # the frame after a slow one and the others' tries: slow again, the machine is
            # busier now, and a faster count takes over; else it was a moment's
            self._calm = None
            if slow:
                self.pace[self.current] = pace
                best = min(self.pace, key=self.pace.get)
                if self.pace[best] < MARGIN * pace:
                    self.current = best
            self._schedule_others()
        elif slow:
            # the counts whose pace could beat this frame's are tried now (those not tried a
            # moment ago), and the next frame says if the slowness lasts; one many times
            # slower is not tried for a moment's slowness (its next try is due in time)
            hopeful = [c for c in self.counts if c != self.current and
                       self.pace[c] < MARGIN * pace]
            if hopeful:
                self._calm = before
                self._trying = [c for c in hopeful
                                if self._frame - self._last.get(c, -MIN_GAP) >= 3]

    def _try(self, count: int, pace: float, first: bool) -> None:
        self._trying.pop(0)
        if self._calm is not None:        # after a slow frame: compared on the next one
            self.pace[count] = pace
            return
        current = self.pace[self.current]
        if first:      # a bound: it can show the count faster, not slower
            if pace < MARGIN * current:
                self.pace[count] = pace
            else:
                self._schedule(count, pace / WARM_UP, current)
                return
        else:
            self._note(count, pace, first, fresh=True)
        if self.pace[count] < MARGIN * current:
            old, self.current = self.current, count
            self._schedule(old, current, self.pace[count])
        else:
            self._schedule(count, self.pace[count], current)

    def _schedule_others(self) -> None:
        for count in self.counts:
            if count != self.current and count in self.pace:
                self._schedule(count, self.pace[count], self.pace[self.current])

    def _schedule(self, count: int, pace: float, best: float) -> None:
        """The next try of ``count``, whose pace is ``pace`` against the best's ``best``:
        when its loss of a frame's time is BUDGET of the time since (at least MIN_GAP frames,
        at most MAX_GAP seconds)."""
        loss = max(0.0, pace - best) * self._work
        self._due[count] = (self._frame + MIN_GAP, self._clock + min(MAX_GAP, loss / BUDGET))


def usable_cores() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_torch_default: int | None = None


def torch_default() -> int:
    """torch's own thread count (its physical cores, or OMP_NUM_THREADS), as it was before
    this module first changed it."""
    global _torch_default
    if _torch_default is None:
        import torch
        _torch_default = torch.get_num_threads()
    return _torch_default


def frame_kind(layer: str, height: int, width: int, count: int = 1) -> Hashable:
    """What sets a dream's set-up cost apart (a frame of a kind not yet seen at a thread count
    pays it): its layers and channels, size and batch -- not its terms' weights, which a
    schedule changes every frame."""
    from ..dreamer.objectives import parse
    terms = tuple((term.layer, term.channels) for term in parse(layer))
    return terms, height, width, count


class TorchThreads:
    """torch's CPU threads for a run (or all of a Ray worker's): the pinned count, else each
    frame's from a ThreadChooser of at most ``maximum`` (default: the usable cores, at most
    torch's own count). Set between frames only (``timing``); nothing on other devices."""

    def __init__(self, device, pinned: int | None = None, why: str = "",
                 maximum: int | None = None):
        self.cpu = str(device) == "cpu"
        self.pinned, self.why = pinned, why
        self.maximum = maximum or min(usable_cores(), torch_default())
        self.chooser = ThreadChooser(self.maximum) if self.cpu and pinned is None else None
        self._said = False

    @classmethod
    def for_run(cls, device, threads: int | None = None) -> TorchThreads:
        """A run's: pinned to ``threads`` (--threads) or $OMP_NUM_THREADS if either is set."""
        return cls(device, *user_pin(threads))

    @contextlib.contextmanager
    def timing(self, settings, layer: str, height: int, width: int, count: int = 1):
        """Around the dream of ``count`` frames of height x width at ``layer`` with
        ``settings`` (a DreamSettings): sets torch's threads before it, and times it."""
        from ..dreamer.ascent import octave_sizes
        sizes = octave_sizes(height, width, settings.octaves, settings.octave_scale)
        work = count * settings.iterations * sum(h * w for h, w in sizes)
        with self.frame(work, frame_kind(layer, height, width, count)):
            yield

    @contextlib.contextmanager
    def frame(self, work: float, kind: Hashable = None):
        """Around one frame's (or batch's) dream of ``work`` pixel-steps of ``kind``."""
        if not self.cpu:
            yield
            return
        import torch
        threads = self.pinned or self.chooser.threads
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if self.pinned and not self._said:
            self._said = True
            log.info("torch dreams with %d threads, as %s asks", torch.get_num_threads(),
                     self.why)
        started = time.perf_counter()
        yield
        if self.chooser is None:
            return
        seconds = time.perf_counter() - started
        chooser, settled = self.chooser, self.chooser.settled
        chooser.record(threads, seconds, work, kind)
        if chooser.threads != threads:
            log.debug("torch threads %d -> %d (%s)", threads, chooser.threads,
                      self._paces(work))
        if chooser.settled and not settled:
            log.info("torch dreams with %d threads of %d, the fastest now (%s); measured "
                     "again as it runs", chooser.current, self.maximum, self._paces(work))

    def _paces(self, work: float) -> str:
        """Each count's seconds for a frame of ``work``."""
        return ", ".join(f"{c}: {p * work:.3g} s" for c, p in sorted(self.chooser.pace.items()))
