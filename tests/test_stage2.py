"""Stage 2 in-process on the tiny Caffe net: blend, schedules, resume, sizes, modes."""
import json

import numpy as np
import pytest
from PIL import Image

from deepdream.io import frames
from deepdream.run import loop, transforms
from deepdream.run.settings import DreamSettings
from deepdream.run.settings import RunOptions
from deepdream.dreamer.ascent import dream, guide_features
from deepdream.errors import FramesError, ResumeError

from conftest import FIXTURES

FAST = dict(layers=("inception_3b/output",), octaves=2, iterations=1, jitter=0)


def smooth_image(size, seed=0):
    """A smooth random picture (blurred noise stretched to 0..255): consecutive shifts of it
    are one scene, as frames of a pan are."""
    from scipy.ndimage import gaussian_filter
    noise = gaussian_filter(np.random.default_rng(seed).standard_normal((*size, 3)), (6, 6, 0))
    return (noise - noise.min()) / (noise.max() - noise.min()) * 255


def frame_folder(path, count=4, size=(48, 64), seed=0):
    path.mkdir()
    base = smooth_image(size, seed)
    for n in range(1, count + 1):
        frames.write_frame(path / frames.frame_name(n, "png"), np.roll(base, 3 * n, axis=1))
    return path


def run(net, src, out, **kw):
    settings = DreamSettings(**{**FAST, **kw.pop("settings", {})})
    return loop.dream_frames(src, out, net, settings, FIXTURES / "tiny_googlenet.caffemodel",
                                  RunOptions(progress=False, **kw))


def test_first_frame_from_raw_then_blend_with_full_precision_previous(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 3)
    run(tiny_net, src, tmp_path / "out", settings=dict(blend=0.7, seed=1))
    kw = dict(iter_n=1, octave_n=2, octave_scale=1.5, jitter=0, step_size=1.5)
    end = "inception_3b/output"
    raw = [frames.read_frame(src / frames.frame_name(n, "png")).astype(np.float32)
           for n in (1, 2, 3)]
    d1 = dream(tiny_net, raw[0], end, **kw)
    d2 = dream(tiny_net, d1 * 0.3 + raw[1] * 0.7, end, **kw)
    d3 = dream(tiny_net, d2 * 0.3 + raw[2] * 0.7, end, **kw)
    for n, expected in zip((1, 2, 3), (d1, d2, d3)):
        written = frames.read_frame(tmp_path / "out" / frames.frame_name(n, "png"))
        np.testing.assert_array_equal(written, frames.to_uint8(expected))
        assert np.abs(written.astype(float) - raw[n - 1]).mean() > 1


