"""Temporal coherence: optical flow, occlusion, scene cuts, the flicker metric, and dreams that
do not build up frame after frame. Clips are made from scikit-image's sample photographs."""
import numpy as np
import skimage.data

from deepdream.io import flow, frames, metrics, scenes
from deepdream.run import loop
from deepdream.run.settings import DreamSettings
from deepdream.run.settings import RunOptions
from deepdream.dreamer.ascent import dream

from conftest import FIXTURES

PHOTO = skimage.data.astronaut().astype(np.float32)      # 512 x 512
OTHER = skimage.data.coffee().astype(np.float32)         # 400 x 600


def crop(photo, x, y=100, size=(96, 128)):
    return photo[y:y + size[0], x:x + size[1]]


def write_clip(folder, images):
    folder.mkdir()
    for n, image in enumerate(images, 1):
        frames.write_frame(folder / frames.frame_name(n, "png"), image)
    return folder


def test_warped_detail_lands_where_the_motion_says():
    before, after = crop(PHOTO, 200), crop(PHOTO, 205)     # the camera pans right by 5 px
    field, mask = flow.flow_and_mask(before, after)
    inner = (slice(20, 76), slice(20, 100))
    assert np.abs(field[inner][..., 0] - 5).mean() < 0.5
    assert np.abs(field[inner][..., 1]).mean() < 0.5
    detail = np.zeros_like(before)
    detail[48, 60] = 100.0                                 # a dream dot on the first frame
    moved = flow.warp(detail, field)
    y, x = np.unravel_index(np.argmax(moved[..., 0]), moved.shape[:2])
    assert (y, x) == (48, 55) and mask[40:56, 50:60].all()


def test_occluded_regions_are_masked():
    background = crop(PHOTO, 200)
    before, after = background.copy(), background.copy()
    before[30:60, 40:70] = [255, 0, 255]                   # a square moves 12 px right
    after[30:60, 52:82] = [255, 0, 255]
    _, mask = flow.flow_and_mask(before, after)
    uncovered = mask[32:58, 42:50]                         # background the square just left
    still = mask[70:90, 90:120]                            # background far from it
    assert uncovered.mean() < 0.5 and still.mean() > 0.95


def test_cut_detector_finds_the_cut_and_nothing_in_a_pan(tmp_path):
    pan = [crop(PHOTO, 150 + 4 * i) for i in range(6)]
    cut = pan[:3] + [crop(OTHER, 200 + 4 * i) for i in range(3)]
    assert scenes.find_cuts(frames.list_frames(write_clip(tmp_path / "pan", pan))) == []
    assert scenes.find_cuts(frames.list_frames(write_clip(tmp_path / "cut", cut))) == [4]


FAST = dict(layers=("inception_3b/output",), octaves=2, iterations=2, jitter=0, seed=1)


def run(net, src, out, overwrite=False, **kw):
    settings = DreamSettings(**{**FAST, **kw})
    loop.dream_frames(src, out, net, settings,
                           options=RunOptions(overwrite=overwrite, progress=False))
    return [frames.read_frame(p).astype(np.float32)
            for p in frames.list_frames(out).values()]


def test_blend_and_flow_reset_at_a_cut(tiny_net, tmp_path):
    images = [crop(PHOTO, 150 + 4 * i) for i in range(3)] + \
        [crop(OTHER, 200 + 4 * i) for i in range(2)]
    src = write_clip(tmp_path / "in", images)
    fresh = dream(tiny_net, frames.read_frame(src / "00000004.png"), "inception_3b/output",
                  iter_n=2, octave_n=2, octave_scale=1.5, jitter=0)
    for name, kw in (("blend", {}), ("flow", {"flow": "dis"})):
        dreamed = run(tiny_net, src, tmp_path / name, **kw)
        np.testing.assert_array_equal(dreamed[3], frames.to_uint8(fresh))
        assert frames.read_json(tmp_path / name / "params.json")["scene_cuts"] == [4]
    original = run(tiny_net, src, tmp_path / "nocuts", scene_cuts=False)
    assert np.abs(original[3] - frames.to_uint8(fresh)).mean() > 1


def test_flow_carries_the_dream_with_a_pan(tiny_net, tmp_path):
    images = [crop(PHOTO, 150 + 3 * i) for i in range(6)]
    src = write_clip(tmp_path / "in", images)
    blended = run(tiny_net, src, tmp_path / "blend", blend=0.5)
    flowed = run(tiny_net, src, tmp_path / "flow", flow="dis")
    assert len(list((tmp_path / "flow" / ".flow" / "dis-128x96").glob("00000002-*.npz"))) == 1
    b = metrics.measure(src, tmp_path / "blend")
    f = metrics.measure(src, tmp_path / "flow")
    assert f.pairs == b.pairs == 5
    assert f.warping_error < b.warping_error
    assert len(blended) == len(flowed) == 6


def test_flow_cache_is_reused_on_resume(tiny_net, tmp_path):
    images = [crop(PHOTO, 150 + 3 * i) for i in range(3)]
    src = write_clip(tmp_path / "in", images)
    first = run(tiny_net, src, tmp_path / "a", flow="dis")
    [cached] = (tmp_path / "a" / ".flow" / "dis-128x96").glob("00000003-*.npz")
    stamp = cached.stat().st_mtime_ns
    (tmp_path / "a" / "00000003.png").unlink()          # frame 3 is dreamed again
    again = run(tiny_net, src, tmp_path / "a", flow="dis")
    # the same dream, up to the 8-bit rounding of frame 2 that it carries on from
    assert len(again) == 3 and np.abs(again[2] - first[2]).mean() < 2
    assert cached.stat().st_mtime_ns == stamp           # from the cache


