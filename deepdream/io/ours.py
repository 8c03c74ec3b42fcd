"""What is ours: the files and folders this project made, known by a mark it wrote into them
(never by their names alone), and the scratch folders where a process keeps what is not whole
yet -- so that no file of the user's, whatever its name, is ever taken, replaced or deleted
as ours.

- Bookkeeping JSON (``movie.json``, ``params.json``, ``job.json``) carries ``"made_by"``: this
  tool's name, what kind of file it is and the identity of the run that wrote it
  (``write_json``/``read_json``). A file of such a name without the mark is the user's:
  ``read_json`` raises ``NotOursError`` and the caller refuses the folder in one line, or
  works beside it.
- A ledger (``frames.tsv``) begins with a line that says the same (``ledger_header``).
- Whatever a process writes before it is whole (a frame, a movie, a folder of links) lives in
  its scratch folder ``.deepdream-scratch-HOST-PID-RANDOM`` inside the folder it belongs to,
  marked with who made it; a scratch folder whose process is gone (killed) is removed by the
  next process that makes one in the same folder. No name outside these folders is ever
  removed for matching a pattern.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import threading
from pathlib import Path

from ..errors import FramesError

log = logging.getLogger(__name__)

TOOL = "deepdream-video"
SCRATCH_PREFIX = ".deepdream-scratch-"
_SCRATCH_MARK = "owner.json"
_LEDGER_MAGIC = f"# {TOOL}"


class NotOursError(FramesError):
    """A file with one of our bookkeeping names that this project did not write (it has no
    mark of ours, or the mark of another kind of file)."""

    def __init__(self, path: Path, kind: str, other: str | None = None):
        self.path, self.kind, self.other = Path(path), kind, other
        what = (f"is the ledger of frames {other} by deepdream, not of frames {kind}" if other
                else "was not written by deepdream (it has no mark of ours)")
        super().__init__(f"{path} {what}: it is left as it is")

    def refusal(self, advice: str) -> FramesError:
        """The one line that refuses the folder holding the file, ending with ``advice``."""
        held = (f"frames {self.other} by deepdream (its {self.path.name} says so), not "
                f"frames {self.kind}" if self.other else
                f"a {self.path.name} that deepdream did not write")
        return FramesError(f"{self.path.parent} holds {held}: {advice}; nothing was changed")

    def __reduce__(self):                 # across processes (a Ray worker's error)
        return type(self), (self.path, self.kind, self.other)


def new_run_id() -> str:
    """A run's identity: random, so that two runs never share one."""
    return secrets.token_hex(8)


def mark(kind: str, run: str | None = None) -> dict:
    """The ``made_by`` value of a file of ``kind`` written by run ``run``."""
    return {"tool": TOOL, "kind": kind, "run": run}


def is_ours(data, kind: str) -> bool:
    """Whether ``data`` (a parsed JSON value) carries our mark for ``kind``."""
    made = data.get("made_by") if isinstance(data, dict) else None
    return isinstance(made, dict) and made.get("tool") == TOOL and made.get("kind") == kind


def run_of(data: dict) -> str | None:
    """The identity of the run that wrote ``data`` (a file of ours)."""
    return data["made_by"].get("run")


def write_json(path: str | Path, kind: str, data: dict, run: str | None = None) -> dict:
    """Write ``data`` to ``path`` (atomically) with our mark for ``kind`` and ``run``;
    returns what was written."""
    written = {**data, "made_by": mark(kind, run)}
    atomic_write_bytes(Path(path), (json.dumps(written, indent=2, sort_keys=True) + "\n")
                       .encode())
    return written


def read_json(path: str | Path, kind: str) -> dict | None:
    """The file of ours of ``kind`` at ``path``, or None if there is none. Raises
    NotOursError if a file is there that we did not write (not JSON, no mark, another kind),
    FramesError if it cannot be read."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise NotOursError(path, kind) from None
    except (OSError, UnicodeDecodeError) as e:
        if isinstance(e, UnicodeDecodeError):
            raise NotOursError(path, kind) from None
        raise FramesError(f"cannot read {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise NotOursError(path, kind) from None
    if not is_ours(data, kind):
        raise NotOursError(path, kind)
    return data


def ledger_header(kind: str, run: str) -> str:
    """The first line of a ledger of ours of ``kind`` (``extracted``, ``dreamed``)."""
    return f"{_LEDGER_MAGIC} {kind} {run}\n"


def read_ledger_header(line: str) -> tuple[str, str] | None:
    """(kind, run) of a ledger's first line, or None if it is not one of ours."""
    words = line.split()
    if len(words) == 4 and f"{words[0]} {words[1]}" == _LEDGER_MAGIC:
        return words[2], words[3]
    return None


# -- scratch folders ----------------------------------------------------------------------

class _Scratch:
    """This process's scratch folder in one folder, shared by its threads: made (and marked)
    when the first user comes, removed when the last one leaves."""

    def __init__(self, path: Path):
        self.path, self.users = path, 0


_SCRATCH_LOCK = threading.Lock()
_SCRATCHES: dict[tuple[int, str], _Scratch] = {}
_CLEARED: set[tuple[int, str]] = set()   # folders this process has cleared of dead scratch


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts, so does another
    user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_scratch(folder: Path) -> list[Path]:
    """The scratch folders in ``folder`` that a process of this host made and left when it
    was killed (its mark says so, and it no longer runs): ours, and no longer used."""
    if not folder.is_dir():
        return []
    host, found = socket.gethostname(), []
    for entry in os.scandir(folder):
        if not (entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir(follow_symlinks=False)):
            continue
        try:
            owner = json.loads((Path(entry.path) / _SCRATCH_MARK).read_text())
        except (OSError, ValueError):
            continue                       # no mark of ours: not ours to remove
        if is_ours(owner, "scratch") and owner.get("host") == host and \
                isinstance(owner.get("pid"), int) and not _running(owner["pid"]):
            found.append(Path(entry.path))
    return found


