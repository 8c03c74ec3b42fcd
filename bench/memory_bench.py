#!/usr/bin/env python3
"""Peak memory of one 4K frame (issue 6): a 3840x2160 frame dreamed with and without --tile,
each in a fresh process (peak resident set size as the kernel counts it).

    python bench/memory_bench.py [--size 3840x2160] [--tiles 512,1024]
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
from deepdream.engine import random_net
from deepdream.ascent import dream
net = random_net({deploy!r}, seed=0)
image = np.random.default_rng(0).uniform(0, 255, ({h}, {w}, 3)).astype(np.float32)
dream(net, image, "inception_4c/output", iter_n=1, octave_n=4, octave_scale=1.4, seed=0,
      tile={tile})
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss(tile, width, height) -> tuple[float, float]:
    """(peak RSS in GiB, seconds) of one child process dreaming one frame."""
    code = CHILD.format(root=str(ROOT), deploy=str(ROOT / "models" / "bvlc_googlenet" /
                                                   "deploy.prototxt"),
                        h=height, w=width, tile=tile)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True)
    seconds = time.perf_counter() - start
    return int(result.stdout.split()[-1]) / 2 ** 20, seconds    # ru_maxrss is in KiB


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="3840x2160")
    p.add_argument("--tiles", default="512")
    args = p.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    rows = []
    for tile in [int(t) for t in args.tiles.split(",")] + [None]:
        gib, seconds = peak_rss(tile, width, height)
        rows.append((tile, gib, seconds))
    print(f"one {width}x{height} frame, full-size GoogLeNet (random weights), "
          "inception_4c/output, 4 octaves x1.4, one step per octave")
    print("| tiles | peak RSS (GiB) | seconds |")
    print("|---|---|---|")
    for tile, gib, seconds in rows:
        print(f"| {tile or 'none'} | {gib:.2f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
