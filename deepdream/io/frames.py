"""Frame folders: numbered frames in numeric order, RGB reading of any image mode, atomic
writes, and the small JSON files that carry a run's metadata between the three stages."""
from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import FramesError, ResumeError
from . import ours
from .ours import NotOursError, atomic_write_bytes

FRAME_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp")
_FRAME_NAME = re.compile(r"(\d+)\.([A-Za-z]+)")
MOVIE_INFO = "movie.json"   # written by stage 1 into its frame folder
PARAMS = "params.json"      # written by stage 2 into its output folder
LEDGER = "frames.tsv"       # written by stages 1 and 2: every frame they wrote (see Ledger)
_PIL_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "tif": "TIFF",
                "tiff": "TIFF", "webp": "WEBP"}


def frame_name(number: int, ext: str) -> str:
    """The file name of frame ``number``: eight digits, as the original scripts wrote them."""
    return f"{number:08d}.{ext}"


def list_frames(folder: str | Path, ext: str | None = None,
                choose: str = "choose one with -it/--image_type") -> dict[int, Path]:
    """The numbered frames in ``folder`` as {frame number: path}, sorted by number (not by
    name: 100 comes after 99 whatever the padding). Only names made of digits and an image
    extension count; ``ext`` keeps one extension.

    Raises FramesError if the folder is missing or holds frames of several extensions and
    ``ext`` does not choose (the message ends with ``choose``: how the caller's user picks
    one).
    """
    found = _scan(folder)
    if ext is not None:
        found = {e: paths for e, paths in found.items() if e == ext.lower()}
    if len(found) > 1:
        raise FramesError(f"{folder} holds frames of several types ({', '.join(sorted(found))})"
                          f"; {choose}")
    frames = next(iter(found.values()), {})
    return dict(sorted(frames.items()))


def every_frame(folder: str | Path) -> list[Path]:
    """Every numbered frame in ``folder``, of every image type (what a run of ours wrote
    there and may replace). Raises FramesError if the folder is missing."""
    return [path for paths in _scan(folder).values() for path in paths.values()]


