"""Stage 2 as one call: ``dream_video`` loads the model's net and dreams a folder of frames
with one of the strategies -- one process, batched segments (GPUs), Ray workers -- which all
run the same loop (``scheduler.run_frames``) and differ only in where segments run."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .errors import DeepDreamError
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
    if options.ray and (options.engine != "torch" or options.batch_segments != 1):
        raise DeepDreamError("--ray dreams with the torch engine, one segment at a time on "
                             "each worker: leave out --engine caffe and --batch-segments")
    if options.retries < 0:
        raise DeepDreamError("--retries must be 0 or more")
    # under Ray the workers hold the nets; the driver's only checks the layer names, on the CPU
    net = load_model(model, "cpu" if options.ray else options.device, options.engine,
                     "fp32" if options.ray else options.precision)
    from .ascent import make_target
    for spec in set(settings.layers):
        make_target(net, spec)                # every layer of every term is the net's
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
