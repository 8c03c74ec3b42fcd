"""Optical flow between frames (OpenCV's DIS or Farneback), warping, occlusion, and a cache of
the flows in the run's output folder so that a resumed run does not compute them again.

Conventions: ``backward_flow(prev, cur)`` is the (H, W, 2) field that maps each pixel x of
``cur`` to its match ``x + flow(x)`` in ``prev`` (x, y order, in pixels); ``warp(image, flow)``
pulls ``image`` (a frame-aligned array of ``prev``) into ``cur``'s geometry.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from ..errors import DeepDreamError
from . import ours

log = logging.getLogger(__name__)

METHODS = ("dis", "farneback")
_QUANTUM = 16.0   # cached flow is stored in 1/16 pixel steps (int16), as video codecs do


def require_opencv():
    """OpenCV's module. Raises DeepDreamError naming the extra that installs it."""
    try:
        import cv2
    except ImportError:
        raise DeepDreamError("--flow needs OpenCV: pip install 'deepdream-video[flow]'") \
            from None
    return cv2


def _gray(image: np.ndarray) -> np.ndarray:
    cv2 = require_opencv()
    return cv2.cvtColor(np.clip(np.rint(image), 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def optical_flow(source: np.ndarray, target: np.ndarray, method: str = "dis") -> np.ndarray:
    """The flow from ``source`` to ``target`` (both H x W x 3 RGB): for each pixel x of
    ``source``, its match in ``target`` is x + flow(x). Returns H x W x 2 float32."""
    cv2 = require_opencv()
    a, b = _gray(source), _gray(target)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(a, b, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 21, 3, 7, 1.5, 0)
    raise DeepDreamError(f"unknown flow method '{method}': use {' or '.join(METHODS)}")


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at x + flow(x) for every pixel x (bilinear, edges repeated)."""
    cv2 = require_opencv()
    h, w = flow.shape[:2]
    grid = np.mgrid[0:h, 0:w][::-1].transpose(1, 2, 0).astype(np.float32)   # (H, W, 2): x, y
    coords = grid + flow
    return cv2.remap(np.asarray(image, np.float32), coords[..., 0], coords[..., 1],
                     cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """The H x W mask of pixels whose backward flow is undone by the forward flow at its
    match (Sundaram et al.'s test, as in Ruder et al.'s artistic style transfer for videos):
    False where the pixel is occluded or the flow is unreliable."""
    forward_at_match = warp(forward, backward)
    total = backward + forward_at_match
    squared = (total ** 2).sum(-1)
    magnitude = (backward ** 2).sum(-1) + (forward_at_match ** 2).sum(-1)
    return squared <= 0.01 * magnitude + 0.5


def flow_and_mask(previous: np.ndarray, current: np.ndarray,
                  method: str = "dis") -> tuple[np.ndarray, np.ndarray]:
    """The backward flow from ``current`` to ``previous`` and its consistency mask."""
    backward = optical_flow(current, previous, method)
    forward = optical_flow(previous, current, method)
    return backward, consistent(backward, forward)


class FlowCache:
    """Backward flows and masks, kept in ``<folder>/.flow/<method>-WxH/`` (the run's output
    folder; a folder marked as ours, ``cache.json``: one of that name without the mark is
    left alone and nothing is cached) as compressed int16 (1/16 pixel) files written
    atomically, each named by its frame number and a hash of the two pictures it was
    computed from: frames extracted again from another movie never meet the flows of the old
    ones. ``folder`` None: nothing is kept (each flow is computed when asked for)."""

    def __init__(self, folder: str | Path | None, method: str):
        self.folder = Path(folder) / ".flow" if folder is not None else None
        self.method = method
        if self.folder is not None and not self._ours():
            log.warning("%s is not a flow cache of ours: the flows are not cached", self.folder)
            self.folder = None

    def _ours(self) -> bool:
        """Whether the cache folder is ours (made and marked now if it is not there)."""
        marker = self.folder / "cache.json"
        if not self.folder.exists():
            self.folder.mkdir(exist_ok=True)          # Ray's workers may make it together
            ours.write_json(marker, "flow-cache", {})
        try:
            return ours.read_json(marker, "flow-cache") is not None
        except ours.NotOursError:
            return False

    def path(self, number: int, previous: np.ndarray, current: np.ndarray) -> Path:
        import hashlib
        key = hashlib.sha1(np.ascontiguousarray(previous).tobytes())
        key.update(np.ascontiguousarray(current).tobytes())
        height, width = current.shape[:2]
        return (self.folder / f"{self.method}-{width}x{height}" /
                f"{number:08d}-{key.hexdigest()[:16]}.npz")

    def get(self, number: int, previous: np.ndarray,
            current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The flow from frame ``number`` (``current``) to the frame before it
        (``previous``), computed once for these two pictures (in 1/16 pixel steps, kept or
        not: the same dream either way)."""
        path = self.path(number, previous, current) if self.folder is not None else None
        if path is not None and path.exists():
            try:
                with np.load(path) as data:
                    return data["flow"].astype(np.float32) / _QUANTUM, data["mask"]
            except (OSError, ValueError, KeyError):
                pass   # a damaged cache file: compute it again
        flow, mask = flow_and_mask(previous, current, self.method)
        quantised = np.clip(np.rint(flow * _QUANTUM), -32768, 32767).astype(np.int16)
        if path is None:
            return quantised.astype(np.float32) / _QUANTUM, mask
        buffer = io.BytesIO()
        np.savez_compressed(buffer, flow=quantised, mask=mask)
        path.parent.mkdir(parents=True, exist_ok=True)
        # the flows of this frame number made from other pictures (frames extracted again)
        # are ours (in our marked cache) and of no further use
        for stale in path.parent.glob(f"{number:08d}-*.npz"):
            stale.unlink(missing_ok=True)
        ours.atomic_write_bytes(path, buffer.getvalue())
        return quantised.astype(np.float32) / _QUANTUM, mask
