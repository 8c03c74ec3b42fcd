"""The film's time, and the settings that follow it (issue 29): ``Footage`` is what a run knows
of its frames (size, rate, where frame 1 is on the source's timeline, the movie whose sound
they have), ``Timeline`` the dream settings and layer of each frame -- a setting given as
keyframes or as a curve of the sound (``schedules.parse``) takes its value at the frame's
time, the layer sweep advances by frame or on the sound's beats -- worked out once a frame."""
from __future__ import annotations

import dataclasses
import logging
import re
from fractions import Fraction
from pathlib import Path

from ..errors import SettingsError
from . import schedules
from .settings import SCHEDULED, DreamSettings

log = logging.getLogger(__name__)

# a term's weight that follows a schedule in a layer specification: '[0:0.2, 4s:1]*LAYER'
WEIGHT = re.compile(r"\[([^\[\]]*)\]")


@dataclasses.dataclass
class Footage:
    """What a run knows of its frames: their size (height, width, as they come), their rate
    and where frame 1 is on the source's timeline (None: a folder of frames of unknown
    origin), the last frame, and the movie whose sound they have (None: no sound known)."""
    height: int
    width: int
    fps: Fraction | None = None
    first_time: float = 0.0
    last_frame: int | None = None
    sound: Path | None = None

    @classmethod
    def of_movie(cls, movie: str | Path, info, height: int | None = None,
                 width: int | None = None) -> Footage:
        """The footage of ``movie`` as ``info`` (its ``video.probe``) says: its frames (of
        ``height`` x ``width`` where they are scaled), their rate, where the first is, how
        many (None: a movie of unknown length) and its sound, if it has one."""
        from ..io.extraction import expected_frames
        count = expected_frames(info.duration, info.fps) if info.duration else None
        return cls(height or info.height, width or info.width, info.fps, info.first_picture,
                   count, Path(movie) if info.has_audio else None)


def weight_schedules(spec: str) -> list[str]:
    """The schedules of the weights written ``[SCHEDULE]*TERM`` in a layer specification."""
    return WEIGHT.findall(spec)


def needs(settings: DreamSettings) -> tuple[bool, bool]:
    """(whether a setting follows the sound, whether one has keyframes in seconds): what a
    run's footage must give (its sound; its rate)."""
    texts = [str(getattr(settings, field)) for field in SCHEDULED] + \
        [w for spec in settings.layers for w in weight_schedules(spec)]
    sound = settings.layer_on == "beats" or any(t.strip().startswith("sound") for t in texts)
    seconds = any(re.search(r"\d\s*s\s*:", t) for t in texts)
    return sound, seconds


class Timeline:
    """The dream settings and the layer of each frame of a run (``at``, ``layer``)."""

    def __init__(self, settings: DreamSettings, footage: Footage, sound=None):
        parsed = settings.schedules()
        # each constant as the number it is ('4.0' octaves, a recipe's "1.5": 4, 1.5)
        self.settings = dataclasses.replace(settings, **{
            field: schedule.constant for field, schedule in parsed.items()
            if schedule.constant is not None})
        self.footage, self.sound = footage, sound
        self.fps = footage.fps or Fraction(25)      # frames only: the rate does not matter
        self.schedules = {field: schedule for field, schedule in parsed.items()
                          if schedule.constant is None}
        self.weights = {text: schedules.parse(text, "a term's weight")
                        for spec in settings.layers for text in weight_schedules(spec)}
        for schedule in [*self.schedules.values(), *self.weights.values()]:
            late = schedule.check(self.fps, footage.first_time, footage.last_frame)
            if late:
                log.warning("%s", late)
        self._at: dict[int, DreamSettings] = {}

    @classmethod
    def make(cls, settings: DreamSettings, footage: Footage) -> Timeline:
        """The timeline of ``settings`` over ``footage``, the sound analysed (once) where a
        setting follows it. Raises SettingsError in one line, before any work, for a setting
        that follows the sound of frames without one, or has keyframes in seconds for frames
        of unknown rate."""
        sound, seconds = needs(settings)
        if seconds and footage.fps is None:
            raise SettingsError("a setting has keyframes in seconds, but the frame rate of "
                                "these frames is not known (frames extracted by stage 1 "
                                "have it, in movie.json): give the keyframes as frame numbers")
        curves = None
        if sound:
            if footage.sound is None:
                raise SettingsError("a setting follows the sound (sound:..., --layer-on "
                                    "beats), but these frames have no sound: dream a movie "
                                    "with sound, or frames that stage 1 extracted from one")
            from ..io.sound import analyse
            curves = analyse(footage.sound)
        return cls(settings, footage, curves)

    def at(self, number: int) -> DreamSettings:
        """The dream settings of frame ``number``: each scheduled one at its value there."""
        if not self.schedules:
            return self.settings
        if number not in self._at:
            if len(self._at) > 256:
                self._at.clear()
            values = {field: schedule.value(number, self.fps, self.footage.first_time,
                                            self.sound)
                      for field, schedule in self.schedules.items()}
            self._at[number] = dataclasses.replace(self.settings, **values)
        return self._at[number]

    def layer(self, number: int) -> str:
        """The layer (a specification, its scheduled weights at their values) of frame
        ``number``: the sweep by frame number, or by the sound's beats."""
        layers = self.settings.layers
        if self.settings.layer_on == "beats":
            time = float(schedules.frame_time(number, self.fps, self.footage.first_time))
            spec = schedules.layer_on_beats(time, self.sound.beats, layers)
        else:
            spec = schedules.layer_for_frame(number, layers)
        return self.resolve(spec, number)

    def resolve(self, spec: str, number: int) -> str:
        """A layer specification with its scheduled weights at their values at frame
        ``number``."""
        if not self.weights:
            return spec
        return WEIGHT.sub(lambda m: repr(self.weights[m.group(1)].value(
            number, self.fps, self.footage.first_time, self.sound)), spec)
