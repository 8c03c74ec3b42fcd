"""Checks whose verdict is read once an octave, not at every step (``deferred_checks``), and
the count of the operations a block dispatches (``Operations``) that shows it: nothing an
octave's steps do reads a value back to the host, so they could be captured as a CUDA graph
and replayed. The engines note their checks here; the dream opens the block.
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import math
from typing import Iterator

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
