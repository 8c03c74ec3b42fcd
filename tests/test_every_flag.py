"""Every flag of every script, given a value it cannot take, is refused in one line that names
the flag (or the value or path given to it) before anything is written: the walk reads the
scripts' own parsers, so a flag added later is walked too (and a new flag that takes free
text must say here what is wrong for it). Each script's command without the bad flag works
(tested too), so the refusal is the bad value's and no other mistake's."""
import importlib.util
import os
import re
import sys

import numpy as np
import pytest

from deepdream.io import frames, video

from conftest import ROOT
from media import make_clip

SCRIPTS = ["1_movie2frames.py", "2_dreaming_time.py", "3_frames2movie.py", "-m deepdream"]
LIVE = "-m deepdream --live"      # the live group's flags are walked on a live command

# flags that take free text, and a value that cannot work for each ({name}: a path of the
# ``places`` fixture; a dict: a value per script)
TEXT_VALUES = {
    "--fps": "0", "--model": "no_such_model", "--weights": "missing.pt",
    "--mirror": "missing_folder", "-t": "missing_folder", "-m": "missing.caffemodel",
    "-gi": "missing.png", "--recipe": "no_such_recipe", "--device": "tpu",
    "--gpu": "x",                                           # not a GPU number
    "--ray": "bogus",                                       # no address Ray can join
    "-o": {"2_dreaming_time.py": "{movie}",                 # a file where a folder is wanted
           "3_frames2movie.py": "{folder}",                 # a folder where a movie is
           "-m deepdream": "{folder}"},
    "-i": "{missing}",                                      # a folder that is not there
    "--work": "{file}",                                     # a file, not a folder
    "--sheet": "sheet.xyz", "--plot": "curves.xyz", "--codec": "no_such_codec",
    "-l": "no_such_layer", "--live": "{missing}.mp4",
    "--host": "192.0.2.1",                                  # an address this machine lacks
    "--input-format": "no_such_format",
}
# more cases: -i given a file, not a folder of frames
MORE_VALUES = {("2_dreaming_time.py", "-i"): ["{file}"]}
# not refused yet before the work begins (the cases fail until they are)
NOT_YET: dict[tuple[str, str], str] = {}

# a dream the tiny net makes of the test's small frames in a second (the defaults' 4 octaves
# are too many for 48 pixels: every case would be refused for that)
DREAM = ["-l", "conv2/3x3", "-oct", "1", "-itr", "1"]


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


def bad_values(name, action):
    """Values ``action`` of script ``name`` cannot take: junk and out of range numbers, a
    choice not offered, the free-text values of TEXT_VALUES and MORE_VALUES."""
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
    value = TEXT_VALUES[flag]
    if isinstance(value, dict):
        assert name in value, f"{flag} of {name}: add a value to TEXT_VALUES"
        value = value[name]
    return [value, *MORE_VALUES.get((name, flag), [])]


def live_flags(parser) -> set[str]:
    """The dests of the flags of ``parser``'s "live" group (none for the stages)."""
    return {action.dest for group in parser._action_groups if group.title == "live"
            for action in group._group_actions}


