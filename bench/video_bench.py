#!/usr/bin/env python3
"""End-to-end speed of stage 2 (issue 16): ``2_dreaming_time.py`` on a short clip of generated
frames -- decoding, dreaming, blending, writing -- in frames a second, beside
``deepdream.dream`` alone on the same frames in one process, so that what the work around the
dream costs shows. Both use stage 2's defaults (the seed's: 5 iterations, 4 octaves x1.5, the
customloop layers, blend 0.5) and a full-size GoogLeNet with random weights written as a
caffemodel (timing does not depend on the weights).

    python bench/video_bench.py [--device cuda] [--size 1920x1080] [--frames 24]
                                [--precision fp32]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deepdream.nets.caffe import format as caffe_format, layers as caffe_layers
from deepdream.io import frames
from deepdream.run import schedules  # noqa: E402
from deepdream.dreamer.ascent import dream  # noqa: E402
from deepdream.nets.loading import load_net, random_net  # noqa: E402
from deepdream.run.settings import DreamSettings  # noqa: E402

DEPLOY = ROOT / "models" / "bvlc_googlenet" / "deploy.prototxt"


def write_random_model(folder: Path, deploy: Path = DEPLOY) -> Path:
    """``deploy`` and a caffemodel of random weights for it, as the original's model folder
    (deploy.prototxt, bvlc_googlenet.caffemodel). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    net = random_net(deploy, seed=0)
    weights = {layer.name: [t for t in (getattr(layer, "weight", None),
                                        getattr(layer, "bias", None)) if t is not None]
               for layer, _, _ in net._specs
               if isinstance(layer, (caffe_layers.Convolution, caffe_layers.InnerProduct))}
    model = caffe_format.read_prototxt(deploy)
    for layer in model.layer:
        for tensor in weights.get(layer.name, []):
            array = tensor.float().cpu().contiguous().numpy()
            blob = layer.blobs.add()
            blob.shape.dim.extend(array.shape)
            blob.data.extend(array.ravel())
    shutil.copy(deploy, folder / "deploy.prototxt")
    (folder / "bvlc_googlenet.caffemodel").write_bytes(model.SerializeToString())
    return folder


def write_clip(folder: Path, count: int, width: int, height: int) -> Path:
    """``count`` frames of a smooth pattern panning right, as 00000001.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for n in range(1, count + 1):
        u = x + 8 * n
        image = np.stack([127 + 120 * np.sin(u / 37.0 + y / 53.0),
                          127 + 120 * np.sin(u / 23.0 - y / 41.0),
                          127 + 120 * np.cos((u + y) / 61.0)], axis=2)
        frames.write_frame(folder / frames.frame_name(n, "png"), image)
    return folder


def stage2(frames_dir: Path, out: Path, model: Path, device: str, precision: str,
           last: int | None = None) -> float:
    """Seconds of one run of 2_dreaming_time.py (process start and model loading included)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(frames_dir), "-o",
               str(out), "-t", str(model), "--device", device, "--precision", precision,
               "-v", "0"] + (["-ef", str(last)] if last else [])
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="540x360", help="WIDTHxHEIGHT")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--precision", default="fp32", help="comma-separated")
    args = p.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="video_bench_"))
    try:
        model = write_random_model(work / "model")
        clip = write_clip(work / "frames", args.frames, width, height)
        settings = DreamSettings()
        print(f"stage 2 on {args.frames} frames of {width}x{height} on {args.device}, the "
              f"seed's defaults ({settings.iterations} iterations, {settings.octaves} octaves "
              f"x{settings.octave_scale}, customloop layers)")
        print("| precision | stage 2, whole run (s) | stage 2, s/frame after the first | "
              "frames/s | dream alone, s/frame | dream alone, frames/s | "
              "share of stage 2 not dreaming |")
        print("|---|---|---|---|---|---|---|")
        for precision in args.precision.split(","):
            whole = stage2(clip, work / "out", model, args.device, precision)
            made = frames.list_frames(work / "out")
            assert list(made) == list(range(1, args.frames + 1)), "stage 2 lost frames"
            first = stage2(clip, work / "out1", model, args.device, precision, last=1)
            per_frame = (whole - first) / (args.frames - 1)
            net = load_net(model / "bvlc_googlenet.caffemodel", model / "deploy.prototxt",
                           device=args.device, precision=precision)
            images = [frames.read_frame(path) for path in frames.list_frames(clip).values()]
            kw = settings.ascent_options()
            for passes in range(2):      # the first pass warms up (cuDNN's choices per size)
                start = time.perf_counter()
                for n, image in enumerate(images, 1):
                    result = dream(net, image, schedules.layer_for_frame(n, settings.layers),
                                   seed=n, **kw)
                alone = (time.perf_counter() - start) / len(images)
            assert result.shape == images[-1].shape
            print(f"| {precision} | {whole:.1f} | {per_frame:.3f} | {1 / per_frame:.2f} | "
                  f"{alone:.3f} | {1 / alone:.2f} | "
                  f"{100 * max(0.0, per_frame - alone) / per_frame:.0f}% |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
