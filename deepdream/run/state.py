"""The state of a dreaming run, which lives on disk: the input frames it dreams
(``InputFrames``), what decides its pixels (``params.json``), the frames of ours already in its
output folder, and whether that folder may be continued (``open_output``). A resumed run and a
fresh run go through the same code."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from .. import __version__
from ..errors import FramesError, ResumeError
from ..io import frames, ours
from ..nets.registry import sha1_of
from .settings import DreamSettings

_PARAMS_WRITE = threading.Lock()

# What decides the pixels of a run, and so must match for a run to be continued: the dream
# settings, the model, the engine and its arithmetic, and the frames it dreams on.
RUN_IDENTITY = ("dream", "model_sha1", "model_code_sha1", "preprocess", "image_type",
                "engine", "precision", "input", "input_first_frame")
INPUT_IDENTITY = ("image_type", "input", "input_first_frame")     # known once frames are listed


@dataclasses.dataclass
class InputFrames:
    """The numbered frames a run reads, listed once: ``available`` (every one, by number, in
    numeric order), ``todo`` (those of the run: -sf to -ef), the type of the dreamed frames."""
    folder: Path
    available: dict[int, Path]
    todo: list[int]
    ext: str

    @classmethod
    def listed(cls, folder: str | Path, image_type: str | None = None,
               start: int | None = None, end: int | None = None) -> InputFrames:
        """The frames of ``folder`` (of ``image_type`` where it holds several types; the
        dreamed frames are written as it says), those from ``start`` to ``end``. Raises
        FramesError, before any work, for a folder without frames, an empty (0-byte) frame
        and a first or last frame past the folder's frames."""
        folder = Path(folder)
        available = frames.list_frames(folder, image_type)
        if not available and image_type:
            # the original needed -it for the frames it read and wrote; frames of another
            # type are read all the same, and the dreamed frames are written as -it asks
            available = frames.list_frames(folder)
        if not available:
            raise FramesError(f"no numbered frames (00000001.png, ...) in {folder}")
        numbers = list(available)
        if start is not None and start > numbers[-1]:
            raise FramesError(f"-sf/--start_frame {start} is past the last frame of {folder} "
                              f"({numbers[-1]})")
        if end is not None and end < numbers[0]:
            raise FramesError(f"-ef/--end_frame {end} is before the first frame of {folder} "
                              f"({numbers[0]})")
        first = start if start is not None else numbers[0]
        last = end if end is not None else numbers[-1]
        todo = [n for n in numbers if first <= n <= last]
        if not todo:
            raise FramesError(f"no frames numbered {first} to {last} in {folder}")
        empty = next((available[n] for n in todo if available[n].stat().st_size == 0), None)
        if empty is not None:
            raise FramesError(f"cannot read frame {empty}: it is empty (0 bytes); nothing was "
                              "dreamed")
        ext = image_type or available[numbers[0]].suffix.lstrip(".").lower()
        return cls(folder, available, todo, ext)

    @property
    def first(self) -> Path:
        """The folder's first frame (what params.json records of the input)."""
        return next(iter(self.available.values()))


@dataclasses.dataclass
class RunState:
    """A dreaming run as it stands on disk: its input frames, its output folder, its params
    and the frames of ours already there."""
    input: InputFrames
    output_dir: Path
    params: dict
    run: str                       # the run's identity, in params.json and the ledger
    done: set[int] = dataclasses.field(default_factory=set)   # frames of ours already there
    started: bool = False          # params.json is written: the output folder is this run's

    def __post_init__(self):
        self.ledger = frames.Ledger(self.output_dir, "dreamed")
        self.begun = False             # begin() was handed to the writer by this process

    @property
    def input_dir(self) -> Path:
        return self.input.folder

    @property
    def available(self) -> dict[int, Path]:
        return self.input.available

    @property
    def todo(self) -> list[int]:
        return self.input.todo

    @property
    def ext(self) -> str:
        return self.input.ext

    def output(self, number: int) -> Path:
        """The path of dreamed frame ``number``."""
        return self.output_dir / frames.frame_name(number, self.ext)

    def save_frame(self, number: int, image) -> None:
        """Write dreamed frame ``number`` and record it in the folder's ledger."""
        frames.write_frame(self.output(number), image, ledger=self.ledger)

    def begin(self) -> None:
        """Write params.json and start the ledger (where they are not there yet), before the
        run's first frame: no frame of ours is ever on disk without them."""
        self.started = True
        self.save_params()
        if not self.ledger.path.exists():
            try:
                self.ledger.start(self.run)
            except FileExistsError:      # another worker of this run (Ray) began it
                pass

    def save_params(self) -> None:
        """Write params.json (with the scene cuts found so far), once the run has begun."""
        if self.started:
            with _PARAMS_WRITE:      # the writer thread and the main thread both save it
                ours.write_json(self.output_dir / frames.PARAMS, "params", self.params,
                                self.run)


def run_params(settings: DreamSettings, identity: dict, engine: str, device: str,
               precision: str, input: InputFrames | None) -> dict:
    """What params.json records of a run: everything that decides its pixels (``input``
    None: all but the input frames, as the plan of a whole job knows it before they are
    extracted)."""
    params = {"version": __version__, "engine": engine, "device": device,
              "precision": precision, **identity, "dream": dream_params(settings)}
    if input is not None:
        first = input.first
        params.update(input=str(input.folder.resolve()), image_type=input.ext,
                      input_first_frame={"name": first.name, "size": first.stat().st_size,
                                         "sha1": sha1_of(first)})
    return params


