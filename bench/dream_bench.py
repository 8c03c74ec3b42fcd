#!/usr/bin/env python3
"""The speed benchmark of one dreamed frame (issue 6), every figure measured in one run.

The work unit: one 540x360 RGB frame, a full-size BVLC GoogLeNet (random weights: timing does
not depend on them), inception_4c/output, 10 iterations, 4 octaves of scale 1.4, jitter 32.

It times (1) ``deepdream.dream``, in fp32 and in each 16-bit ``--precision``, (2) a plain
PyTorch deepdream as a user would write it today (an nn.Module with F.local_response_norm,
ceil-mode max_pool2d, autograd, and the numpy loop of the original notebook), and (3) this
machine's matrix-product peak in each precision; it prints seconds per frame, the ratio to
plain PyTorch and GFLOP/s as a share of the peak. For each 16-bit precision it then prints
how closely its input gradients follow fp32's, step by step along a dream, at the seed's layers.

    python bench/dream_bench.py [--device cuda] [--size 540x360] [--repeats 3]
                                [--precision bf16,fp16] [--batch 4,8] [--floor 128x85]

With ``--ops`` it counts instead, through PyTorch's dispatcher (the same on any device), the
operations of one gradient step and the values read back to the host in an octave.
"""
from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as nd
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deepdream.nets import autograd  # noqa: E402
from deepdream.nets.caffe import layers as caffe_layers  # noqa: E402
from deepdream.dreamer.ascent import dream, dream_batch, guide_features  # noqa: E402
from deepdream.nets.base import PRECISIONS  # noqa: E402
from deepdream.nets.loading import load_net, random_net  # noqa: E402

DEPLOY = ROOT / "models" / "bvlc_googlenet" / "deploy.prototxt"


class PlainNet(nn.Module):
    """The straightforward PyTorch port: one nn layer per Caffe layer, run in order up to
    ``end``; parameters are ordinary (gradient-tracking) nn.Parameters."""

    def __init__(self, net):
        super().__init__()
        self.steps, self.input_name = [], net.input_name
        self.mods = nn.ModuleList()
        for layer, bottoms, tops in net._specs:
            if isinstance(layer, caffe_layers.Convolution):
                conv = nn.Conv2d(layer.weight.shape[1] * layer.group, layer.weight.shape[0],
                                 layer.kernel, layer.stride, layer.pad, layer.dilation,
                                 layer.group)
                conv.weight.data.copy_(layer.weight)
                conv.bias.data.copy_(layer.bias)
                fn = conv
            elif isinstance(layer, caffe_layers.InnerProduct):
                fc = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
                fc.weight.data.copy_(layer.weight)
                fc.bias.data.copy_(layer.bias)
                fn = lambda x, fc=fc: fc(x.flatten(1))  # noqa: E731
                self.mods.append(fc)
            elif isinstance(layer, caffe_layers.ReLU):
                fn = F.relu
            elif isinstance(layer, caffe_layers.Pooling):
                kernel, stride, pad = layer.kernel, layer.stride, layer.pad
                fn = (lambda x, k=kernel, s=stride, p=pad: F.max_pool2d(x, k, s, p,
                                                                       ceil_mode=True)) \
                    if layer.max else \
                    (lambda x, k=kernel, s=stride, p=pad: F.avg_pool2d(x, k, s, p,
                                                                      ceil_mode=True))
            elif isinstance(layer, caffe_layers.LRN):
                fn = (lambda x, n=layer.size, a=layer.alpha, b=layer.beta, k=layer.k:
                      F.local_response_norm(x, n, a, b, k))
            elif isinstance(layer, caffe_layers.Concat):
                fn = lambda *xs: torch.cat(xs, 1)  # noqa: E731
            else:   # Dropout, Softmax: identity / softmax, unused before inception_4c
                fn = (lambda x: x) if not isinstance(layer, caffe_layers.Softmax) else \
                    (lambda x: F.softmax(x, 1))
            if isinstance(fn, nn.Module):
                self.mods.append(fn)
            self.steps.append((layer.name, fn, bottoms, tops))

    def forward(self, x, end):
        blobs = {self.input_name: x}
        for name, fn, bottoms, tops in self.steps:
            blobs[tops[0]] = fn(*[blobs[b] for b in bottoms])
            if name == end:
                return blobs[tops[0]]
        raise KeyError(end)


