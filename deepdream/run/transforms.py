"""What happens to a frame between the movie and the dream, and between one dream and the
next: the original's blend with the previous dream, its endless zoom, resizing, the dream's
detail carried along the optical flow and smoothed along it, the frame's own colours."""
from __future__ import annotations

import typing

import numpy as np
import scipy.ndimage as nd
from PIL import Image

from ..io import flow, frames
from . import schedules

if typing.TYPE_CHECKING:
    from .settings import DreamSettings


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    pil = Image.fromarray(frames.to_uint8(image))
    return np.asarray(pil.resize((width, height), Image.LANCZOS), dtype=np.float32)


def zoom_in(image: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre of an H x W x 3 image by ``factor``, keeping its size."""
    if factor == 1:
        return image
    h, w = image.shape[:2]
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0, 0.0])
    matrix = np.array([1.0 / factor, 1.0 / factor, 1.0])
    return nd.affine_transform(image, matrix, offset=centre - matrix * centre, order=1,
                               mode="nearest").astype(np.float32)


# BT.601 (JPEG's) RGB -> luma and the two colour differences
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114],
                        [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]], np.float32)
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC).astype(np.float32)


def keep_colors(dreamed: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """``dreamed`` with the colours of ``frame`` (both H x W x 3 RGB, 0..255): the dream's
    luma, the frame's chroma, so a dream changes brightness detail and nothing else."""
    ycc = np.asarray(dreamed, np.float32) @ _RGB_TO_YCC.T
    ycc[..., 1:] = (np.asarray(frame, np.float32) @ _RGB_TO_YCC.T)[..., 1:]
    return ycc @ _YCC_TO_RGB.T


def blend_source(settings: "DreamSettings", number: int, raw: np.ndarray,
                  previous: np.ndarray) -> np.ndarray:
    """The original's blend: PIL's Image.blend(previous dream, frame, weight)."""
    weight = schedules.blend_for_frame(number, settings.blend, settings.seed)
    if weight == 0:   # the original's -b 0: raw frames, no blend
        return raw
    previous = resize(zoom_in(previous, settings.zoom), raw.shape[1], raw.shape[0])
    return previous * (1.0 - weight) + raw * weight


def moved_detail(previous_dream: np.ndarray, previous_frame: np.ndarray, field: np.ndarray,
                 mask: np.ndarray) -> np.ndarray:
    """The previous frame's dream detail (dreamed minus original) moved with the scene into
    the current frame, and zero where the flow marks occlusion."""
    return flow.warp(previous_dream - previous_frame, field) * mask[..., None]


def smooth(dreamed: np.ndarray, frame: np.ndarray, moved: np.ndarray, mask: np.ndarray,
           amount: float) -> np.ndarray:
    """Pull a frame's fresh dream detail towards the detail carried along the motion, by
    ``amount`` (0: none) where the flow can follow: an exponential average of the dream along
    the motion paths, which damps the flicker that re-dreaming adds each frame."""
    detail = dreamed - frame
    return frame + detail + (amount * mask[..., None]) * (moved - detail)


def carried(settings: DreamSettings, raw: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """What a frame is dreamed from under --flow: ``raw`` plus the previous dream's detail
    moved along the motion (``moved_detail``), weighted by --flow-blend and decayed by
    --flow-decay."""
    return raw + moved * np.float32(settings.flow_blend * (1.0 - settings.flow_decay))


def finish_dream(settings: DreamSettings, dreamed: np.ndarray, raw: np.ndarray,
                 moved: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """A frame's dream as it is kept: smoothed where the flow could not follow it
    (--flow-smooth; ``moved`` None: no flow carried into it) and in the frame's own colours
    (--keep-colors)."""
    if moved is not None and settings.flow_smooth:
        dreamed = smooth(dreamed, raw, moved, mask, settings.flow_smooth)
    if settings.keep_colors:
        dreamed = keep_colors(dreamed, raw)
    return dreamed
