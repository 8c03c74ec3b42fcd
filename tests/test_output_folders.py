"""Stage 2's output folder holds only what stage 2 made: a user's numbered pictures, or
another stage's frames, are never taken for dreams, never deleted and never overwritten."""
import subprocess
import sys
import time

import numpy as np
import pytest

from deepdream.io import frames
from deepdream.errors import FramesError

from conftest import ROOT, script
from test_stage2 import frame_folder, run


def user_pictures(folder, names=("1.png", "2.png", "100.png")):
    """A user's own numbered photos in ``folder``: {name: bytes}."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    for name in names:
        frames.write_frame(folder / name, rng.uniform(0, 255, (48, 64, 3)))
    return {name: (folder / name).read_bytes() for name in names}


def unchanged(folder, kept):
    return {name: (folder / name).read_bytes() for name in kept} == kept


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_a_folder_of_a_users_numbered_pictures_is_refused_and_left_alone(tiny_net, tmp_path,
                                                                         overwrite):
    src = frame_folder(tmp_path / "in", 3)
    kept = user_pictures(tmp_path / "out")
    with pytest.raises(FramesError, match="no dreaming run of ours made .*1.png"):
        run(tiny_net, src, tmp_path / "out", overwrite=overwrite)
    assert unchanged(tmp_path / "out", kept)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(kept)


def test_another_stages_frames_are_not_taken_for_dreams(tiny_net, tmp_path):
    """-o naming another movie's stage-1 folder: its raw frames are not 'already done'."""
    src = frame_folder(tmp_path / "in", 3)
    other = frame_folder(tmp_path / "other_movie", 3, seed=4)
    kept = {p.name: p.read_bytes() for p in other.iterdir()}
    with pytest.raises(FramesError, match="no dreaming run of ours made"):
        run(tiny_net, src, other)
    assert unchanged(other, kept)


def test_the_frames_of_the_other_stage_are_named_as_such(tiny_net, tmp_path):
    """Stage 2 given stage 1's folder as -o, stage 1 given stage 2's: refused in one line
    that says whose frames are there (not "a file deepdream did not write"), unchanged."""
    from media import make_clip
    extracted = tmp_path / "frames"
    script("1_movie2frames.py", "ffmpeg", make_clip(tmp_path / "clip.mp4", "64x48",
                                                     duration=0.2), extracted, "png")
    src, dreamed = frame_folder(tmp_path / "in", 2), tmp_path / "dreamed"
    run(tiny_net, src, dreamed)
    before = {folder: {p.name: p.read_bytes() for p in folder.iterdir()}
              for folder in (extracted, dreamed)}
    with pytest.raises(FramesError) as refused:
        run(tiny_net, src, extracted, overwrite=True)
    assert str(refused.value) == (
        f"{extracted} holds frames extracted by deepdream (its frames.tsv says so), not "
        "frames dreamed: dream into another folder, or move it away; nothing was changed")
    result = script("1_movie2frames.py", "ffmpeg", tmp_path / "clip.mp4", dreamed, "png",
                    "--overwrite", check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"error: {dreamed} holds frames dreamed by deepdream (its frames.tsv says so), not "
        "frames extracted: give another folder, or move it away; nothing was changed"], \
        result.stderr
    assert {folder: {p.name: p.read_bytes() for p in folder.iterdir()}
            for folder in (extracted, dreamed)} == before


def test_overwrite_deletes_only_the_frames_the_earlier_run_made(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 3)
    run(tiny_net, src, tmp_path / "out", end_frame=2)
    kept = user_pictures(tmp_path / "out", ("7.png",))      # dropped in later by the user
    with pytest.raises(FramesError, match="7.png"):
        run(tiny_net, src, tmp_path / "out", overwrite=True, settings=dict(iterations=2))
    assert unchanged(tmp_path / "out", kept)
    assert list(frames.list_frames(tmp_path / "out")) == [1, 2, 7]   # nothing deleted
    (tmp_path / "out" / "7.png").unlink()                   # the user moves it away
    report = run(tiny_net, src, tmp_path / "out", overwrite=True, settings=dict(iterations=2))
    assert report.dreamed == 3


def test_a_frame_of_ours_edited_by_the_user_is_no_longer_ours(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 3)
    run(tiny_net, src, tmp_path / "out", end_frame=2)
    edited = tmp_path / "out" / "00000002.png"
    frames.write_frame(edited, np.full((48, 64, 3), 9.0))
    kept = edited.read_bytes()
    with pytest.raises(FramesError, match="00000002.png"):
        run(tiny_net, src, tmp_path / "out")
    assert edited.read_bytes() == kept


def test_a_copied_run_without_its_times_still_resumes(tiny_net, tmp_path):
    """A folder copied without its modification times (cp -r): the ledger's sha1 vouches."""
    import os
    import shutil
    src = frame_folder(tmp_path / "in", 3)
    run(tiny_net, src, tmp_path / "out", end_frame=2)
    shutil.copytree(tmp_path / "out", tmp_path / "copy", copy_function=shutil.copyfile)
    for path in (tmp_path / "copy").iterdir():
        os.utime(path, ns=(1, 1))
    report = run(tiny_net, src, tmp_path / "copy")
    assert (report.dreamed, report.skipped) == (1, 2)


