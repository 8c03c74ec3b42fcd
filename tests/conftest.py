import ast
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(ROOT))

MEAN = np.float32([104, 116, 122])

# DEEPDREAM_TEST_DEVICE=cuda runs the device-dependent tests on a GPU (bench/gpu_check.sh)
TEST_DEVICE = os.environ.get("DEEPDREAM_TEST_DEVICE", "cpu")

# The (END, HxW) pairs of the fixture's fwd/ and grad/ values.
GOLDEN_ENDS = ["conv2/3x3", "conv2/norm2", "inception_3a/output", "inception_4c/output",
               "inception_5b/output"]
GOLDEN_SIZES = ["120x160", "67x83"]
GOLDEN_CASES = [(end, size) for end in GOLDEN_ENDS for size in GOLDEN_SIZES]


def _test_ffmpegs() -> list[str]:
    """The ffmpeg binaries the ffmpeg tests run with: $DEEPDREAM_TEST_FFMPEGS (paths joined
    by ':'; .ci/run sets it to Debian's 5.1, ffmpeg 4.2, 7.0 and the bundled 9.x), else the
    system's and the bundled one. A listed binary that is missing fails the run."""
    listed = [p for p in os.environ.get("DEEPDREAM_TEST_FFMPEGS", "").split(os.pathsep) if p]
    if listed:
        missing = [p for p in listed if not shutil.which(p)]
        if missing:
            raise pytest.UsageError(f"DEEPDREAM_TEST_FFMPEGS names missing ffmpegs: {missing}")
        return listed
    import imageio_ffmpeg
    found = [shutil.which("ffmpeg"), imageio_ffmpeg.get_ffmpeg_exe()]
    return list(dict.fromkeys(p for p in found if p))


TEST_FFMPEGS = _test_ffmpegs()


def _ffmpeg_id(path: str) -> str:
    import re
    import subprocess
    text = subprocess.run([path, "-version"], capture_output=True, text=True).stdout
    version = re.search(r"ffmpeg version \D{0,2}(\d+\.\d+)", text)
    return "ffmpeg-" + (version.group(1) if version else "dev")


@pytest.fixture(scope="module", params=TEST_FFMPEGS, ids=_ffmpeg_id)
def ffmpeg_binary(request):
    """Each ffmpeg of TEST_FFMPEGS in turn, as the code's ffmpeg (DEEPDREAM_FFMPEG)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPDREAM_FFMPEG", request.param)
        yield request.param


@pytest.fixture(scope="session", autouse=True)
def deepdream_home(tmp_path_factory):
    """The tests' own $DEEPDREAM_HOME (the scripts they run inherit it): what runs remember of
    model files (verified.json) stays out of the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPDREAM_HOME", str(tmp_path_factory.mktemp("deepdream-home")))
        yield


def script(name, *args, cwd=None, check=True):
    """Run one of the scripts (``"-m deepdream"`` for the one-command form) as a user would:
    a subprocess with its own output. Asserts success unless ``check`` is False."""
    import subprocess
    target = ["-m", "deepdream"] if name == "-m deepdream" else [str(ROOT / name)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, *target, *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def caffe_input(image: np.ndarray) -> np.ndarray:
    """The fixture README's input blob: BGR, mean subtracted, (1, 3, H, W)."""
    return (image[:, :, ::-1].transpose(2, 0, 1) - MEAN[:, None, None])[None].astype(np.float32)


def relative_error(actual, expected) -> float:
    return float(np.abs(np.asarray(actual) - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="session")
def golden():
    with np.load(FIXTURES / "tiny_googlenet_golden.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def dream_params(golden):
    return ast.literal_eval(str(golden["dream/params"]))


@pytest.fixture(scope="session")
def tiny_net():
    """The fixture net, on the CPU; DEEPDREAM_TEST_DEVICE=cuda puts it on a GPU, to run the
    golden tests there (bench/gpu_check.sh)."""
    import deepdream
    return deepdream.load_net(FIXTURES / "tiny_googlenet.caffemodel",
                              FIXTURES / "tiny_googlenet.prototxt",
                              device=TEST_DEVICE)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny net laid out as the original expects a model folder: deploy.prototxt and
    bvlc_googlenet.caffemodel side by side."""
    folder = tmp_path_factory.mktemp("model")
    shutil.copy(FIXTURES / "tiny_googlenet.prototxt", folder / "deploy.prototxt")
    shutil.copy(FIXTURES / "tiny_googlenet.caffemodel", folder / "bvlc_googlenet.caffemodel")
    return folder