def remove_dead_scratch(folder: Path) -> None:
    """Remove the scratch folders that killed processes of ours left in ``folder``
    (``dead_scratch``: each marked as ours, its process gone)."""
    for left in dead_scratch(folder):
        log.info("removing %s, left by an interrupted run", left)
        shutil.rmtree(left, ignore_errors=True)


@contextlib.contextmanager
def scratch(folder: str | Path):
    """This process's scratch folder in ``folder`` for the block (made and marked on first
    use, after removing what killed runs of ours left there; removed with everything in it
    when the last block using it ends, also on an error)."""
    folder = Path(os.path.abspath(folder))
    key = (os.getpid(), str(folder))
    with _SCRATCH_LOCK:
        entry = _SCRATCHES.get(key)
        if entry is None:
            if key not in _CLEARED:          # once a folder: a run's folders hold many files
                remove_dead_scratch(folder)
                _CLEARED.add(key)
            name = f"{SCRATCH_PREFIX}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
            path = folder / name
            path.mkdir()
            owner = {"made_by": mark("scratch"), "host": socket.gethostname(),
                     "pid": os.getpid()}
            (path / _SCRATCH_MARK).write_text(json.dumps(owner))
            entry = _SCRATCHES[key] = _Scratch(path)
        entry.users += 1
    try:
        yield entry.path
    finally:
        with _SCRATCH_LOCK:
            entry.users -= 1
            if entry.users == 0:
                del _SCRATCHES[key]
                shutil.rmtree(entry.path, ignore_errors=True)


@contextlib.contextmanager
def temporary(path: str | Path):
    """The name under which this thread writes ``path`` until it is whole: in this process's
    scratch folder beside it (the same file system: it takes its place by a rename), with
    ``path``'s name and extension (ffmpeg chooses the container by it)."""
    path = Path(path)
    with scratch(path.parent) as folder:
        yield folder / f"{threading.get_ident()}-{path.name}"


def atomic_write_bytes(path: Path, data: bytes, before_replace=None) -> None:
    """Write ``data`` to ``path`` so that ``path`` is always either absent or whole: the bytes
    go to a ``temporary`` name in our scratch folder first. ``before_replace(tmp)`` is called
    once they are on disk there, before they take ``path``'s place."""
    path = Path(path)
    try:
        with temporary(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if before_replace is not None:
                before_replace(tmp)
            os.replace(tmp, path)
    except OSError as e:
        # a full disk names no file: the one the user will look for is ``path``
        raise OSError(e.errno, e.strerror, str(path)) from None


def put_in_place(finished: Path, path: Path, replace: bool = False) -> bool:
    """Give ``finished`` (a whole file of ours, in our scratch folder beside ``path``) the
    name ``path``: over a file there only if ``replace``; else by a hard link, which never
    replaces one, even one that appeared a moment ago (on a file system without hard links,
    the name is first taken by an empty file made only if no file has it, which ``finished``
    then replaces). Returns False, ``finished`` left where it is, if a file took ``path``
    first."""
    if replace:
        os.replace(finished, path)
        return True
    try:
        os.link(finished, path)
    except FileExistsError:
        return False
    except OSError:                   # a file system without hard links
        try:
            held = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        made = os.fstat(held)
        os.close(held)
        try:
            os.replace(finished, path)    # over the empty file just made: ours
        except BaseException:
            # the empty file just made, not left in your name (and only that file)
            with contextlib.suppress(OSError):
                if os.path.samestat(os.stat(path), made):
                    os.unlink(path)
            raise
        return True
    finished.unlink()
    return True


def write_new(path: Path, write, flag: str, overwrite: bool = False) -> None:
    """Make the file ``path`` by ``write(tmp)`` (which writes it, whole, at ``tmp``: a name
    in our scratch folder beside it, with ``path``'s extension), then give it its name
    (``put_in_place``: over a file there only with ``overwrite``). Raises FramesError if a
    file took the name meanwhile (what was written goes with the scratch)."""
    with temporary(path) as tmp:
        write(tmp)
        if not put_in_place(tmp, path, overwrite):
            raise FramesError(f"{path} appeared while it was made and is left as it is: give "
                              f"another {flag} (or --overwrite)")


def check_new_file(path: str | Path, flag: str, overwrite: bool = False,
                   what: str = "file") -> Path:
    """Refuse, in one line and before any work, a file to write (``flag``: how the user gave
    it, e.g. ``-o``) that cannot be written or would replace one unasked: a folder, a name
    whose folder is missing, is a file or cannot be written into (tried: our scratch folder
    made there and removed), an existing file without ``overwrite``. Returns ``path``.
    Raises FramesError."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise FramesError(f"{flag} {path} is a folder: name the {what} to write")
    if not folder.exists():
        raise FramesError(f"the folder of {flag} {path} does not exist: make it first")
    if not folder.is_dir():
        raise FramesError(f"{flag} {path} is under {folder}, which is a file, not a folder")
    if os.path.lexists(path) and not overwrite:
        raise FramesError(f"{path} already exists: give another {flag}, or --overwrite to "
                          "replace it")
    try:
        with scratch(folder):
            pass
    except OSError as e:
        raise FramesError(f"cannot write into {folder} ({e.strerror}): give {flag} in a "
                          "folder you can write to") from None
    return path
