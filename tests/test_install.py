"""The checkout installed as a package (pyproject.toml) into a fresh virtual environment: its
`deepdream` command works from any folder, finds models/ and recipes/, dreams the sample movie
(samples/sample.mp4) as the README's first command does, and a missing extra is one line that
names it. And the sample movie is what samples/README.md says, remade by its script."""
import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from media import beep_onsets, ffmpeg, pictures, sound_duration, stream_length, stream_line

SAMPLE = ROOT / "samples" / "sample.mp4"
DREAM = ["-l", "conv2/3x3", "-oct", "1", "-itr", "1", "-b", "0"]


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory):
    """A new virtual environment with this checkout installed editable (pip install -e, no
    network): its dependencies (torch...), pip and setuptools are the running environment's,
    through a .pth file, as a fresh `pip install -r requirements.txt` would fetch them."""
    folder = tmp_path_factory.mktemp("install") / "venv"
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                         "['purelib'])"], capture_output=True, text=True,
                          check=True).stdout.strip()
    outer = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "running_environment.pth").write_text("\n".join(outer) + "\n")
    result = run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                  "--no-index", "-e", ROOT], cwd=folder)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder


def run(command, cwd, extra_path=None):
    """``command`` in ``cwd`` as a user runs it: without the tests' PYTHONPATH (the
    checkout, pycaffe), so that only what was installed is found; ``extra_path`` goes
    first on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.run(list(map(str, command)), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_installed_package_is_the_checkout(env_dir, tmp_path):
    result = run([env_dir / "bin" / "python", "-c",
                  "import deepdream; print(deepdream.__file__, deepdream.__version__)"],
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    path, version = result.stdout.split()
    assert Path(path) == ROOT / "deepdream" / "__init__.py"
    assert version == __import__("deepdream").__version__


def test_the_deepdream_command_works_from_any_folder(env_dir, tmp_path):
    result = run([env_dir / "bin" / "deepdream", "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage:") and "--sheet" in result.stdout


def test_the_deepdream_command_finds_the_named_recipes(env_dir, tmp_path):
    recipes = sorted(p.stem for p in (ROOT / "recipes").glob("*.json"))
    result = run([env_dir / "bin" / "deepdream", SAMPLE, "--recipe", "nosuch"], cwd=tmp_path)
    assert result.returncode == 1 and recipes
    assert result.stderr.splitlines() == [
        f"error: nosuch is not the params.json of a dreaming run, nor a named recipe "
        f"({', '.join(recipes)})"]
    assert list(tmp_path.iterdir()) == []


def test_the_model_list_works_from_any_folder(env_dir):
    result = run([env_dir / "bin" / "python", "-m", "deepdream.models", "list"], cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    names = [line.split()[0] for line in result.stdout.splitlines()[:-1]]
    assert names == list(json.loads((ROOT / "models" / "registry.json").read_text()))
    assert result.stdout.splitlines()[-1].startswith("cache: ")


def test_the_readme_command_dreams_the_sample(env_dir, tiny_model_dir, tmp_path):
    """`deepdream samples/sample.mp4 -o dream.mp4`, with the test net: every frame, each
    dreamed (changed more than encoding alone changes it), and the sample's tones where they
    were."""
    out = tmp_path / "dream.mp4"
    # one step, of 16 levels on average (-s: the gradient is normalised): visible, and quick
    result = run([env_dir / "bin" / "deepdream", "samples/sample.mp4", "-o", out,
                  "-t", tiny_model_dir, *DREAM, "-s", "16"], cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"{out} written"
    assert stream_length(out, "v")[0] == 75 and "320x180" in stream_line(out, "Video")
    assert beep_onsets(out) == pytest.approx(beep_onsets(SAMPLE), abs=1 / 25)
    assert sound_duration(out) == pytest.approx(3.0, abs=1 / 25)
    assert not (tmp_path / ".dream.deepdream").exists()

    # the sample encoded as stage 3 encodes it, undreamed: what encoding alone changes
    plain = tmp_path / "plain.mp4"
    ffmpeg("-i", str(SAMPLE), "-an", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p",
           str(plain))
    source = pictures(SAMPLE, 320, 180).astype(np.float32)
    dreamed, encoded = (np.abs(pictures(movie, 320, 180) - source).mean(axis=(1, 2, 3))
                        for movie in (out, plain))
    assert len(dreamed) == len(encoded) == 75
    assert dreamed.min() > 3 * encoded.max(), (dreamed.min(), encoded.max())


MISSING_EXTRAS = [pytest.param("--flow", "cv2", "flow", id="flow"),
                  pytest.param("--ray", "ray", "ray", id="ray")]


@pytest.mark.parametrize("flag, module, extra", MISSING_EXTRAS)
def test_a_missing_extra_is_one_line_that_names_it(env_dir, tiny_model_dir, tmp_path, flag,
                                                   module, extra):
    hidden = tmp_path / "hidden"           # an environment without the extra's package
    hidden.mkdir()
    message = f"No module named {module!r}"
    (hidden / f"{module}.py").write_text(f"raise ImportError({message!r})\n")
    result = run([env_dir / "bin" / "deepdream", SAMPLE, "-o", tmp_path / "dream.mp4",
                  "-t", tiny_model_dir, *DREAM, flag], cwd=tmp_path, extra_path=hidden)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"pip install 'deepdream-video[{extra}]'" in errors[0]


def test_the_sample_is_what_its_readme_says(tmp_path):
    """samples/sample.mp4: 3 s at 25 fps, 320x180, H.264 and AAC, under 1 MB; and
    scripts/make_sample.py makes the same movie again (its tones at the same times)."""
    remade = tmp_path / "remade.mp4"
    result = subprocess.run([sys.executable, ROOT / "scripts" / "make_sample.py", remade],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert SAMPLE.stat().st_size < 1_000_000
    for movie in (SAMPLE, remade):
        assert stream_length(movie, "v")[0] == 75
        video, audio = stream_line(movie, "Video"), stream_line(movie, "Audio")
        assert "h264" in video and "320x180" in video and "25 fps" in video
        assert "aac" in audio
    assert len(beep_onsets(SAMPLE)) == 4
    assert beep_onsets(remade) == pytest.approx(beep_onsets(SAMPLE), abs=1 / 25)


def test_make_sample_never_overwrites_a_file_of_yours(tmp_path):
    yours = tmp_path / "yours.mp4"
    yours.write_bytes(b"mine")
    result = subprocess.run([sys.executable, ROOT / "scripts" / "make_sample.py", yours],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {yours} exists: give a new file name (only {SAMPLE} is remade)"]
    assert yours.read_bytes() == b"mine" and sorted(tmp_path.iterdir()) == [yours]
