#!/usr/bin/env python3
"""Temporal coherence benchmark (issue 7): the original blend against --flow on moving clips
made from real photographs (scikit-image's samples): a pan, a zoom, a rotation, and a pan with
a hard cut between two photos. Prints warping error and dream strength (deepdream.metrics)
for each, and what the flow costs per frame against the dream at 540x360.

    python bench/flow_bench.py [--frames 30] [--size 192x120]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as nd
import skimage.data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deepdream.io import flow, frames, metrics
from deepdream.run import loop  # noqa: E402
from deepdream.run.settings import DreamSettings, RunOptions  # noqa: E402
from deepdream.dreamer.ascent import dream  # noqa: E402
from deepdream.nets.loading import random_net  # noqa: E402

DEPLOY = ROOT / "models" / "bvlc_googlenet" / "deploy.prototxt"


def clips(count: int, width: int, height: int) -> dict[str, list[np.ndarray]]:
    photo = skimage.data.astronaut().astype(np.float32)     # 512 x 512
    other = skimage.data.coffee().astype(np.float32)        # 400 x 600
    big = nd.zoom(photo, (1.6, 1.6, 1), order=1)            # room to pan and rotate

    def window(image, x, y):
        return image[y:y + height, x:x + width]

    def zoomed(i):
        factor = 1 + 0.02 * i
        part = nd.zoom(photo, (factor, factor, 1), order=1)
        y, x = (part.shape[0] - height) // 2, (part.shape[1] - width) // 2
        return part[y:y + height, x:x + width]

    def rotated(i):
        part = nd.rotate(big, 1.0 * i, reshape=False, order=1)
        y, x = (part.shape[0] - height) // 2, (part.shape[1] - width) // 2
        return part[y:y + height, x:x + width]

    half = count // 2
    return {
        "pan": [window(big, 150 + 4 * i, 250) for i in range(count)],
        "zoom": [zoomed(i) for i in range(count)],
        "rotate": [rotated(i) for i in range(count)],
        "pan + cut": [window(big, 150 + 4 * i, 250) for i in range(half)] +
                     [window(other, 100 + 4 * i, 100) for i in range(count - half)],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--size", default="192x120")
    p.add_argument("--blends", default="1.0", help="--flow-blend values to try")
    p.add_argument("--decay", type=float, default=0.05, help="--flow-decay")
    p.add_argument("--smooth", default="0.2", help="--flow-smooth values to try")
    p.add_argument("--clips", default="pan,zoom,rotate,pan + cut", help="clips to run")
    args = p.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    net = random_net(DEPLOY, seed=0)
    base = dict(layers=("inception_4c/output",), octaves=3, octave_scale=1.4, iterations=5,
                jitter=32, seed=0)
    methods = {"blend 0.5 (original)": dict(blend=0.5)}
    for value in args.blends.split(","):
        for smooth in args.smooth.split(","):
            methods[f"flow dis, blend {value}, smooth {smooth}"] = dict(
                flow="dis", flow_blend=float(value), flow_decay=args.decay,
                flow_smooth=float(smooth))
    print(f"clips of {args.frames} frames at {width}x{height}; random-weight GoogLeNet, "
          "inception_4c/output, 3 octaves, 5 iterations, jitter 32")
    print("| clip | method | warping error | strength | vs original blend |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip_name, images in clips(args.frames, width, height).items():
            if clip_name not in args.clips.split(","):
                continue
            src = Path(tmp) / clip_name.replace(" ", "").replace("+", "_")
            src.mkdir()
            for n, image in enumerate(images, 1):
                frames.write_frame(src / frames.frame_name(n, "png"), image)
            reference = None
            for label, options in methods.items():
                out = Path(tmp) / f"{src.name}-{len(label)}-{hash(label) & 0xffff}"
                loop.dream_frames(src, out, net,
                                      DreamSettings(**base, **options),
                                      options=RunOptions(progress=False))
                result = metrics.measure(src, out)
                reference = reference or result.warping_error
                change = 100 * (result.warping_error / reference - 1)
                print(f"| {clip_name} | {label} | {result.warping_error:.2f} | "
                      f"{result.strength:.2f} | {change:+.0f}% |", flush=True)

    # what the flow costs at 540x360, against one dream at the seed's defaults
    frame = clips(2, 540, 360)["pan"]
    start = time.perf_counter()
    for _ in range(3):
        flow.flow_and_mask(frame[0], frame[1], "dis")
    dis = (time.perf_counter() - start) / 3
    start = time.perf_counter()
    flow.flow_and_mask(frame[0], frame[1], "farneback")
    farneback = time.perf_counter() - start
    start = time.perf_counter()
    dream(net, frame[1], "inception_4c/output", iter_n=10, octave_n=4, seed=0)
    one = time.perf_counter() - start
    print(f"\nat 540x360: flow and mask {dis:.3f} s (dis), {farneback:.3f} s (farneback); "
          f"one dream {one:.2f} s; dis costs {100 * dis / one:.1f}% of the dream time")


if __name__ == "__main__":
    main()
