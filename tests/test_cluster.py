"""Segment-parallel dreaming on a local Ray runtime started by the tests (two workers, one
CPU thread each): equal to a sequential run at scene cuts, lost workers and drivers."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import skimage.data

from deepdream.run import cluster, loop
from deepdream.run.settings import DreamSettings
from deepdream.run.settings import RunOptions
from deepdream.io import frames
from deepdream import load_net
from deepdream.nets import registry as models

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
    assert loop.segments(numbers, cuts, length) == expected


QUIET = RunOptions(progress=False)
SETTINGS = dict(layers=("inception_3b/output",), octaves=2, iterations=2, seed=5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_segments_at_scene_cuts_equal_a_sequential_run(precision, tmp_path):
    net = load_net(FIXTURES / "tiny_googlenet.caffemodel", FIXTURES / "tiny_googlenet.prototxt",
                   precision=precision)
    src = shots_clip(tmp_path / "in")
    settings = DreamSettings(**SETTINGS)
    loop.dream_frames(src, tmp_path / "seq", net, settings, options=QUIET)
    report = cluster.dream_frames_ray(
        src, tmp_path / "par", models.ResolvedModel(
            FIXTURES / "tiny_googlenet.caffemodel", FIXTURES / "tiny_googlenet.prototxt", None),
        settings, RunOptions(device="cpu", workers=2, segment_length=100, progress=False,
                             precision=precision))
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


def wait_for_frames(out, count, process, workers=0, timeout=180):
    """Wait until COUNT frames are in OUT and WORKERS workers have reported themselves (a
    worker that loads its net late, on a busy machine, may find the first frames done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and len(frames.list_frames(out)) >= count \
                and len(worker_pids(out)) >= workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} frames or {workers} workers appeared in {out}")


def stamps(out):
    return {n: (p.stat().st_mtime_ns, p.read_bytes()) for n, p in
            frames.list_frames(out).items()}


def check_whole(out, count, before):
    final = frames.list_frames(out)
    assert list(final) == list(range(1, count + 1))
    assert all(frames.read_frame(p).shape == (96, 128, 3) for p in final.values())
    after = stamps(out)
    assert all(after[n] == value for n, value in before.items())     # none written twice


def worker_pids(out) -> set[int]:
    """The processes of the run's own workers, as each reports itself while it runs: a file
    <host>-<pid> in the output folder's .ray-workers/ (on this machine, a local Ray's)."""
    host = socket.gethostname()
    folder = out / cluster.WORKERS_DIR
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return {int(name.rsplit("-", 1)[1]) for name in names if name.startswith(f"{host}-")}


