"""The state of a dreaming run, which lives on disk: its settings, what decides its pixels
(``params.json``), the frames it has to dream, and whether an output folder may be continued.
A resumed run and a fresh run go through the same code."""
from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path

from .. import __version__
from ..errors import FramesError, ResumeError, SettingsError
from ..io import frames, scenes
from ..nets.registry import model_sha1, sha1_of
from ..progress import Display
from . import schedules


@dataclasses.dataclass
class DreamSettings:
    """Everything that decides how a frame is dreamed (and is checked when resuming)."""
    layers: tuple[str, ...] = schedules.CUSTOM_LOOP
    octaves: int = 4
    octave_scale: float = 1.5
    iterations: int = 5
    jitter: int = 32
    step_size: float = 1.5
    blend: float | str = 0.5
    preview: int = 0
    zoom: float = 1.0
    guide_image: str | None = None
    seed: int | None = None
    tile: int | None = None            # compute gradients in tiles of this size (4K frames)
    flow: str | None = None            # "dis" or "farneback": carry the dream along the motion
    flow_blend: float = 1.0            # weight of the warped previous dream detail
    flow_decay: float = 0.05           # share of the carried detail dropped each frame
    flow_smooth: float = 0.2           # pull of the fresh dream towards the carried one
    scene_cuts: bool = True            # start afresh where the shot changes
    scene_threshold: float = scenes.DEFAULT_THRESHOLD
    keep_colors: bool = False          # each dream keeps its frame's colours (luma only)

    def ascent_options(self) -> dict:
        """The keyword arguments of ``ascent.dream``/``dream_batch`` that these settings give
        (the layer, guide and seeds are the caller's)."""
        return dict(iter_n=self.iterations, octave_n=self.octaves,
                    octave_scale=self.octave_scale, jitter=self.jitter,
                    step_size=self.step_size, tile=self.tile)

    def check(self) -> None:
        """Raise a DeepDreamError naming the first setting that cannot work, before anything
        is loaded or written."""
        finite = all(math.isfinite(v) for v in (
            self.octave_scale, self.step_size, self.zoom, self.flow_blend, self.flow_decay,
            self.flow_smooth, self.scene_threshold))
        rules = [(finite, "-octs, -s, -z, --flow-blend, --flow-decay, --flow-smooth and "
                          "--scene-threshold take finite numbers (not inf or nan)"),
                 (self.octaves >= 1, "-oct/--octaves must be 1 or more"),
                 (self.octave_scale >= 1, "-octs/--octavescale must be 1 or more"),
                 (self.iterations >= 1, "-itr/--iterations must be 1 or more"),
                 (self.jitter >= 0, "-j/--jitter must be 0 or more"),
                 (self.step_size > 0, "-s/--stepsize must be more than 0"),
                 (self.preview >= 0, "-p/--preview must be a width in pixels, or 0 for none"),
                 (self.zoom > 0, "-z/--zoom must be more than 0"),
                 (self.tile is None or self.tile >= 1, "--tile must be 1 or more pixels"),
                 (0 <= self.flow_decay <= 1, "--flow-decay must be from 0 to 1"),
                 (0 <= self.flow_smooth <= 1, "--flow-smooth must be from 0 to 1"),
                 (self.flow_blend >= 0, "--flow-blend must be 0 or more"),
                 (0 <= self.scene_threshold <= 255, "--scene-threshold must be from 0 to 255"),
                 (self.seed is None or 0 <= self.seed < 2 ** 32,
                  "--seed must be from 0 to 4294967295"),
                 (len(self.layers) >= 1, "-l/--layers needs at least one layer")]
        for ok, message in rules:
            if not ok:
                raise SettingsError(message)
        if self.guide_image and not Path(self.guide_image).is_file():
            raise FramesError(f"guide image not found: {self.guide_image}")
        from ..dreamer.objectives import parse, plain_layer
        terms = [parse(spec) for spec in self.layers]       # raises for one it cannot read
        if self.guide_image and any(plain_layer(t) is None for t in terms):
            raise SettingsError("a guide image dreams towards plain layers (-l LAYER), not "
                                "towards objective terms (LAYER:C, W*TERM+W*TERM)")


@dataclasses.dataclass
class DreamReport:
    dreamed: int
    skipped: int
    output: Path


