"""A run as one plan (``make_plan``): made from the flags, a recipe or the library's arguments,
and checked whole when it is made -- every setting and range, the extras it needs, the device,
the guide image, -p and the octaves against the frames' size, the layers, channels and tiles
against the net -- before anything is extracted, downloaded or loaded for a run that cannot
work; then the net is loaded, once, and the plan is carried out by code that trusts it
(nothing below checks or loads it again)."""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import typing
from fractions import Fraction
from pathlib import Path

from ..errors import DeepDreamError, FramesError, ImageTooSmallError, SettingsError
from ..io import frames
from .settings import DreamSettings, RunOptions
from .state import InputFrames, check_output, check_resume, run_params
from .timeline import Footage, Timeline

if typing.TYPE_CHECKING:     # the engine imports torch
    from ..nets.base import Net

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Plan:
    """What a run dreams, with what, where: its settings and options (checked), its model
    (``registry.ResolvedModel`` or ``module.ModuleModel``; None where only a net was given),
    the size of its frames (as they come: -p scales them), its net, loaded once, and its
    timeline (each frame's settings and layer)."""
    settings: DreamSettings
    options: RunOptions
    model: object | None
    height: int
    width: int
    net: Net
    timeline: Timeline

    def identity(self) -> dict:
        """What params.json records of the model (its files' sha1s, read when it loaded)."""
        model = self.model
        if model is None:
            return {"model": None, "model_sha1": None}
        if hasattr(model, "identity"):
            return model.identity()
        from ..nets.registry import model_sha1          # a caffemodel's path
        return {"model": str(Path(model).resolve()), "model_sha1": model_sha1(model)}

    def params(self, input: InputFrames | None) -> dict:
        """What params.json records of this plan's run on ``input`` (``state.run_params``):
        under Ray, of the workers' nets (torch, on the options' device and precision)."""
        if self.options.ray:
            from ..nets.loading import recorded_name
            return run_params(self.settings, self.identity(), recorded_name(self.model),
                              str(self.options.device), self.options.precision, input)
        return run_params(self.settings, self.identity(), self.net.recorded_name,
                          self.net.device, self.net.precision, input)


def dream_size(settings: DreamSettings, height: int, width: int) -> tuple[int, int]:
    """(height, width) at which a height x width frame is dreamed: at -p's width, if any."""
    if settings.preview:
        return max(1, int(round(height * settings.preview / width))), settings.preview
    return height, width


def make_plan(settings: DreamSettings, options: RunOptions, model,
              footage: Footage | typing.Callable[[], Footage],
              net: Net | None = None,
              before_load: typing.Callable[[DreamSettings], None] | None = None) -> Plan:
    """The plan of dreaming the frames of ``footage`` (their size, rate and sound; or the
    caller's function that gives it, called once the settings are checked: the caller's own
    checks of its input and output, such as probing a movie, come after the cheaper ones)
    with ``settings`` and ``options`` on ``model`` (or the loaded ``net``): everything
    checked that can be checked, the cheap before the dear -- the settings' values at every
    frame, the extras, the device, the guide image, -p (wider than the frames: they are
    dreamed at their own width, with a warning), the octaves by arithmetic, the caller's
    ``before_load`` (given the settings as planned: a run of ours to continue was made with
    them), the schedules against the footage (a sound to follow; the sound analysed once),
    the layers against the model's structure before its weights are downloaded --
    then the weights fetched and the net loaded (once) and the layers, channels and tiles
    checked against it. Raises a DeepDreamError naming the first mistake."""
    settings.check()
    options.check()
    _check_extras(settings, options)
    if net is None and not options.ray:
        from ..nets.base import check_precision, resolve_device
        resolve_device(options.device)                   # a missing GPU: said now
        check_precision(options.precision)
    _check_guide(settings.guide_image)
    footage = footage() if callable(footage) else footage
    if settings.preview > footage.width:
        log.warning("-p/--preview %d is wider than the frames (%d pixels): they are dreamed "
                    "at their own width", settings.preview, footage.width)
        settings = dataclasses.replace(settings, preview=0)
    size = dream_size(settings, footage.height, footage.width)
    hardest = settings.hardest()           # the most octaves at the largest scale it takes
    check_octaves(hardest, *size)
    if before_load is not None:
        before_load(settings)
    timeline = Timeline.make(settings, footage)
    if net is None:
        net = _load(hardest, options, model, size)
    else:
        check_layers(net, hardest, *size)
    return Plan(settings, options, model, footage.height, footage.width, net, timeline)


def _check_extras(settings: DreamSettings, options: RunOptions) -> None:
    """The optional packages the run needs, named in one line where one is missing."""
    if settings.flow:
        from ..io.flow import require_opencv
        require_opencv()
    if options.ray:
        require_ray()


