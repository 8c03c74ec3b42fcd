"""Temporal coherence of a dreamed clip, measured against its original frames.

    python -m deepdream.metrics FRAMES_DIR DREAMED_DIR

- warping error: the mean absolute difference (0..255) between dreamed frame i and dreamed
  frame i-1 moved by the original frames' optical flow, over the pixels the flow can follow
  (not occluded); pairs across a scene cut are left out. Lower is steadier.
- dream strength: the mean absolute difference between dreamed and original frames. Two
  methods' warping errors are only comparable at equal strength (no dream at all is
  perfectly steady).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import FramesError
from . import flow, frames, scenes


@dataclasses.dataclass
class Coherence:
    warping_error: float
    strength: float
    pairs: int
    cuts_skipped: int


def measure(frames_dir: str | Path, dreamed_dir: str | Path, method: str = "dis",
            scene_threshold: float = scenes.DEFAULT_THRESHOLD) -> Coherence:
    """Warping error and dream strength of the frames of ``dreamed_dir`` (matched by number
    with ``frames_dir``). Raises FramesError if they share no frames, if either folder's
    frames are not all of one size or if the dreamed frames are not of the originals'
    shape."""
    one_type = "the metrics compare folders of one frame type each"
    originals = frames.list_frames(frames_dir, choose=one_type)
    dreamed = frames.list_frames(dreamed_dir, choose=one_type)
    numbers = [n for n in dreamed if n in originals]
    if not numbers:
        raise FramesError(f"{dreamed_dir} and {frames_dir} have no frame numbers in common")
    for folder in (originals, dreamed):
        _check_one_size([folder[n] for n in numbers])
    cache = flow.FlowCache(None, method)        # each flow once: nothing to keep
    errors, strengths, cuts = [], [], 0
    previous = None     # (number, original, dreamed, hsv)
    for n in numbers:
        original = frames.read_frame(originals[n]).astype(np.float32)
        dream = frames.read_frame(dreamed[n], original.shape[1]).astype(np.float32)
        if dream.shape != original.shape:     # compared at the original's width
            w, h = original.shape[1], original.shape[0]
            raise FramesError(f"{dreamed[n]} is not of the shape of {originals[n]} "
                              f"({w}x{h}): the dreamed frames must be of that movie")
        strengths.append(float(np.abs(dream - original).mean()))
        hsv = scenes.small_hsv(original)
        if previous is not None and previous[0] == n - 1:
            if scenes.content_score(previous[3], hsv) >= scene_threshold:
                cuts += 1
            else:
                field, mask = cache.get(n, previous[1], original)
                moved = flow.warp(previous[2], field)
                if mask.any():
                    errors.append(float(np.abs(dream - moved)[mask].mean()))
        previous = (n, original, dream, hsv)
    return Coherence(float(np.mean(errors)) if errors else 0.0, float(np.mean(strengths)),
                     len(errors), cuts)


def _check_one_size(paths: list[Path]) -> None:
    """Raises FramesError naming two of ``paths`` whose pictures differ in size (read from
    their headers, before any flow is worked out)."""
    from PIL import Image

    first = None
    for path in paths:
        try:
            with Image.open(path) as img:
                size = img.size
        except (OSError, ValueError):
            continue                # unreadable: read_frame names it in its turn
        if first is None:
            first = (path, size)
        elif size != first[1]:
            raise FramesError(f"{path} is {size[0]}x{size[1]} and {first[0]} "
                              f"{first[1][0]}x{first[1][1]}: the frames of a folder must all "
                              "be of one size")
