"""The jitter of an octave's steps on the device: the random rolls drawn up front from each
image's generator, in the order the dream has always drawn them, and applied by gathers from
index tensors (a captured graph could replay any shift; ``torch.roll`` takes host integers).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch


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
    shift = torch.as_tensor(shifts)                              # (S, N, 2)
    if torch.device(device).type == "cuda":     # copied without waiting for the GPU's queue
        shift = shift.pin_memory()
    shift = shift.to(device, non_blocking=True)
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
