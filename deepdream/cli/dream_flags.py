"""The flags of stage 2, shared by ``2_dreaming_time.py`` and ``python -m deepdream``, and
the settings, run options and model they stand for. Every default comes from
``DreamSettings`` and ``RunOptions``."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DeepDreamError
from ..run import schedules
from ..run.dreaming import RunOptions, default_layers
from ..run.settings import DreamSettings
from .common import blend_value, device_from_flags, progress_flag, triple_value

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
    a("-oct", "--octaves", type=int, default=DEFAULTS.octaves,
      help=f"octaves (default {DEFAULTS.octaves})")
    a("-octs", "--octavescale", type=float, default=DEFAULTS.octave_scale,
      help=f"octave scale (default {DEFAULTS.octave_scale})")
    a("-itr", "--iterations", type=int, default=DEFAULTS.iterations,
      help=f"steps per octave (default {DEFAULTS.iterations})")
    a("-j", "--jitter", type=int, default=DEFAULTS.jitter,
      help=f"jitter in pixels (default {DEFAULTS.jitter})")
    a("-z", "--zoom", type=float, default=DEFAULTS.zoom,
      help="zoom into the previous dream by this factor each frame (default 1: none)")
    a("-s", "--stepsize", type=float, default=DEFAULTS.step_size,
      help=f"step size (default {DEFAULTS.step_size})")
    a("-b", "--blend", type=blend_value, default=DEFAULTS.blend,
      help="weight of the new frame against the previous dream: 0..1 (default 0.5), "
           "'loop' (0.5 to 1 and back) or 'random'")
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
    a("--flow-blend", type=float, default=DEFAULTS.flow_blend,
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
                 "keep_colors": "keep_colors"}


def apply_recipe(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 argv: list[str] | None) -> None:
    """With --recipe, every flag that ``argv`` does not give takes the value that the
    recipe's run recorded. Raises DeepDreamError if the recipe cannot be read, or its model
    or guide image is not the file the run used."""
    if not getattr(args, "recipe", None):
        return
    from ..io import frames
    from ..nets.registry import sha1_of
    path = recipe_path(args.recipe)
    try:
        recipe = frames.read_json(path)
    except DeepDreamError:
        recipe = None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("dream"), dict):
        raise DeepDreamError(f"{args.recipe} is not the params.json of a dreaming run, nor "
                             f"a named recipe ({', '.join(named_recipes())})")
    given = _given(parser, argv)
    values = {dest: recipe["dream"][field] for field, dest in _RECIPE_FLAGS.items()
              if field in recipe["dream"]}
    if "scene_cuts" in recipe["dream"]:
        values["no_scene_cuts"] = not recipe["dream"]["scene_cuts"]
    if recipe.get("precision"):
        values["precision"] = recipe["precision"]
    from ..nets.loading import ENGINE_OF_RECORDED_NAME
    if recipe.get("engine") in ENGINE_OF_RECORDED_NAME:
        values["engine"] = ENGINE_OF_RECORDED_NAME[recipe["engine"]]
    if recipe.get("image_type"):
        values["image_type"] = recipe["image_type"]
    actions = {action.dest: action for action in parser._actions}
    for dest, value in values.items():
        if dest not in given:
            if not _fits(actions[dest], value):
                raise DeepDreamError(f"{args.recipe}: the recipe's {dest} is {value!r}, which "
                                     f"{'/'.join(actions[dest].option_strings)} cannot take")
            setattr(args, dest, value)
    if not isinstance(recipe.get("model"), (str, type(None))) or \
            not isinstance(recipe.get("weights"), (str, type(None))):
        raise DeepDreamError(f"{args.recipe}: the recipe's model is not a file name")
    _recipe_model(recipe, args, given)
    guide = recipe["dream"].get("guide_sha1")
    if guide and "guide_image" not in given and args.guide_image and \
            Path(args.guide_image).is_file() and sha1_of(args.guide_image) != guide:
        raise DeepDreamError(f"the recipe's guide image {args.guide_image} has changed since "
                             "its run (another sha1)")


def _fits(action: argparse.Action, value) -> bool:
    """Whether a recipe's ``value`` is one that ``action``'s flag could have given (its
    range is checked with the flags', by ``check_flags``)."""
    if value is None:
        return action.default is None or action.nargs == 0
    if action.nargs == 0:
        return isinstance(value, bool)
    if action.nargs == "+":
        return isinstance(value, list) and bool(value) and \
            all(isinstance(v, str) for v in value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    try:
        converted = action.type(str(value)) if action.type else str(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False
    return action.choices is None or converted in action.choices


# Named recipes: recipes/NAME.json, dream settings that users share, for the GoogLeNets
RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"   # the checkout's recipes/


def named_recipes() -> dict[str, str]:
    """The named recipes and what each is for."""
    from ..io import frames
    return {path.stem: (frames.read_json(path) or {}).get("about", "")
            for path in sorted(RECIPES_DIR.glob("*.json"))}


def recipe_path(recipe: str) -> Path:
    """A params.json's path, or a named recipe's file (``--recipe classic``)."""
    named = RECIPES_DIR / f"{recipe}.json"
    return named if not Path(recipe).exists() and named.is_file() else Path(recipe)


def _recipe_model(recipe: dict, args: argparse.Namespace, given: set[str]) -> None:
    """Set the model flags to the model the recipe's run used, unless the flags name one. A
    recipe is data: it may name Caffe files (refused if they are not there or have changed
    since: another sha1), but the code of your own PyTorch net runs only when ``--model``
    names it; the recipe's sha1s must then match its files (``_own_net``)."""
    model = recipe.get("model")
    if not model:
        return
    _, colon, factory = model.rpartition(":")
    if colon and factory.isidentifier():                # your own PyTorch net
        if not given & {"model", "model_path", "model_name"} or \
                (args.model and ":" in args.model):
            _own_net(recipe, args, given)
        return
    if given & {"model", "model_path", "model_name", "weights"}:
        return                                          # the flags' model, not the recipe's
    _check_file(model, recipe.get("model_sha1"), "model file", "-t/--model")
    path = Path(model)
    args.model, args.model_path, args.model_name = None, str(path.parent), path.name


def _own_net(recipe: dict, args: argparse.Namespace, given: set[str]) -> None:
    """Check that ``--model`` (and ``--weights``, else the recipe's weights) is the recipe's
    own PyTorch net: the same factory, weights and code (``code_identity``), read from the
    files without importing them. Raises DeepDreamError in one line naming what differs."""
    model = recipe["model"]
    if "model" not in given:
        raise DeepDreamError(f"the recipe names your own PyTorch net {model}: give it with "
                             f"--model {model} to run its code")
    from ..nets.module import ModuleModel, short_name
    weights = args.weights
    if "weights" not in given and recipe.get("weights"):
        weights = recipe["weights"]
        _check_file(weights, recipe.get("model_sha1"), "weights file", "--weights")
    mine = ModuleModel.named(args.model, weights)
    identity, recorded = mine.identity(), recipe.get("model_sha1")
    if short_name(model) != mine.name:
        difference = f"its net is {short_name(model)}"
    elif identity["model_sha1"] != recorded:
        difference = (f"its run used the factory's own weights, not {weights}" if not recorded
                      else f"{weights} is not its run's weights file (another sha1)" if weights
                      else "its run used a weights file: give it with --weights")
    else:
        difference = _code_difference(recipe.get("model_code_sha1"),
                                      identity["model_code_sha1"], model)
    if difference:
        raise DeepDreamError(f"the recipe does not fit --model {args.model}: {difference}")
    args.weights = weights
    for flag, field in _MODULE_FLAGS.items():
        if flag not in given and field in (recipe.get("preprocess") or {}):
            value = recipe["preprocess"][field]
            setattr(args, flag, tuple(value) if isinstance(value, list) else value)


def _code_difference(recorded, mine: dict[str, str], model: str) -> str | None:
    """The first file (or package) whose code differs between what a recipe recorded
    (``code_identity``: sha1s or versions by name; a string: an earlier version's sha1 of the
    factory's file alone; None: nothing) and the net given, in words; else None."""
    if not recorded:
        return None
    if isinstance(recorded, str):
        name = Path(model.rpartition(":")[0]).name
        recorded, mine = {name: recorded}, ({name: mine[name]} if name in mine else {})
    for name in sorted(set(recorded) | set(mine)):
        if name not in mine:
            return f"its run had {name}, which is not there"
        if name not in recorded:
            return f"{name} was not there in its run"
        if mine[name] != recorded[name]:
            was = "another sha1" if len(recorded[name]) == 40 else \
                f"{mine[name]}, not {recorded[name]}"
            return f"{name} differs from its run's ({was})"
    return None


def _check_file(path: str, sha1: str | None, what: str, flag: str) -> None:
    """Raise DeepDreamError if the recipe's file ``path`` is not there or has another sha1."""
    from ..nets.registry import model_sha1
    if not Path(path).is_file():
        raise DeepDreamError(f"the recipe's {what} {path} is not there: name it with {flag}")
    if sha1 and model_sha1(path) != sha1:
        raise DeepDreamError(f"the recipe's {what} {path} has changed since its run "
                             "(another sha1)")


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


# the flags of your own PyTorch net, and its Preprocessing's fields
_MODULE_FLAGS = {"input_mean": "mean", "input_std": "std", "channel_order": "channel_order",
                 "input_range": "input_range"}


def model_from(args: argparse.Namespace):
    """The model the flags name: a registry model (fetched on first use), a Caffe model's
    folder (-t/-m) or your own PyTorch net (--model FILE.py:FACTORY)."""
    from ..nets import registry as models
    if args.model and args.model_path:
        raise DeepDreamError("give either --model or -t/--model_path, not both")
    preprocessing = {field: getattr(args, flag) for flag, field in _MODULE_FLAGS.items()
                     if getattr(args, flag) is not None}
    if args.model and ":" in args.model:
        from ..nets.module import ModuleModel, Preprocessing
        return ModuleModel.named(args.model, args.weights, Preprocessing(**preprocessing))
    if args.weights or preprocessing:
        raise DeepDreamError("--weights, --input-mean, --input-std, --channel-order and "
                             "--input-range are for your own PyTorch net (--model "
                             "FILE.py:FACTORY); a Caffe model has its weights and mean")
    return models.resolve(args.model, args.model_path, args.model_name, args.mirror,
                          progress=progress_flag(args.verbose > 0))


def check_flags(args: argparse.Namespace) -> None:
    """Raise a DeepDreamError naming the first flag whose value cannot work, before any
    model is fetched or loaded and before anything is written."""
    settings_from(args, None).check()
    options_from(args).check()
    if args.flow:                   # an extra that is not installed: said before any work
        from ..io.flow import require_opencv
        require_opencv()
    if args.ray:
        from ..run.cluster import require_ray
        require_ray()


def settings_from(args: argparse.Namespace, model) -> DreamSettings:
    """The dream settings the flags give, the layers defaulting to ``model``'s sweep (the
    original's customloop while no model is known)."""
    if args.flow and args.zoom != 1:
        raise DeepDreamError("--zoom and --flow do not go together: the flow already moves "
                             "the dream with the picture")
    return DreamSettings(
        layers=schedules.CUSTOM_LOOP if args.layers == ["customloop"] or
        (args.layers is None and model is None) else
        default_layers(model) if args.layers is None else tuple(args.layers),
        octaves=args.octaves, octave_scale=args.octavescale, iterations=args.iterations,
        jitter=args.jitter, step_size=args.stepsize, blend=args.blend, preview=args.preview,
        zoom=args.zoom, guide_image=args.guide_image, seed=args.seed, tile=args.tile,
        flow=args.flow, flow_blend=args.flow_blend, flow_decay=args.flow_decay,
        flow_smooth=args.flow_smooth, scene_cuts=not args.no_scene_cuts,
        scene_threshold=args.scene_threshold, keep_colors=args.keep_colors)


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
