"""Every flag of every script, given a value it cannot take, is refused in one line before
anything is written: the walk reads the scripts' own parsers, so a flag added later is
walked too (and a new flag that takes free text must say here what is wrong for it)."""
import importlib.util
import os
import sys

import numpy as np
import pytest

from deepdream.io import frames

from conftest import ROOT
from media import make_clip

SCRIPTS = ["1_movie2frames.py", "2_dreaming_time.py", "3_frames2movie.py", "-m deepdream"]

# flags that take free text, and a value that cannot work for each; None: any text will do
# (a name the script only prints or passes on, or a flag checked elsewhere)
TEXT_VALUES = {
    "--fps": "0", "--model": "no_such_model", "--weights": "missing.pt",
    "--mirror": "missing_folder", "-t": "missing_folder", "-m": "missing.caffemodel",
    "-gi": "missing.png", "--recipe": "no_such_recipe", "--device": "tpu",
    "--gpu": None, "--ray": None, "-o": None, "-i": None, "--work": None,
    "--sheet": "sheet.xyz", "--plot": "curves.xyz", "--codec": "no_such_codec", "-l": "no_such_layer",
    "--live": "missing.mp4", "--host": "no.such.host.invalid", "--input-format": "no_such_format",
}


def script_module(name):
    """A script as a module (its ``parser()`` and ``main()``)."""
    if name == "-m deepdream":
        import deepdream.cli.main
        return deepdream.cli.main
    spec = importlib.util.spec_from_file_location(name[:-3].lstrip("0123456789_"),
                                                  ROOT / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parser_of(name):
    return script_module(name).parser()


def bad_values(action):
    """Values ``action`` cannot take: junk and out of range numbers, a choice not offered,
    the free-text value of TEXT_VALUES."""
    if action.nargs == 0:
        return []                                           # a switch
    if action.choices is not None:
        return ["bogus"]
    if action.type is float:
        return ["-1000000", "nan"]
    if action.type is int or callable(action.type):
        return ["abc", "-1000000"]
    flag = action.option_strings[0]
    assert flag in TEXT_VALUES, f"{flag} takes free text: add a value to TEXT_VALUES"
    return [TEXT_VALUES[flag]] if TEXT_VALUES[flag] is not None else []


def cases():
    for name in SCRIPTS:
        for action in parser_of(name)._actions:
            if not action.option_strings or action.dest in ("help", "verbose"):
                continue
            for value in bad_values(action):
                yield pytest.param(name, action.option_strings[0], value,
                                   id=f"{name} {action.option_strings[0]} {value}")


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_model_dir):
    """A movie, a folder of frames and the tiny model, as each script's other arguments."""
    root = tmp_path_factory.mktemp("flags")
    movie = make_clip(root / "m.mp4", size="128x48", rate="25", duration=0.4)
    src = root / "frames"
    src.mkdir()
    for n in (1, 2, 3):
        frames.write_frame(src / frames.frame_name(n, "png"), np.full((48, 64, 3), 60.0 * n))
    return {"1_movie2frames.py": [movie, "{tmp}/out"],
            "2_dreaming_time.py": ["-i", src, "-o", "{tmp}/out", "-t", tiny_model_dir],
            "3_frames2movie.py": [src, "-o", "{tmp}/out.mp4", "--fps", "25"],
            "-m deepdream": [movie, "-o", "{tmp}/out.mp4", "-t", tiny_model_dir]}


@pytest.mark.parametrize("name, flag, value", list(cases()))
def test_a_value_a_flag_cannot_take_is_one_line_and_writes_nothing(places, tmp_path, name,
                                                                     flag, value, capsys,
                                                                     monkeypatch):
    """In this process, as ``cli.run`` runs each script (each case as a subprocess would take
    minutes); the tests of each stage run the scripts as users do."""
    from deepdream.cli import common as cli
    args = [str(a).format(tmp=tmp_path) for a in places[name]]
    if flag in ("-t", "--model", "--mirror") and "-t" in args:   # a model flag of its own
        i = args.index("-t")
        del args[i:i + 2]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name, *args, flag, value])
    with pytest.raises(SystemExit) as exit:
        cli.run(script_module(name).main)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code not in (0, None), lines
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert os.listdir(tmp_path) == []                              # nothing written
