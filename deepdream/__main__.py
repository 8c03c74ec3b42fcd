"""``python -m deepdream MOVIE -o OUT.mp4``: the one command (deepdream/cli/main.py)."""
import os
import sys
from pathlib import Path


def _this_package() -> None:
    """Make ``deepdream`` this package. ``python -m`` looks in the current folder first: a
    folder of the user's named deepdream there is taken for the package, or mixed with it
    (a traceback at the first import of ours that it lacks). The current folder is dropped
    from the search and this package imported afresh; the user's folder is not touched."""
    import deepdream
    if getattr(deepdream, "THIS_PACKAGE", False):
        return
    here = str(Path(__file__).resolve().parent.parent)
    sys.path[:] = [here] + [p for p in sys.path if p not in ("", ".", os.getcwd(), here)]
    for name in [n for n in sys.modules if n == "deepdream" or n.startswith("deepdream.")]:
        del sys.modules[name]


if __name__ == "__main__":
    _this_package()
    from deepdream.cli.main import entry
    entry()
