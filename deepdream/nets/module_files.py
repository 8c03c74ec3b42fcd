"""Your own net's files: where its factory is (a file or an installed package) and what
identifies its code, the factory imported and called (``build``), and its weights read (a
state_dict, or .safetensors with no pickle at all) and checked against the module.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from pathlib import Path

import torch

from ..errors import ModelError, ModelMismatchError, first_line
from .registry import sha1_of


def is_file_source(place: str) -> bool:
    return place.endswith(".py") or "/" in place or "\\" in place


def short_name(source: str) -> str:
    """``FILE.py:FACTORY`` without the file's folder, or ``package.module:FACTORY``."""
    place, _, factory = source.rpartition(":")
    return f"{Path(place).name if is_file_source(place) else place}:{factory}"


# -- the identity of the code -------------------------------------------------------------
# The folders and files a net's code may span: past these, the folder is not the net's own
# (a home folder, a whole project) and hashing it would take long.
_CODE_LIMIT = 1000
_INSTALLED = {"site-packages", "dist-packages"}
_NOT_CODE = {"__pycache__", "node_modules"} | _INSTALLED


def code_identity(source: str) -> dict[str, str]:
    """What the code of the net ``source`` is, read from the files alone (nothing imported,
    so that a recipe's code can be checked before it runs, and every process -- a resume, a
    Ray worker -- gets the same answer whatever it imported before):

    - ``FILE.py:FACTORY``: the sha1 of every Python file under FILE's folder, by its path
      there: the factory's file and every module of yours that it imports, at once or later
      in its forward pass (a module found only in ``sys.modules`` would miss those);
    - ``package.module:FACTORY``: the version of the distribution that installed the
      package, and for a package outside site-packages (yours: editable, on PYTHONPATH; the
      standard library's) the sha1 of every Python file under its folder, by its path from
      the package's name.

    Raises ModelError for a package that is not there, or a folder with more than
    ``_CODE_LIMIT`` Python files and folders."""
    place = source.rpartition(":")[0]
    if is_file_source(place):
        folder = Path(place).parent
        return _python_files(folder, folder)
    top = place.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)        # a top-level name: imports nothing
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModelError(f"cannot import {place}: no module named '{top}' (is it installed?)")
    roots = [Path(r) for r in spec.submodule_search_locations or []] or \
        ([Path(spec.origin)] if spec.has_location and spec.origin else [])
    if not roots:                                     # built into Python
        return {top: f"python {platform.python_version()}"}
    code = _distributions(top)
    if code and all(_INSTALLED & set(root.parts) for root in roots):
        return code                  # installed: its version says what its files are
    for root in roots:
        code.update(_python_files(root, root.parent) if root.is_dir() else
                    {root.name: sha1_of(root)})
    return code


def _distributions(top: str) -> dict[str, str]:
    """The versions of the installed distributions that provide the package ``top``."""
    names = importlib.metadata.packages_distributions().get(top, [])
    return {name: f"version {importlib.metadata.version(name)}" for name in sorted(set(names))}


def _python_files(folder: Path, base: Path) -> dict[str, str]:
    """The sha1 of every .py file under ``folder`` by its path from ``base``, leaving out
    hidden folders, virtual environments, site-packages and caches."""
    code, seen = {}, 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _NOT_CODE
                         and not (Path(root, d) / "pyvenv.cfg").exists())
        python = sorted(f for f in files if f.endswith(".py"))
        seen += len(dirs) + len(python)
        if seen > _CODE_LIMIT:
            raise ModelError(f"{folder} holds more than {_CODE_LIMIT} Python files and "
                             "folders: keep your net's code in a folder of its own (all of "
                             "them make its identity)")
        for name in python:
            path = Path(root, name)
            code[path.relative_to(base).as_posix()] = sha1_of(path)
    return dict(sorted(code.items()))