def test_a_killed_worker_loses_no_frame(tmp_path, tiny_model_dir):
    src = shots_clip(tmp_path / "in", per_shot=4)
    out = tmp_path / "out"
    command = [c if c != "0" else "2" for c in ray_command(src, out, tiny_model_dir)]  # -v 2
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_for_frames(out, 2, process, workers=2)
        workers = worker_pids(out)
        assert len(workers) == 2, workers
        # each computes with the CPU Ray gave it (a local Ray of 2 CPUs here, 2 workers)
        cores = len(os.sched_getaffinity(0))
        cards = [json.loads(card.read_text()) for card in (out / cluster.WORKERS_DIR).iterdir()
                 if card.name != cluster.CARDS_MARK]
        assert {(card["threads"], card["device"], card["OMP_WAIT_POLICY"]) for card in cards} \
            == {(max(1, cores // 2), "cpu", None)}          # OpenMP's own, none set
        before = stamps(out)
        os.kill(min(workers), signal.SIGKILL)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    check_whole(out, 12, before)
    assert not (out / cluster.WORKERS_DIR).exists()          # the reports go with the run
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
            for pid in worker_pids(out) - killed:     # every worker, as soon as it starts
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


def test_a_worker_that_cannot_be_placed_stops_the_run_in_one_line(tmp_path, tiny_model_dir):
    # a Ray cluster (the test's own) of one node of one CPU, which another job holds: the
    # run's worker fits the node but cannot be placed, and the run says so within its wait
    import ray
    context = ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
                       object_store_memory=100 * 1024 * 1024)
    try:
        @ray.remote(num_cpus=1)
        class Holder:
            def ready(self):
                return True

        holder = Holder.remote()
        assert ray.get(holder.ready.remote())
        src = shots_clip(tmp_path / "in")
        out = tmp_path / "out"
        command = ray_command(src, out, tiny_model_dir)
        command.insert(command.index("--ray") + 1, context.address_info["gcs_address"])
        command[command.index("--workers") + 1] = "1"
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                                env=dict(os.environ, DEEPDREAM_RAY_WAIT="5"))
        seconds = time.monotonic() - started
    finally:
        ray.shutdown()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.fullmatch(r"error: no Ray worker started within 5 s: each asks for 1 CPU\(s\), "
                        r"and Ray has 0 of 1 CPUs free .*DEEPDREAM_RAY_WAIT.*", lines[0]), lines
    assert seconds < 90, seconds
    assert not out.exists()             # the folder the run made, and nothing in it, gone


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
    settings = DreamSettings(**SETTINGS)
    loop.dream_frames(src, tmp_path / "seq", tiny_net, settings, options=QUIET)
    report = loop.dream_frames(src, tmp_path / "batch", tiny_net, settings,
                                    options=RunOptions(progress=False, batch_segments=3))
    assert report.dreamed == 9
    seq, batch = frames.list_frames(tmp_path / "seq"), frames.list_frames(tmp_path / "batch")
    assert list(seq) == list(batch)
    for n in seq:     # one batched pass instead of three: equal up to float rounding
        a, b = frames.read_frame(seq[n]).astype(int), frames.read_frame(batch[n]).astype(int)
        assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.05, n


def one_shot(folder, count=8):
    """A slow pan of ``count`` frames, no cut."""
    folder.mkdir()
    for n in range(1, count + 1):
        frames.write_frame(folder / frames.frame_name(n, "png"),
                           PHOTOS[0][60:156, 80 + 3 * n:208 + 3 * n])
    return folder


def mean_difference(a, b) -> float:
    return float(np.abs(frames.read_frame(a).astype(int) - frames.read_frame(b).astype(int))
                 .mean())


def test_a_warmed_up_segment_starts_close_to_a_sequential_run(tiny_net, tmp_path):
    # one shot of 8 frames in two segments of 4: the second starts --warmup frames early
    # (dreamed, not written), so its first frame, 5, is close to the sequential run's frame
    # 5, closer the longer the warm-up, and equal when the warm-up reaches back to where the
    # sequential run started afresh (its first frame, as at a scene cut)
    src = one_shot(tmp_path / "in")
    settings = DreamSettings(**SETTINGS)
    loop.dream_frames(src, tmp_path / "seq", tiny_net, settings, options=QUIET)
    seq = frames.list_frames(tmp_path / "seq")
    gaps = {}
    for warmup in (0, 2, 4):
        out = tmp_path / f"warm{warmup}"
        report = loop.dream_frames(src, out, tiny_net, settings, options=RunOptions(
            progress=False, batch_segments=2, warmup=warmup))
        batched = frames.list_frames(out)
        assert report.dreamed == 8 and list(batched) == list(range(1, 9))
        gaps[warmup] = mean_difference(batched[5], seq[5])
        a, b = (frames.read_frame(p).astype(int) for p in (batched[5], seq[5]))
        if warmup == 4:      # equal up to the float rounding of a batch
            assert np.abs(a - b).max() <= 2 and gaps[4] < 0.05, gaps
    assert gaps[2] < 0.7 * gaps[0] and gaps[0] > 3, gaps     # 4.9 against 9.3 here
    # Ray's workers start their segments the same way (one frame at a time: the first
    # segment is the sequential run's, byte for byte)
    cluster.dream_frames_ray(src, tmp_path / "ray", models.ResolvedModel(
        FIXTURES / "tiny_googlenet.caffemodel", FIXTURES / "tiny_googlenet.prototxt", None),
        settings, RunOptions(device="cpu", workers=2, segment_length=4, warmup=2,
                             progress=False))
    ray = frames.list_frames(tmp_path / "ray")
    assert list(ray) == list(range(1, 9))
    assert all(ray[n].read_bytes() == seq[n].read_bytes() for n in range(1, 5))
    assert mean_difference(ray[5], seq[5]) < 0.7 * gaps[0]


HEAD64 = {"CPU": 64.0, "memory": 1e11}          # a CPU-only head of 64 cores
GPU8 = {"CPU": 8.0, "GPU": 1.0}                  # a GPU node of 8 cores
CASES = {   # device, workers, nodes, threads: (gpu, workers, CPUs each)
    "gpu-nodes": ("cuda", 4, [HEAD64, GPU8, GPU8], None, (True, 2, 8)),
    "one-gpu": ("cuda", 2, [{"CPU": 2.0, "GPU": 1.0}], None, (True, 1, 2)),
    "gpu-index": ("cuda:0", 4, [{"CPU": 64.0, "GPU": 8.0}], None, (True, 4, 16)),
    "auto-head": ("auto", 2, [HEAD64, GPU8, GPU8], None, (True, 2, 8)),
    "gpu-node-no-cpu": ("cuda", 1, [{"GPU": 1.0}], None, (True, 1, 0)),
    "auto-no-gpu": ("auto", 3, [{"CPU": 12.0}], None, (False, 3, 4)),
    "cpu-on-gpus": ("cpu", 2, [{"CPU": 4.0, "GPU": 4.0}], None, (False, 2, 2)),
    "cpu-mixed": ("cpu", 10, [HEAD64, GPU8, GPU8], None, (False, 10, 8)),
    "cpu-few": ("cpu", 3, [HEAD64, GPU8, GPU8], None, (False, 3, 21)),
    "cpu-two-cores": ("cpu", 2, [{"CPU": 2.0}], None, (False, 2, 1)),
    "cpu-too-many": ("cpu", 5, [{"CPU": 2.0}, {"CPU": 1.0}], None, (False, 3, 1)),
    "threads": ("cpu", 4, [HEAD64, GPU8], 16, (False, 4, 16)),
    "threads-fewer": ("cpu", 8, [HEAD64, GPU8], 16, (False, 4, 16)),
    "gpu-threads": ("cuda", 2, [HEAD64, GPU8, {"CPU": 2.0, "GPU": 1.0}], 4, (True, 1, 4)),
}


@pytest.mark.parametrize("device,workers,nodes,threads,expected", CASES.values(),
                         ids=CASES.keys())
def test_workers_are_sized_from_the_clusters_nodes(device, workers, nodes, threads, expected,
                                                    caplog):
    plan = cluster.plan_workers(device, workers, nodes, threads)
    assert plan == expected
    # every worker fits on some node at once (each node holds its share)
    room = [[int(n.get("CPU", 0)), int(n.get("GPU", 0))] for n in nodes]
    for _ in range(plan.workers):
        node = next(r for r in room if r[0] >= plan.cpus and r[1] >= plan.gpu)
        node[0] -= plan.cpus
        node[1] -= plan.gpu
    assert ("workers asked for" in caplog.text) == (plan.workers < workers)


@pytest.mark.parametrize("device,nodes,threads,message", [
    ("cuda", [HEAD64], None, "Ray sees no GPU"),
    ("cpu", [HEAD64, GPU8], 65, "no Ray node has 65 CPU"),
    ("cuda", [HEAD64, GPU8], 9, "no Ray node has 9 CPU.* and a GPU"),
    ("cpu", [], None, "no Ray node has 1 CPU"),
], ids=["no-gpu", "threads", "gpu-threads", "no-node"])
def test_workers_that_no_node_can_hold_are_one_line(device, nodes, threads, message):
    from deepdream.errors import DeepDreamError
    with pytest.raises(DeepDreamError, match=message):
        cluster.plan_workers(device, 2, nodes, threads)


def test_only_the_runs_own_worker_cards_are_removed(tmp_path):
    """The workers' folder (.ray-workers) is removed, once empty, only where a run of ours
    made it (its mark); in a folder of that name that was there before -- the user's, empty
    or holding files named like cards, or given our cards by a run -- only our cards go."""
    from deepdream.io import ours
    users = tmp_path / "a" / cluster.WORKERS_DIR
    users.mkdir(parents=True)
    cluster._clear_cards(users)
    cluster._make_cards_folder(users)                    # there before: not marked
    ours.write_json(users / "host-1", "ray-worker", {"threads": 1})
    (users / "host-2").write_text('{"threads": 1}')      # named like a card, not marked
    cluster._clear_cards(users)
    assert sorted(p.name for p in users.iterdir()) == ["host-2"]
    assert (users / "host-2").read_text() == '{"threads": 1}'

    made = tmp_path / "b" / cluster.WORKERS_DIR
    made.parent.mkdir()
    cluster._make_cards_folder(made)
    ours.write_json(made / "host-1", "ray-worker", {"threads": 1})
    cluster._clear_cards(made)
    assert not made.exists() and made.parent.is_dir()


def test_a_worker_that_cannot_load_its_net_is_one_line_of_ours(tmp_path):
    """A net that loads where the run starts but raises in a Ray worker (a file only the
    head node has): one line saying a worker could not start, and the net's own words,
    not Ray's; no traceback, no output folder left."""
    src = shots_clip(tmp_path / "in")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(src), "-o", str(out),
         "--model", f"{ROOT / 'tests' / 'own_nets.py'}:head_node_only", "-l", "features.4",
         "-oct", "1", "-itr", "1", "--ray", "--workers", "1", "-v", "0"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: a Ray worker could not start: head_node_only() failed: RuntimeError: "
        "calibration.bin: no such file on this node"], result.stderr
    assert not out.exists()
