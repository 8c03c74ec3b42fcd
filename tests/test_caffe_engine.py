"""The real-Caffe engine against the PyTorch engine and Caffe's golden values. These run where
pycaffe is importable (scripts/install_caffe.sh, then its python folder on PYTHONPATH) and are
reported as skipped, with the reason, elsewhere."""
import os
import subprocess
import sys

import numpy as np
import pytest

import deepdream
from deepdream.errors import DeviceError

from conftest import FIXTURES, ROOT, caffe_input, relative_error


def pycaffe_available() -> bool:
    try:
        from deepdream.nets.caffe.pycaffe import import_caffe
        import_caffe()
        return True
    except DeviceError:
        return False


needs_caffe = pytest.mark.skipif(not pycaffe_available(),
                                 reason="pycaffe is not importable: run "
                                        "scripts/install_caffe.sh and add its python folder "
                                        "to PYTHONPATH")
ENDS = ["conv2/3x3", "inception_3a/output", "inception_4c/output", "inception_5b/output"]


@pytest.fixture(scope="module")
def caffe_net():
    return deepdream.load_net(FIXTURES / "tiny_googlenet.caffemodel",
                              FIXTURES / "tiny_googlenet.prototxt", engine="caffe")


def test_a_clear_error_names_the_install_script_without_pycaffe():
    # in a process that cannot import pycaffe (no PYTHONPATH), whether or not it is built here
    code = ("import deepdream, sys\n"
            "try:\n"
            f"    deepdream.load_net({str(FIXTURES / 'tiny_googlenet.caffemodel')!r}, "
            f"{str(FIXTURES / 'tiny_googlenet.prototxt')!r}, engine='caffe')\n"
            "except deepdream.DeepDreamError as e:\n"
            "    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=env)
    assert "scripts/install_caffe.sh" in result.stdout, result.stderr


@needs_caffe
@pytest.mark.parametrize("end", ENDS)
def test_caffe_engine_matches_golden_values_and_the_torch_engine(caffe_net, tiny_net, golden,
                                                                 end):
    x = caffe_input(golden["input/67x83"])
    assert relative_error(caffe_net.forward(x, end), golden[f"fwd/{end}/67x83"]) < 1e-5
    assert relative_error(caffe_net.input_gradient(x, end)[0],
                          golden[f"grad/{end}/67x83"]) < 1e-5
    assert relative_error(tiny_net.forward(x, end), caffe_net.forward(x, end)) < 1e-4
    assert relative_error(tiny_net.input_gradient(x, end),
                          caffe_net.input_gradient(x, end)) < 1e-4


@needs_caffe
def test_caffe_engine_guided_gradient(caffe_net, golden):
    x = caffe_input(golden["dream/input"])
    grad = caffe_net.input_gradient(x, "inception_4c/output",
                                    guide=golden["guide/features/inception_4c/output"])
    assert relative_error(grad[0], golden["guide/grad/inception_4c/output/120x160"]) < 1e-5


@needs_caffe
def test_engines_dream_alike(caffe_net, tiny_net, golden, dream_params):
    image = golden["dream/input"]
    a = deepdream.dream(caffe_net, image, "inception_3b/output", jitter=0, **dream_params)
    b = deepdream.dream(tiny_net, image, "inception_3b/output", jitter=0, **dream_params)
    assert np.abs(a - golden["dream/inception_3b/output"]).max() < 1e-3
    assert np.abs(a - b).max() < 1e-3


@needs_caffe
def test_dreaming_time_with_the_caffe_engine(tmp_path, tiny_model_dir):
    """Stage 2 with --engine caffe dreams the frame as the torch engine does (the same seed:
    the same jitter), and records that Caffe dreamed it."""
    import json
    from deepdream.io import frames
    from deepdream.nets.loading import ENGINE_OF_RECORDED_NAME
    src = tmp_path / "in"
    src.mkdir()
    image = np.random.default_rng(0).uniform(0, 255, (60, 80, 3))
    frames.write_frame(src / "00000001.png", image)
    dreamed = {}
    for engine in ("caffe", "torch"):
        out = tmp_path / engine
        result = subprocess.run([sys.executable, str(ROOT / "2_dreaming_time.py"), "-i",
                                 str(src), "-o", str(out), "-t", str(tiny_model_dir),
                                 "--engine", engine, "-l", "inception_3b/output", "-oct", "2",
                                 "-itr", "2", "--seed", "1"], capture_output=True, text=True,
                                env=dict(os.environ))
        assert result.returncode == 0, result.stderr
        recorded = json.loads((out / "params.json").read_text())["engine"]
        assert ENGINE_OF_RECORDED_NAME[recorded] == engine
        dreamed[engine] = frames.read_frame(out / "00000001.png").astype(np.float32)
    source = frames.read_frame(src / "00000001.png").astype(np.float32)
    assert np.abs(dreamed["caffe"] - source).mean() > 1           # dreamed, not copied
    assert np.abs(dreamed["caffe"] - dreamed["torch"]).max() <= 1  # 8-bit rounding apart
