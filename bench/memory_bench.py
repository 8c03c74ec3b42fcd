#!/usr/bin/env python3
"""Peak memory of one 4K frame (issue 6): a 3840x2160 frame dreamed with and without --tile,
each in a fresh process (on the CPU the peak resident set size as the kernel counts it; on a
GPU the peak of memory allocated on the device, as torch counts it).

    python bench/memory_bench.py [--size 3840x2160[,1920x1080]] [--tiles 512,1024]
                                 [--device cuda]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from deepdream.nets.loading import random_net
from deepdream.dreamer.ascent import dream
net = random_net({deploy!r}, seed=0, device={device!r})
image = np.random.default_rng(0).uniform(0, 255, ({h}, {w}, 3)).astype(np.float32)
dream(net, image, "inception_4c/output", iter_n=1, octave_n=4, octave_scale=1.4, seed=0,
      tile={tile})
if {device!r}.startswith("cuda"):
    import torch
    print(torch.cuda.max_memory_allocated() // 1024)
else:
    import resource
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(tile, width, height, device="cpu") -> tuple[float, float]:
    """(peak memory in GiB, seconds) of one child process dreaming one frame."""
    code = CHILD.format(root=str(ROOT), deploy=str(ROOT / "models" / "bvlc_googlenet" /
                                                   "deploy.prototxt"),
                        h=height, w=width, tile=tile, device=device)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True)
    seconds = time.perf_counter() - start
    return int(result.stdout.split()[-1]) / 2 ** 20, seconds    # both in KiB


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="3840x2160", help="WIDTHxHEIGHT, comma-separated")
    p.add_argument("--tiles", default="512")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    what = "peak GPU memory allocated" if args.device.startswith("cuda") else "peak RSS"
    print(f"one frame, full-size GoogLeNet (random weights), inception_4c/output, 4 octaves "
          f"x1.4, one step per octave, on {args.device}")
    print(f"| size | tiles | {what} (GiB) | seconds |")
    print("|---|---|---|---|")
    for size in args.size.split(","):
        width, height = map(int, size.split("x"))
        for tile in [int(t) for t in args.tiles.split(",")] + [None]:
            gib, seconds = peak_memory(tile, width, height, args.device)
            print(f"| {width}x{height} | {tile or 'none'} | {gib:.2f} | {seconds:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