def _scan(folder: str | Path) -> dict[str, dict[int, Path]]:
    """The numbered frames in ``folder`` by extension, then number: one listing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FramesError(f"frame folder not found: {folder}")
    found: dict[str, dict[int, Path]] = {}
    for entry in os.scandir(folder):
        match = _FRAME_NAME.fullmatch(entry.name)
        if match and entry.is_file() and match[2].lower() in FRAME_EXTENSIONS:
            found.setdefault(match[2].lower(), {})[int(match[1])] = Path(entry.path)
    return found


def read_frame(path: str | Path, width: int | None = None) -> np.ndarray:
    """A frame as H x W x 3 uint8 RGB, whatever its mode (gray, RGBA, palette, 16-bit),
    optionally resized to ``width`` keeping its aspect ratio.

    Raises FramesError naming the file if it is missing, empty or not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit gray: scale to 8 bits rather than clip (PIL's convert would clip)
                array = np.asarray(img, dtype=np.float64)
                peak = 65535.0 if img.mode.startswith("I;16") or array.max() > 255 else 255.0
                img = Image.fromarray(np.round(array * (255.0 / peak)).astype(np.uint8))
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and
                                                     "transparency" in img.info):
                # transparent pixels over black, as a video player shows them
                rgba = img.convert("RGBA")
                img = Image.new("RGB", rgba.size)
                img.paste(rgba, mask=rgba.getchannel("A"))
            img = img.convert("RGB")
            if width and width != img.width:
                height = max(1, int(round(img.height * width / float(img.width))))
                img = img.resize((width, height), Image.LANCZOS)
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise FramesError(f"frame not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise FramesError(f"cannot read frame {path}: it is empty or not an image "
                          f"({type(e).__name__})") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """The (width, height) of an image file, read from its header. Raises FramesError."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise FramesError(f"cannot read frame {path}: it is empty or not an image "
                          f"({type(e).__name__})") from None


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round (the original truncated, darkening every frame by half a level) and clip."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def picture_format(path: str | Path) -> str:
    """PIL's format for a picture named ``path`` (by its extension). Raises FramesError for
    a name of no picture type we write."""
    fmt = _PIL_FORMATS.get(Path(path).suffix.lstrip(".").lower())
    if fmt is None:
        raise FramesError(f"{path}: a picture's name must end in "
                          f"{', '.join('.' + e for e in _PIL_FORMATS)}")
    return fmt


def check_new_picture(path: str | Path, movie: str | Path, flag: str,
                      overwrite: bool = False) -> Path:
    """Refuse, in one line, a picture to write (``flag``: how the user gave it) that is of
    no type we write, is ``movie`` itself, or could not be written or would replace a file
    unasked (``ours.check_new_file``). Returns it as a Path. Raises FramesError."""
    picture_format(path)
    if same_path(path, movie):
        raise FramesError(f"{flag} {path} is the movie itself: give another name")
    return ours.check_new_file(path, flag, overwrite, "picture")


def write_frame(path: str | Path, image: np.ndarray, jpeg_quality: int = 95,
                ledger: Ledger | None = None) -> None:
    """Save an H x W x 3 image (float or uint8) atomically; its type from the extension.
    With a ``ledger``, the frame is recorded there before it takes its name."""
    import io

    path = Path(path)
    fmt = picture_format(path)
    buffer = io.BytesIO()
    options = {"quality": jpeg_quality} if fmt == "JPEG" else {}
    Image.fromarray(to_uint8(image)).save(buffer, fmt, **options)
    data = buffer.getvalue()
    record = None if ledger is None else (lambda tmp: ledger.record(path.name, tmp, data))
    atomic_write_bytes(path, data, record)


class Ledger:
    """What a run of ours wrote into a folder (stage 1 its frames, stage 2 its dreams):
    ``frames.tsv``, our header (``ours.ledger_header``: the kind of run and its identity),
    then a line per frame (name, size, modification time, sha1 or '-'), appended before the
    frame takes its name. A numbered picture in the folder is the run's own only if the
    ledger's last line for its name has its size and its modification time (or, for a copy
    that lost its time, its sha1): a user's pictures, or another stage's frames, are never
    taken for ours. A ``frames.tsv`` without our header is the user's: never read as ours,
    never written to (``run`` raises NotOursError)."""

    _write = threading.Lock()      # one line at a time from this process's threads

    def __init__(self, folder: str | Path, kind: str):
        self.path, self.kind = Path(folder) / LEDGER, kind

    def run(self) -> str | None:
        """The identity of the run of ours this ledger records (None: no ledger). Raises
        NotOursError if ``frames.tsv`` is not a ledger of ours of this kind."""
        try:
            with open(self.path) as f:
                first = f.readline()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError):
            raise NotOursError(self.path, self.kind) from None
        header = ours.read_ledger_header(first)
        if header is None or header[0] != self.kind:
            raise NotOursError(self.path, self.kind, header and header[0])
        return header[1]

    def start(self, run: str) -> None:
        """Begin a new ledger for run ``run`` (there must be none: a run of ours removes its
        own before)."""
        with open(self.path, "x") as f:
            f.write(ours.ledger_header(self.kind, run))
            f.flush()
            os.fsync(f.fileno())

    def record(self, name: str, written: Path, data: bytes | None = None) -> None:
        """Note frame ``name``, on disk at ``written`` (its sha1 from ``data``, its bytes,
        where given)."""
        import hashlib
        stat = written.stat()
        sha1 = hashlib.sha1(data).hexdigest() if data is not None else "-"
        line = f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\t{sha1}\n"
        with self._write, open(self.path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def entries(self) -> dict[str, tuple[int, int, str]]:
        """{name: (size, mtime_ns, sha1)} of the last line for each name."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise FramesError(f"cannot read {self.path}: {e.strerror}") from None
        found = {}
        for line in text.splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) == 4 and fields[1].isdigit() and fields[2].isdigit():
                found[fields[0]] = (int(fields[1]), int(fields[2]), fields[3])
        return found

    def only_ours(self, paths: list[Path], who: str, advice: str) -> list[Path]:
        """``paths`` (the numbered frames in the ledger's folder), once every one is vouched
        for (``ours``; none without a ledger). Raises FramesError naming those that no
        ``who`` (a run of this kind) made: they are never read as ours nor deleted."""
        mine = self.ours(paths) if self.path.exists() else []
        foreign = sorted(set(paths) - set(mine))
        if foreign:
            names = ", ".join(path.name for path in foreign[:3])
            more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            raise FramesError(f"{self.path.parent} holds numbered pictures that no {who} "
                              f"made ({names}{more}): {advice}; nothing was changed")
        return mine

    def ours(self, paths: list[Path]) -> list[Path]:
        """Those of ``paths`` (files in the ledger's folder) that the ledger vouches for."""
        entries, vouched = self.entries(), []
        for path in paths:
            entry = entries.get(path.name)
            if entry is None:
                continue
            stat = path.stat()
            if stat.st_size == entry[0] and (stat.st_mtime_ns == entry[1] or
                                             (entry[2] != "-" and sha1_of(path) == entry[2])):
                vouched.append(path)
        return vouched