class OwnNet(nn.Module):
    """The plain module as a user's own net (``--model FILE.py:FACTORY``): its forward pass
    ends at ``end``, whose output a module of its own (``tap``) passes on."""

    def __init__(self, plain, end):
        super().__init__()
        self.plain, self.end, self.tap = plain, end, nn.Identity()

    def forward(self, x):
        return self.tap(self.plain(x, self.end))


def plain_dream(model, image, end, device, iter_n=10, octave_n=4, octave_scale=1.4,
                jitter=32, step_size=1.5, rng=None):
    """The original notebook's deepdream() with the net swapped for a PyTorch module."""
    mean = np.float32([104.0, 116.0, 122.0]).reshape(3, 1, 1)
    octaves = [np.float32(image)[:, :, ::-1].transpose(2, 0, 1) - mean]
    for _ in range(octave_n - 1):
        octaves.append(nd.zoom(octaves[-1], (1, 1.0 / octave_scale, 1.0 / octave_scale),
                               order=1))
    detail = np.zeros_like(octaves[-1])
    rng = rng or np.random.default_rng(0)
    for octave, base in enumerate(octaves[::-1]):
        h, w = base.shape[-2:]
        if octave > 0:
            h1, w1 = detail.shape[-2:]
            detail = nd.zoom(detail, (1, 1.0 * h / h1, 1.0 * w / w1), order=1)
        src = base + detail
        for _ in range(iter_n):
            ox, oy = rng.integers(-jitter, jitter + 1, 2)
            src = np.roll(np.roll(src, ox, -1), oy, -2)
            x = torch.tensor(src[None], device=device, requires_grad=True)
            out = model(x, end)
            (0.5 * out.pow(2).sum()).backward()
            g = x.grad[0].cpu().numpy()
            src = src + step_size / np.abs(g).mean() * g
            src = np.roll(np.roll(src, -ox, -1), -oy, -2)
            src = np.clip(src, -mean, 255 - mean)
        detail = src - base
    return (src + mean)[::-1].transpose(1, 2, 0)


class AgreementProbe:
    """Stands in for ``reference`` in the dream loop: every input gradient is also computed
    by ``other`` (e.g. the same net in bf16) at the same jittered input, and the cosine
    similarity of the two recorded; the dream itself follows the reference."""

    def __init__(self, reference, other):
        self.reference, self.other, self.cosines = reference, other, []

    def __getattr__(self, name):
        return getattr(self.reference, name)

    def gradient(self, x, end, objective):
        g = self.reference.gradient(x, end, objective)
        o = self.other.gradient(x, end, objective)
        self.cosines.append(float(F.cosine_similarity(g.flatten(), o.flatten(), dim=0)))
        return g


def gradient_agreement(reference, other, image, end, **dream_kw) -> list[float]:
    """The cosine similarity of ``other``'s input gradient to ``reference``'s at every step
    of a dream of ``image`` at ``end`` made with ``reference``."""
    probe = AgreementProbe(reference, other)
    dream(probe, image, end, **dream_kw)
    return probe.cosines


def matmul_peak(dtype, device, seconds=1.0) -> float:
    n = 8192 if str(device).startswith("cuda") else 2048     # large enough to fill the chip
    precision = next(p for p, d in PRECISIONS.items() if d == dtype)
    if autograd.slow_precision(str(device), precision):
        n = 256    # emulated: a 2048 product takes minutes, and the figure only says "slow"
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        a @ b
    sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    sync(device)
    return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def best_time(fn, repeats, device) -> float:
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def count_flops(net, image, end, octave_n, octave_scale) -> float:
    """GFLOP of one work unit (one step per octave counted, times the iterations), with
    every input gradient counted as a plain convolution's backward pass: the engine's
    phased gradient of conv1 does some more arithmetic in order to run faster."""
    from torch.utils.flop_counter import FlopCounterMode
    counted = copy.copy(net)
    counted._specs = [(copy.copy(layer), bottoms, tops) for layer, bottoms, tops in net._specs]
    for layer, _, _ in counted._specs:
        if isinstance(layer, caffe_layers.Convolution):
            layer.phase_weight = None
    with FlopCounterMode(display=False) as counter:
        dream(counted, image, end, iter_n=1, octave_n=octave_n, octave_scale=octave_scale,
              jitter=0)
    return counter.get_total_flops() / 1e9