def test_blend_zero_means_raw_frames_as_the_original(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    run(tiny_net, src, tmp_path / "out", settings=dict(blend=0.0))
    raw2 = frames.read_frame(src / "00000002.png")
    d2 = dream(tiny_net, raw2, "inception_3b/output", iter_n=1, octave_n=2, octave_scale=1.5,
               jitter=0)
    np.testing.assert_array_equal(frames.read_frame(tmp_path / "out" / "00000002.png"),
                                  frames.to_uint8(d2))


def test_params_file_and_refusal_to_resume_with_other_settings(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    run(tiny_net, src, tmp_path / "out")
    params = json.loads((tmp_path / "out" / "params.json").read_text())
    assert params["dream"]["octaves"] == 2 and len(params["model_sha1"]) == 40
    assert params["input"] == str(src.resolve())
    with pytest.raises(ResumeError, match="octaves: 2 -> 3.*--overwrite"):
        run(tiny_net, src, tmp_path / "out", settings=dict(octaves=3))
    report = run(tiny_net, src, tmp_path / "out", settings=dict(octaves=3), overwrite=True)
    assert report.dreamed == 2


def test_resume_skips_finished_frames_and_blends_from_the_saved_one(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 4)
    out = tmp_path / "out"
    run(tiny_net, src, out, end_frame=2)
    before = {n: (out / frames.frame_name(n, "png")).read_bytes() for n in (1, 2)}
    report = run(tiny_net, src, out)
    assert (report.dreamed, report.skipped) == (2, 2)
    assert before == {n: (out / frames.frame_name(n, "png")).read_bytes() for n in (1, 2)}
    saved2 = frames.read_frame(out / "00000002.png").astype(np.float32)
    raw3 = frames.read_frame(src / "00000003.png").astype(np.float32)
    d3 = dream(tiny_net, saved2 * 0.5 + raw3 * 0.5, "inception_3b/output", iter_n=1,
               octave_n=2, octave_scale=1.5, jitter=0)
    np.testing.assert_array_equal(frames.read_frame(out / "00000003.png"), frames.to_uint8(d3))


def test_start_and_end_frame(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 5)
    report = run(tiny_net, src, tmp_path / "out", start_frame=2, end_frame=4)
    assert report.dreamed == 3
    assert list(frames.list_frames(tmp_path / "out")) == [2, 3, 4]


def test_gray_rgba_and_16bit_frames_and_sizes_kept(tiny_net, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((48, 64), 90, np.uint8)).save(src / "00000001.png")
    Image.new("RGBA", (70, 50), (200, 30, 60, 128)).save(src / "00000002.png")
    Image.fromarray(np.full((40, 60), 30000, np.uint16)).save(src / "00000003.png")
    run(tiny_net, src, tmp_path / "out")
    sizes = [Image.open(p).size for p in frames.list_frames(tmp_path / "out").values()]
    assert sizes == [(64, 48), (70, 50), (60, 40)]


def test_preview_dreams_small_and_writes_full_size(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 2, size=(90, 120))
    run(tiny_net, src, tmp_path / "out", settings=dict(preview=60))
    assert Image.open(tmp_path / "out" / "00000002.png").size == (120, 90)
    # the dream of the 60 px wide frame, scaled up: its detail is coarser than a full-size
    # dream's, and it is a dream (not the raw frame)
    preview = frames.read_frame(tmp_path / "out" / "00000001.png").astype(float)
    raw = frames.read_frame(src / "00000001.png").astype(float)
    small = frames.read_frame(src / "00000001.png", 60).astype(np.float32)
    expected = dream(tiny_net, small, "inception_3b/output", iter_n=1, octave_n=2,
                     octave_scale=1.5, jitter=0)
    up = np.asarray(Image.fromarray(frames.to_uint8(expected)).resize((120, 90), Image.LANCZOS),
                    dtype=float)
    assert np.abs(preview - raw).mean() > 1
    assert np.abs(preview - up).mean() < 0.5 * np.abs(preview - raw).mean()


def test_zoom_magnifies_the_centre():
    image = np.zeros((41, 41, 3), np.float32)
    image[18:23, 18:23] = 255          # a 5-pixel square in the middle
    zoomed = transforms.zoom_in(image, 2.0)
    assert zoomed.shape == image.shape
    assert (zoomed[:, :, 0] > 128).sum() in range(81, 122)   # about 10 x 10 now
    assert zoomed[20, 20, 0] == 255


def test_guided_run_with_a_small_guide(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    guide = tmp_path / "guide.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 40, 3), np.uint8)).save(guide)
    run(tiny_net, src, tmp_path / "out", settings=dict(guide_image=str(guide)))
    plain = tmp_path / "plain"
    run(tiny_net, src, plain)
    assert not np.array_equal(frames.read_frame(tmp_path / "out" / "00000002.png"),
                              frames.read_frame(plain / "00000002.png"))
    assert guide_features(tiny_net, frames.read_frame(guide), "inception_3b/output").ndim == 3


def test_unreadable_frame_stops_with_its_name_and_keeps_earlier_frames(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 3)
    (src / "00000003.png").write_bytes(b"not a picture")
    with pytest.raises(FramesError, match="00000003.png"):
        run(tiny_net, src, tmp_path / "out")
    assert list(frames.list_frames(tmp_path / "out")) == [1, 2]


def test_an_empty_frame_is_refused_before_any_frame_is_dreamed(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 3)
    (src / "00000003.png").write_bytes(b"")
    with pytest.raises(FramesError, match="00000003.png: it is empty"):
        run(tiny_net, src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_empty_and_missing_input(tiny_net, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FramesError, match="no numbered frames"):
        run(tiny_net, tmp_path / "empty", tmp_path / "out")
    with pytest.raises(FramesError, match="not found"):
        run(tiny_net, tmp_path / "missing", tmp_path / "out")


def test_black_frame_is_kept_when_there_is_nothing_to_dream(tmp_path, caplog):
    import deepdream
    from caffe_nets import layer, write_net
    model, deploy = write_net(tmp_path / "net", [
        layer("c", "Convolution", ["data"], ["c"],
              [np.ones((2, 3, 3, 3), np.float32), np.zeros(2, np.float32)],
              convolution_param=dict(num_output=2, kernel_size=[3])),
        layer("r", "ReLU", ["c"], ["c"])], (1, 3, 16, 16))
    net = deepdream.load_net(model, deploy, mean=(255.0, 255.0, 255.0))  # all-black -> ReLU 0
    src = tmp_path / "in"
    src.mkdir()
    frames.write_frame(src / "00000001.png", np.zeros((16, 16, 3)))
    loop.dream_frames(src, tmp_path / "out", net,
                          DreamSettings(layers=("r",), octaves=1, iterations=1),
                          options=RunOptions(progress=False))
    assert "frame 1 kept as it is" in caplog.text
    assert frames.read_frame(tmp_path / "out" / "00000001.png").max() == 0


def test_a_failed_start_leaves_no_params_and_the_next_run_starts(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    from deepdream.errors import SettingsError
    with pytest.raises(SettingsError, match="octaves must be from 1 to 100, not 0"):
        run(tiny_net, src, tmp_path / "out", settings=dict(octaves=0))
    assert not (tmp_path / "out" / "params.json").exists()
    report = run(tiny_net, src, tmp_path / "out")               # not refused
    assert report.dreamed == 2
    assert frames.read_json(tmp_path / "out" / "params.json")["dream"]["octaves"] == 2


def test_resume_refuses_another_precision_or_input_naming_it(tiny_net, tmp_path):
    from deepdream import load_net
    src = frame_folder(tmp_path / "in", 2)
    run(tiny_net, src, tmp_path / "out", end_frame=1)
    bf16 = load_net(FIXTURES / "tiny_googlenet.caffemodel", FIXTURES / "tiny_googlenet.prototxt",
                    precision="bf16")
    with pytest.raises(ResumeError, match="precision: 'fp32' -> 'bf16'"):
        run(bf16, src, tmp_path / "out")
    other = frame_folder(tmp_path / "other", 2, seed=5)
    with pytest.raises(ResumeError, match="input"):
        run(tiny_net, other, tmp_path / "out")
    assert list(frames.list_frames(tmp_path / "out")) == [1]    # nothing added to the old run
    report = run(tiny_net, src, tmp_path / "out")               # the same run resumes
    assert (report.dreamed, report.skipped) == (1, 1)


def test_overwrite_with_fewer_frames_leaves_no_old_frame(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 4)
    run(tiny_net, src, tmp_path / "out")
    run(tiny_net, src, tmp_path / "out", end_frame=2, overwrite=True,
        settings=dict(iterations=2))
    assert list(frames.list_frames(tmp_path / "out")) == [1, 2]
    assert frames.read_json(tmp_path / "out" / "params.json")["dream"]["iterations"] == 2


def test_a_second_run_on_the_same_output_is_refused_while_one_runs(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    with frames.folder_lock(tmp_path / "out"):        # as a first run holds it
        with pytest.raises(ResumeError, match="another run is dreaming into"):
            run(tiny_net, src, tmp_path / "out")
    assert run(tiny_net, src, tmp_path / "out").dreamed == 2     # free again afterwards


def test_only_real_size_problems_are_reported_as_size_problems():
    from deepdream.errors import ImageTooSmallError
    from deepdream.nets.caffe.torch_net import _wrap_failure
    layer = type("L", (), {"name": "conv1", "type": "Convolution"})()
    small = _wrap_failure(layer, [(1, 3, 2, 2)], RuntimeError(
        "Calculated padded input size per channel: (2 x 2). Kernel size: (7 x 7). Kernel size "
        "can't be greater than actual input size"))
    assert isinstance(small, ImageTooSmallError)
    bug = RuntimeError("expected scalar type Float but found Double")
    assert _wrap_failure(layer, [(1, 3, 64, 64)], bug) is bug


def test_stage_2_is_one_library_call(tiny_model_dir, tmp_path):
    import deepdream
    from deepdream.nets import registry as models
    src = frame_folder(tmp_path / "in", 3)
    model = models.resolve(folder=tiny_model_dir, progress=False)
    settings = deepdream.DreamSettings(**FAST)
    report = deepdream.dream_video(src, tmp_path / "out", settings, model,
                                   deepdream.RunOptions(device="cpu", progress=False))
    assert (report.dreamed, report.skipped) == (3, 0)
    assert frames.read_json(tmp_path / "out" / "params.json")["engine"] == "TorchNet"
    # every option means the same under every strategy, or it is refused
    from deepdream.errors import DeepDreamError
    with pytest.raises(DeepDreamError, match="--batch-segments"):
        deepdream.dream_video(src, tmp_path / "ray", settings, model,
                              deepdream.RunOptions(ray="local", batch_segments=2))


def chroma(image):
    from deepdream.run.transforms import _RGB_TO_YCC
    return (np.asarray(image, np.float32) @ _RGB_TO_YCC.T)[..., 1:]


@pytest.mark.parametrize("flow", [None, "dis"])
def test_keep_colors_keeps_each_frames_colours(tiny_net, tmp_path, flow):
    src = frame_folder(tmp_path / "in", 3, size=(64, 96))
    strong = dict(iterations=4, step_size=4.0, blend=0.5, flow=flow)
    run(tiny_net, src, tmp_path / "kept", settings=dict(strong, keep_colors=True))
    run(tiny_net, src, tmp_path / "free", settings=strong)
    for n in (1, 2, 3):
        raw = frames.read_frame(src / frames.frame_name(n, "png"))
        kept = frames.read_frame(tmp_path / "kept" / frames.frame_name(n, "png"))
        free = frames.read_frame(tmp_path / "free" / frames.frame_name(n, "png"))
        kept_shift = np.abs(chroma(kept) - chroma(raw)).mean()
        assert kept_shift < 1.0                                  # 8-bit rounding, clipping
        assert np.abs(chroma(free) - chroma(raw)).mean() > 3 * kept_shift + 1
        assert np.abs(kept.astype(float) - raw).mean() > 2       # and it is still a dream


def test_keep_colors_of_a_frame_with_itself_is_the_frame():
    from deepdream.run.transforms import keep_colors
    image = np.random.default_rng(3).uniform(0, 255, (8, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(keep_colors(image, image), image, atol=1e-3)


def test_a_run_of_an_earlier_version_resumes(tiny_net, tmp_path):
    # its params.json does not know the settings added since (here keep_colors)
    src = frame_folder(tmp_path / "in", 2)
    run(tiny_net, src, tmp_path / "out", end_frame=1)
    params = frames.read_json(tmp_path / "out" / "params.json")
    del params["dream"]["keep_colors"]
    frames.write_json(tmp_path / "out" / "params.json", params)
    assert run(tiny_net, src, tmp_path / "out").skipped == 1
    with pytest.raises(ResumeError, match="keep_colors: False -> True"):
        run(tiny_net, src, tmp_path / "out", settings=dict(keep_colors=True))