@dataclasses.dataclass
class RunOptions:
    """Where and how stage 2 runs; of these, the engine and precision change the pixels
    (and are recorded in params.json)."""
    device: str = "auto"               # cpu, cuda, cuda:N, mps, auto
    engine: str = "torch"              # or "caffe": a real pycaffe
    precision: str = "fp32"            # bf16, fp16
    image_type: str | None = None      # png or jpg: the input frames' and the output's type
    start_frame: int | None = None
    end_frame: int | None = None
    overwrite: bool = False            # dream again over a run made otherwise
    progress: bool | Display = True    # see deepdream.progress
    batch_segments: int = 1            # segments dreamed in one batch
    warmup: int = 10                   # frames a segment dreams before its first
    ray: str | None = None             # "local", "auto" or ray://host:port
    workers: int = 2
    segment_length: int = 100
    retries: int = 3                   # of a segment whose Ray worker dies
    threads: int | None = None         # torch's CPU threads (None: chosen as it runs)

    def check(self) -> None:
        """Raise a DeepDreamError naming the first option that cannot work, before anything
        is loaded or written."""
        first, last = self.start_frame, self.end_frame
        rules = [(first is None or first >= 1, "-sf/--start_frame is a frame number: 1 or "
                                               "more"),
                 (last is None or last >= 1, "-ef/--end_frame is a frame number: 1 or more"),
                 (first is None or last is None or first <= last,
                  f"-sf/--start_frame {first} is after -ef/--end_frame {last}"),
                 (self.batch_segments >= 1, "--batch-segments must be 1 or more"),
                 (self.warmup >= 0, "--warmup must be 0 or more"),
                 (self.workers >= 1, "--workers must be 1 or more"),
                 (self.segment_length >= 1, "--segment-length must be 1 or more"),
                 (self.retries >= 0, "--retries must be 0 or more"),
                 (self.threads is None or self.threads >= 1, "--threads must be 1 or more")]
        for ok, message in rules:
            if not ok:
                raise SettingsError(message)
        if self.ray and (self.engine != "torch" or self.batch_segments != 1):
            raise SettingsError("--ray dreams with the torch engine, one segment at a time "
                                "on each worker: leave out --engine caffe and "
                                "--batch-segments")


_PARAMS_WRITE = threading.Lock()

# What decides the pixels of a run, and so must match for a run to be continued: the dream
# settings, the model, the engine and its arithmetic, and the frames it dreams on.
_RUN_IDENTITY = ("dream", "model_sha1", "model_code_sha1", "preprocess", "image_type",
                 "engine", "precision", "input", "input_first_frame")


def model_identity(model) -> dict:
    """What params.json records of ``model``: its ``identity()``, or for a caffemodel's path
    that path and its sha1 (None: nothing)."""
    if model is None:
        return {"model": None, "model_sha1": None}
    if hasattr(model, "identity"):
        return model.identity()
    return {"model": str(Path(model).resolve()), "model_sha1": model_sha1(model)}


def _check_params(output: Path, old: dict | None, params: dict) -> None:
    """Raise ResumeError, naming what changed, if ``old`` (the params.json in ``output``)
    records a run that ``params`` would not continue."""
    if old is None:
        return
    # a key that an earlier version did not record is not compared; a dream setting it did
    # not know had its default then
    if isinstance(old.get("dream"), dict):
        defaults = dataclasses.asdict(DreamSettings())
        old = dict(old, dream={**{k: defaults.get(k) for k in params["dream"]}, **old["dream"]})
    changed = [k for k in _RUN_IDENTITY if k in old and old.get(k) != params.get(k)]
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


@dataclasses.dataclass
class Job:
    """A dreaming run as it stands on disk: its frames, its output folder and its params."""
    input_dir: Path
    output_dir: Path
    available: dict[int, Path]     # input frames by number
    ext: str                       # type of the dreamed frames
    todo: list[int]                # the frame numbers of this run, in order
    params: dict
    redo: bool                     # --overwrite: frames already written are dreamed again
    done: set[int] = dataclasses.field(default_factory=set)   # frames of ours already there
    started: bool = False          # params.json is written: the output folder is this run's

    def output(self, number: int) -> Path:
        """The path of dreamed frame ``number``."""
        return self.output_dir / frames.frame_name(number, self.ext)

    def save_frame(self, number: int, image) -> None:
        """Write dreamed frame ``number`` and record it in the folder's ledger."""
        frames.write_frame(self.output(number), image, ledger=frames.Ledger(self.output_dir))

    def save_params(self) -> None:
        """Write params.json (with the scene cuts found so far), once the run has begun."""
        if self.started:
            with _PARAMS_WRITE:      # the writer thread and the main thread both save it
                frames.write_json(self.output_dir / frames.PARAMS, self.params)


