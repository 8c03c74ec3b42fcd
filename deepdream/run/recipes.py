"""Recipes: dream settings as data -- a named recipe (``recipes/NAME.json``) or an earlier run's
``params.json`` -- read and checked whole (``load``): every key known (a misspelt one is refused
naming the nearest), every value of the type its setting takes, its model and guide image the
files its run used (by sha1). A recipe is data: it may name Caffe files, never run code; one
made with your own PyTorch net runs only with that net given by the user, whose files must
then match the recipe's sha1s (``model_settings``), read without importing anything."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path

from ..errors import DeepDreamError, SettingsError
from ..io import frames
from . import schedules
from .settings import BLEND_WORDS, SCHEDULED

# Named recipes: recipes/NAME.json, dream settings that users share, for the GoogLeNets
RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"   # the checkout's recipes/

_NUMBER = (int, float)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool)


def _scheduled(field: str) -> tuple[str, typing.Callable]:
    """The rule of a setting that may follow a schedule (``settings.SCHEDULED``): a number
    in its range, or a schedule's text whose every value is (``schedules.parse``)."""
    flag, integer, low, high, above = SCHEDULED[field]
    words = BLEND_WORDS if field == "blend" else ()

    def fits(value) -> bool:
        if value in words:
            return True
        if not (_is_number(value) or isinstance(value, str)):
            return False
        try:
            schedules.parse(value, flag, integer, low, high, above)
        except SettingsError:
            return False
        return True
    what = f"{'a whole number' if integer else 'a number'} " \
        f"{schedules.describe_range(low, high, above)}" + \
        "".join(f", '{word}'" for word in words) + " or a schedule (keyframes, sound:...)"
    return what, fits


# What each dream setting of a recipe may hold (the ranges of the others are checked with
# the flags' when its run is planned)
_DREAM_VALUES = {
    "layers": ("a list of layer names", lambda v: isinstance(v, list) and bool(v) and
               all(isinstance(x, str) for x in v)),
    **{field: _scheduled(field) for field in SCHEDULED},
    "preview": ("a whole number", _is_int),
    "flow_decay": ("a number", _is_number), "flow_smooth": ("a number", _is_number),
    "scene_threshold": ("a number", _is_number),
    "guide_image": ("a file name or null", lambda v: v is None or isinstance(v, str)),
    "guide_sha1": ("a sha1 or null", lambda v: v is None or isinstance(v, str)),
    "seed": ("a whole number or null", lambda v: v is None or _is_int(v)),
    "tile": ("a whole number or null", lambda v: v is None or _is_int(v)),
    "flow": ("'dis', 'farneback' or null", lambda v: v in (None, "dis", "farneback")),
    "scene_cuts": ("true or false", lambda v: isinstance(v, bool)),
    "keep_colors": ("true or false", lambda v: isinstance(v, bool)),
    "layer_on": ("'frames' or 'beats'", lambda v: v in ("frames", "beats")),
}
# The top level of a recipe: a named recipe's and a params.json's keys
_TOP_VALUES = {
    "about": ("a text", lambda v: isinstance(v, str)),
    "dream": ("the dream settings", lambda v: isinstance(v, dict)),
    "precision": ("fp32, bf16 or fp16", lambda v: v in (None, "fp32", "bf16", "fp16")),
    "engine": ("the name of an engine", lambda v: v is None or isinstance(v, str)),
    "image_type": ("png or jpg", lambda v: v in (None, "png", "jpg")),
    "model": ("a file name", lambda v: v is None or isinstance(v, str)),
    "weights": ("a file name", lambda v: v is None or isinstance(v, str)),
    "model_sha1": ("a sha1", lambda v: v is None or isinstance(v, str)),
    "model_code_sha1": ("sha1s", lambda v: v is None or isinstance(v, (str, dict))),
    "preprocess": ("your net's input convention", lambda v: v is None or isinstance(v, dict)),
    # what a params.json records of its own run, read but not used by a recipe
    **{key: ("", lambda v: True) for key in (
        "version", "device", "input", "input_first_frame", "scene_cuts", "made_by",
        "ledger")},
}


@dataclasses.dataclass
class Recipe:
    """A recipe, read and checked: its dream settings (``DreamSettings``' fields), the
    engine (``--engine``'s name), precision and image type its run used, and what it
    records of its model and guide image."""
    name: str
    dream: dict
    engine: str | None
    precision: str | None
    image_type: str | None
    model: dict                  # model, weights, model_sha1, model_code_sha1, preprocess
    guide_sha1: str | None


def named_recipes() -> dict[str, str]:
    """The named recipes and what each is for."""
    return {path.stem: (frames.read_json(path) or {}).get("about", "")
            for path in sorted(RECIPES_DIR.glob("*.json"))}


def recipe_path(recipe: str) -> Path:
    """A params.json's path, or a named recipe's file (``--recipe classic``)."""
    named = RECIPES_DIR / f"{recipe}.json"
    return named if not Path(recipe).exists() and named.is_file() else Path(recipe)


def _unknown(where: str, keys, known) -> None:
    """Raise SettingsError for the first of ``keys`` not in ``known``, naming the nearest."""
    for key in keys:
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean '{near[0]}'?" if near else \
                f" (it knows {', '.join(sorted(known))})"
            raise SettingsError(f"{where} has an unknown key '{key}'{hint}")