def cases():
    for name in SCRIPTS:
        parser = parser_of(name)
        live = live_flags(parser)
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "verbose"):
                continue
            command = LIVE if action.dest in live else name
            flag = action.option_strings[0]
            for value in bad_values(name, action):
                marks = [pytest.mark.xfail(reason=NOT_YET[name, flag], strict=True)] \
                    if (name, flag) in NOT_YET else []
                yield pytest.param(command, action.option_strings, value, marks=marks,
                                   id=f"{command} {flag} {value}")


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_model_dir):
    """A movie, a folder of frames, a file and a missing path ({movie}, ...), and each
    command's other arguments: the tiny model and a dream it can make of these frames."""
    root = tmp_path_factory.mktemp("flags")
    movie = make_clip(root / "m.mp4", size="128x48", rate="25", duration=0.4)
    src = root / "frames"
    src.mkdir()
    for n in (1, 2, 3):
        frames.write_frame(src / frames.frame_name(n, "png"), np.full((48, 64, 3), 60.0 * n))
    (root / "notes.txt").write_text("a file of the user's")
    paths = {"movie": movie, "folder": src, "file": root / "notes.txt",
             "missing": root / "no_such_folder"}
    model = ["-t", tiny_model_dir, *DREAM]
    commands = {"1_movie2frames.py": [movie, "{tmp}/out"],
                "2_dreaming_time.py": ["-i", src, "-o", "{tmp}/out", *model],
                "3_frames2movie.py": [src, "-o", "{tmp}/out.mp4", "--fps", "25"],
                "-m deepdream": [movie, "-o", "{tmp}/out.mp4", *model],
                LIVE: ["--live", movie, "-o", "{tmp}/out.mp4", "--serve", "0", *model]}
    return paths, commands


def run_script(command, args, capsys, monkeypatch, folder):
    """``cli.run`` of ``command``'s script with ``args`` in ``folder``, in this process (each
    case as a subprocess would take minutes; the tests of each stage run the scripts as users
    do): (its exit code, its stderr's lines)."""
    from deepdream.cli import common as cli
    name = "-m deepdream" if command == LIVE else command
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    with pytest.raises(SystemExit) as exit:
        cli.run(script_module(name).main)
    return exit.value.code, capsys.readouterr().err.strip().splitlines()


def names(line: str, flags: list[str], value: str) -> bool:
    """Whether an error ``line`` names one of ``flags`` (as a word of its own: "-o" is not
    named by "-oct"), or the ``value`` given to it where that is a name or a path (a bare
    number such as 0 names nothing)."""
    flag_named = any(re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", line)
                     for flag in flags)
    try:
        float(value)
        return flag_named
    except ValueError:
        return flag_named or (len(value) >= 3 and value in line)


@pytest.mark.parametrize("command", [*SCRIPTS, LIVE])
def test_each_command_without_a_bad_flag_works(places, tmp_path, command, capsys,
                                               monkeypatch):
    """The command each case adds its bad flag to writes what it is for: so a case's
    refusal is its flag's, not another mistake's."""
    _, commands = places
    args = [str(a).format(tmp=tmp_path) for a in commands[command]]
    code, lines = run_script(command, args, capsys, monkeypatch, tmp_path)
    assert code in (0, None), lines[-5:]
    if command in ("1_movie2frames.py", "2_dreaming_time.py"):
        count = 10 if command == "1_movie2frames.py" else 3      # 0.4 s at 25 fps; 3 frames
        assert sorted(frames.list_frames(tmp_path / "out")) == list(range(1, count + 1))
    else:
        assert video.written_length(tmp_path / "out.mp4")[0] >= (3 if command != LIVE else 1)


@pytest.mark.parametrize("command, flags, value", list(cases()))
def test_a_value_a_flag_cannot_take_is_one_line_naming_it_and_writes_nothing(
        places, tmp_path, command, flags, value, capsys, monkeypatch):
    paths, commands = places
    args = [str(a).format(tmp=tmp_path) for a in commands[command]]
    if flags[0] in ("-t", "--model", "--mirror") and "-t" in args:   # a model flag of its own
        i = args.index("-t")
        del args[i:i + 2]
    value = value.format(**paths)
    code, lines = run_script(command, [*args, flags[0], value], capsys, monkeypatch,
                             tmp_path)
    assert code not in (0, None), lines[-5:]
    # one line (a live run says first which source it opens: only ffmpeg can refuse it)
    opening = [f"opening {paths['movie']}"] if command == LIVE else []
    assert lines[:-1] in ([], opening) and lines[-1].startswith("error:"), lines[-5:]
    assert names(lines[-1], flags, value), lines[-1]
    assert os.listdir(tmp_path) == []                              # nothing written