def sha1_of(path: str | Path) -> str:
    """The sha1 of a file's bytes, read in blocks."""
    import hashlib
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file or folder (links resolved)."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


@contextlib.contextmanager
def new_folder(folder: Path):
    """``folder`` made (with its missing parents) for the block; if the block raises, the
    folders made here are removed again where still empty: a refusal or a failure leaves no
    folder behind, and a folder that was there before is never touched."""
    made = []
    missing = Path(os.path.abspath(folder))
    while not missing.exists():
        made.append(missing)                 # deepest first
        missing = missing.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in made:
            try:
                path.rmdir()
            except OSError:                  # not empty: something is in it, keep it
                break
        raise


@contextlib.contextmanager
def folder_lock(folder: str | Path):
    """Hold ``folder``'s lock (an OS lock on the folder itself, which a crash or kill -9
    releases with the process, and which leaves no file behind) while the block runs: one
    run at a time per output folder. A folder that the block's failure leaves as this made
    it, new and empty, is removed again (``new_folder``). Raises ResumeError at once if
    another process holds the lock, FramesError if ``folder`` is a file."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FramesError(f"{folder} is a file, not a folder")
    with new_folder(folder), _locked(folder):
        yield


def is_locked(folder: str | Path) -> bool:
    """Whether a run holds ``folder``'s lock (``folder_lock``) now."""
    try:
        with _locked(Path(folder)):
            return False
    except ResumeError:
        return True
    except OSError:               # not there, or not ours to open: nobody runs in it
        return False


@contextlib.contextmanager
def _locked(folder: Path):
    try:
        import fcntl
    except ImportError:          # Windows: no lock
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResumeError(f"another run is dreaming into {folder}: wait for it to "
                              "finish, or stop it first") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def write_json(path: str | Path, data: dict) -> None:
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | Path) -> dict | None:
    """The JSON object in ``path``, or None if there is none."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise FramesError(f"cannot read {path}: {e}") from None


class BackgroundIO:
    """Frames read ahead and written behind in background threads, so that the device that
    dreams never waits for PNG decoding or encoding. ``read`` returns a Future; ``write``
    returns at once unless ``backlog`` writes are still pending (memory stays bounded), and
    an error of an earlier write is raised by the next ``write`` or by ``close``, which waits
    for every pending write: a frame that was handed over is on disk when the run ends,
    also on Ctrl-C."""

    def __init__(self, readers: int = 2, backlog: int = 4):
        from concurrent.futures import ThreadPoolExecutor

        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="deepdream-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="deepdream-write")
        self._writes: list = []
        self._backlog = backlog

    def read(self, load, *args):
        """``load(*args)`` in a reader thread: a Future of its result."""
        return self._readers.submit(load, *args)

    def write(self, save, *args) -> None:
        """``save(*args)`` in the writer thread, after the writes handed over before it."""
        pending = []
        for future in self._writes:
            if future.done():
                future.result()          # raises an earlier write's error
            else:
                pending.append(future)
        self._writes = pending
        self._writes.append(self._writer.submit(save, *args))
        while len(self._writes) > self._backlog:
            self._writes.pop(0).result()

    def close(self) -> None:
        """Wait for every pending write (raising the first error), drop unread reads."""
        try:
            while self._writes:
                self._writes.pop(0).result()
        finally:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=False, cancel_futures=True)
