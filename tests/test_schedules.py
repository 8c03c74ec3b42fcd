"""Schedules as pure functions of the frame number, against the original's arithmetic; numeric
settings that follow keyframes or the sound."""
from fractions import Fraction

import numpy as np
import pytest

from deepdream.errors import SettingsError
from deepdream.io.sound import SoundCurves
from deepdream.run import schedules


def test_customloop_is_the_originals_sweep_indexed_by_frame_number():
    loop = schedules.CUSTOM_LOOP
    assert loop[0] == loop[-1] == "inception_4c/output" and loop[4] == "inception_5b/output"
    # the original: layersloop[frame_i % len(layersloop)] with frame_i from 1
    assert [schedules.layer_for_frame(n, loop) for n in (1, 4, 9, 10)] == [
        "inception_4d/output", "inception_5b/output", "inception_4c/output",
        "inception_4d/output"]


def test_single_layer():
    assert schedules.layer_for_frame(123, ["conv2/3x3"]) == "conv2/3x3"


def test_loop_blend_follows_the_original_for_many_frames():
    original = schedules.original_loop_blend(200)
    assert original[:11] == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    # frame 2 is the first blended frame
    assert [schedules.blend_for_frame(n, "loop") for n in range(2, 202)] == original


def test_random_blend_is_in_tenths_from_half_to_one_and_reproducible():
    values = [schedules.blend_for_frame(n, "random", seed=3) for n in range(1, 200)]
    assert set(values) == {0.5, 0.6, 0.7, 0.8, 0.9, 1.0}
    assert values == [schedules.blend_for_frame(n, "random", seed=3) for n in range(1, 200)]


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_constant_blend(value):
    assert schedules.blend_for_frame(17, value) == value


def test_frame_seeds_do_not_depend_on_where_a_run_starts():
    assert schedules.seed_for_frame(5, 10) == schedules.seed_for_frame(5, 10)
    assert schedules.seed_for_frame(5, 10) != schedules.seed_for_frame(5, 11)
    assert schedules.seed_for_frame(None, 10) is None


# -- numeric settings that follow keyframes or the sound (issue #29) ---------------------

STEP = "-s/--stepsize"


def step(text, **limits):
    return schedules.parse(text, STEP, **limits)


def test_frame_times_count_from_frame_1_at_the_first_time():
    fps = Fraction(30000, 1001)
    assert schedules.frame_time(1, fps, 2.5) == 2.5
    assert schedules.frame_time(31, fps, 2.5) == pytest.approx(2.5 + 30 * 1001 / 30000)
    assert np.allclose(schedules.frame_time(np.array([1, 2, 11]), 10), [0, 0.1, 1.0])


def test_keyframes_are_linear_between_and_held_before_the_first_and_after_the_last():
    schedule = step("10:1, 20:3")
    frames = np.arange(1, 31)
    expected = np.clip(1 + (frames - 10) * 2 / 10, 1, 3)
    assert np.allclose(schedule.at(frames, 25), expected)
    assert [schedule.value(n, 25) for n in (1, 15, 20, 30)] == [1, 2, 3, 3]
    assert schedule.constant is None and not schedule.uses_sound


def test_seconds_keyframes_follow_the_rate_and_where_frame_1_is():
    schedule = step("1s:0, 2s:4")
    # frame n is at 0.5 + (n - 1) / 10 s: frame 6 at 1.0 s, frame 11 at 1.5 s, 16 at 2.0 s
    assert np.allclose(schedule.at([1, 6, 11, 16, 40], 10, 0.5), [0, 0, 2, 4, 4])
    mixed = step("0:1.5, 4s:3, 120:1.5")
    # at 25 frames a second 4 s is frame 101
    assert mixed.value(101, 25) == 3 and mixed.value(120, 25) == 1.5
    assert mixed.value(1, 25) == pytest.approx(1.5 + 1.5 * 0.04 / 4.04)


def test_rising_keyframes_give_the_last_second_three_times_the_first():
    values = step("0s:0.5, 10s:3").at(np.arange(1, 251), 25)
    assert values[-25:].mean() >= 3 * values[:25].mean()


def test_smooth_keyframes_are_flat_at_each_key_and_never_beyond_its_values():
    smooth, linear = step("smooth(1:0, 11:10, 21:4)"), step("1:0, 11:10, 21:4")
    frames = np.arange(1, 31)
    values = smooth.at(frames, 25)
    assert [smooth.value(n, 25) for n in (1, 6, 11, 16, 21)] == pytest.approx([0, 5, 10, 7, 4])
    assert values[1] < linear.value(2, 25) and values[9] > linear.value(10, 25)
    assert np.all(np.diff(values[:11]) >= 0) and np.all(np.diff(values[10:21]) <= 0)
    assert values.min() == 0 and values.max() == 10