def dream_params(settings: DreamSettings) -> dict:
    """What params.json records of the dream's settings (its "dream")."""
    return dict(dataclasses.asdict(settings), layers=list(settings.layers),
                guide_sha1=sha1_of(settings.guide_image) if settings.guide_image else None)


def check_resume(output_dir: str | Path, settings: DreamSettings) -> None:
    """``check_params`` of the dream's settings alone against a run of ours in
    ``output_dir``, before the net is loaded (the model and engine are compared when the
    run opens its output, ``open_output``)."""
    output_dir = Path(output_dir)
    if output_dir.is_dir():
        check_params(output_dir, read_params(output_dir), {"dream": dream_params(settings)},
                     ("dream",))


def check_params(output: Path, old: dict | None, params: dict,
                 keys: tuple[str, ...] = RUN_IDENTITY) -> None:
    """Raise ResumeError, naming what changed, if ``old`` (the params.json in ``output``)
    records a run that ``params`` would not continue (compared on ``keys``)."""
    if old is None:
        return
    # a dream setting that an earlier version did not record had its default then
    if isinstance(old.get("dream"), dict):
        defaults = dataclasses.asdict(DreamSettings())
        old = dict(old, dream={**{k: defaults.get(k) for k in params["dream"]}, **old["dream"]})
    changed = [k for k in keys if k in old and old.get(k) != params.get(k)]
    if changed:
        details = []
        for key in changed:
            a, b = old.get(key), params.get(key)
            if isinstance(a, dict) and isinstance(b, dict):
                details += [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                            if a.get(k) != b.get(k)]
            else:
                details.append(f"{key}: {a!r} -> {b!r}")
        raise ResumeError(f"{output} holds frames dreamed with other parameters "
                          f"({'; '.join(details)}); use --overwrite to dream them again, or "
                          "another output folder")


def read_params(output_dir: Path) -> dict | None:
    """The params.json of ours in ``output_dir`` (None: none). Raises FramesError for one
    that deepdream did not write."""
    try:
        return ours.read_json(output_dir / frames.PARAMS, "params")
    except ours.NotOursError as e:
        raise refuse_not_ours(e) from None


def refuse_not_ours(error: ours.NotOursError) -> FramesError:
    """The one line that refuses an output folder holding a bookkeeping file not of a
    dreaming run of ours."""
    return error.refusal("dream into another folder, or move it away")


def _claim(output_dir: Path, ledger: frames.Ledger) -> tuple[dict | None, str | None,
                                                              list[Path]]:
    """(its params.json, its ledger's run, its frames) of the run of ours in
    ``output_dir``. Raises FramesError for a params.json or frames.tsv that is not ours, or
    numbered pictures that no run of ours made: nothing of them is read as ours."""
    old = read_params(output_dir)
    try:
        ledger_run = ledger.run()
    except ours.NotOursError as e:
        raise refuse_not_ours(e) from None
    mine = ledger.only_ours(frames.every_frame(output_dir), "dreaming run of ours",
                            "dream into an empty folder, or move them away")
    return old, ledger_run, mine


def check_output(output_dir: str | Path, input: InputFrames) -> None:
    """Refuse ``output_dir`` for dreams of ``input``, reading only (said before the net is
    loaded): the input folder itself, or a folder holding anything not of a dreaming run of
    ours. Raises FramesError."""
    output_dir = Path(output_dir)
    if frames.same_path(input.folder, output_dir):
        raise FramesError(f"the output folder {output_dir} is the input folder: the dreams "
                          "would replace the frames; give another -o")
    if output_dir.is_dir():
        _claim(output_dir, frames.Ledger(output_dir, "dreamed"))


def open_output(output_dir: str | Path, input: InputFrames, params: dict,
                overwrite: bool = False) -> RunState:
    """The run of ``params`` (``run_params``) on ``input`` in ``output_dir``, once it is
    checked that the folder holds nothing but a run of ours made with the same params
    (``overwrite``: a run of ours made otherwise, whose frames, and only those, are removed
    first; a run of ours made with the same params is continued, with or without it). Its
    params.json is written just before its first frame (``RunState.begin``).
    (``check_output`` has refused the input folder, before the net was loaded.)
    Raises FramesError for a folder that holds pictures or bookkeeping files of anyone
    else's, ResumeError for a run of ours made otherwise."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    ledger = frames.Ledger(output_dir, "dreamed")
    old, ledger_run, mine = _claim(output_dir, ledger)
    # a ledger of another run of ours (its params.json gone): frames of unknown settings
    orphan = ledger_run is not None and (old is None or ledger_run != ours.run_of(old))
    try:
        check_params(output_dir, old, params)
        if orphan:
            raise ResumeError(f"{output_dir} holds frames of a run of ours whose params.json "
                              "is gone: use --overwrite to dream them again, or another "
                              "output folder")
        otherwise = False
    except ResumeError:
        if not overwrite:
            raise
        otherwise = True              # --overwrite: a run of ours made otherwise goes
    if otherwise:
        # the folder holds a run of ours made otherwise: none of its frames may stay
        # among the new ones (also after the new run's last frame)
        for path in mine:
            path.unlink()
        ledger.path.unlink(missing_ok=True)
        (output_dir / frames.PARAMS).unlink(missing_ok=True)
        old, mine = None, []
    params = dict(params, scene_cuts=sorted((old or {}).get("scene_cuts", [])))
    done = {int(path.stem) for path in mine if path.suffix.lstrip(".").lower() == input.ext}
    run = ours.run_of(old) if old is not None else ours.new_run_id()
    return RunState(input, output_dir, params, run, done, started=old is not None)
