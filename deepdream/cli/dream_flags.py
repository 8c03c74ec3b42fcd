"""The flags of stage 2, shared by ``2_dreaming_time.py`` and ``python -m deepdream``, and
the settings, run options and model they stand for. Every default comes from
``DreamSettings`` and ``RunOptions``."""
from __future__ import annotations

import argparse

from ..errors import DeepDreamError
from ..run import recipes, schedules
from ..run.dreaming import RunOptions, default_layers
from ..run.settings import DreamSettings
from .common import (blend_value, device_from_flags, progress_flag, schedule_value,
                     triple_value)

DEFAULTS, RUN = DreamSettings(), RunOptions()


def add_dream_flags(p: argparse.ArgumentParser) -> None:
    """Every flag of stage 2 but its folders (-i, -o) and its other modes (-e, --list-layers)."""
    a = p.add_argument
    a("-it", "--image_type", "--image-type", choices=["jpg", "png"],
      help="frame type (default: what the input folder holds)")
    a("--gpu", nargs="?", const="0", metavar="N", help="dream on CUDA GPU N (default 0)")
    a("--device", help="cpu, cuda, cuda:N, mps or auto (default auto: a GPU if there is one)")
    a("--precision", default=RUN.precision, choices=["fp32", "bf16", "fp16"],
      help="arithmetic of the net: fp32 (Caffe's, default), bf16 (about twice as fast on "
           "GPUs and CPUs with AVX512-BF16 or AMX) or fp16 (GPUs); see BENCHMARKS.md")
    a("--engine", default=RUN.engine, choices=["torch", "caffe"],
      help="the engine that runs the net: torch, or a real pycaffe (scripts/install_caffe.sh)")
    a("--model", help="a model of the registry, fetched on first use (default "
                      "bvlc_googlenet; python -m deepdream.models list), or your own PyTorch "
                      "net: FILE.py:FACTORY or package.module:FACTORY (a function returning an "
                      "nn.Module; see README)")
    a("--weights", metavar="FILE", help="the weights of your own PyTorch net: a state_dict "
                                        "(torch.save(model.state_dict(), FILE)) or a "
                                        ".safetensors file")
    a("--input-mean", type=triple_value, metavar="A,B,C",
      help="your own net's input mean per channel, in its channel order and input range "
           "(default 0.485,0.456,0.406: torchvision's ImageNet)")
    a("--input-std", type=triple_value, metavar="A,B,C",
      help="its input standard deviation per channel (default 0.229,0.224,0.225)")
    a("--channel-order", choices=["rgb", "bgr"], help="its input's channel order (default rgb)")
    a("--input-range", type=float, choices=[1.0, 255.0], metavar="1|255",
      help="its input pixels run from 0 to 1 (default) or to 255")
    a("--mirror", help="fetch model files from BASE_URL/<file name> (or $DEEPDREAM_MIRROR)")
    a("-t", "--model_path", "--model-path", help="folder with deploy.prototxt and the model")
    a("-m", "--model_name", "--model-name", default="bvlc_googlenet.caffemodel",
      help="the .caffemodel file in that folder (default bvlc_googlenet.caffemodel)")
    a("-p", "--preview", type=int, default=DEFAULTS.preview, metavar="WIDTH",
      help="dream at this width and scale back up (fast previews)")
    a("-oct", "--octaves", type=schedule_value, default=DEFAULTS.octaves,
      help=f"octaves (default {DEFAULTS.octaves}); this and every setting down to -b may "
           "also follow the film's time or sound: keyframes \"0:3, 4s:5\" or sound:2..5 "
           "(see README)")
    a("-octs", "--octavescale", type=schedule_value, default=DEFAULTS.octave_scale,
      help=f"octave scale (default {DEFAULTS.octave_scale})")
    a("-itr", "--iterations", type=schedule_value, default=DEFAULTS.iterations,
      help=f"steps per octave (default {DEFAULTS.iterations})")
    a("-j", "--jitter", type=schedule_value, default=DEFAULTS.jitter,
      help=f"jitter in pixels (default {DEFAULTS.jitter})")
    a("-z", "--zoom", type=schedule_value, default=DEFAULTS.zoom,
      help="zoom into the previous dream by this factor each frame (default 1: none)")
    a("-s", "--stepsize", type=schedule_value, default=DEFAULTS.step_size,
      help=f"step size (default {DEFAULTS.step_size}); e.g. sound:0.5..3 (the loudness), "
           "sound-bass:, sound-beats:, or keyframes \"0:1, 10s:3, smooth(...)\"")
    a("-b", "--blend", type=blend_value, default=DEFAULTS.blend,
      help="weight of the new frame against the previous dream: 0..1 (default 0.5), "
           "'loop' (0.5 to 1 and back), 'random', or keyframes or the sound")
    a("--layer-on", choices=["frames", "beats"], default=DEFAULTS.layer_on,
      help="the layer sweep (-l) moves on at every frame (default, as the original) or at "
           "every beat of the sound")
    a("-l", "--layers", nargs="+",
      help="layers to cycle through frame by frame (default: the model's sweep; for "
           "GoogLeNets customloop, inception_4c up to 5b and back)")
    a("-v", "--verbose", type=int, default=1, choices=range(4), metavar="0-3",
      help="0 quiet, 1 progress (default), 2-3 every step")
    a("-gi", "--guide_image", "--guide-image", help="guide image for guided dreaming")
    a("-sf", "--start_frame", "--start-frame", type=int, help="first frame number")
    a("-ef", "--end_frame", "--end-frame", type=int, help="last frame number")
    a("--flow", nargs="?", const="dis", choices=["dis", "farneback"],
      help="carry the previous dream along the optical flow instead of blending (default "
           "method dis)")
    a("--flow-blend", type=schedule_value, default=DEFAULTS.flow_blend,
      help=f"weight of the previous dream carried along the flow ({DEFAULTS.flow_blend})")
    a("--flow-decay", type=float, default=DEFAULTS.flow_decay,
      help="share of the carried dream dropped each frame, so that it never builds up "
           f"({DEFAULTS.flow_decay})")
    a("--flow-smooth", type=float, default=DEFAULTS.flow_smooth,
      help="pull each new dream towards the carried one where the flow can follow: less "
           f"flicker ({DEFAULTS.flow_smooth}; 0 for none)")
    a("--scene-threshold", type=float, default=DEFAULTS.scene_threshold,
      help=f"content change (0-255) that counts as a scene cut ({DEFAULTS.scene_threshold:g})")
    a("--no-scene-cuts", action="store_true",
      help="blend across scene cuts too, as the original did")
    a("--ray", nargs="?", const="local", metavar="ADDRESS",
      help="spread the frames over Ray workers: no address starts a local Ray, 'auto' or "
           "ray://host:port joins a cluster (folders on a shared filesystem)")
    a("--workers", type=int, default=RUN.workers,
      help=f"Ray workers (one GPU or a share of the CPUs each; default {RUN.workers})")
    a("--warmup", type=int, default=RUN.warmup,
      help=f"frames each segment dreams before its first (not written; default {RUN.warmup})")
    a("--segment-length", type=int, default=RUN.segment_length,
      help=f"frames per segment between scene cuts (default {RUN.segment_length})")
    a("--retries", type=int, default=RUN.retries,
      help="times a segment whose Ray worker dies is tried again before the run stops "
           f"(default {RUN.retries})")
    a("--batch-segments", type=int, default=RUN.batch_segments, metavar="N",
      help="dream N segments of the film in one batch (GPUs; segments begin at scene cuts "
           "and start --warmup frames early)")
    a("--keep-colors", action="store_true",
      help="every dreamed frame keeps its own frame's colours: the dream changes "
           "brightness detail only (no drift of the colours along the video)")
    a("--recipe", metavar="PARAMS.json|NAME",
      help="dream with every setting an earlier run recorded in its params.json (dream "
           "settings, seed, model, engine, precision), or the name of a recipe in recipes/ "
           "(see README); flags given here override it. A recipe never runs code: one made "
           "with your own PyTorch net needs that net given with --model")
    a("--seed", type=int, help="seed the jitter for reproducible dreams")
    a("--threads", type=int, metavar="N",
      help="dream with N CPU threads of torch's (default: the count that is fastest now, "
           "measured as the run goes, as the machine's other work changes; "
           "$OMP_NUM_THREADS fixes it too)")
    a("--tile", type=int, metavar="N", help="compute gradients in tiles of N pixels: "
                                            "bounded memory for 4K frames (e.g. 512)")
    a("--overwrite", action="store_true",
      help="dream again over frames made with other parameters (python -m deepdream: and "
           "replace an existing output movie)")