def test_flow_cache_never_serves_another_movies_frames(tiny_net, tmp_path):
    """Frames extracted again from another movie into the same folder, dreamed again into the
    same output with --overwrite: the old frames' flows are not used (they are keyed by the
    pictures, not by the frame number)."""
    src = write_clip(tmp_path / "in", [crop(PHOTO, 150 + 3 * i) for i in range(3)])
    first = run(tiny_net, src, tmp_path / "a", flow="dis")
    cache = tmp_path / "a" / ".flow" / "dis-128x96"
    old = sorted(p.name for p in cache.glob("00000003-*.npz"))
    for n in range(1, 4):                                           # another "movie"
        frames.write_frame(src / frames.frame_name(n, "png"), crop(PHOTO, 240 - 5 * n))
    fresh = run(tiny_net, src, tmp_path / "b", flow="dis")
    again = run(tiny_net, src, tmp_path / "a", flow="dis", overwrite=True)
    new = sorted(p.name for p in cache.glob("00000003-*.npz"))
    assert new != old and len(new) == 1                            # the stale flow replaced
    np.testing.assert_array_equal(again[2], fresh[2])              # as if no cache had been
    assert np.abs(again[2].astype(float) - first[2]).mean() > 1


def test_long_static_clip_does_not_brighten(tiny_net, tmp_path):
    src = write_clip(tmp_path / "in", [crop(PHOTO, 200)] * 40)
    original = frames.read_frame(src / "00000001.png").astype(np.float32)

    def strengths(out, **kw):
        dreamed = run(tiny_net, src, out, flow="dis", **kw)
        return ([float(np.abs(d - original).mean()) for d in dreamed],
                [float(d.mean() - original.mean()) for d in dreamed])

    ours, brightness = strengths(tmp_path / "ours")
    early, late = ours[15] - ours[5], ours[39] - ours[29]
    assert late < 0.35 * early                               # it settles
    assert max(abs(b) for b in brightness) < 5               # and does not brighten
    # the earlier tools' flaw: all of the warped detail carried, nothing dropped or smoothed
    flawed, _ = strengths(tmp_path / "flawed", flow_blend=1.0, flow_decay=0.0,
                          flow_smooth=0.0)
    assert flawed[39] - flawed[29] > 2 * late and flawed[39] > 1.3 * ours[39]


def test_metric_is_zero_for_a_static_dream_and_grows_with_flicker(tmp_path):
    original = crop(PHOTO, 200)
    src = write_clip(tmp_path / "in", [original] * 5)
    pattern = np.random.default_rng(0).uniform(-40, 40, original.shape)
    errors = []
    for amount in (0, 10, 30):
        noise = np.random.default_rng(1)
        dreamed = [original + pattern + noise.uniform(-amount, amount, original.shape)
                   for _ in range(5)]
        out = write_clip(tmp_path / f"d{amount}", dreamed)
        result = metrics.measure(src, out)
        assert result.strength > 15
        errors.append(result.warping_error)
    assert errors[0] == 0 and errors[0] < errors[1] < errors[2]


def test_metrics_command_line(tmp_path):
    import subprocess
    import sys
    original = np.rint(crop(PHOTO, 200) * 0.8)      # room for +20 below 255
    src = write_clip(tmp_path / "in", [original] * 3)
    out = write_clip(tmp_path / "out", [original + 20] * 3)
    result = subprocess.run([sys.executable, "-m", "deepdream.metrics", str(src), str(out)],
                            capture_output=True, text=True, cwd=FIXTURES.parent.parent)
    assert result.returncode == 0, result.stderr
    assert "warping error:  0.000" in result.stdout and "dream strength: 20.000" in result.stdout
    for folder in (src, out):                    # nothing written into the user's folders
        assert sorted(p.name for p in folder.iterdir()) == [f"0000000{n}.png" for n in (1, 2, 3)]


def test_a_users_flow_folder_in_the_output_is_left_alone(tiny_net, tmp_path):
    src = write_clip(tmp_path / "in", [crop(PHOTO, 150 + 3 * i) for i in range(3)])
    mine = tmp_path / "out" / ".flow"
    mine.mkdir(parents=True)
    (mine / "00000002-0000000000000000.npz").write_bytes(b"mine")
    (mine / "dis-128x96").mkdir()
    (mine / "dis-128x96" / "00000002-abc.npz").write_bytes(b"also mine")
    dreamed = run(tiny_net, src, tmp_path / "out", flow="dis")
    fresh = run(tiny_net, src, tmp_path / "fresh", flow="dis")
    np.testing.assert_array_equal(dreamed[2], fresh[2])
    assert {str(p.relative_to(mine)): p.read_bytes() for p in mine.rglob("*") if p.is_file()} \
        == {"00000002-0000000000000000.npz": b"mine", "dis-128x96/00000002-abc.npz": b"also mine"}


def test_metrics_of_a_folder_of_two_frame_types_says_so_without_flags_it_lacks(tmp_path):
    import subprocess
    import sys
    src = write_clip(tmp_path / "in", [crop(PHOTO, 200)] * 2)
    frames.write_frame(src / "00000003.jpg", crop(PHOTO, 200))
    result = subprocess.run([sys.executable, "-m", "deepdream.metrics", str(src), str(src)],
                            capture_output=True, text=True, cwd=FIXTURES.parent.parent)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {src} holds frames of several types (jpg, png); the metrics compare folders "
        "of one frame type each"]
