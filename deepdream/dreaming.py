"""Stage 2 as one call: ``dream_video`` loads the model's net and dreams a folder of frames
with one of the strategies -- one process, batched segments (GPUs), Ray workers -- which all
run the same loop (``scheduler.run_frames``) and differ only in where segments run."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import frames
from .errors import SettingsError
from .runs import DreamReport, DreamSettings


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
    progress: bool = True
    batch_segments: int = 1            # segments dreamed in one batch
    warmup: int = 10                   # frames a segment dreams before its first
    ray: str | None = None             # "local", "auto" or ray://host:port
    workers: int = 2
    segment_length: int = 100
    retries: int = 3                   # of a segment whose Ray worker dies

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
                 (self.retries >= 0, "--retries must be 0 or more")]
        for ok, message in rules:
            if not ok:
                raise SettingsError(message)
        if self.ray and (self.engine != "torch" or self.batch_segments != 1):
            raise SettingsError("--ray dreams with the torch engine, one segment at a time "
                                "on each worker: leave out --engine caffe and "
                                "--batch-segments")


def default_layers(model) -> tuple[str, ...]:
    """The layers a model's sweep dreams on: the registry's, else the original's customloop
    (your own PyTorch net has none: its layers are named with -l)."""
    return model.default_layers()


def dream_video(input_dir: str | Path, output_dir: str | Path, settings: DreamSettings,
                model, options: RunOptions | None = None) -> DreamReport:
    """Dream every frame of ``input_dir`` into ``output_dir`` with ``model`` (a
    ``models.resolve`` result, or your own ``torch_module.ModuleModel``) and ``settings``,
    resuming a run already there. Every setting means the same under every strategy, or the
    combination is refused in one line. Raises a DeepDreamError subclass."""
    from .engine import load_model
    options = options or RunOptions()
    settings.check()                       # before the net is loaded
    options.check()
    # under Ray the workers hold the nets; the driver's only checks the layer names, on the CPU
    net = load_model(model, "cpu" if options.ray else options.device, options.engine,
                     "fp32" if options.ray else options.precision)
    first = _first_frame(input_dir, options.image_type)
    if first is not None:
        check_frames(net, settings, *frames.image_size(first)[::-1])
    if options.ray:
        from .cluster import dream_frames_ray
        return dream_frames_ray(input_dir, output_dir, model, settings, options.ray,
                                options.workers, options.device, options.warmup,
                                options.segment_length, options.image_type,
                                options.start_frame, options.end_frame, options.overwrite,
                                progress=options.progress, precision=options.precision,
                                retries=options.retries)
    from .scheduler import dream_frames
    return dream_frames(input_dir, output_dir, net, settings, model, options.image_type,
                        options.start_frame, options.end_frame, options.overwrite,
                        options.progress, options.batch_segments, options.warmup)


def _first_frame(input_dir: str | Path, image_type: str | None) -> Path | None:
    """The first frame stage 2 will read from ``input_dir`` (None if there is none: the run
    then says so)."""
    found = frames.list_frames(input_dir, image_type) or frames.list_frames(input_dir)
    return next(iter(found.values()), None)


def check_frames(net, settings: DreamSettings, height: int, width: int) -> None:
    """Raise a DeepDreamError if ``settings`` cannot dream a height x width frame with
    ``net`` (at the preview width when there is one): every layer and objective term named,
    the octaves and tiles against the frame's size. Before any frame is extracted or
    dreamed."""
    from .ascent import check_target, make_target
    if settings.preview:
        height, width = max(1, int(round(height * settings.preview / width))), settings.preview
    for spec in dict.fromkeys(settings.layers):
        check_target(net, make_target(net, spec), height, width, settings.octaves,
                     settings.octave_scale, settings.tile)


def load_model_net(model, options: RunOptions | None = None):
    """``model``'s net, loaded as ``options`` say (device, engine, precision)."""
    from .engine import load_model
    options = options or RunOptions()
    return load_model(model, options.device, options.engine, options.precision)


def list_layers(model, input_dir: str | Path | None = None, options: RunOptions | None = None,
                preview: int = 0) -> str:
    """The net's blobs and their sizes for the first frame of ``input_dir`` (else 224x224)."""
    from .cli import layer_table
    options = options or RunOptions()
    return layer_table(load_model_net(model, options), model.name, input_dir,
                       options.image_type, preview)
