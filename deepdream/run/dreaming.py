"""Stage 2 as one call: ``dream_video`` plans a run on a folder of frames (its frames listed,
every setting checked, the model's net loaded once) and carries it out with one of the
strategies -- one process, batched segments (GPUs), Ray workers -- which all run the same
loop (``loop.run_frames``) and differ only in where segments run."""
from __future__ import annotations

from pathlib import Path

from .plan import plan_frames
from .settings import DreamReport, DreamSettings, RunOptions

__all__ = ["RunOptions", "dream_video", "default_layers"]


def default_layers(model) -> tuple[str, ...]:
    """The layers a model's sweep dreams on: the registry's, else the original's customloop
    (your own PyTorch net has none: its layers are named with -l)."""
    return model.default_layers()


def dream_video(input_dir: str | Path, output_dir: str | Path, settings: DreamSettings,
                model, options: RunOptions | None = None) -> DreamReport:
    """Dream every frame of ``input_dir`` into ``output_dir`` with ``model`` (a
    ``nets.registry.resolve`` result, or your own ``nets.module.ModuleModel``) and ``settings``,
    resuming a run already there. Every setting means the same under every strategy, or the
    combination is refused in one line, before the net is loaded. Raises a DeepDreamError
    subclass."""
    options = options or RunOptions()
    plan, input = plan_frames(input_dir, output_dir, settings, options, model)
    if options.ray:
        from .cluster import run_on_ray
        return run_on_ray(plan, input, output_dir)
    from .loop import run_plan
    return run_plan(plan, input, output_dir)
