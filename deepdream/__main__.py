"""``python -m deepdream MOVIE -o OUT.mp4 [stage-2 flags]``: the whole job in one command --
the movie's frames extracted into a work folder, dreamed, and put back together with its sound.
The same command after a crash, Ctrl-C or kill -9 continues where it stopped: each stage
skips what is finished. ``--sheet SHEET.png`` instead dreams one frame at each layer of the
sweep and writes a contact sheet, to choose a layer first."""
from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from . import cli
from .dream_flags import add_dream_flags, apply_recipe, model_from, options_from, settings_from

log = logging.getLogger("deepdream")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deepdream", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Dream a whole movie: its frames are extracted, dreamed and put back "
                    "together with its sound. Run the same command again after an "
                    "interruption to continue. The three scripts (1_movie2frames.py, "
                    "2_dreaming_time.py, 3_frames2movie.py) do the same in three steps.")
    p.add_argument("movie", help="the movie to dream")
    p.add_argument("-o", "--output", help="the movie to write (default: MOVIE_dream.mp4 "
                                          "beside the movie)")
    p.add_argument("--work", help="folder for the frames while the job runs (default: "
                                  ".OUTPUT.deepdream beside the output)")
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
    import deepdream
    movie = Path(args.movie)
    model = model_from(args)
    settings, options = settings_from(args, model), options_from(args)
    if args.sheet:
        from .sheet import contact_sheet
        contact_sheet(movie, args.sheet, settings, model, options)
        return 0
    output = Path(args.output) if args.output else movie.with_name(f"{movie.stem}_dream.mp4")
    work = Path(args.work) if args.work else output.with_name(f".{output.stem}.deepdream")
    extracted, dreamed = work / "frames", work / "dreamed"
    if (extracted / "movie.json").is_file():     # stage 1 writes it last
        log.info("[1/3] frames of %s already extracted in %s", movie, extracted)
    else:
        log.info("[1/3] extracting the frames of %s into %s", movie, extracted)
        deepdream.extract_frames(movie, extracted, options.image_type or "png",
                                 overwrite=True, progress=options.progress)
    log.info("[2/3] dreaming")
    report = deepdream.dream_video(extracted, dreamed, settings, model, options)
    log.info("%d frames dreamed (%d already done)", report.dreamed, report.skipped)
    log.info("[3/3] encoding %s", output)
    deepdream.make_movie(dreamed, output, crf=args.crf, progress=options.progress)
    if not args.keep_frames:
        shutil.rmtree(work)
    print(f"{output} written")
    return 0


if __name__ == "__main__":
    cli.run(main, "Finished frames are kept: run the same command again to continue.")