def step_operations(net, image, end, guide=None) -> tuple[float, float, int]:
    """The aten operations of one gradient step of a dream of ``image`` towards ``end``
    (kernels, views), from dreams of one octave of 2 and 4 steps, and the host reads of
    the octave of 4 steps."""
    from deepdream.nets.checks import Operations
    counts = []
    for steps in (1, 2, 4):                         # the first one learns the layer's facts
        with Operations() as ops:
            dream(net, image, end, iter_n=steps, octave_n=1, seed=0, guide=guide)
        counts.append(ops)
    few, more = counts[1:]
    return ((sum(more.kernels.values()) - sum(few.kernels.values())) / 2,
            (sum(more.views.values()) - sum(few.views.values())) / 2,
            sum(more.host_reads.values()))


def print_operations(args, image, precisions) -> None:
    """The table of ``step_operations`` for each precision and objective: the layer, a guide
    (the image itself) and two of its channels."""
    print(f"operations a step at {args.end} ({args.size}), counted by PyTorch's dispatcher")
    print("| precision | objective | kernels a step | views a step | host reads an octave |")
    print("|---|---|---|---|---|")
    for precision in precisions:
        net = make_net(args, precision)
        guide = guide_features(net, image, args.end)
        for label, end, g in [("layer", args.end, None), ("guided", args.end, guide),
                              ("channels 3,5", f"{args.end}:3,5", None)]:
            kernels, views, reads = step_operations(net, image, end, g)
            print(f"| {precision} | {label} | {kernels:.0f} | {views:.0f} | {reads} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="540x360", help="WIDTHxHEIGHT")
    p.add_argument("--end", default="inception_4c/output")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--octaves", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--deploy", help="the net's deploy prototxt (default: BVLC GoogLeNet's, "
                                     "or the structure saved in --caffemodel)")
    p.add_argument("--caffemodel", help="real weights instead of random ones")
    p.add_argument("--skip-plain", action="store_true", help="time deepdream.dream only")
    p.add_argument("--batch", default="",
                   help="also time dream_batch of these many frames, comma-separated (per "
                        "frame, in every precision)")
    p.add_argument("--floor", default="",
                   help="WIDTHxHEIGHT: also time the work unit at this small size, where the "
                        "device has almost nothing to do: the per-frame floor of launching "
                        "kernels and the Python loop (what CUDA graphs could save)")
    p.add_argument("--precision", default="bf16",
                   help="16-bit precisions to time and compare with fp32, comma-separated "
                        "(bf16, fp16; '' for none)")
    p.add_argument("--ops", action="store_true",
                   help="count the operations of a step and the host reads of an octave "
                        "in each precision (no timing)")
    p.add_argument("--agreement-iterations", type=int, default=2,
                   help="steps per octave of the dreams along which the gradients of each "
                        "16-bit precision are compared with fp32's")
    args = p.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    device = args.device
    image = np.random.default_rng(0).uniform(0, 255, (height, width, 3)).astype(np.float32)
    kw = dict(iter_n=args.iterations, octave_n=args.octaves, octave_scale=1.4, jitter=32)
    precisions = ["fp32"] + list(filter(None, args.precision.split(",")))
    if args.ops:
        return print_operations(args, image, precisions)
    net = make_net(args, "fp32")

    gflop = count_flops(net, image, args.end, args.octaves, 1.4) * args.iterations
    peaks = {p: matmul_peak(PRECISIONS[p], device) for p in precisions}
    progress(f"{gflop:.0f} GFLOP a frame; peaks " +
             ", ".join(f"{p} {peak:.0f} GFLOP/s" for p, peak in peaks.items()))
    batches = [int(b) for b in args.batch.split(",") if b.strip() and int(b) > 1]
    times, agreements = {}, {}
    for precision in precisions:
        timed = net if precision == "fp32" else make_net(args, precision)
        times[precision, 1] = best_time(lambda: dream(timed, image, args.end, seed=0, **kw),
                                        args.repeats, device)
        progress(f"{precision}: {times[precision, 1]:.3f} s/frame")
        for b in batches:
            times[precision, b] = best_time(
                lambda: dream_batch(timed, [image] * b, args.end, seeds=list(range(b)), **kw),
                args.repeats, device) / b
            progress(f"{precision}, batch of {b}: {times[precision, b]:.3f} s/frame")
        if precision != "fp32":
            agreements[precision] = {
                layer: gradient_agreement(net, timed, image, layer, seed=0,
                                          **dict(kw, iter_n=args.agreement_iterations))
                for layer in agreement_layers(net, args.end)}
        timed = None           # the next precision's net in its place
    floor = None
    if args.floor:
        fw, fh = map(int, args.floor.split("x"))
        small = image[:fh, :fw]
        floor = best_time(lambda: dream(net, small, args.end, seed=0, **kw), args.repeats,
                          device)
        progress(f"floor at {args.floor}: {floor:.3f} s/frame")
    plain = None
    if not args.skip_plain:
        model = PlainNet(net).to(device)
        plain = best_time(lambda: plain_dream(model, image, args.end, device, **kw),
                          args.repeats, device)
        progress(f"plain PyTorch: {plain:.3f} s/frame")
        # the same module dreamed as your own net: deepdream's loop, forward hooks, Caffe's
        # input convention (so that the frames are the same)
        from deepdream.nets.module import ModuleNet, Preprocessing
        caffe = Preprocessing(mean=(104.0, 116.0, 122.0), std=(1.0, 1.0, 1.0),
                              channel_order="bgr", input_range=255)
        own_net = ModuleNet(OwnNet(PlainNet(net), args.end), device, caffe)
        own = best_time(lambda: dream(own_net, image, "tap", seed=0, **kw), args.repeats,
                        device)
        progress(f"own net: {own:.3f} s/frame")

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    cuda = f", CUDA {torch.version.cuda}" if device.startswith("cuda") else ""
    print(f"machine: {name}; torch {torch.__version__}{cuda}")
    print(f"work unit: {width}x{height}, {args.end}, {args.iterations} iterations, "
          f"{args.octaves} octaves x1.4: {gflop:.0f} GFLOP")
    print("matmul peak: " + ", ".join(f"{p} {peak:.0f} GFLOP/s" for p, peak in peaks.items()))
    print("| path | s/frame | frames/s | vs plain | GFLOP/s | share of its precision's peak |")
    print("|---|---|---|---|---|---|")
    rows = []
    for (precision, b), seconds in times.items():
        label = f"deepdream.dream ({precision})" if b == 1 else \
            f"deepdream.dream_batch of {b} ({precision}), per frame"
        rows.append((label, seconds, precision))
    rows += [("the plain module as your own net (--model FILE.py:FACTORY)", own, "fp32"),
             ("plain PyTorch", plain, "fp32")] if plain else []
    for label, seconds, precision in rows:
        ratio = f"{plain / seconds:.2f}x" if plain else "-"
        print(f"| {label} | {seconds:.3f} | {1 / seconds:.2f} | {ratio} | "
              f"{gflop / seconds:.1f} | {100 * gflop / seconds / peaks[precision]:.0f}% of "
              f"{precision} |")
    if floor is not None:
        print(f"\nthe same work unit at {args.floor} (launch-bound floor): {floor:.3f} s/frame, "
              f"{100 * floor / times['fp32', 1]:.0f}% of the fp32 frame's time")
    for precision, agreement in agreements.items():
        print(f"\n{precision}: {times['fp32', 1] / times[precision, 1]:.2f}x the speed of fp32; "
              f"cosine similarity of its input gradients to fp32's at every step of a dream "
              f"({args.agreement_iterations} steps an octave):")
        print("| layer | min | median | steps |")
        print("|---|---|---|---|")
        for layer, cosines in agreement.items():
            print(f"| {layer} | {min(cosines):.4f} | {float(np.median(cosines)):.4f} | "
                  f"{len(cosines)} |")


def progress(line: str) -> None:
    """A figure as soon as it is measured (on stderr: the table comes at the end), so that
    a run cut short by a time limit still reports what it measured."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def make_net(args, precision: str):
    """The benchmarked net: --caffemodel's weights, else random ones (timing does not depend
    on them) in --deploy's structure."""
    if args.caffemodel:
        return load_net(args.caffemodel, args.deploy, device=args.device, precision=precision)
    return random_net(args.deploy or DEPLOY, seed=0, device=args.device, precision=precision)


def agreement_layers(net, end: str) -> list[str]:
    """The seed's layers that the net has (the customloop sweep), else ``end`` alone."""
    from deepdream.run.schedules import CUSTOM_LOOP
    return [layer for layer in dict.fromkeys(CUSTOM_LOOP) if layer in net.layers] or [end]


if __name__ == "__main__":
    main()