def build(source: str) -> torch.nn.Module:
    """Call the factory ``source`` names and return its module. Raises ModelError in one line
    for a file that does not import, a factory that is not there or does not make a module."""
    place, _, name = source.rpartition(":")
    if is_file_source(place):
        path = Path(place)
        module_name = "deepdream_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None:
            raise ModelError(f"cannot import {path}: it is not a Python file")
        code = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = code       # for dataclasses and pickling inside it
        # its neighbours import as they do when the file runs as a script
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(code)
        except Exception as e:
            del sys.modules[module_name]
            raise ModelError(f"cannot import {path}: {_where(e, path)}") from None
    else:
        try:
            code = importlib.import_module(place)
        except ModuleNotFoundError as e:
            raise ModelError(f"cannot import {place}: no module named '{e.name}' (is it "
                             "installed?)") from None
        except Exception as e:
            raise ModelError(f"cannot import {place}: {type(e).__name__}: {e}") from None
    factory = getattr(code, name, None)
    if not callable(factory):
        known = [n for n, v in vars(code).items() if callable(v) and not n.startswith("_")]
        near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else \
            f" (it has {', '.join(sorted(known)[:8]) or 'nothing callable'})"
        raise ModelError(f"{place} has no factory '{name}'{hint}")
    try:
        module = factory()
    except Exception as e:
        raise ModelError(f"{name}() failed: {type(e).__name__}: {e}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{name}() returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def _where(error: Exception, path: Path) -> str:
    """``error`` in one line, with the line of ``path`` it was raised at."""
    line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    at = f" (line {line})" if line else ""
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    return f"{type(error).__name__}: {message}{at}"


def read_state_dict(path: Path, raw: bytes | None = None) -> dict[str, torch.Tensor]:
    """The state_dict in ``path`` (of its bytes ``raw`` where the caller has read them): a
    ``.safetensors`` file (read by the safetensors library: tensors and their names, no
    pickle), else one saved with ``torch.save`` (also under a 'state_dict' or 'model' key of
    a checkpoint), loaded with ``weights_only=True``: no code runs. Raises ModelError for a
    file that holds no state_dict."""
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ModelError(f"cannot read {path}: {e.strerror}") from None
    if path.name.lower().endswith(".safetensors"):
        data = _read_safetensors(path, raw)
    else:
        data = _read_pickled(path, raw)
    if not isinstance(data, dict) or not data or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()):
        raise ModelError(f"{path} holds no state_dict (a dict of tensors by name); save one "
                         "with torch.save(model.state_dict(), FILE)")
    return data


def _read_safetensors(path: Path, raw: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (its bytes ``raw``), on the CPU."""
    try:
        from safetensors.torch import load
    except ImportError:
        raise ModelError(f"{path.name} is a safetensors file: reading it needs the "
                         "safetensors package (pip install 'safetensors>=0.4')") from None
    try:
        return load(raw)
    except Exception as e:         # safetensors' SafetensorError, or an OSError
        raise ModelError(f"{path} is not a safetensors weights file ({first_line(e)})") \
            from None


def _read_pickled(path: Path, raw: bytes):
    """What ``torch.save`` wrote in ``path`` (its bytes ``raw``; plain data only), or a
    checkpoint's state_dict."""
    import io
    try:
        data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:
        if "Unsupported global" in str(e):      # pickled objects: a whole model, say
            raise ModelError(f"{path} is not a plain state_dict (it holds objects that "
                             "torch.load(weights_only=True) will not run); save "
                             "model.state_dict() instead") from None
        raise ModelError(f"{path} is not a PyTorch weights file ({type(e).__name__})") \
            from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    return data


def load_weights(module: torch.nn.Module, path: Path, raw: bytes | None = None) -> None:
    """Load the state_dict in ``path`` (of its bytes ``raw``, where read already) into
    ``module``; raise ModelMismatchError naming the first key that is missing, unexpected or
    of another shape."""
    given = read_state_dict(path, raw)
    expected = module.state_dict()
    if not set(given) & set(expected) and all(k.startswith("module.") for k in given):
        given = {k.removeprefix("module."): v for k, v in given.items()}   # DataParallel's
    shape = lambda t: "x".join(map(str, t.shape)) or "scalar"   # noqa: E731
    for key, value in expected.items():
        if key not in given:
            raise ModelMismatchError(f"{path.name} does not fit the model: it lacks "
                                     f"'{key}' ({shape(value)})")
        if given[key].shape != value.shape:
            raise ModelMismatchError(f"{path.name} does not fit the model: '{key}' is "
                                     f"{shape(given[key])} in it but {shape(value)} in the model")
    for key, value in given.items():
        if key not in expected:
            raise ModelMismatchError(f"{path.name} does not fit the model: it holds '{key}' "
                                     f"({shape(value)}), which the model does not have")
    module.load_state_dict(given)
