"""Schedules: pure functions from a frame number to a value (layer, blend, per-frame seed,
a numeric setting that follows keyframes or the sound, the layer sweep on beats).

Frame numbers are the 1-based numbers in the frame file names, so that a run started with
-sf, or resumed, gives every frame the same value as a run from the start. Frame n of a run at
``fps`` whose frame 1 is at ``first_time`` seconds of the source is at
``frame_time(n, fps, first_time)``; "seconds" below are seconds of the source as -ss counts
them (deepdream.io.video, deepdream.io.sound).

A numeric setting (``parse``) is given as one of:

- a number: ``1.5``;
- keyframes ``KEY:VALUE, ...`` in the order of time, a KEY being a frame number or seconds
  with ``s``: ``"0:1.5, 4s:3, 120:1.5"``; linear between keyframes, held before the first and
  after the last;
- ``smooth(KEY:VALUE, ...)``: the same keyframes joined by smoothstep curves (3u^2 - 2u^3
  between each two: flat at every keyframe, never beyond its two values);
- ``sound:LOW..HIGH``, ``sound-bass:LOW..HIGH``, ``sound-beats:LOW..HIGH``: the loudness, the
  bass or the beats pulse of the sound (each 0..1 over the movie) mapped to LOW..HIGH (LOW may
  be above HIGH: louder is then less).

Integer settings are rounded per frame, halves up (2.5 -> 3). As each curve stays between its
keyframes' values (or LOW and HIGH), ``parse`` checks a setting's range on those alone.
"""
from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from ..errors import SettingsError
from ..nets.registry import CUSTOM_LOOP  # the sweep of a model the registry does not know

__all__ = ["CUSTOM_LOOP", "layer_for_frame", "seed_for_frame", "blend_for_frame",
           "frame_time", "Keyframe", "Schedule", "parse", "layer_on_beats", "FORMS", "SOUNDS"]


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


def frame_time(frame, fps, first_time: float = 0.0):
    """Where frame ``frame`` (1-based; a number or an array) of a run at ``fps`` (constant:
    stage 1 resamples a variable rate) whose frame 1 is at ``first_time`` is, in seconds of
    the source."""
    return first_time + (np.asarray(frame, dtype=np.float64) - 1) / float(fps)


def layer_on_beats(frame_seconds: float, beats, layers: tuple[str, ...] | list[str]) -> str:
    """The layer of a sweep that moves on by one at each beat: ``layers[n % len(layers)]``,
    n the beats (onset times, rising) at or before ``frame_seconds``."""
    passed = int(np.searchsorted(np.asarray(beats, dtype=np.float64), frame_seconds,
                                 side="right"))
    return layers[passed % len(layers)]


# what a numeric setting may be, for help texts and error messages
FORMS = ('a number, keyframes FRAME:VALUE or SECONDSs:VALUE as in "0:1.5, 4s:3, 120:1.5", '
         'smooth(KEYFRAMES), or sound:LOW..HIGH, sound-bass:LOW..HIGH, sound-beats:LOW..HIGH')
SOUNDS = {"sound": "loudness", "sound-bass": "bass", "sound-beats": "beats"}  # -> curve
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_KEYFRAME = re.compile(rf"(?:(\d+)|(\d+\.?\d*|\.\d+)s)\s*:\s*({_NUMBER})")


