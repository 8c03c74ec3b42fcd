#!/usr/bin/env python3
"""Segment-parallel speed-up (issue 8): the same clip dreamed by 1 and by 2 Ray workers of
one CPU thread each, in one run, with a full-size GoogLeNet of random weights.

    python bench/ray_bench.py [--frames 16] [--size 320x200]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import skimage.data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from video_bench import write_random_model  # noqa: E402

from deepdream.run import cluster  # noqa: E402
from deepdream.run.settings import DreamSettings, RunOptions  # noqa: E402
from deepdream.io import frames
from deepdream.nets import registry as models  # noqa: E402

DEPLOY = ROOT / "models" / "bvlc_googlenet" / "deploy.prototxt"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", default="320x200")
    p.add_argument("--segment-length", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    photo = skimage.data.astronaut()
    settings = DreamSettings(layers=("inception_4c/output",), octaves=4,
                                      octave_scale=1.4, iterations=5, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = write_random_model(tmp / "model") / "bvlc_googlenet.caffemodel"
        src = tmp / "frames"
        src.mkdir()
        for n in range(1, args.frames + 1):
            frames.write_frame(src / frames.frame_name(n, "png"),
                               photo[50:50 + height, 20 + 4 * n:20 + 4 * n + width])
        times = {}
        for workers in (1, 2):
            start = time.perf_counter()
            cluster.dream_frames_ray(src, tmp / f"out{workers}",
                                     models.ResolvedModel(model, DEPLOY, None), settings,
                                     RunOptions(device="cpu", workers=workers,
                                                warmup=args.warmup,
                                                segment_length=args.segment_length,
                                                progress=False), threads=1)
            times[workers] = time.perf_counter() - start
    print(f"{args.frames} frames of {width}x{height}, segments of {args.segment_length} with "
          f"{args.warmup} warm-up frames, workers of 1 CPU thread (Ray start-up and net "
          "loading included)")
    print("| workers | seconds | s/frame | speed-up |")
    print("|---|---|---|---|")
    for workers, seconds in times.items():
        print(f"| {workers} | {seconds:.1f} | {seconds / args.frames:.2f} | "
              f"{times[1] / seconds:.2f}x |")


if __name__ == "__main__":
    main()
