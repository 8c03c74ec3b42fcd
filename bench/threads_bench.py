#!/usr/bin/env python3
"""Torch's threads on a machine that is doing other things (issue 28), every figure measured in
one run: stage 2's seconds a frame with torch's own default, each pinned count and the count
chosen as the run goes, on a quiet machine and with another process spinning on one core
(started and killed by this bench), in interleaved rounds; then live end to end against the
dream alone (bench/live_bench.py's run), quiet and busy.

Stage 2: the first FRAMES frames of samples/sample.mp4 at 320x180, a full-size BVLC GoogLeNet
(random weights: timing does not depend on them), inception_4c/output (or --layers, e.g.
customloop: stage 2's sweep, a layer a frame), 2 octaves x 3 steps (the issue's measure),
through ``loop.dream_frames`` as ``2_dreaming_time.py`` runs it (frames read and written).
Each measure is a process of its own: each pinned count and the chooser with OpenMP's own
waiting (as the commands start) and with OMP_WAIT_POLICY=PASSIVE; "torch's default": no
thread count set, as stage 2 dreamed before. The net dreams one frame before the clock.

    python bench/threads_bench.py [--frames 24] [--rounds 2] [--layers customloop]
                                  [--live-seconds 12] [--skip-live]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEPLOY = ROOT / "models" / "bvlc_googlenet" / "deploy.prototxt"
SAMPLE = ROOT / "samples" / "sample.mp4"
LAYER = "inception_4c/output"
WIDTH = 320


def machine() -> str:
    """The CPU's name, its cores and torch's version, in words."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


class Spinner:
    """Another process spinning on one core while entered (this bench's own child, killed
    by its id on leaving)."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def extract(folder: Path, count: int) -> Path:
    """The first ``count`` frames of the sample, 320 wide, into ``folder``/frames."""
    from deepdream.io import video
    frames_dir = folder / "frames"
    frames_dir.mkdir()
    subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                    "-i", str(SAMPLE), "-frames:v", str(count), "-vf", f"scale={WIDTH}:-2",
                    str(frames_dir / "%08d.png")], check=True)
    return frames_dir


# --- the measures, each in a process of its own (OpenMP reads its settings when torch loads)

def stage_2(frames_dir: str, threads: str, layers: str) -> dict:
    """Stage 2 over ``frames_dir`` with ``threads``: "default" (torch's own count, never
    changed), a count (--threads) or "auto", on ``layers`` (comma-separated, or customloop);
    seconds a frame and each frame's count."""
    import torch

    from deepdream.dreamer.ascent import dream
    from deepdream.io import frames
    from deepdream.nets.loading import random_net
    from deepdream.run import loop
    from deepdream.run.settings import DreamSettings, RunOptions
    from deepdream.run.schedules import CUSTOM_LOOP
    from deepdream.run.threads import TorchThreads

    net = random_net(DEPLOY, device="cpu")
    settings = DreamSettings(layers=CUSTOM_LOOP if layers == "customloop" else
                             tuple(layers.split(",")), octaves=2, iterations=3, preview=WIDTH)
    counts: list[int] = []

    class Counts:            # the progress display: the count each frame was dreamed with
        def step(self, count: int = 1) -> None:
            counts.append(torch.get_num_threads())

        def close(self) -> None:
            pass

    pinned = torch.get_num_threads() if threads == "default" else \
        None if threads == "auto" else int(threads)
    first = pinned or TorchThreads("cpu").chooser.threads
    torch.set_num_threads(first)
    image = frames.read_frame(next(iter(frames.list_frames(frames_dir).values())), WIDTH)
    dream(net, image, settings.layers[0], **settings.ascent_options())   # before the clock
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        loop.dream_frames(frames_dir, out, net, settings, options=RunOptions(
            threads=pinned, progress=lambda total, description, unit: Counts()))
        seconds = time.perf_counter() - started
    return {"seconds": seconds / len(counts), "counts": counts}


def live(seconds: float) -> dict:
    """bench/live_bench.py's run at 320x180 with the threads chosen as it runs."""
    sys.path.insert(0, str(ROOT / "bench"))
    import live_bench
    with tempfile.TemporaryDirectory() as tmp:
        movie = live_bench.looped_sample(Path(tmp), seconds)
        return live_bench.one_run(movie, WIDTH, "fp32", None, "cpu", Path(tmp))


