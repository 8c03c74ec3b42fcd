"""The curves of a run's scheduled settings over the film's time, each over the sound's
envelopes (``--plot``): what will happen when, seen before hours of dreaming. Drawn with
Pillow: a strip a setting (its name, its least and most value), the loudness, bass and
beats of the sound under each."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import FramesError
from ..io import frames, ours, video
from . import schedules
from .settings import DreamSettings
from .timeline import Footage, Timeline

log = logging.getLogger(__name__)

WIDTH, STRIP, MARGIN = 800, 90, 16            # pixels
_SOUND_COLOURS = {"loudness": (80, 80, 140), "bass": (140, 70, 70), "beats": (70, 130, 70)}


def curves(timeline: Timeline, numbers: np.ndarray
           ) -> dict[str, tuple[np.ndarray, tuple[float, float]]]:
    """Each scheduled setting's values (and each scheduled weight's, and the sweep's layer
    index on beats) at the frames ``numbers``, and the least and most it may take, by its
    flag."""
    from .settings import SCHEDULED
    fps, first, sound = timeline.fps, timeline.footage.first_time, timeline.sound
    found = {SCHEDULED[field][0]: (s.at(numbers, fps, first, sound), s.bounds())
             for field, s in timeline.schedules.items()}
    for text, s in timeline.weights.items():
        found[f"weight [{text}]"] = (s.at(numbers, fps, first, sound), s.bounds())
    if timeline.settings.layer_on == "beats":
        layers = list(timeline.settings.layers)
        index = [layers.index(schedules.layer_on_beats(float(t), sound.beats, layers))
                 for t in schedules.frame_time(numbers, fps, first)]
        found["layer (on beats)"] = (np.array(index, np.float64), (0, len(layers) - 1))
    return found


def draw(timeline: Timeline, last_frame: int) -> Image.Image:
    """The picture of ``timeline``'s curves from frame 1 to ``last_frame``."""
    numbers = np.arange(1, last_frame + 1)
    found = curves(timeline, numbers)
    times = schedules.frame_time(numbers, timeline.fps, timeline.footage.first_time)
    picture = Image.new("RGB", (WIDTH, max(1, len(found)) * (STRIP + MARGIN) + 2 * MARGIN),
                        (17, 17, 17))
    pen = ImageDraw.Draw(picture)
    x = np.linspace(MARGIN, WIDTH - MARGIN, len(numbers))
    for row, (name, (values, (low, high))) in enumerate(found.items()):
        top = MARGIN + row * (STRIP + MARGIN)
        bottom = top + STRIP
        if timeline.sound is not None:                 # the sound's envelopes underneath
            for kind, colour in _SOUND_COLOURS.items():
                level = timeline.sound.at(kind, times)
                pen.line(list(zip(x, bottom - level * STRIP)), fill=colour, width=1)
        span = (high - low) or 1.0
        points = list(zip(x, bottom - (values - low) / span * (STRIP - 4) - 2))
        pen.line(points, fill=(255, 200, 60), width=2)
        pen.text((MARGIN + 4, top + 2), f"{name}: {low:.4g} .. {high:.4g}", fill="white")
    if not found:
        pen.text((MARGIN, MARGIN), "no setting follows the film's time", fill="white")
    legend = f"0 .. {float(times[-1]):.1f} s of the source"
    if timeline.sound is not None:
        legend += "; under each curve the sound's " + ", ".join(
            f"{kind} ({'blue red green'.split()[i]})" for i, kind in enumerate(_SOUND_COLOURS))
    pen.text((MARGIN, picture.height - MARGIN - 2), legend, fill=(150, 150, 150))
    return picture


def plot(movie: str | Path, output: str | Path, settings: DreamSettings,
         overwrite: bool = False) -> Path:
    """Draw the scheduled settings of a run of ``movie`` into ``output`` (a picture; never
    over a file unless ``overwrite``, never over the movie), checked as a run's plan checks
    them (the schedules against the movie's rate and sound), nothing dreamed."""
    movie, output = Path(movie), Path(output)
    settings.check()
    frames.check_new_picture(output, movie, "--plot", overwrite)
    footage = Footage.of_movie(movie, video.probe(movie))
    if footage.last_frame is None:
        raise FramesError(f"{movie} does not say how long it is: its curves cannot be drawn")
    timeline = Timeline.make(settings, footage)
    count = footage.last_frame
    shown = len(curves(timeline, np.arange(1, 2)))
    picture = draw(timeline, count)
    ours.write_new(output, lambda tmp: picture.save(tmp, frames.picture_format(output)),
                   "--plot", overwrite)
    log.info("the curves of %d scheduled settings over %d frames written to %s", shown,
             count, output)
    return output
