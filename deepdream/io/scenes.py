"""Scene cuts: where the content of consecutive frames changes at once, the dream starts
afresh instead of bleeding the previous shot into the next.

The score of a frame is PySceneDetect's content measure: the mean absolute change of hue,
saturation and value from the frame before (0..255), on frames shrunk to 128 pixels wide.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_THRESHOLD = 27.0   # PySceneDetect's ContentDetector default
_WIDTH = 128


def small_hsv(image: np.ndarray) -> np.ndarray:
    """An H x W x 3 RGB frame as HSV, 128 pixels wide: what content scores compare."""
    img = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    img = img.resize((_WIDTH, max(1, round(img.height * _WIDTH / img.width))), Image.BILINEAR)
    return np.asarray(img.convert("HSV"), dtype=np.float32)


def content_score(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute change of H, S and V between two HSV frames (hue taken on its circle)."""
    if a.shape != b.shape:
        return 255.0
    delta = np.abs(a - b)
    delta[..., 0] = np.minimum(delta[..., 0], 256 - delta[..., 0])
    return float(delta.mean())


def find_cuts(frame_paths: dict[int, Path], threshold: float = DEFAULT_THRESHOLD,
              width: int | None = None) -> list[int]:
    """The frame numbers that start a new scene (never the first frame), reading each frame
    once (at ``width``, as a run with --preview reads them)."""
    from .frames import read_frame

    cuts, previous = [], None
    numbers = list(frame_paths)
    for i, number in enumerate(numbers):
        current = small_hsv(read_frame(frame_paths[number], width))
        if previous is not None and numbers[i - 1] == number - 1 and \
                content_score(previous, current) >= threshold:
            cuts.append(number)
        previous = current
    return cuts
