"""What the three scripts share: logging set-up, turning errors into one line and an exit
code (``DEEPDREAM_DEBUG=1`` shows the traceback instead), the progress display and the
--list-layers table."""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import typing
from pathlib import Path
from typing import Callable

from ..errors import DeepDreamError, SettingsError, first_line
from ..io import frames
from ..progress import LogProgress
from ..run.schedules import FORMS

if typing.TYPE_CHECKING:     # the engine imports torch
    from ..nets.base import Net

log = logging.getLogger(__name__)

LEGACY_TOOLS = ("ffmpeg", "avconv", "mplayer")   # the first word the 2015 shell scripts took


def setup_logging(verbose: int = 1) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def run(main: Callable[[list[str] | None], int | None],
        interrupted_hint: str = "") -> None:
    """Call ``main`` and exit: 0 on success; 1 with one line for a DeepDreamError or for an
    OSError (a full disk, a permission, a path under a file: from any thread, the path and
    the cause); 130 with ``interrupted_hint`` on Ctrl-C."""
    debug = os.environ.get("DEEPDREAM_DEBUG", "") not in ("", "0")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started ignoring it (a shell's background job): a Ctrl-C at the terminal still
        # never reaches us, but a SIGINT sent to us (kill -INT) stops us as Ctrl-C does
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main(None)
    except DeepDreamError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if debug:
            raise
        print(f"error: {os_error_line(e)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\nstopped. {interrupted_hint}".rstrip(), file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def os_error_line(error: OSError) -> str:
    """An OSError as one line: the path and the cause ("/x/y.png: No space left on
    device")."""
    cause = error.strerror or first_line(error)
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's help with each flag's default, where it has one and its help does not say
    it already (no "(default: None)", no default said twice)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or \
                "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose refusal of a flag is a SettingsError ("argument -oct/
    --octaves: invalid int value: 'x' (see PROG --help)"): one line from ``run``, as every
    other mistake, not the usage and exit status 2."""

    def error(self, message: str):
        raise SettingsError(f"{message} (see {self.prog} --help)")


def add_log_flags(p: argparse.ArgumentParser) -> None:
    """-q and -v of the stages that run ffmpeg (1 and 3)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", type=int, default=1, choices=range(4),
                   metavar="0-3", help="0 quiet, 1 progress (default), 2-3 the ffmpeg "
                                       "in use and its commands")


def split_legacy(words: list[str], formats=("png", "jpg")) -> tuple[str | None, list[str],
                                                                     str | None]:
    """Split the 2015 scripts' positional form ``[ffmpeg|avconv|mplayer] ARGS... [png|jpg]``
    into (tool, args, format)."""
    tool = words[0] if words and words[0] in LEGACY_TOOLS else None
    rest = words[1:] if tool else list(words)
    fmt = rest.pop() if rest and rest[-1].lower() in formats + ("jpeg",) else None
    if tool and tool != "ffmpeg":
        logging.getLogger(__name__).info("'%s' noted: everything goes through ffmpeg now", tool)
    return tool, rest, fmt


def schedule_value(text: str):
    """The argparse type of a setting that may follow time (``run.schedules``): a number
    (an int where it is one), else the text of a schedule (keyframes ``0:1.5, 4s:3``,
    ``smooth(...)``, ``sound:LOW..HIGH``), whose values the run's plan checks."""
    try:
        value = float(text)
    except ValueError:
        text = text.strip()
        if ":" in text or text.startswith("smooth("):
            return text
        raise argparse.ArgumentTypeError(f"give {FORMS}") from None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() \
        else value


def blend_value(text: str):
    """The argparse type of -b/--blend: a number from 0 to 1, 'loop', 'random' or a
    schedule (``schedule_value``)."""
    if text in ("loop", "random"):
        return text
    try:
        value = schedule_value(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("a number from 0 to 1, 'loop', 'random' or keyframes "
                                         "or the sound (see --help)") from None
    if isinstance(value, (int, float)) and not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("the blend must be from 0 to 1")
    return value


def triple_value(text: str) -> tuple[float, float, float]:
    """The argparse type of --input-mean/--input-std: three numbers, 'A,B,C'."""
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError("three numbers, one per channel: A,B,C")
    return values


def device_from_flags(device: str | None, gpu: str | None) -> str:
    """--device, else the original's --gpu [N], else "auto". --gpu on a machine without a
    CUDA GPU warns and uses the CPU (an explicit --device cuda is an error instead); an N
    that is not a number is a SettingsError."""
    if device:
        return device
    if gpu is None:
        return "auto"
    if not str(gpu).isdigit():
        raise SettingsError(f"--gpu takes a GPU number (0, 1, ...), not '{gpu}'")
    import torch
    if not torch.cuda.is_available():
        logging.getLogger(__name__).warning(
            "--gpu: this PyTorch sees no CUDA GPU, so the frames are dreamed on the CPU "
            "(slowly); install a CUDA build of torch (see README)")
        return "cpu"
    return f"cuda:{gpu}"


class Bar:
    """The command line's display of work done (a ``deepdream.progress`` display): a tqdm
    bar on a terminal; elsewhere the library's log line every twentieth of the work."""

    def __init__(self, total: int | None, description: str = "dreaming", unit: str = "frame"):
        from tqdm import tqdm

        self.tty = sys.stderr.isatty()
        self.lines = LogProgress(total, description, unit)
        self.bar = tqdm(total=total, desc=description, unit=unit, unit_scale=unit == "B",
                        disable=not self.tty, dynamic_ncols=True, leave=False)

    def step(self, count: int = 1) -> None:
        self.bar.update(count)
        if not self.tty:
            self.lines.step(count)

    def close(self) -> None:
        self.bar.close()


def progress_flag(shown: bool) -> Bar | bool:
    """What a command passes as ``progress``: its bars, or nothing (-q, -v 0)."""
    return Bar if shown else False


def layer_table(net: Net, model_name: str, height: int = 224, width: int = 224) -> str:
    """The net's blobs and their sizes for a height x width frame, as --list-layers prints
    them."""
    from ..dreamer.ascent import fixed_view
    lines = [f"blobs of {model_name} for a {width}x{height} frame:"]
    for name, shape in net.blob_shapes(height, width).items():
        view = fixed_view(net, name) if shape is None else None
        if view is not None:
            shape = net.blob_shapes(*view)[name]
        size = " x ".join(map(str, shape[1:])) if shape else \
            "(the frame is too small to reach it)"
        if view is not None:
            size += f" (sees the frame scaled to {view[1]}x{view[0]})"
        lines.append(f"  {name:40s} {size}")
    return "\n".join(lines)


def list_layers(model, size: tuple[int, int] | None = None, options=None,
                preview: int = 0) -> str:
    """``layer_table`` of ``model``'s net (loaded as ``options`` say, a RunOptions) for frames
    of ``size`` (height, width; None: 224x224) as they are dreamed at ``preview``."""
    from ..nets.loading import load_model
    from ..run.plan import dream_size
    from ..run.settings import DreamSettings, RunOptions
    options = options or RunOptions()
    height, width = size or (224, 224)
    if preview and preview < width:
        height, width = dream_size(DreamSettings(preview=preview), height, width)
    if getattr(model, "missing", False):
        model.fetch(options.progress)
    net = load_model(model, options.device, options.engine, options.precision)
    return layer_table(net, model.name, height, width)


def frames_size(folder: str | Path, image_type: str | None = None) -> tuple[int, int] | None:
    """(height, width) of the first frame of ``folder`` (None: it holds none)."""
    found = frames.list_frames(folder, image_type)
    if not found:
        return None
    width, height = frames.image_size(next(iter(found.values())))
    return height, width
