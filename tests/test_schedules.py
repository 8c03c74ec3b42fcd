"""Schedules as pure functions of the frame number, against the original's arithmetic."""
import pytest

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