# params.json's dream settings, and the flags that set them
_RECIPE_FLAGS = {"layers": "layers", "octaves": "octaves", "octave_scale": "octavescale",
                 "iterations": "iterations", "jitter": "jitter", "step_size": "stepsize",
                 "blend": "blend", "preview": "preview", "zoom": "zoom",
                 "guide_image": "guide_image", "seed": "seed", "tile": "tile", "flow": "flow",
                 "flow_blend": "flow_blend", "flow_decay": "flow_decay",
                 "flow_smooth": "flow_smooth", "scene_threshold": "scene_threshold",
                 "keep_colors": "keep_colors", "layer_on": "layer_on"}


def apply_recipe(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 argv: list[str] | None) -> None:
    """With --recipe, every flag that ``argv`` does not give takes the value that the
    recipe's run recorded (``run.recipes``: read and checked whole). Raises DeepDreamError if
    the recipe cannot be read, has a key or value its flags cannot take, or its model or
    guide image is not the file the run used."""
    if not getattr(args, "recipe", None):
        return
    recipe = recipes.load(args.recipe)
    given = _given(parser, argv)
    values = {dest: recipe.dream[field] for field, dest in _RECIPE_FLAGS.items()
              if field in recipe.dream}
    if "scene_cuts" in recipe.dream:
        values["no_scene_cuts"] = not recipe.dream["scene_cuts"]
    for dest, value in (("precision", recipe.precision), ("engine", recipe.engine),
                        ("image_type", recipe.image_type)):
        if value:
            values[dest] = value
    values.update(recipes.model_settings(recipe, given, args.model, args.weights))
    for dest, value in values.items():
        if dest not in given:
            setattr(args, dest, value)
    if "guide_image" not in given:
        recipes.check_guide(recipe, args.guide_image)


