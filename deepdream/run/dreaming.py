"""Stage 2 as one call: ``dream_video`` loads the model's net and dreams a folder of frames
with one of the strategies -- one process, batched segments (GPUs), Ray workers -- which all
run the same loop (``loop.run_frames``) and differ only in where segments run."""
from __future__ import annotations

from pathlib import Path

from ..io import frames
from .settings import DreamReport, DreamSettings, RunOptions

__all__ = ["RunOptions", "dream_video", "check_frames", "load_model_net", "default_layers"]


def default_layers(model) -> tuple[str, ...]:
    """The layers a model's sweep dreams on: the registry's, else the original's customloop
    (your own PyTorch net has none: its layers are named with -l)."""
    return model.default_layers()


def dream_video(input_dir: str | Path, output_dir: str | Path, settings: DreamSettings,
                model, options: RunOptions | None = None) -> DreamReport:
    """Dream every frame of ``input_dir`` into ``output_dir`` with ``model`` (a
    ``nets.registry.resolve`` result, or your own ``nets.module.ModuleModel``) and ``settings``,
    resuming a run already there. Every setting means the same under every strategy, or the
    combination is refused in one line. Raises a DeepDreamError subclass."""
    from ..nets.loading import load_model
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
        return dream_frames_ray(input_dir, output_dir, model, settings, options)
    from .loop import dream_frames
    return dream_frames(input_dir, output_dir, net, settings, model, options)


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
    from ..dreamer.ascent import check_target, make_target
    if settings.preview:
        height, width = max(1, int(round(height * settings.preview / width))), settings.preview
    for spec in dict.fromkeys(settings.layers):
        check_target(net, make_target(net, spec), height, width, settings.octaves,
                     settings.octave_scale, settings.tile)


def load_model_net(model, options: RunOptions | None = None):
    """``model``'s net, loaded as ``options`` say (device, engine, precision)."""
    from ..nets.loading import load_model
    options = options or RunOptions()
    return load_model(model, options.device, options.engine, options.precision)