def measure(kind: str, *args: str, passive: bool = True) -> dict:
    """Run one measure in a process of its own; its result."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    result = subprocess.run([sys.executable, __file__, "--measure", kind, *args], env=env,
                            capture_output=True, text=True, timeout=1800)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--layers", default=LAYER, help=f"default {LAYER}; customloop: the sweep")
    p.add_argument("--live-seconds", type=float, default=12.0)
    p.add_argument("--skip-live", action="store_true")
    p.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        kind, *rest = args.measure
        result = stage_2(*rest) if kind == "stage2" else live(float(rest[0]))
        print(json.dumps(result))
        return
    from deepdream.run.threads import candidates, usable_cores
    counts = sorted(set(candidates(usable_cores())) | {1})
    # each count, and the chooser, with OpenMP's waiting spinning (its default: what the
    # commands start with) and passive (OMP_WAIT_POLICY=PASSIVE, a user's choice)
    setups = [("torch's default", "default", False)] + \
        [(f"{n} pinned{wait}", str(n), passive) for passive, wait in ((False, ""),
                                                                        (True, ", passive"))
         for n in counts] + \
        [("chosen as it runs", "auto", False), ("chosen, passive", "auto", True)]
    print(f"# {machine()}; load average before: {load()}")
    print(f"# stage 2: {args.frames} frames of samples/sample.mp4 at {WIDTH} wide, full-size "
          f"GoogLeNet (random weights), {args.layers}, 2 octaves x 3 steps; {args.rounds} rounds, "
          "quiet and busy interleaved")
    seconds: dict[tuple[str, str], list[float]] = {}
    used: dict[tuple[str, str], list[list[int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        frames_dir = str(extract(Path(tmp), args.frames))
        for round_ in range(args.rounds):
            for condition in ("quiet", "busy"):
                for name, threads, passive in setups:
                    with Spinner() if condition == "busy" else contextlib.nullcontext():
                        result = measure("stage2", frames_dir, threads, args.layers,
                                         passive=passive)
                    seconds.setdefault((condition, name), []).append(result["seconds"])
                    used.setdefault((condition, name), []).append(result["counts"])
                    print(f"# round {round_ + 1}, {condition}, {name}: "
                          f"{result['seconds']:.3f} s a frame, counts "
                          f"{''.join(map(str, result['counts']))}; load {load()}", flush=True)
    print()
    print("| machine | threads | s/frame (each round) | mean | vs 1 pinned | vs the best pinned "
          "| counts used (chosen) |")
    print("|---|---|---|---|---|---|---|")
    for condition in ("quiet", "busy"):
        mean = {name: sum(seconds[(condition, name)]) / args.rounds for name, _, _ in setups}
        best = min(mean[name] for name, threads, _ in setups if threads.isdigit())
        for name, threads, _ in setups:
            rounds = ", ".join(f"{s:.3f}" for s in seconds[(condition, name)])
            chosen = ""
            if threads == "auto":
                tally = [sum(c.count(n) for c in used[(condition, name)]) for n in counts]
                chosen = ", ".join(f"{n}: {t} frames" for n, t in zip(counts, tally))
            print(f"| {condition} | {name} | {rounds} | {mean[name]:.3f} | "
                  f"{mean['1 pinned'] / mean[name]:.2f}x | {best / mean[name]:.2f}x | "
                  f"{chosen} |")
    if not args.skip_live:
        print()
        print("| machine | live frames a second end to end | dream alone (fastest count, "
              "best of 3) | its rate | live / alone | dropped | latency |")
        print("|---|---|---|---|---|---|---|")
        for condition in ("quiet", "busy"):
            with Spinner() if condition == "busy" else contextlib.nullcontext():
                row = measure("live", str(args.live_seconds))
            print(f"| {condition} | {row['fps']:.2f} | {row['alone']:.3f} s | "
                  f"{1 / row['alone']:.2f} | {row['fps'] * row['alone']:.0%} | "
                  f"{row['dropped']} | {row['latency']:.2f} s |", flush=True)
    print(f"# load average after: {load()}")


if __name__ == "__main__":
    main()