def _number(value: float) -> str:
    """A number as the canonical text writes it: shortest, '3' for 3.0."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclasses.dataclass(frozen=True)
class Keyframe:
    """A value at a frame (``at`` a frame number) or at a time (``at`` seconds of the
    source, where ``seconds``)."""
    at: float
    seconds: bool
    value: float

    def __str__(self) -> str:
        return f"{_number(self.at)}{'s' if self.seconds else ''}:{_number(self.value)}"

    def time(self, fps, first_time: float) -> float:
        return self.at if self.seconds else float(frame_time(self.at, fps, first_time))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A numeric setting as a function of the frame: ``form`` is "number" (one keyframe),
    "linear" or "smooth" (keyframes), or "sound" (the curve ``sound`` of deepdream.io.sound
    mapped to ``span``, LOW..HIGH). ``str()`` is its canonical text, which ``parse`` reads
    back to an equal schedule."""
    form: str
    keyframes: tuple[Keyframe, ...] = ()
    sound: str | None = None            # "loudness", "bass" or "beats"
    span: tuple[float, float] | None = None
    integer: bool = False
    setting: str = dataclasses.field(default="value", compare=False)

    def __str__(self) -> str:
        if self.form == "number":
            return _number(self.keyframes[0].value)
        if self.form == "sound":
            name = next(name for name, curve in SOUNDS.items() if curve == self.sound)
            return f"{name}:{_number(self.span[0])}..{_number(self.span[1])}"
        keys = ", ".join(map(str, self.keyframes))
        return f"smooth({keys})" if self.form == "smooth" else keys

    @property
    def constant(self) -> float | int | None:
        """The value of a plain number (an int for an integer setting), else None."""
        return self._round(self.keyframes[0].value).item() if self.form == "number" else None

    @property
    def uses_sound(self) -> bool:
        return self.form == "sound"

    @property
    def kinds(self) -> frozenset[str]:
        """The sound curves it follows (deepdream.io.sound.KINDS)."""
        return frozenset([self.sound] if self.sound else [])

    def at(self, frames, fps, first_time: float = 0.0, sound=None) -> np.ndarray:
        """The values at ``frames`` (1-based numbers, an array) of a run at ``fps`` whose frame
        1 is at ``first_time`` (int64 for an integer setting, else float64); ``sound``: the
        movie's deepdream.io.sound.SoundCurves, for a schedule that follows it. Raises
        SettingsError if the keyframes are out of order at this rate."""
        times = frame_time(frames, fps, first_time)
        if self.form == "sound":
            if sound is None:
                raise ValueError(f"{self.setting} follows the sound: give its SoundCurves")
            low, high = self.span
            values = low + (high - low) * sound.at(self.sound, times)
        elif len(self.keyframes) == 1:
            values = np.full(np.shape(times), self.keyframes[0].value, dtype=np.float64)
        else:
            keys, ys = self.key_times(fps, first_time), [k.value for k in self.keyframes]
            keys, ys = np.array(keys), np.array(ys, dtype=np.float64)
            before = np.clip(np.searchsorted(keys, times, side="right") - 1, 0, len(keys) - 2)
            u = np.clip((times - keys[before]) / (keys[before + 1] - keys[before]), 0, 1)
            if self.form == "smooth":
                u = u * u * (3 - 2 * u)
            values = ys[before] + (ys[before + 1] - ys[before]) * u
        return self._round(values)

    def bounds(self) -> tuple[float | int, float | int]:
        """The least and the most value it takes (its curves go no further than their
        keyframes, or LOW and HIGH), rounded for an integer setting."""
        ends = self.span if self.form == "sound" else [k.value for k in self.keyframes]
        low, high = self._round([min(ends), max(ends)])
        return low.item(), high.item()

    def value(self, frame: int, fps, first_time: float = 0.0, sound=None) -> float | int:
        """The value at one frame (``at``), as a Python number."""
        return self.at(frame, fps, first_time, sound).item()

    def key_times(self, fps, first_time: float = 0.0) -> list[float]:
        """The keyframes' times in seconds of the source. Raises SettingsError if a keyframe
        comes before or with the one before it (frames and seconds mixed: at this rate)."""
        times = [k.time(fps, first_time) for k in self.keyframes]
        for i in range(1, len(times)):
            if times[i] - times[i - 1] <= 1e-9:
                raise SettingsError(_order_error(
                    self.setting, self.keyframes[i], self.keyframes[i - 1], str(self),
                    times[i] - times[i - 1], f" at {_number(float(fps))} frames a second"))
        return times

    def check(self, fps, first_time: float = 0.0, last_frame: int | None = None) -> str | None:
        """Check the schedule against a run at ``fps`` whose frame 1 is at ``first_time``:
        raise SettingsError if its keyframes are out of order there (``key_times``); return
        the warning to log if keyframes come after ``last_frame``, the movie's last (they are
        never reached), else None."""
        self.key_times(fps, first_time)
        if last_frame is None:
            return None
        end = float(frame_time(last_frame, fps, first_time))
        late = [str(k) for k in self.keyframes if k.time(fps, first_time) > end + 1e-9]
        if not late:
            return None
        return (f"{self.setting}: keyframe{'s' if len(late) > 1 else ''} {', '.join(late)} "
                f"come{'' if len(late) > 1 else 's'} after the last frame ({last_frame}, at "
                f"{end:.2f} s of the source), where the value is "
                f"{self.value(last_frame, fps, first_time):.4g}")

    def _round(self, values) -> np.ndarray:
        """As an array: rounded, halves up, for an integer setting."""
        values = np.asarray(values, dtype=np.float64)
        if not self.integer:
            return values
        rounded = np.floor(values + 0.5)
        # a number past any whole number's range (1e23 octaves) stays as it is: refused
        return rounded.astype(np.int64) if np.all(np.abs(rounded) < 2.0 ** 62) else rounded


