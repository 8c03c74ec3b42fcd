"""``python -m deepdream.metrics FRAMES DREAMED``: how steady a dreamed movie is."""
from __future__ import annotations

from ..io import metrics
from ..io.flow import METHODS
from .common import ArgumentParser, run, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m deepdream.metrics",
                            description=metrics.__doc__.splitlines()[0])
    parser.add_argument("frames_dir")
    parser.add_argument("dreamed_dir")
    parser.add_argument("--method", default="dis", choices=METHODS)
    args = parser.parse_args(argv)
    setup_logging(0)
    result = metrics.measure(args.frames_dir, args.dreamed_dir, args.method)
    print(f"warping error:  {result.warping_error:.3f}  (mean |dream_i - warped dream_i-1|, "
          f"{result.pairs} pairs, {result.cuts_skipped} across scene cuts left out)")
    print(f"dream strength: {result.strength:.3f}  (mean |dream - original|)")
    return 0


def command() -> None:
    """``python -m deepdream.metrics``: ``main`` with a user's error as one line."""
    run(main)