def test_integer_settings_are_rounded_per_frame_halves_up():
    schedule = schedules.parse("1:2, 3:3", "-itr/--iterations", integer=True)
    values = schedule.at([1, 2, 3], 25)                   # 2, 2.5, 3
    assert values.dtype == np.int64 and list(values) == [2, 3, 3]
    assert isinstance(schedule.value(2, 25), int)
    assert list(schedules.parse("sound:1..4", integer=True).at(
        [1, 16, 26], 10, sound=sound_curves())) == [1, 4, 3]      # 1, 4, 2.5
    assert schedules.parse("3", integer=True).constant == 3
    with pytest.raises(SettingsError, match="-itr/--iterations takes a whole number, not 2.5"):
        schedules.parse("2.5", "-itr/--iterations", integer=True)


@pytest.mark.parametrize("text, canonical", [
    ("1.50", "1.5"), (2, "2"), ("3.0", "3"), ("-0.25", "-0.25"), ("1e-05", "1e-05"),
    ("0:1.5,4s:3 , 120:1.5", "0:1.5, 4s:3, 120:1.5"), ("2.50s:1", "2.5s:1"),
    ("smooth( 1:1 , 5:2 )", "smooth(1:1, 5:2)"), (" sound-bass : 1 .. 2 ", "sound-bass:1..2"),
    ("sound:3..0.5", "sound:3..0.5"), ("sound-beats:0..1", "sound-beats:0..1")])
def test_the_canonical_text_reads_back_to_an_equal_schedule(text, canonical):
    schedule = step(text)
    assert str(schedule) == canonical
    assert step(str(schedule)) == schedule and str(step(str(schedule))) == canonical


def test_schedules_that_differ_are_unequal():
    assert len({step("1"), step("1:1"), step("1s:1"), step("smooth(1:1)"), step("1:1, 5:2"),
                step("smooth(1:1, 5:2)"), step("sound:1..2"), step("sound-bass:1..2")}) == 8
    assert schedules.parse("1:1, 5:2", integer=True) != step("1:1, 5:2")


FORMS = "(a number, keyframes FRAME:VALUE or SECONDSs:VALUE as in "


@pytest.mark.parametrize("text, words", [
    ("0:1.5, 4x:3", f'cannot read "4x:3" in "0:1.5, 4x:3" {FORMS}'),
    ("", f'cannot read "" {FORMS}'),
    ("fast", f'cannot read "fast" {FORMS}'),
    ("1:2,", 'cannot read "1:2,"'),
    ("1:2; 3:4", 'cannot read "1:2; 3:4"'),
    ("-1:2", 'cannot read "-1:2"'),
    ("1:2:3", 'cannot read "1:2:3"'),
    ("smooth(1:2", 'cannot read "smooth(1:2"'),
    ("smooth()", 'cannot read "smooth()"'),
    ("nan", 'cannot read "nan"'),
    ("1:inf", 'cannot read "1:inf"'),
    ("1e400", 'a number in "1e400" is too large'),
    ("5:1, 3:2", 'keyframe 3:2 comes before 5:1 in "5:1, 3:2": give each time once, in order'),
    ("5:1, 5:2", "keyframe 5:2 is at the time of 5:1"),
    ("2s:1, 1.5s:2", "keyframe 1.5s:2 comes before 2s:1"),
    ("sound-treble:1..2", 'unknown sound "sound-treble" in "sound-treble:1..2": sound, '
                          "sound-bass or sound-beats"),
    ("sound:1-3", 'cannot read "1-3" in "sound:1-3" (give the range LOW..HIGH, e.g. '
                  "sound:0.5..3)"),
    ("sound:", 'cannot read "" in "sound:"'),
    ("sound-bass:1..", 'cannot read "1.." in "sound-bass:1.."'),
    ("sound:..2", 'cannot read "..2"')])
def test_every_malformed_schedule_is_one_line_naming_the_setting(text, words):
    with pytest.raises(SettingsError) as error:
        step(text)
    message = str(error.value)
    assert message.startswith(f"{STEP}") and words in message and "\n" not in message


def test_frames_and_seconds_out_of_order_at_the_movies_rate_are_refused():
    mixed = step("0:1.5, 4s:3, 120:1.5")
    assert mixed.check(25) is None
    with pytest.raises(SettingsError, match=r'keyframe 120:1.5 comes before 4s:3 in "0:1.5, '
                                            r'4s:3, 120:1.5" at 30 frames a second'):
        mixed.check(30)
    with pytest.raises(SettingsError, match="keyframe 4s:2 is at the time of 101:1"):
        step("101:1, 4s:2").at([1], 25)