def _typed(where: str, data: dict, rules: dict) -> None:
    """Raise SettingsError for the first value of ``data`` its rule refuses."""
    for key, value in data.items():
        what, fits = rules[key]
        if not fits(value):
            raise SettingsError(f"{where}: '{key}' is {value!r}, not {what}")


def load(recipe: str) -> Recipe:
    """The recipe named ``recipe`` (a params.json, or a name in recipes/), checked whole:
    every key known, every value of its type, its engine one we have. Raises a
    DeepDreamError in one line naming the recipe and what is wrong."""
    from ..nets.loading import ENGINE_OF_RECORDED_NAME
    path = recipe_path(recipe)
    try:
        data = frames.read_json(path)
    except DeepDreamError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("dream"), dict):
        raise DeepDreamError(f"{recipe} is not the params.json of a dreaming run, nor a "
                             f"named recipe ({', '.join(named_recipes())})")
    _unknown(f"the recipe {recipe}", data, _TOP_VALUES)
    _unknown(f"the recipe {recipe}'s dream settings", data["dream"], _DREAM_VALUES)
    _typed(f"the recipe {recipe}", data, _TOP_VALUES)
    _typed(f"the recipe {recipe}", data["dream"], _DREAM_VALUES)
    engine = data.get("engine")
    if engine is not None and engine not in ENGINE_OF_RECORDED_NAME:
        raise SettingsError(f"the recipe {recipe}'s engine '{engine}' is none we have "
                            f"({', '.join(sorted(ENGINE_OF_RECORDED_NAME))})")
    dream = {k: v for k, v in data["dream"].items() if k != "guide_sha1"}
    return Recipe(recipe, dream, ENGINE_OF_RECORDED_NAME.get(engine), data.get("precision"),
                  data.get("image_type"),
                  {k: data.get(k) for k in ("model", "weights", "model_sha1",
                                            "model_code_sha1", "preprocess")},
                  data["dream"].get("guide_sha1"))


def check_guide(recipe: Recipe, guide: str | None) -> None:
    """Raise DeepDreamError if ``guide`` (the recipe's guide image, the user not having
    named another) is not the file its run used."""
    from ..nets.registry import sha1_of
    if recipe.guide_sha1 and guide and Path(guide).is_file() and \
            sha1_of(guide) != recipe.guide_sha1:
        raise DeepDreamError(f"the recipe's guide image {guide} has changed since its run "
                             "(another sha1)")


def model_settings(recipe: Recipe, given: set[str], model: str | None,
                   weights: str | None) -> dict:
    """The model settings the recipe's run used, as flags' destinations (``model``,
    ``model_path``, ``model_name``, ``weights`` and your own net's input convention), for
    those the user did not give (``given``; ``model``, ``weights``: what they gave). Caffe
    files it names are refused if they are not there or have changed since (another sha1);
    your own net's code runs only when the user names it with --model, and its files must
    match the recipe's (``_own_net``). Raises DeepDreamError in one line."""
    named = recipe.model.get("model")
    if not named:
        return {}
    _, colon, factory = named.rpartition(":")
    if colon and factory.isidentifier():                # your own PyTorch net
        if not given & {"model", "model_path", "model_name"} or (model and ":" in model):
            return _own_net(recipe, given, model, weights)
        return {}
    if given & {"model", "model_path", "model_name", "weights"}:
        return {}                                       # the user's model, not the recipe's
    _check_file(named, recipe.model.get("model_sha1"), "model file", "-t/--model")
    path = Path(named)
    return {"model": None, "model_path": str(path.parent), "model_name": path.name}


# your own PyTorch net's input convention: Preprocessing's fields, by flag destination
MODULE_FLAGS = {"input_mean": "mean", "input_std": "std", "channel_order": "channel_order",
                "input_range": "input_range"}


def _own_net(recipe: Recipe, given: set[str], model: str | None,
             weights: str | None) -> dict:
    """Check that ``model`` (and ``weights``, else the recipe's weights) is the recipe's
    own PyTorch net: the same factory, weights and code (``code_identity``), read from the
    files without importing them. Raises DeepDreamError in one line naming what differs."""
    named = recipe.model["model"]
    if "model" not in given:
        raise DeepDreamError(f"the recipe names your own PyTorch net {named}: give it with "
                             f"--model {named} to run its code")
    from ..nets.module import ModuleModel, short_name
    if "weights" not in given and recipe.model.get("weights"):
        weights = recipe.model["weights"]
        _check_file(weights, recipe.model.get("model_sha1"), "weights file", "--weights")
    mine = ModuleModel.named(model, weights)
    identity, recorded = mine.identity(), recipe.model.get("model_sha1")
    if short_name(named) != mine.name:
        difference = f"its net is {short_name(named)}"
    elif identity["model_sha1"] != recorded:
        difference = (f"its run used the factory's own weights, not {weights}" if not recorded
                      else f"{weights} is not its run's weights file (another sha1)" if weights
                      else "its run used a weights file: give it with --weights")
    else:
        difference = _code_difference(recipe.model.get("model_code_sha1"),
                                      identity["model_code_sha1"], model)
    if difference:
        raise DeepDreamError(f"the recipe does not fit --model {model}: {difference}")
    found = {"weights": weights}
    for flag, field in MODULE_FLAGS.items():
        if flag not in given and field in (recipe.model.get("preprocess") or {}):
            value = recipe.model["preprocess"][field]
            found[flag] = tuple(value) if isinstance(value, list) else value
    return found


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
