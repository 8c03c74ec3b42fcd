"""``python -m deepdream MOVIE -o OUT.mp4 [stage-2 flags]``: the whole job in one command --
the movie's frames extracted into a work folder, dreamed, and put back together with its sound.
The same command after a crash, Ctrl-C or kill -9 continues where it stopped: each stage
skips what is finished. ``--sheet SHEET.png`` instead dreams one frame at each layer of the
sweep and writes a contact sheet, to choose a layer first."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import common as cli
from .dream_flags import (add_dream_flags, apply_recipe, check_flags, model_from, options_from,
                          settings_from)


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="deepdream" if Path(sys.argv[0]).name == "deepdream" else "python -m deepdream",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Dream a whole movie: its frames are extracted, dreamed and put back "
                    "together with its sound. Run the same command again after an "
                    "interruption to continue. The three scripts (1_movie2frames.py, "
                    "2_dreaming_time.py, 3_frames2movie.py) do the same in three steps.")
    p.add_argument("movie", help="the movie to dream")
    p.add_argument("-o", "--output", help="the movie to write (default: MOVIE_dream.mp4 "
                                          "beside the movie)")
    p.add_argument("--work", help="folder for the frames while the job runs (default: "
                                  ".OUTPUT.deepdream beside the output); a folder that "
                                  "holds files of yours gets a folder of the job's inside it")
    p.add_argument("--keep-frames", action="store_true",
                   help="keep the work folder (the extracted and dreamed frames) at the end")
    p.add_argument("--sheet", metavar="SHEET.png",
                   help="instead: dream one frame (the middle one, or -sf N) at each layer of "
                        "the sweep (or of -l) and write a contact sheet of them, then stop")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality of the output movie")
    add_dream_flags(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    apply_recipe(p, args, argv)
    cli.setup_logging(args.verbose)
    movie = Path(args.movie)
    check_flags(args)
    from ..run import job
    if args.sheet:
        from ..io.frames import picture_format
        from .sheet import contact_sheet
        picture_format(args.sheet)                # before the model is fetched
        model = model_from(args)
        contact_sheet(movie, args.sheet, settings_from(args, model), model,
                      options_from(args))
        return 0
    output = Path(args.output) if args.output else movie.with_name(f"{movie.stem}_dream.mp4")
    job.check_paths(movie, output, args.work, args.crf, args.overwrite)   # before any fetch
    model = model_from(args)
    job.dream_movie(movie, output, settings_from(args, model), model, options_from(args),
                    args.work, args.keep_frames, args.crf)
    print(f"{output} written")
    return 0


def entry() -> None:
    """The ``deepdream`` command (pyproject.toml's console script): ``main`` with a user's
    error as one line and exit 1, Ctrl-C as exit 130; never returns."""
    cli.run(main, "Finished frames are kept: run the same command again to continue.")
