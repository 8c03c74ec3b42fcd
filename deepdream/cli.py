"""What the three scripts share: logging set-up and turning errors into one line and an exit
code (``DEEPDREAM_DEBUG=1`` shows the traceback instead)."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from .errors import DeepDreamError

LEGACY_TOOLS = ("ffmpeg", "avconv", "mplayer")   # the first word the 2015 shell scripts took


def setup_logging(verbose: int = 1) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def run(main: Callable[[list[str] | None], int | None],
        interrupted_hint: str = "") -> None:
    """Call ``main`` and exit: 0 on success, 1 with one line for a DeepDreamError, 130 with
    ``interrupted_hint`` on Ctrl-C."""
    debug = os.environ.get("DEEPDREAM_DEBUG", "") not in ("", "0")
    try:
        code = main(None)
    except DeepDreamError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\ninterrupted. {interrupted_hint}".rstrip(), file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


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


def blend_value(text: str):
    """The argparse type of -b/--blend: a number from 0 to 1, 'loop' or 'random'."""
    import argparse
    if text in ("loop", "random"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a number from 0 to 1, 'loop' or 'random'") \
            from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("the blend must be from 0 to 1")
    return value


def device_from_flags(device: str | None, gpu: str | None) -> str:
    """--device, else the original's --gpu [N], else "auto". --gpu on a machine without a
    CUDA GPU warns and uses the CPU (an explicit --device cuda is an error instead)."""
    if device:
        return device
    if gpu is None:
        return "auto"
    import torch
    if not torch.cuda.is_available():
        logging.getLogger(__name__).warning(
            "--gpu: this PyTorch sees no CUDA GPU, so the frames are dreamed on the CPU "
            "(slowly); install a CUDA build of torch (see README)")
        return "cpu"
    return f"cuda:{gpu}" if str(gpu).isdigit() else gpu
