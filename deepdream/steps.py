"""The device side of an octave's gradient steps: checks whose verdict is read once an octave
(``deferred_checks``), the jitter's rolls applied from index tensors on the device (``rolls``),
and the count of the operations they dispatch (``Operations``) that shows it.

Nothing here reads a value back to the host inside an octave, and nothing depends on a host
number that changes from step to step, so an octave's steps could be captured as a CUDA
graph and replayed. It needs torch and numpy only: both the engines and the dream loop use it.
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import math
from typing import Iterator

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

_ACTIVE: contextvars.ContextVar[Checks | None] = contextvars.ContextVar("deepdream_checks",
                                                                        default=None)


class Checks:
    """Conditions noted on the device without waiting for them (``require``), and read back
    together, once (``verdict``)."""

    def __init__(self):
        self._errors: list[Exception] = []
        self._codes: dict[str, int] = {}
        self._first: torch.Tensor | None = None     # the first failure's code; NaN: none yet

    def require(self, holds: torch.Tensor, error: Exception) -> None:
        """Note whether ``holds`` (a boolean scalar on the device) is true; if it is not, and
        no condition failed before it, ``verdict`` raises ``error`` (errors of the same
        message share one code: the same check at every step)."""
        code = self._codes.setdefault(str(error), len(self._errors))
        if code == len(self._errors):
            self._errors.append(error)
        if self._first is None:
            self._first = torch.full((), math.nan, device=holds.device)
        torch.where(holds, self._first, self._first.nan_to_num(float(code)), out=self._first)

    def verdict(self) -> None:
        """Raise the error of the first condition that failed, if one did: one read of the
        device for all the conditions noted."""
        if self._first is not None:
            first = float(self._first)                                # the one wait
            if not math.isnan(first):
                raise self._errors[int(first)]


def active_checks() -> Checks | None:
    """The ``Checks`` of the ``deferred_checks`` block this thread is in, else None (a check
    is then made at once)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def deferred_checks() -> Iterator[Checks]:
    """A block (an octave) whose checks are noted on the device and read once as it ends:
    the error of the first that failed is raised then. An exception raised inside the block
    goes through as it is."""
    checks = Checks()
    token = _ACTIVE.set(checks)
    try:
        yield checks
    finally:
        _ACTIVE.reset(token)
    checks.verdict()


def draw_shifts(rngs: list[np.random.Generator], jitter: int, steps: int) -> np.ndarray:
    """The random rolls (dy, dx) of ``steps`` steps, (steps, N, 2), one generator an image,
    drawn in the order the dream has always drawn them: at each step, for each image in turn,
    two integers in [-jitter, jitter], the columns' first."""
    return np.array([[rng.integers(-jitter, jitter + 1, 2)[::-1] for rng in rngs]
                     for _ in range(steps)], dtype=np.int64).reshape(steps, len(rngs), 2)


class Roll:
    """One step's roll of each image (N, C, H, W) by its own shift, and back, as
    ``torch.roll`` makes it, by gathering along the flattened image (on a CPU, an indexing
    by rows and columns is ten times slower than a roll; this gather is not)."""

    def __init__(self, there: tuple[torch.Tensor, torch.Tensor],
                 back: tuple[torch.Tensor, torch.Tensor]):
        # each: the flat offset of each row's first pixel (N, 1, H, 1) and each column
        # (N, 1, 1, W) that a pixel of the result is taken from
        self._there, self._back = there, back

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) with each image rolled by its shift."""
        return _gather(x, *self._there)

    def back(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` rolled back: ``roll.back(roll(x))`` is ``x``."""
        return _gather(x, *self._back)


def _gather(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """The pixels of ``x`` (N, C, H, W) at flat offsets rows + cols, (N, C, H, W), gathered
    in the layout ``x`` has (the net's gradients are channels-last)."""
    n, c, h, w = x.shape
    index = (rows + cols).reshape(n, h * w, 1)                               # (N, H*W, 1)
    if x.is_contiguous():
        flat = x.reshape(n, c, h * w)                                        # (N, C, H*W)
        return flat.gather(2, index.transpose(1, 2).expand(n, c, h * w)).view(n, c, h, w)
    flat = x.permute(0, 2, 3, 1).reshape(n, h * w, c)                        # (N, H*W, C)
    return flat.gather(1, index.expand(n, h * w, c)).view(n, h, w, c).permute(0, 3, 1, 2)


def rolls(shifts: np.ndarray, shape: tuple[int, ...], device) -> list[Roll]:
    """The rolls of images of ``shape`` (N, C, H, W) by ``shifts`` (steps, N, 2), one a step:
    the shifts sent to the device at once and turned into index tensors there."""
    n, _, h, w = shape
    shift = torch.as_tensor(shifts, device=device)               # (S, N, 2), one copy
    dy = shift[:, :, 0].reshape(-1, n, 1, 1, 1)                   # (S, N, 1, 1, 1)
    dx = shift[:, :, 1].reshape(-1, n, 1, 1, 1)
    rows = torch.arange(h, device=device).reshape(h, 1)          # (H, 1)
    cols = torch.arange(w, device=device)                        # (W,)
    # roll(x, s)[i] is x[(i - s) mod size]; rolling back adds the shift
    there = zip(((rows - dy) % h * w).unbind(0), ((cols - dx) % w).unbind(0))
    back = zip(((rows + dy) % h * w).unbind(0), ((cols + dx) % w).unbind(0))
    return [Roll(t, b) for t, b in zip(there, back)]


def octave_rolls(rngs: list[np.random.Generator], jitter: int, steps: int, at_once: int,
                 shape: tuple[int, ...], device) -> Iterator[Roll | None]:
    """Each of an octave's ``steps`` rolls (None without jitter), their shifts drawn
    ``at_once`` steps at a time (``draw_shifts``), and drawn even without jitter (the
    generators' next numbers are then where they have always been)."""
    for first in range(0, steps, max(1, at_once)):
        shifts = draw_shifts(rngs, jitter, min(at_once, steps - first))
        yield from rolls(shifts, shape, device) if jitter else [None] * len(shifts)


# The operations that make the host wait for the device: a value read back (item, bool(),
# float(), a comparison answered on the host) or an output whose size depends on the values.
HOST_READS = frozenset({"aten._local_scalar_dense", "aten.item", "aten.is_nonzero",
                        "aten.equal", "aten.allclose", "aten.nonzero", "aten.masked_select",
                        "aten._unique2", "aten.unique_dim", "aten.unique_consecutive",
                        "aten.repeat_interleave"})
# Operations that copy a host value into a new tensor (torch.tensor(list), a list as an index)
_FROM_HOST = frozenset({"aten.lift_fresh", "aten.lift_fresh_copy"})


class Operations(TorchDispatchMode):
    """The aten operations run inside ``with Operations() as ops:``, counted by name
    (PyTorch's dispatcher sees them on every device): ``kernels`` (operations that compute),
    ``views`` (that alias their input, computing nothing), ``host_reads`` (``HOST_READS``)
    and ``uploads`` (a host value made a tensor, or a copy between devices)."""

    def __init__(self):
        super().__init__()
        self.kernels, self.views = collections.Counter(), collections.Counter()
        self.host_reads, self.uploads = collections.Counter(), collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket)
        view = func.is_view or name == "aten._unsafe_view"
        (self.views if view else self.kernels)[name] += 1
        if name in HOST_READS:
            self.host_reads[name] += 1
        devices = {t.device for t in tree_leaves((args, kwargs, out))
                   if isinstance(t, torch.Tensor)}
        if name in _FROM_HOST or len(devices) > 1:
            self.uploads[name] += 1
        return out
