"""``python -m deepdream MOVIE -o OUT.mp4 [stage-2 flags]``: the whole job in one command --
the movie's frames extracted into a work folder, dreamed, and put back together with its sound.
The same command after a crash, Ctrl-C or kill -9 continues where it stopped: each stage
skips what is finished. ``--sheet SHEET.png`` instead dreams one frame at each layer of the
sweep and writes a contact sheet, to choose a layer first. ``--live SOURCE`` dreams a camera,
stream or movie as it plays instead (``cli/live.py``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..io.live import OPEN_TIMEOUT
from ..io.encoding import DEFAULT_CRF
from . import common as cli
from .dream_flags import add_dream_flags, apply_recipe, run_from


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="deepdream" if Path(sys.argv[0]).name == "deepdream" else "python -m deepdream",
        formatter_class=cli.DefaultsHelpFormatter,
        description="Dream a whole movie: its frames are extracted, dreamed and put back "
                    "together with its sound. Run the same command again after an "
                    "interruption to continue. The three scripts (1_movie2frames.py, "
                    "2_dreaming_time.py, 3_frames2movie.py) do the same in three steps.")
    p.add_argument("movie", nargs="?", help="the movie to dream")
    p.add_argument("-o", "--output", help="the movie to write (default: MOVIE_dream.mp4 "
                                          "beside the movie); with --live, a movie or an "
                                          "ffmpeg output URL (udp://, rtmp://) to record to")
    p.add_argument("--work", help="folder for the frames while the job runs (default: "
                                  ".OUTPUT.deepdream beside the output); a folder that "
                                  "holds files of yours gets a folder of the job's inside it")
    p.add_argument("--keep-frames", action="store_true",
                   help="keep the work folder (the extracted and dreamed frames) at the end")
    p.add_argument("--sheet", metavar="SHEET.png",
                   help="instead: dream one frame (the middle one, or -sf N) at each layer of "
                        "the sweep (or of -l) and write a contact sheet of them, then stop")
    p.add_argument("--plot", metavar="CURVES.png",
                   help="instead: draw the curves of the settings that follow the film's "
                        "time or sound (keyframes, sound:...) over its sound, then stop")
    p.add_argument("--crf", type=int, default=DEFAULT_CRF,
                   help="H.264 quality of the output movie, 0 (lossless) to 51")
    p.add_argument("--list-layers", action="store_true",
                   help="instead: list the net's layers and their sizes for the movie's frames")
    live = p.add_argument_group("live", "dream a camera, stream or movie as it plays "
                                        "(see README: Live)")
    live.add_argument("--live", metavar="SOURCE",
                      help="instead: dream SOURCE live (a movie at its own rate, a camera such "
                           "as /dev/video0, udp://, rtsp://, ...); defaults -p 320 -oct 2 "
                           "-itr 3")
    live.add_argument("--serve", type=int, metavar="PORT",
                      help="show the live dream on a page at http://HOST:PORT/ (on port "
                           "8765 when neither -o nor --serve is given)")
    live.add_argument("--host", help="the page's address (default 127.0.0.1; another opens "
                                     "it wider)")
    live.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    live.add_argument("--input-format", metavar="F",
                      help="ffmpeg's -f for SOURCE: v4l2, avfoundation, dshow, x11grab, ...")
    live.add_argument("--open-timeout", type=float, metavar="SECONDS", help="how long SOURCE "
                      f"may take to give its first picture (default {OPEN_TIMEOUT:g})")
    add_dream_flags(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.live and args.movie:
        p.error(f"give either a movie ({args.movie}) or --live SOURCE, not both")
    if args.live:
        from ..run.live import LIVE_DEFAULTS
        p.set_defaults(**LIVE_DEFAULTS)
        args = p.parse_args(argv)
    elif args.movie is None:
        p.error("the following arguments are required: movie (or --live SOURCE)")
    else:
        for flag in ("serve", "host", "duration", "input_format", "open_timeout"):
            if getattr(args, flag) is not None:
                p.error(f"--{flag.replace('_', '-')} goes with --live SOURCE")
    apply_recipe(p, args, argv)
    cli.setup_logging(args.verbose)
    if args.live:
        from .live import main as live_main
        return live_main(args)
    movie = Path(args.movie)
    if args.list_layers:
        from ..io import video
        from .dream_flags import model_from, options_from
        info = video.probe(movie)
        print(cli.list_layers(model_from(args), (info.height, info.width),
                              options_from(args), args.preview))
        return 0
    if args.plot:
        from ..run.plot import plot
        from .dream_flags import settings_from
        plot(movie, args.plot, settings_from(args, None), args.overwrite)
        return 0
    settings, model, options = run_from(args)
    if args.sheet:
        from ..run.sheet import contact_sheet
        contact_sheet(movie, args.sheet, settings, model, options)
        return 0
    from ..run import job
    output = Path(args.output) if args.output else movie.with_name(f"{movie.stem}_dream.mp4")
    job.dream_movie(movie, output, settings, model, options, args.work, args.keep_frames,
                    args.crf)
    print(f"{output} written")
    return 0


def entry() -> None:
    """The ``deepdream`` command (pyproject.toml's console script): ``main`` with a user's
    error as one line and exit 1, Ctrl-C as exit 130; never returns."""
    live = any(word.split("=")[0] == "--live" for word in sys.argv[1:])   # says its own
    cli.run(main, "" if live else "Finished frames are kept: run the same command again to "
                                  "continue.")
