"""How each frame of a sequence is dreamed from the one before it: the one piece of code that
the batch loop (``loop``) and live mode (``live``) share. ``Carry``: a scene cut starts
afresh; else the original's blend with the previous dream or, with --flow, the previous
dream's detail carried along the motion (each frame with its own settings, where they follow
time: ``timeline``); the dream kept smoothed along the flow and in the frame's own colours.
``GroupDreamer``: frames of one layer, size and settings dreamed in one batch,
towards the guide's features at that layer (worked out once), a frame with nothing to dream
(a zero gradient) kept as it is."""
from __future__ import annotations

import logging
import typing

import numpy as np

from ..errors import ZeroGradientError
from ..io import flow, frames, scenes
from . import schedules, transforms
from .settings import DreamSettings
from .timeline import Timeline

if typing.TYPE_CHECKING:     # the engine imports torch
    from ..nets.base import Net

log = logging.getLogger(__name__)


class Carry:
    """What one sequence carries from a frame's dream to the next frame: ``source`` gives
    the image a frame is dreamed from, ``finish`` the dream as it is kept (and carried)."""

    def __init__(self, timeline: Timeline, flows: flow.FlowCache | None):
        self.timeline, self.settings, self.flows = timeline, timeline.settings, flows
        self.raw = self.moved = self.mask = None

    def is_cut(self, before: np.ndarray | None, raw: np.ndarray) -> bool:
        """Whether ``raw`` starts a new scene after ``before`` (the frame before it; None:
        there is none), as --scene-threshold says (never with --no-scene-cuts)."""
        return self.settings.scene_cuts and before is not None and scenes.content_score(
            scenes.small_hsv(before), scenes.small_hsv(raw)) >= self.settings.scene_threshold

    def source(self, number: int, raw: np.ndarray, before: np.ndarray | None,
               previous: np.ndarray | None) -> np.ndarray:
        """The image frame ``number`` (``raw``, H x W x 3 float32) is dreamed from, given the
        frame before it (``before``) and that frame's dream (``previous``; None: the frame
        starts afresh, as the first frame and a scene cut do)."""
        self.raw, self.moved, self.mask = raw, None, None
        if previous is None or before is None:
            return raw
        settings = self.timeline.at(number)          # the blend, zoom, --flow-blend: its own
        if self.flows is None:
            return transforms.blend_source(settings, number, raw, previous)
        if not before.shape == previous.shape == raw.shape:
            return raw
        field, self.mask = self.flows.get(number, before, raw)
        self.moved = transforms.moved_detail(previous, before, field, self.mask)
        return transforms.carried(settings, raw, self.moved)

    def finish(self, dreamed: np.ndarray) -> np.ndarray:
        """The dream of the frame ``source`` was last asked for, as it is kept."""
        return transforms.finish_dream(self.settings, dreamed, self.raw, self.moved, self.mask)


class GroupDreamer:
    """The net's dreams of frames that share a layer and a size, one batch each."""

    def __init__(self, net: Net, settings: DreamSettings):
        self.net, self.settings = net, settings
        self.guide = frames.read_frame(settings.guide_image) if settings.guide_image else None
        self.features: dict[str, np.ndarray] = {}
        self.kept_said = False

    def dream(self, layer: str, items: list[tuple[int, np.ndarray]],
              settings: DreamSettings | None = None) -> list[np.ndarray]:
        """The dreams of the frames ``items`` ((number, source image), all of one size) at
        ``layer`` with ``settings`` (the frames', which they share; default: the run's);
        a frame with nothing to dream (a zero gradient) is kept as it is."""
        settings = settings or self.settings
        from ..dreamer.ascent import dream_batch, guide_features
        if self.guide is not None and layer not in self.features:
            self.features[layer] = guide_features(self.net, self.guide, layer)
        seeds = [schedules.seed_for_frame(settings.seed, number) for number, _ in items]
        try:
            return dream_batch(self.net, [source for _, source in items], layer,
                               guide=self.features.get(layer), seeds=seeds,
                               **settings.ascent_options())
        except ZeroGradientError as e:
            if len(items) > 1:
                return [self.dream(layer, [item], settings)[0] for item in items]
            # said once a run (a covered camera would say it at every frame)
            (log.debug if self.kept_said else log.warning)(
                "frame %d kept as it is: %s", items[0][0], e)
            self.kept_said = True
            return [items[0][1]]