def require_ray():
    """Ray's module. Raises DeepDreamError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise DeepDreamError("--ray needs Ray: pip install 'deepdream-video[ray]'") from None
    return ray


def _check_guide(guide: str | None) -> None:
    """Raise FramesError unless ``guide`` (if any) is a picture we can read."""
    if guide is None:
        return
    if not Path(guide).is_file():
        raise FramesError(f"-gi/--guide_image: guide image not found: {guide}")
    try:
        frames.image_size(guide)
    except FramesError:
        raise FramesError(f"-gi/--guide_image {guide} is not a picture (PNG, JPEG, ...) that "
                          "can be read") from None


def check_octaves(settings: DreamSettings, height: int, width: int) -> None:
    """Raise ImageTooSmallError if the smallest of ``settings.octaves`` octaves of a height x
    width frame would be under a pixel (by arithmetic: nothing is built)."""
    octaves, scale = settings.octaves, settings.octave_scale
    side = min(height, width)
    if scale <= 1 or (octaves - 1) * math.log(scale) <= math.log(side):
        return
    most = 1 + int(math.log(side) / math.log(scale))
    raise ImageTooSmallError(f"-oct/--octaves {octaves}: a {width}x{height} frame is too small "
                             f"for {octaves} octaves of scale {scale:g} (at most {most}: the "
                             "smallest would be less than a pixel); use fewer octaves (-oct) "
                             "or a smaller -octs")


def check_layers(net: Net, settings: DreamSettings, height: int, width: int) -> None:
    """Raise a DeepDreamError if ``settings`` cannot dream a height x width frame (as it is
    dreamed: at -p) with ``net``: every layer and objective term named, the channels of each
    term, the octaves and tiles against the frame's size."""
    from ..dreamer.ascent import check_target, fixed_view, make_target
    from ..dreamer.objectives import parse
    for spec in dict.fromkeys(settings.layers):
        check_target(net, make_target(net, spec), height, width, settings.octaves,
                     settings.octave_scale, settings.tile)
        for term in parse(spec):
            if term.channels is None:
                continue
            count = net.end_shape(*(fixed_view(net, term.layer) or (height, width)),
                                  term.layer)[1]
            if max(term.channels) >= count:
                raise SettingsError(f"-l {spec}: {term.layer} has {count} channels (0 to "
                                    f"{count - 1}): there is no channel {max(term.channels)}")


def _load(settings: DreamSettings, options: RunOptions, model, size: tuple[int, int]) -> Net:
    """``model``'s net, its layers checked and then loaded once: on the options' device,
    engine and precision (under Ray, the driver's on the CPU: the workers load their own).
    A Caffe model with a deploy prototxt has its layers, channels and octaves checked against
    the prototxt's structure before its weights are read (or downloaded: a mistake costs
    neither); any other net, once loaded."""
    from ..nets.loading import load_model, structure_net
    structure = structure_net(model)
    if structure is not None:
        check_layers(structure, settings, *size)
    if getattr(model, "missing", False):
        model.fetch(options.progress)
    if options.ray:
        net = load_model(model, "cpu", "torch", "fp32")
    else:
        net = load_model(model, options.device, options.engine, options.precision)
    if structure is None:
        check_layers(net, settings, *size)
    return net


def plan_frames(input_dir, output_dir, settings: DreamSettings, options: RunOptions, model,
                net: Net | None = None) -> tuple[Plan, InputFrames]:
    """The plan of a run on the frames of ``input_dir`` (listed once, as ``options`` choose
    them) into ``output_dir``, and those frames: ``make_plan`` with their footage. Before
    the net is loaded, ``output_dir`` is refused if it is the input folder, holds files not
    ours, or (without --overwrite) a run of ours dreamed with other settings."""
    input = InputFrames.listed(input_dir, options.image_type, options.start_frame,
                               options.end_frame)
    check_output(output_dir, input)
    resume = None if options.overwrite else functools.partial(check_resume, output_dir)
    plan = make_plan(settings, options, model, footage_of(input), net=net, before_load=resume)
    return plan, input


def footage_of(input: InputFrames) -> Footage:
    """What a run on ``input`` knows of its frames: the size of its first frame to dream
    (from the header), and where stage 1 extracted them from a movie (its movie.json of
    ours), their rate, where frame 1 is on the movie's timeline and the movie, if it has
    sound and is still the movie they came from."""
    from ..io import ours
    from ..io.extraction import same_movie
    width, height = frames.image_size(input.available[input.todo[0]])
    try:
        meta = ours.read_json(input.folder / frames.MOVIE_INFO, "movie")
    except DeepDreamError:
        meta = None
    if not meta:
        return Footage(height, width)
    source = Path(meta["source"])
    sound = source if meta.get("has_audio") and same_movie(meta, source) else None
    return Footage(height, width, Fraction(meta["fps"]), float(meta["first_frame_time"]),
                   int(meta["frame_count"]), sound)