def test_keyframes_after_the_last_frame_are_a_warning():
    schedule = step("1:1, 100:2, 10s:3")
    warning = schedule.check(25, last_frame=50)
    assert warning.startswith(f"{STEP}: keyframes 100:2, 10s:3 come after the last frame (50, "
                              "at 1.96 s of the source)")
    assert schedule.check(25, last_frame=500) is None
    assert step("2").check(25, last_frame=1) is None


@pytest.mark.parametrize("text, limits, words", [
    ("0", dict(above=0), "must be more than 0, not 0"),
    ("1:1, 5:0", dict(above=0), 'must be more than 0, not 0 (the keyframe 5:0 of "1:1, 5:0")'),
    ("smooth(1:0.5, 9:1.2)", dict(low=0, high=1),
     'must be from 0 to 1, not 1.2 (the keyframe 9:1.2 of "smooth(1:0.5, 9:1.2)")'),
    ("sound:0..3", dict(low=0.5), 'must be 0.5 or more, not 0 (the LOW of "sound:0..3")'),
    ("sound-bass:1..2", dict(above=0, high=1), "must be more than 0 and at most 1, not 2 "
                                               '(the HIGH of "sound-bass:1..2")'),
    ("1:0.4, 2:3", dict(low=1, integer=True),
     'must be 1 or more, not 0.4, which rounds to 0 (the keyframe 1:0.4 of "1:0.4, 2:3")'),
    (7, dict(high=5), "must be at most 5, not 7")])
def test_values_out_of_range_are_refused_naming_setting_value_and_range(text, limits, words):
    with pytest.raises(SettingsError) as error:
        step(text, **limits)
    assert str(error.value) == f"{STEP} {words}"


def test_a_schedule_in_range_stays_in_range_at_every_frame():
    for text in ("smooth(1:0.01, 9:1, 30:0.2)", "1:0.01, 9:1, 30:0.2", "sound:0.01..1"):
        values = step(text, above=0, high=1).at(np.arange(1, 60), 10, sound=sound_curves())
        assert values.min() > 0 and values.max() <= 1
    # 0.5 rounds up to 1: in range for an integer setting that must be 1 or more
    assert step("1:0.5, 2:3", low=1, integer=True).at([1], 25)[0] == 1


def sound_curves():
    """Sound curves of 3 s: silence, then loud, then 25 dB quieter; beats at 0.5 and 1.2 s."""
    loudness = np.repeat(np.float32([-120, -5, -30]), 100)
    return SoundCurves(0.0, loudness, loudness - 10, np.array([0.5, 1.2]),
                       {"loudness": (-55.0, -5.0), "bass": (-60.0, -15.0)})


def test_sound_schedules_map_each_curve_to_low_high():
    curves, frames = sound_curves(), np.array([6, 16, 26])        # 0.5, 1.5 and 2.5 s
    loud = step("sound:0.5..3")
    assert loud.uses_sound and loud.kinds == {"loudness"} and loud.constant is None
    assert np.allclose(loud.at(frames, 10, sound=curves), [0.5, 3, 0.5 + 2.5 * 25 / 50])
    assert np.allclose(step("sound:3..1").at(frames, 10, sound=curves), [3, 1, 2])
    assert np.allclose(step("sound-bass:0..1").at(frames, 10, sound=curves),
                       [0, 1, 20 / 45])
    beats = step("sound-beats:1..2")
    assert beats.kinds == {"beats"}
    # frame 6 is on the first beat, frame 7 0.1 s (one half-life) after it, 4 before it
    assert np.allclose(beats.at([4, 6, 7], 10, sound=curves), [1, 2, 1.5])
    with pytest.raises(ValueError, match="follows the sound"):
        loud.at(frames, 10)


def test_frames_under_loud_sound_are_dreamed_three_times_as_much_as_silent_ones():
    steps = step("sound:0.5..3").at(np.arange(1, 31), 10, sound=sound_curves())
    assert steps[11:20].min() >= 3 * steps[:9].max()


def test_the_layer_sweep_moves_on_at_each_beat():
    layers = ("a", "b", "c")
    beats = [0.5, 1.0, 1.5]
    assert [schedules.layer_on_beats(t, beats, layers)
            for t in (0.0, 0.49, 0.5, 0.99, 1.0, 1.5, 100)] == ["a", "a", "b", "b", "c", "a",
                                                                "a"]
    assert schedules.layer_on_beats(3.0, [], layers) == "a"
