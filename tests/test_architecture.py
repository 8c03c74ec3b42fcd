"""The package's folders are its layers: io -> nets -> dreamer -> run -> cli, every import
(at the top of a module or inside a function) one way only, no import circle, no torch in io.
Read from the source with ast, so nothing needs to be imported or mocked."""
import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "deepdream"
# a module's layer is its folder; errors and progress serve every layer; the package's own
# __init__ (its public names, loaded lazily from every layer) and the `python -m` entry
# points stand above the command line: a module may take only __version__ from it
LAYERS = {"errors": 0, "progress": 0, "io": 1, "nets": 2, "dreamer": 3, "run": 4, "cli": 5}
TOP = 6


def modules(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``package``."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` (at ``path``) imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{alias.name}" for alias in node.names
                       if alias.name != "__version__"]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 else TOP


def backward_arrows(package: Path) -> list[str]:
    """'a -> b' for each import of a module from a later layer."""
    known = modules(package)
    return sorted(f"{a} -> {b}" for a, path in known.items()
                  for b in imports(a, path, set(known)) if layer(b) > layer(a))


def circles(package: Path) -> list[list[str]]:
    """The import circles among the package's modules (each as a path a -> ... -> a)."""
    known = modules(package)
    graph = {a: imports(a, path, set(known)) - {package.name} for a, path in known.items()}
    found, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_every_import_runs_one_way():
    assert backward_arrows(PACKAGE) == []


def test_no_import_circle():
    assert circles(PACKAGE) == []


def test_io_never_imports_torch():
    for name, path in modules(PACKAGE).items():
        if layer(name) <= LAYERS["io"]:
            words = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, (ast.Import, ast.ImportFrom))
                     for alias in (node.names if isinstance(node, ast.Import)
                                   else [ast.alias(node.module or "")])}
            assert "torch" not in words, name


def test_the_library_never_imports_the_command_line():
    known = modules(PACKAGE)
    for name, path in known.items():
        if layer(name) < LAYERS["cli"]:
            assert not {b for b in imports(name, path, set(known)) if layer(b) == LAYERS["cli"]}


@pytest.mark.parametrize("where,line,expected", [
    ("io/frames.py", "from ..run import settings", ["deepdream.io.frames -> deepdream.run.settings"]),
    ("nets/base.py", "def f():\n    from ..cli import common", ["deepdream.nets.base -> deepdream.cli.common"]),
    ("dreamer/ascent.py", "from ..nets.base import Net", []),
])
def test_the_checks_see_an_arrow_that_runs_back(tmp_path, where, line, expected):
    """The checks above on a package made here: a backward import, even inside a function,
    is found; a forward one is not; a circle is found."""
    root = tmp_path / "deepdream"
    for name in ["io/frames.py", "nets/base.py", "dreamer/ascent.py", "run/settings.py",
                 "cli/common.py"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).parent.joinpath("__init__.py").touch()
        (root / name).touch()
    (root / "__init__.py").touch()
    (root / where).write_text(line + "\n")
    assert backward_arrows(root) == expected
    (root / "run/settings.py").write_text("from ..cli import common\n")
    (root / "cli/common.py").write_text("from ..run import settings\n")
    assert ["deepdream.cli.common", "deepdream.run.settings", "deepdream.cli.common"] in \
        circles(root)
