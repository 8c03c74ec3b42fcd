"""How the library tells of work done; only the command line draws bars.

Every long task (extracting, dreaming, encoding, downloading) takes ``progress``:
- False: nothing;
- True: a log line every twentieth of the work, with the time a unit and the ETA;
- a display of the caller's, called as ``progress(total, description, unit)`` (total may be
  None when unknown) and returning an object with ``step(count)`` and ``close()``: how the
  command line shows its bars (``deepdream.cli.common.Bar``).
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Protocol, Union

log = logging.getLogger(__name__)


class Reporter(Protocol):
    def step(self, count: int = 1) -> None: ...

    def close(self) -> None: ...


Display = Callable[[Union[int, None], str, str], Reporter]


class LogProgress:
    """A log line every twentieth of ``total`` (and at the end): units done, time a unit and
    the ETA, counted from this object's start, so work done before it (frames dreamed by an
    earlier run) does not make the ETA too short."""

    def __init__(self, total: int | None, description: str = "dreaming", unit: str = "frame"):
        self.total, self.description, self.unit = total, description, unit
        self.done, self.started = 0, time.monotonic()
        self.every = max(1, (total or 0) // 20)

    def step(self, count: int = 1) -> None:
        before, self.done = self.done, self.done + count
        if self.total and (self.done // self.every > before // self.every
                           or self.done == self.total):
            log.info("%s", self.line())

    def line(self) -> str:
        """'dreaming: 12/240 frames, 1.3 s/frame, ETA 0:04:56'."""
        per = (time.monotonic() - self.started) / max(self.done, 1)
        eta = int(per * max(self.total - self.done, 0))
        return (f"{self.description}: {self.done}/{self.total} {self.unit}s, "
                f"{per:.3g} s/{self.unit}, ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}")

    def close(self) -> None:
        pass


class _Silent:
    def step(self, count: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def start(progress: bool | Display, total: int | None, description: str = "dreaming",
          unit: str = "frame") -> Reporter:
    """The reporter ``progress`` asks for (see the module's text)."""
    if callable(progress):
        return progress(total, description, unit)
    return LogProgress(total, description, unit) if progress else _Silent()
