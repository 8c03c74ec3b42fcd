"""The settings of a dreaming run: ``DreamSettings`` (what decides how a frame is dreamed)
and ``RunOptions`` (where and how stage 2 runs), with their defaults (the command line reads
them from here) and the checks of their values alone (``check``: made once, by the plan)."""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

from ..errors import SettingsError
from ..io import scenes
from ..progress import Display
from . import schedules

MAX_OCTAVES = 100         # more than any dream needs: -oct beyond it is refused by arithmetic

# The numeric settings that may follow keyframes or the sound (``schedules.parse``), with
# their flags and ranges: field -> (flag, whole numbers, least, most, more than)
SCHEDULED = {
    "octaves": ("-oct/--octaves", True, 1, MAX_OCTAVES, None),
    "octave_scale": ("-octs/--octavescale", False, 1, None, None),
    "iterations": ("-itr/--iterations", True, 1, None, None),
    "jitter": ("-j/--jitter", True, 0, None, None),
    "step_size": ("-s/--stepsize", False, None, None, 0),
    "blend": ("-b/--blend", False, 0, 1, None),
    "zoom": ("-z/--zoom", False, None, None, 0),
    "flow_blend": ("--flow-blend", False, 0, None, None),
}
BLEND_WORDS = ("loop", "random")          # the original's moving blends (schedules)


@dataclasses.dataclass
class DreamSettings:
    """Everything that decides how a frame is dreamed (and is checked when resuming). Each
    setting of SCHEDULED is a number, or the text of a schedule (keyframes, the sound:
    ``schedules.parse``) that ``timeline.Timeline`` turns into each frame's number."""
    layers: tuple[str, ...] = schedules.CUSTOM_LOOP
    octaves: int | str = 4
    octave_scale: float | str = 1.5
    iterations: int | str = 5
    jitter: int | str = 32
    step_size: float | str = 1.5
    blend: float | str = 0.5
    preview: int = 0
    zoom: float | str = 1.0
    guide_image: str | None = None
    seed: int | None = None
    tile: int | None = None            # compute gradients in tiles of this size (4K frames)
    flow: str | None = None            # "dis" or "farneback": carry the dream along the motion
    flow_blend: float | str = 1.0      # weight of the warped previous dream detail
    flow_decay: float = 0.05           # share of the carried detail dropped each frame
    flow_smooth: float = 0.2           # pull of the fresh dream towards the carried one
    scene_cuts: bool = True            # start afresh where the shot changes
    scene_threshold: float = scenes.DEFAULT_THRESHOLD
    keep_colors: bool = False          # each dream keeps its frame's colours (luma only)
    layer_on: str = "frames"           # the sweep moves on at each frame, or at each "beats"

    def ascent_options(self) -> dict:
        """The keyword arguments of ``ascent.dream``/``dream_batch`` that these settings give
        (the layer, guide and seeds are the caller's)."""
        return dict(iter_n=self.iterations, octave_n=self.octaves,
                    octave_scale=self.octave_scale, jitter=self.jitter,
                    step_size=self.step_size, tile=self.tile)

    def schedules(self) -> dict[str, schedules.Schedule]:
        """Each setting of SCHEDULED (but the words of -b) as its schedule, its values
        checked at every frame. Raises SettingsError naming the first that cannot work."""
        for spec in self.layers:            # weights '[SCHEDULE]*LAYER'
            for text in re.findall(r"\[([^\[\]]*)\]", spec):
                schedules.parse(text, f"-l {spec}: the weight [{text}]")
        return {field: schedules.parse(getattr(self, field), flag, integer, low, high, above)
                for field, (flag, integer, low, high, above) in SCHEDULED.items()
                if not (field == "blend" and self.blend in BLEND_WORDS)}

    def hardest(self) -> DreamSettings:
        """These settings with each scheduled one at the value hardest on a frame's size:
        the most octaves, the largest octave scale (what the plan checks a frame against)."""
        bounds = self.schedules()
        return dataclasses.replace(self, octaves=bounds["octaves"].bounds()[1],
                                   octave_scale=bounds["octave_scale"].bounds()[1])

    def check(self) -> None:
        """Raise a DeepDreamError naming the first setting that cannot work, before anything
        is loaded or written."""
        parsed = self.schedules()
        finite = all(math.isfinite(v) for v in (
            self.flow_decay, self.flow_smooth, self.scene_threshold))
        rules = [(finite, "--flow-decay, --flow-smooth and --scene-threshold take finite "
                          "numbers (not inf or nan)"),
                 (self.preview >= 0, "-p/--preview must be a width in pixels, or 0 for none"),
                 (self.tile is None or self.tile >= 1, "--tile must be 1 or more pixels"),
                 (0 <= self.flow_decay <= 1, "--flow-decay must be from 0 to 1"),
                 (0 <= self.flow_smooth <= 1, "--flow-smooth must be from 0 to 1"),
                 (0 <= self.scene_threshold <= 255, "--scene-threshold must be from 0 to 255"),
                 (self.seed is None or 0 <= self.seed < 2 ** 32,
                  "--seed must be from 0 to 4294967295"),
                 (len(self.layers) >= 1, "-l/--layers needs at least one layer"),
                 (self.layer_on in ("frames", "beats"),
                  f"--layer-on takes frames or beats, not {self.layer_on!r}")]
        for ok, message in rules:
            if not ok:
                raise SettingsError(message)
        if self.flow and parsed["zoom"].constant != 1:
            raise SettingsError("-z/--zoom and --flow do not go together: the flow already "
                                "moves the dream with the picture")
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
        if self.ray and not (self.ray in ("local", "auto") or
                             re.fullmatch(r"(ray://)?[\w.-]+:\d{1,5}", self.ray)):
            raise SettingsError(f"--ray {self.ray}: give no address (a local Ray), auto (the "
                                "cluster this machine is in) or ray://HOST:PORT")
        if self.ray and (self.engine != "torch" or self.batch_segments != 1):
            raise SettingsError("--ray dreams with the torch engine, one segment at a time "
                                "on each worker: leave out --engine caffe and "
                                "--batch-segments")
