#!/usr/bin/env python3
"""Live mode's end-to-end benchmark (issue 25), every figure measured in one run.

The source: samples/sample.mp4 looped into a 12 s movie, played at its own rate (25 fps) as
``--live`` plays it, decoded and scaled by ffmpeg to each working size; the whole live path
runs -- the flow carry, the dream, the page (JPEG for a viewer) and the recording (H.264).
The dream: a full-size BVLC GoogLeNet (random weights: timing does not depend on them),
inception_4c/output, 2 octaves x 3 steps (live's defaults), jitter 32. The net dreams one
frame before the clock starts (a show starts warm); the figures count everything after.

For each size, precision and torch thread count ("auto": chosen as the run goes, as --live
does) it prints the dream alone (one frame, no flow, no I/O: for scale; with "auto", at the
fastest count), then of the live run the frames a second achieved, the frames dropped
(decoded and never dreamed: a newer frame came first), and the mean latency from a frame's
decoding to its display. OpenMP's waiting is passive, as the commands start it.

    python bench/live_bench.py [--sizes 320x180,640x360] [--precision fp32,bf16]
                               [--threads 1,2,auto] [--device cpu] [--seconds 12]
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deepdream.run.threads import usable_cores  # noqa: E402

import torch  # noqa: E402

from deepdream.io import video  # noqa: E402
from deepdream.dreamer.ascent import dream  # noqa: E402
from deepdream.nets.loading import random_net  # noqa: E402
from deepdream.run.live import Live, LiveOptions  # noqa: E402
from deepdream.run.settings import DreamSettings  # noqa: E402

DEPLOY = ROOT / "models" / "bvlc_googlenet" / "deploy.prototxt"
SAMPLE = ROOT / "samples" / "sample.mp4"
LAYER = "inception_4c/output"


def looped_sample(folder: Path, seconds: float) -> Path:
    """samples/sample.mp4 looped (stream copy) to at least ``seconds`` long, in ``folder``."""
    movie = folder / "source.mp4"
    loops = int(np.ceil(seconds / 3.0))          # the sample is 3 s
    subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                    "-stream_loop", str(loops - 1), "-i", str(SAMPLE), "-an", "-c", "copy",
                    "-t", f"{seconds:g}", str(movie)], check=True)
    return movie


def one_run(movie: Path, width: int, precision: str, threads: int | None, device: str,
            folder: Path) -> dict:
    """One live run over ``movie`` at ``width`` with ``threads`` of torch's (None: chosen as
    it runs); its report as a dict, with the dream alone at that count (None: the fastest
    of 1 to every core)."""
    net = random_net(DEPLOY, device=device, precision=precision)
    settings = DreamSettings(layers=(LAYER,), octaves=2, iterations=3, preview=width,
                             flow="dis")
    options = LiveOptions(str(movie), width, output=str(folder / f"live-{width}.mp4"),
                          serve=0, overwrite=True)
    with Live(options) as live:
        rng = np.random.default_rng(0)
        frame = rng.uniform(0, 255, (live.source.height, live.source.width, 3))
        alone = []
        for count in [threads] if threads else range(1, usable_cores() + 1):
            torch.set_num_threads(count)
            dream(net, frame, LAYER, iter_n=1, octave_n=2)   # the first call's set-up
            for _ in range(3):                               # the dream alone, for scale
                started = time.perf_counter()
                dream(net, frame, LAYER, **settings.ascent_options())
                alone.append(time.perf_counter() - started)
        report = live.dream(net, settings, threads)
    return {"size": f"{live.source.width}x{live.source.height}", "alone": min(alone),
            "fps": report.frames / report.seconds, "frames": report.frames,
            "dropped": report.dropped, "latency": report.latency}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="320x180,640x360")
    p.add_argument("--precision", default="fp32", help="e.g. fp32,bf16 (bf16 pays on CPUs "
                   "with AVX512-BF16 or AMX, and GPUs)")
    p.add_argument("--threads", default="auto",
                   help="torch threads to try, e.g. 1,2,auto (default auto: chosen as the run "
                        "goes, as --live does)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=12.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    threads = [None if t == "auto" else int(t) for t in args.threads.split(",")]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {args.device}; load average before: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"# full-size GoogLeNet (random weights), {LAYER}, 2 octaves x 3 steps, "
          f"{args.seconds:g} s of samples/sample.mp4 looped, at its own 25 fps")
    print("| size | precision | torch threads | dream alone (s/frame, best of 3) "
          "| frames a second end to end | frames | dropped | latency (mean) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        movie = looped_sample(folder, args.seconds)
        for size in args.sizes.split(","):
            width = int(size.split("x")[0])
            for precision in args.precision.split(","):
                for count in threads:
                    row = one_run(movie, width, precision, count, args.device, folder)
                    print(f"| {row['size']} | {precision} | {count or 'auto'} | "
                          f"{row['alone']:.3f} | "
                          f"{row['fps']:.1f} | {row['frames']} | {row['dropped']} | "
                          f"{row['latency']:.2f} s |", flush=True)
    print(f"# load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
