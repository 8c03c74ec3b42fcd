"""Segment-parallel dreaming on a local Ray runtime started by the tests (two workers, one
CPU thread each): equal to a sequential run at scene cuts, lost workers and drivers."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import skimage.data

from deepdream import cluster, frames, load_net, models, runs, scheduler

from conftest import FIXTURES, ROOT

PHOTOS = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]


def shots_clip(folder, per_shot=3):
    """Three shots of a slow pan each, hard cuts between them."""
    folder.mkdir()
    n = 1
    for photo in PHOTOS:
        for i in range(per_shot):
            frames.write_frame(folder / frames.frame_name(n, "png"),
                               photo[60:156, 80 + 3 * i:208 + 3 * i])
            n += 1
    return folder


@pytest.mark.parametrize("numbers,cuts,length,expected", [
    ([1, 2, 3, 4, 5, 6], [], 10, [[1, 2, 3, 4, 5, 6]]),
    ([1, 2, 3, 4, 5, 6], [4], 10, [[1, 2, 3], [4, 5, 6]]),
    ([1, 2, 3, 4, 5, 6, 7], [], 3, [[1, 2, 3], [4, 5, 6], [7]]),
    ([3, 4, 5, 6], [5], 1, [[3], [4], [5], [6]]),
], ids=["one", "at-cut", "fixed-length", "length-1"])
def test_segments(numbers, cuts, length, expected):
    assert scheduler.segments(numbers, cuts, length) == expected


SETTINGS = dict(layers=("inception_3b/output",), octaves=2, iterations=2, seed=5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_segments_at_scene_cuts_equal_a_sequential_run(precision, tmp_path):
    net = load_net(FIXTURES / "tiny_googlenet.caffemodel", FIXTURES / "tiny_googlenet.prototxt",
                   precision=precision)
    src = shots_clip(tmp_path / "in")
    settings = runs.DreamSettings(**SETTINGS)
    scheduler.dream_frames(src, tmp_path / "seq", net, settings, progress=False)
    report = cluster.dream_frames_ray(
        src, tmp_path / "par", models.ResolvedModel(
            FIXTURES / "tiny_googlenet.caffemodel", FIXTURES / "tiny_googlenet.prototxt", None),
        settings, workers=2,
        segment_length=100, progress=False, precision=precision)
    assert report.dreamed == 9
    seq, par = frames.list_frames(tmp_path / "seq"), frames.list_frames(tmp_path / "par")
    assert list(seq) == list(par) == list(range(1, 10))
    for n in seq:
        assert seq[n].read_bytes() == par[n].read_bytes(), n
    params = frames.read_json(tmp_path / "par" / "params.json")
    assert params["scene_cuts"] == [4, 7] and params["precision"] == precision


def ray_command(src, out, model_dir):
    return [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(src), "-o", str(out),
            "-t", str(model_dir), "-l", "inception_4c/output", "-itr", "8", "-oct", "3",
            "--seed", "2", "--ray", "--workers", "2", "--segment-length", "2", "-v", "0"]


def wait_for_frames(out, count, process, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and len(frames.list_frames(out)) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} frames appeared in {out}")


def stamps(out):
    return {n: (p.stat().st_mtime_ns, p.read_bytes()) for n, p in
            frames.list_frames(out).items()}


def check_whole(out, count, before):
    final = frames.list_frames(out)
    assert list(final) == list(range(1, count + 1))
    assert all(frames.read_frame(p).shape == (96, 128, 3) for p in final.values())
    after = stamps(out)
    assert all(after[n] == value for n, value in before.items())     # none written twice


def dreamer_pids() -> set[int]:
    return {int(p) for p in subprocess.run(["pgrep", "-f", "ray::Dreamer"],
                                           capture_output=True, text=True).stdout.split()}


def test_a_killed_worker_loses_no_frame(tmp_path, tiny_model_dir):
    src = shots_clip(tmp_path / "in", per_shot=4)
    out = tmp_path / "out"
    command = [c if c != "0" else "2" for c in ray_command(src, out, tiny_model_dir)]  # -v 2
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_for_frames(out, 2, process)
        workers = dreamer_pids()
        assert workers, "no Ray worker process found"
        before = stamps(out)
        os.kill(min(workers), signal.SIGKILL)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    check_whole(out, 12, before)
    # the retry happened: segments were finished by a worker started after the kill
    finishers = {int(pid) for pid in re.findall(r"worker (\d+): frames", err)}
    assert finishers - workers, (finishers, workers)


def test_a_segment_whose_worker_always_dies_stops_the_run_in_one_line(tmp_path,
                                                                      tiny_model_dir):
    src = shots_clip(tmp_path / "in", per_shot=4)
    out = tmp_path / "out"
    command = ray_command(src, out, tiny_model_dir) + ["--retries", "1"]
    command[command.index("--workers") + 1] = "1"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    killed = set()
    try:
        deadline = time.monotonic() + 240
        while process.poll() is None and time.monotonic() < deadline:
            for pid in dreamer_pids() - killed:     # every worker, as soon as it starts
                time.sleep(1.0)                     # (once it has taken its segment)
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, err
    lines = err.strip().splitlines()
    assert re.match(r"error: frames \d+-\d+ failed 2 times", lines[-1]), err
    assert "run the same command again" in lines[-1] and "Traceback" not in err
    assert len(killed) >= 2                          # the first try and the one retry


def test_an_error_inside_a_worker_is_one_line(tmp_path, tiny_model_dir):
    src = shots_clip(tmp_path / "in", per_shot=4)
    (src / "00000006.png").write_bytes(b"")          # unreadable, in the second segment
    result = subprocess.run(ray_command(src, tmp_path / "out", tiny_model_dir),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "00000006.png" in result.stderr and "Traceback" not in result.stderr


def test_resume_after_the_driver_is_killed(tmp_path, tiny_model_dir):
    src = shots_clip(tmp_path / "in", per_shot=4)
    out = tmp_path / "out"
    process = subprocess.Popen(ray_command(src, out, tiny_model_dir),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_frames(out, 2, process)
    process.kill()
    process.wait()
    before = stamps(out)
    assert len(before) < 12
    result = subprocess.run(ray_command(src, out, tiny_model_dir), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    check_whole(out, 12, before)


def test_batched_segments_match_a_sequential_run_at_scene_cuts(tiny_net, tmp_path):
    src = shots_clip(tmp_path / "in")
    settings = runs.DreamSettings(**SETTINGS)
    scheduler.dream_frames(src, tmp_path / "seq", tiny_net, settings, progress=False)
    report = scheduler.dream_frames(src, tmp_path / "batch", tiny_net, settings,
                                   progress=False, batch_segments=3)
    assert report.dreamed == 9
    seq, batch = frames.list_frames(tmp_path / "seq"), frames.list_frames(tmp_path / "batch")
    assert list(seq) == list(batch)
    for n in seq:     # one batched pass instead of three: equal up to float rounding
        a, b = frames.read_frame(seq[n]).astype(int), frames.read_frame(batch[n]).astype(int)
        assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.05, n


def test_batched_segments_with_warm_up_cover_every_frame(tiny_net, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for n in range(1, 9):     # one shot: segments of 4 frames, the second warmed up
        frames.write_frame(src / frames.frame_name(n, "png"),
                           PHOTOS[0][60:156, 80 + 3 * n:208 + 3 * n])
    settings = runs.DreamSettings(**SETTINGS)
    report = scheduler.dream_frames(src, tmp_path / "out", tiny_net, settings, progress=False,
                                   batch_segments=2, warmup=2)
    assert report.dreamed == 8 and list(frames.list_frames(tmp_path / "out")) == list(
        range(1, 9))


@pytest.mark.parametrize("device,workers,gpus,expected", [
    ("cuda", 2, 1, (True, 1)),        # one GPU: one GPU worker, never one that waits for ever
    ("cuda:0", 4, 8, (True, 4)),      # --gpu 0 is a GPU device, not a CPU one
    ("auto", 2, 4, (True, 2)),        # a CPU-only head of a cluster with GPUs: GPUs
    ("auto", 3, 0, (False, 3)),       # no GPU anywhere: CPU workers
    ("cpu", 2, 4, (False, 2)),        # asked for the CPU: no GPU reserved
])
def test_workers_are_planned_on_the_clusters_gpus(device, workers, gpus, expected, caplog):
    assert cluster.plan_workers(device, workers, gpus) == expected
    assert ("one worker per GPU" in caplog.text) == (expected[0] and workers > gpus)


def test_gpus_asked_for_where_ray_has_none_is_one_line():
    from deepdream.errors import DeepDreamError
    with pytest.raises(DeepDreamError, match="Ray sees no GPU"):
        cluster.plan_workers("cuda", 2, 0)