def test_frames_whose_ledger_is_gone_are_not_taken_for_ours(tiny_net, tmp_path):
    """Without the ledger nothing vouches for the frames (an earlier version kept none): they
    are neither resumed nor deleted."""
    src = frame_folder(tmp_path / "in", 3)
    run(tiny_net, src, tmp_path / "out", end_frame=2)
    (tmp_path / "out" / "frames.tsv").unlink()
    kept = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    for overwrite in (False, True):
        with pytest.raises(FramesError, match="no dreaming run of ours made .*00000001.png"):
            run(tiny_net, src, tmp_path / "out", overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == kept


@pytest.mark.parametrize("name", ["params.json", "frames.tsv"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_a_users_file_with_our_bookkeeping_name_is_not_ours(tiny_net, tmp_path, name,
                                                            overwrite):
    """A params.json or frames.tsv of the user's (or of an earlier version, without our mark)
    in the output folder: never read as a run of ours, never appended to nor deleted."""
    src = frame_folder(tmp_path / "in", 3)
    out = tmp_path / "out"
    out.mkdir()
    mine = {name: b'{"lr": 0.1, "dream": {"octaves": 4}}\n' if name.endswith(".json")
            else b"00000001.png\t10\t10\tabc\n", "notes.txt": b"my notes"}
    for file, data in mine.items():
        (out / file).write_bytes(data)
    with pytest.raises(FramesError, match=f"holds a {name} that deepdream did not write"):
        run(tiny_net, src, out, overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == mine


def test_an_earlier_versions_params_json_is_refused_and_kept(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 3)
    run(tiny_net, src, tmp_path / "out", end_frame=2)
    params = frames.read_json(tmp_path / "out" / "params.json")
    del params["made_by"]                        # as every version before the mark wrote it
    frames.write_json(tmp_path / "out" / "params.json", params)
    kept = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    with pytest.raises(FramesError, match="params.json that deepdream did not write"):
        run(tiny_net, src, tmp_path / "out", overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == kept


def test_output_equal_to_input_is_refused_before_anything_is_written(tiny_net, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    kept = {p.name: p.read_bytes() for p in src.iterdir()}
    (tmp_path / "link").symlink_to(src)
    for out in (src, tmp_path / "link"):
        with pytest.raises(FramesError, match="is the input folder"):
            run(tiny_net, src, out)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == kept


def test_params_json_is_on_disk_before_the_first_frame(tiny_model_dir, tmp_path):
    """Watched from outside while stage 2 runs: whenever a dreamed frame is there, so is
    params.json (a kill between the two cannot leave a frame that no params.json explains)."""
    src = frame_folder(tmp_path / "in", 6, size=(96, 128))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(src), "-o", str(out),
         "-t", str(tiny_model_dir), "-l", "inception_3b/output", "-oct", "2", "-itr", "1"],
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = False
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if out.exists() and frames.list_frames(out):
            assert (out / "params.json").exists()
            seen = True
        time.sleep(0.005)
    assert process.wait(60) == 0, process.stderr.read()
    assert seen


def test_stage2_script_says_it_in_one_line(tiny_model_dir, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    kept = user_pictures(tmp_path / "out")
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "out", "-t",
                    tiny_model_dir, "-l", "inception_3b/output", "-oct", "2", "--overwrite",
                    check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error:")
    assert unchanged(tmp_path / "out", kept)


def _file_size_limit(limit):
    """For a child process: files larger than ``limit`` bytes cannot be written (EFBIG, as a
    full disk gives ENOSPC), with the signal that would kill it ignored."""
    def apply():
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_disk_that_takes_no_frame_is_one_line_and_leaves_no_broken_frame(tiny_model_dir,
                                                                         tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    noise = np.random.default_rng(3).uniform(0, 255, (96, 128, 3))   # ~37 kB as a PNG
    for n in (1, 2):
        frames.write_frame(src / frames.frame_name(n, "png"), noise)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(src), "-o", str(out),
         "-t", str(tiny_model_dir), "-l", "conv2/3x3", "-oct", "1", "-itr", "1"],
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
             "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=300, preexec_fn=_file_size_limit(20000))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines[-1].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert str(out / "00000001.png") in lines[-1] and "too large" in lines[-1]
    assert not frames.list_frames(out)                       # no broken frame
    assert sorted(p.name for p in out.iterdir()) == ["frames.tsv", "params.json"]  # no scratch


def test_an_output_under_a_file_is_one_line(tiny_model_dir, tmp_path):
    src = frame_folder(tmp_path / "in", 2)
    (tmp_path / "notes.txt").write_text("mine")
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "notes.txt" / "out",
                    "-t", tiny_model_dir, "-l", "conv2/3x3", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'notes.txt' / 'out'}: Not a directory"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    result = script("2_dreaming_time.py", "-i", src, "-o", tmp_path / "notes.txt",
                    "-t", tiny_model_dir, "-l", "conv2/3x3", check=False)
    assert result.returncode == 1 and "is a file" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
