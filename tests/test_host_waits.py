"""Inside an octave the host never waits for the device: counted through PyTorch's dispatcher
(which sees the operations on a CPU as on a GPU), a dream reads one value back an octave (its
checks' verdict), in every precision and objective, and sends no host value to the device at
each step. The checks it defers still stop the run with their one-line error."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import deepdream
from deepdream.nets.checks import Operations, deferred_checks
from deepdream.dreamer.ascent import dream, guide_features
from deepdream.errors import PrecisionError

from caffe_nets import layer, write_net
from conftest import FIXTURES, ROOT, TEST_DEVICE

END = "inception_4c/output"
OBJECTIVES = {"layer": dict(end=END), "guided": dict(end=END, guide=True),
              "channels": dict(end=f"{END}:3,5"),
              "sum": dict(end=f"conv2/3x3+0.5*{END}-0.25*inception_3a/output:2"),
              "class": dict(end="loss3/classifier:3"),
              "tiles": dict(end=END, tile=64)}


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def net(request):
    return deepdream.load_net(FIXTURES / "tiny_googlenet.caffemodel",
                              FIXTURES / "tiny_googlenet.prototxt", device=TEST_DEVICE,
                              precision=request.param)


def counted_dream(net, golden, objective: str, iter_n: int):
    """The operations of a dream of 2 octaves of a 96x72 frame towards ``objective``."""
    kw = dict(OBJECTIVES[objective])
    if kw.pop("guide", None):
        kw["guide"] = guide_features(net, golden["guide/image"], END)
    image = golden["dream/input"][:72, :96]
    with Operations() as ops:
        dream(net, image, iter_n=iter_n, octave_n=2, seed=0, **kw)
    return ops


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_an_octave_reads_the_device_once(net, golden, objective):
    counted_dream(net, golden, objective, 1)        # what the net learns of a layer, once
    few, more = (counted_dream(net, golden, objective, n) for n in (2, 5))
    # before: 2 reads a step in 16 bits (the overflow checks), 12 more for these 10 steps
    assert sum(more.host_reads.values()) <= 2, more.host_reads
    assert more.kernels["aten.convolution_backward"] >= 10      # the steps were counted
    # what an octave sends to the device (its jitter's shifts) is sent once; before, a
    # channel term sent its index list at every step (a guide its features, seen as a copy
    # on a GPU only). Tiles draw their grid's offsets on the host at each step, and the
    # shifts then are sent a step at a time.
    if objective != "tiles":
        assert more.uploads == few.uploads


def test_the_first_failed_check_is_the_error():
    with pytest.raises(ValueError, match="^second$"), deferred_checks() as checks:
        checks.require(torch.tensor(True), ValueError("first"))
        checks.require(torch.tensor(False), ValueError("second"))
        checks.require(torch.tensor(False), ValueError("first"))       # later: not the first
    with deferred_checks() as checks:                                     # none failed
        checks.require(torch.tensor(True), ValueError("first"))
    # an error inside the block goes through as it is
    with pytest.raises(KeyError, match="inside"), deferred_checks() as checks:
        checks.require(torch.tensor(False), ValueError("first"))
        raise KeyError("inside")


def test_16_bit_overflow_still_stops_the_dream_with_its_one_line(tmp_path):
    weight = np.full((2, 3, 3, 3), 1000.0, np.float32)
    model, deploy = write_net(tmp_path, [layer(
        "conv", "Convolution", ["data"], ["conv"], blobs=[weight, np.zeros(2, np.float32)],
        convolution_param=dict(num_output=2, kernel_size=[3]))], (1, 3, 8, 8))
    net = deepdream.load_net(model, deploy, device=TEST_DEVICE, precision="fp16")
    image = np.full((8, 8, 3), 250, np.uint8)
    with Operations() as ops, pytest.raises(PrecisionError) as error:
        dream(net, image, "conv", iter_n=4, octave_n=1, jitter=1, seed=0)
    assert str(error.value) == ("the blob 'conv' overflowed in fp16 arithmetic: use "
                                "--precision bf16 (the range of fp32) or fp32")
    assert sum(ops.host_reads.values()) == 1
    # outside a dream the check is made at once, as before
    with pytest.raises(PrecisionError, match="^the blob 'conv' overflowed in fp16"):
        net.forward(np.full((1, 3, 8, 8), 100.0, np.float32), "conv")



def test_the_benchmark_counts_a_steps_operations():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dream_bench.py"), "--ops", "--size", "96x72",
         "--precision", "bf16", "--deploy", str(FIXTURES / "tiny_googlenet.prototxt")],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()
            if line.startswith(("| fp32 |", "| bf16 |"))]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        (p, o) for p in ("fp32", "bf16") for o in ("layer", "guided", "channels 3,5")]
    assert all(int(r[2]) > 100 and int(r[4]) == 1 for r in rows), result.stdout