def _our_frames(output_dir: Path, old: dict | None) -> list[Path]:
    """The numbered frames in ``output_dir`` that a run of ours made: those its ledger
    vouches for; a run of an earlier version, which kept no ledger, made the frames named
    as it names them (eight digits, its image type). Raises FramesError naming the numbered
    pictures that no run of ours made: they are never read as dreams nor deleted."""
    numbered = frames.every_frame(output_dir)
    ledger = frames.Ledger(output_dir)
    if ledger.exists() or (old or {}).get("ledger"):
        ours = ledger.ours(numbered)
    elif old is not None:        # an earlier version's run
        ext = old.get("image_type")
        ours = [path for path in numbered if path.name == frames.frame_name(
            int(path.stem), ext)]
    else:
        ours = []
    foreign = sorted(set(numbered) - set(ours))
    if foreign:
        names = ", ".join(path.name for path in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise FramesError(f"{output_dir} holds numbered pictures that no dreaming run of ours "
                          f"made ({names}{more}): dream into an empty folder, or move them "
                          "away; nothing was changed")
    return ours


def prepare(input_dir: str | Path, output_dir: str | Path, settings: DreamSettings,
            engine: str, device: str, precision: str, model=None,
            options: RunOptions | None = None) -> Job:
    """List the frames of a run and check that ``output_dir`` holds nothing but a run of
    ours made with the same settings (unless ``options.overwrite``, which removes that run's
    frames, and only those). ``engine`` is the engine's name in params.json
    (``Net.recorded_name``), ``device`` and ``precision`` those of its net; ``model`` is the
    model's object (``identity()``) or a caffemodel's path; ``options`` choose the frames
    (image type, first and last). Its params.json is written just before its first frame
    (``Job.started``).
    Raises FramesError for a folder that holds pictures of anyone else's, ResumeError for a
    run of ours made otherwise."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    options = options or RunOptions()
    image_type, overwrite = options.image_type, options.overwrite
    start_frame, end_frame = options.start_frame, options.end_frame
    if frames.same_path(input_dir, output_dir):
        raise FramesError(f"the output folder {output_dir} is the input folder: the dreams "
                          "would replace the frames; give another -o")
    available = frames.list_frames(input_dir, image_type)
    if not available and image_type:
        # the original needed -it for the frames it read and wrote; frames of another type
        # are read all the same, and the dreamed frames are written as -it asks
        available = frames.list_frames(input_dir)
    if not available:
        raise FramesError(f"no numbered frames (00000001.png, ...) in {input_dir}")
    ext = image_type or available[next(iter(available))].suffix.lstrip(".").lower()
    first = start_frame if start_frame is not None else next(iter(available))
    last = end_frame if end_frame is not None else next(reversed(available))
    todo = [n for n in available if first <= n <= last]
    if not todo:
        raise FramesError(f"no frames numbered {first} to {last} in {input_dir}")
    settings.check()
    first_path = available[next(iter(available))]
    params = {"version": __version__, "engine": engine, "device": device,
              "precision": precision, "ledger": frames.LEDGER,
              "input": str(input_dir.resolve()), "image_type": ext,
              "input_first_frame": {"name": first_path.name,
                                    "size": first_path.stat().st_size,
                                    "sha1": sha1_of(first_path)},
              **model_identity(model),
              "dream": dict(dataclasses.asdict(settings), layers=list(settings.layers),
                            guide_sha1=sha1_of(settings.guide_image)
                            if settings.guide_image else None)}
    output_dir.mkdir(parents=True, exist_ok=True)
    old = frames.read_json(output_dir / frames.PARAMS)
    ours = _our_frames(output_dir, old)
    if not overwrite:
        _check_params(output_dir, old, params)
    frames.remove_stale_parts(output_dir)
    if overwrite and old is not None:
        # the folder holds a run of ours made otherwise: none of its frames may stay
        # among the new ones (also after the new run's last frame)
        for path in ours:
            path.unlink()
        frames.Ledger(output_dir).path.unlink(missing_ok=True)
        (output_dir / frames.PARAMS).unlink()
        old, ours = None, []
    params["scene_cuts"] = sorted((old or {}).get("scene_cuts", []))
    done = {int(path.stem) for path in ours if path.suffix.lstrip(".").lower() == ext}
    return Job(input_dir, output_dir, available, ext, todo, params, overwrite, done,
               started=old is not None)