def parse(text, setting: str = "value", integer: bool = False, low: float | None = None,
          high: float | None = None, above: float | None = None) -> Schedule:
    """The schedule of ``setting`` (its flag, for messages) given as ``text`` (a number, or a
    string of one of the forms above). ``integer``: rounded per frame, and a plain number
    must be whole. Every value the schedule can take must be ``low`` or more, ``high`` or
    less, more than ``above`` (each where given). Raises SettingsError in one line naming
    the setting and what is wrong."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise SettingsError(f"{setting}: {text} is not a finite number")
        schedule = Schedule("number", (Keyframe(0, False, float(text)),), integer=integer,
                            setting=setting)
    else:
        schedule = _parse_text(str(text).strip(), setting, integer)
    numbers = [n for k in schedule.keyframes for n in (k.at, k.value)] + [*(schedule.span or ())]
    if not all(map(math.isfinite, numbers)):
        raise SettingsError(f'{setting}: a number in "{text}" is too large')
    if integer and schedule.form == "number" and not schedule.keyframes[0].value.is_integer():
        raise SettingsError(f"{setting} takes a whole number, not {text}")
    _check_range(schedule, str(text).strip(), low, high, above)
    return schedule


def _parse_text(text: str, setting: str, integer: bool) -> Schedule:
    def refuse(part: str, hint: str = FORMS):
        where = f' in "{text}"' if part != text else ""
        raise SettingsError(f'{setting}: cannot read "{part}"{where} ({hint})')

    if re.fullmatch(_NUMBER, text):
        return Schedule("number", (Keyframe(0, False, float(text)),), integer=integer,
                        setting=setting)
    sound = re.fullmatch(r"(sound[\w-]*)\s*:\s*(.*)", text)
    if sound:
        name, span = sound.groups()
        if name not in SOUNDS:
            raise SettingsError(f'{setting}: unknown sound "{name}" in "{text}": sound, '
                                "sound-bass or sound-beats (e.g. sound-bass:0.5..3)")
        ends = re.fullmatch(rf"({_NUMBER})\s*\.\.\s*({_NUMBER})", span.strip())
        if not ends:
            refuse(span, f"give the range LOW..HIGH, e.g. {name}:0.5..3")
        return Schedule("sound", sound=SOUNDS[name], span=(float(ends[1]), float(ends[2])),
                        integer=integer, setting=setting)
    smooth = re.fullmatch(r"smooth\s*\((.*)\)", text)
    keyframes = []
    for part in (smooth[1] if smooth else text).split(","):
        match = _KEYFRAME.fullmatch(part.strip())
        if not match:
            refuse(part.strip() or text)
        frame, seconds, value = match.groups()
        key = Keyframe(int(frame) if frame else float(seconds), not frame, float(value))
        for before in keyframes:      # frames with seconds: key_times checks
            if before.seconds == key.seconds and before.at >= key.at:
                raise SettingsError(_order_error(setting, key, before, text,
                                                 key.at - before.at))
        keyframes.append(key)
    return Schedule("smooth" if smooth else "linear", tuple(keyframes), integer=integer,
                    setting=setting)


def _order_error(setting: str, key: Keyframe, before: Keyframe, text: str, gap: float,
                 where: str = "") -> str:
    """The message for a keyframe ``key`` that comes ``gap`` after one given ``before`` it
    (0 or less)."""
    wrong = f"is at the time of {before}" if abs(gap) <= 1e-9 else f"comes before {before}"
    return (f'{setting}: keyframe {key} {wrong} in "{text}"{where}: give each time once, in '
            "order")


def _check_range(schedule: Schedule, text: str, low, high, above) -> None:
    """Raise SettingsError if a value the schedule reaches (a keyframe's, or LOW or HIGH,
    rounded for an integer setting: the curves go no further) is out of range."""
    if schedule.form == "sound":
        ends = zip(schedule.span, ("LOW", "HIGH"))
        reached = [(v, f' (the {end} of "{text}")') for v, end in ends]
    elif schedule.form == "number":
        reached = [(schedule.keyframes[0].value, "")]
    else:
        reached = [(k.value, f' (the keyframe {k} of "{text}")') for k in schedule.keyframes]
    for given, where in reached:
        value = schedule._round(given).item()
        if ((low is not None and value < low) or (high is not None and value > high) or
                (above is not None and value <= above)):
            rounded = f", which rounds to {value}" if value != given else ""
            raise SettingsError(f"{schedule.setting} must be "
                                f"{describe_range(low, high, above)}, "
                                f"not {_number(given)}{rounded}{where}")


def describe_range(low, high, above) -> str:
    """'from 0 to 1', 'more than 0', '1 or more', 'at most 5', 'more than 0 and at most 1'."""
    bottom = f"more than {_number(above)}" if above is not None else (
        None if low is None else f"{_number(low)} or more")
    if high is None:
        return bottom or "any number"
    if above is None and low is not None:
        return f"from {_number(low)} to {_number(high)}"
    return f"{bottom} and at most {_number(high)}" if bottom else f"at most {_number(high)}"
