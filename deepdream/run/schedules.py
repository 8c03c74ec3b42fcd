"""Schedules: pure functions from a frame number to a value (layer, blend, per-frame seed).

Frame numbers are the 1-based numbers in the frame file names, so that a run started with
-sf, or resumed, gives every frame the same value as a run from the start.
"""
from __future__ import annotations

import numpy as np

from ..nets.registry import CUSTOM_LOOP  # the sweep of a model the registry does not know

__all__ = ["CUSTOM_LOOP", "layer_for_frame", "seed_for_frame", "blend_for_frame"]


def layer_for_frame(frame: int, layers: tuple[str, ...] | list[str]) -> str:
    """The layer to dream frame ``frame`` on: the original's ``layers[frame % len(layers)]``."""
    return layers[frame % len(layers)]


def original_loop_blend(steps: int) -> list[float]:
    """The first ``steps`` values of the original's 'loop' blend, with its own arithmetic: it
    starts at 0.4, moves by 0.1, turns back above 0.9 and at or below 0.5, so it runs
    0.5, 0.6 ... 1.0, 0.9 ... 0.6, 0.5 ... (rounded to tenths: the float error is 1e-16)."""
    values, at, forward = [], 0.4, True
    for _ in range(steps):
        if at > 1 - 0.1:
            forward = False
        elif at <= 0.5:
            forward = True
        at = at + 0.1 if forward else at - 0.1
        values.append(round(at, 10))
    return values


LOOP_BLEND = tuple(original_loop_blend(10))  # one period of it


def blend_for_frame(frame: int, blend: float | str, seed: int | None = None) -> float:
    """The weight of the new movie frame when it is blended with the previous dreamed frame
    (PIL's ``Image.blend(previous_dream, frame, weight)``): a constant, 'loop' (0.5 to 1.0
    and back in steps of 0.1, as the original), or 'random' (0.5 ... 1.0 in tenths, drawn per
    frame, reproducibly when ``seed`` is given)."""
    if blend == "loop":
        # frame 1 is dreamed from the raw frame; frame 2 gets the original's first value
        return LOOP_BLEND[(frame - 2) % len(LOOP_BLEND)]
    if blend == "random":
        rng = np.random.default_rng(None if seed is None else [seed, frame])
        return int(rng.integers(5, 11)) / 10.0
    return float(blend)


def seed_for_frame(seed: int | None, frame: int) -> int | None:
    """A per-frame jitter seed derived from the run's seed, so that a resumed or segmented
    run dreams each frame exactly as a run from the start does."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, frame]).generate_state(1)[0])