def _given(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the flags that ``argv`` gives (parsed with every default off)."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        return set(vars(parser.parse_known_args(argv)[0]))
    finally:
        for action, default in saved:
            action.default = default


def model_from(args: argparse.Namespace):
    """The model the flags name: a registry model (downloaded, if it is not here yet, once
    the run's plan is checked), a Caffe model's folder (-t/-m) or your own PyTorch net
    (--model FILE.py:FACTORY, imported only when its net is loaded)."""
    from ..nets import registry as models
    if args.model and args.model_path:
        raise DeepDreamError("give either --model or -t/--model_path, not both")
    preprocessing = {field: getattr(args, flag) for flag, field in recipes.MODULE_FLAGS.items()
                     if getattr(args, flag) is not None}
    if args.model and ":" in args.model:
        from ..nets.module import ModuleModel, Preprocessing
        return ModuleModel.named(args.model, args.weights, Preprocessing(**preprocessing))
    if args.weights or preprocessing:
        raise DeepDreamError("--weights, --input-mean, --input-std, --channel-order and "
                             "--input-range are for your own PyTorch net (--model "
                             "FILE.py:FACTORY); a Caffe model has its weights and mean")
    return models.resolve(args.model, args.model_path, args.model_name, args.mirror,
                          progress=progress_flag(args.verbose > 0), download=False)


def run_from(args: argparse.Namespace) -> tuple[DreamSettings, object, RunOptions]:
    """What the flags ask a run for, made once: its dream settings, its model (nothing
    downloaded or loaded yet) and its run options; the run's plan checks them."""
    model = model_from(args)
    return settings_from(args, model), model, options_from(args)


def settings_from(args: argparse.Namespace, model) -> DreamSettings:
    """The dream settings the flags give, the layers defaulting to ``model``'s sweep (the
    original's customloop where no model is known)."""
    return DreamSettings(
        layers=schedules.CUSTOM_LOOP if args.layers == ["customloop"] or
        (args.layers is None and model is None) else
        default_layers(model) if args.layers is None else tuple(args.layers),
        octaves=args.octaves, octave_scale=args.octavescale, iterations=args.iterations,
        jitter=args.jitter, step_size=args.stepsize, blend=args.blend, preview=args.preview,
        zoom=args.zoom, guide_image=args.guide_image, seed=args.seed, tile=args.tile,
        flow=args.flow, flow_blend=args.flow_blend, flow_decay=args.flow_decay,
        flow_smooth=args.flow_smooth, scene_cuts=not args.no_scene_cuts,
        scene_threshold=args.scene_threshold, keep_colors=args.keep_colors,
        layer_on=args.layer_on)


def options_from(args: argparse.Namespace) -> RunOptions:
    """Where and how the flags say stage 2 runs."""
    return RunOptions(
        device=device_from_flags(args.device, args.gpu), engine=args.engine,
        precision=args.precision, image_type=args.image_type, start_frame=args.start_frame,
        end_frame=args.end_frame, overwrite=args.overwrite,
        progress=progress_flag(args.verbose > 0),
        batch_segments=args.batch_segments, warmup=args.warmup, ray=args.ray,
        workers=args.workers, segment_length=args.segment_length, retries=args.retries,
        threads=args.threads)
