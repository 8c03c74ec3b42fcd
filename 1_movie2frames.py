#!/usr/bin/env python3
"""Stage 1: split a movie into numbered frames (00000001.png, ...) plus movie.json.

  1_movie2frames.py MOVIE DIR [--format png|jpg]
  1_movie2frames.py [ffmpeg|avconv|mplayer] MOVIE DIR [png|jpg]     (the 2015 form)
"""
from deepdream.cli import common as cli
from deepdream.errors import FramesError


def parser():
    p = cli.ArgumentParser(description="Extract every frame of a movie.")
    p.add_argument("words", nargs="+", metavar="[TOOL] MOVIE DIR [FORMAT]",
                   help="the movie and the frame folder (a leading ffmpeg/avconv/mplayer "
                        "and a trailing png/jpg are accepted, as in 2015)")
    p.add_argument("--format", choices=["png", "jpg"], help="frame format (default png)")
    p.add_argument("--start", type=float, help="start time in seconds")
    p.add_argument("--end", type=float, help="end time in seconds")
    p.add_argument("--fps", help="frame rate to extract at (default: the source's), "
                                 "e.g. 25 or 30000/1001")
    p.add_argument("--jpg-qscale", type=int, default=2, choices=range(2, 32),
                   metavar="2-31", help="JPEG quality, lower is better (default 2)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the numbered frames already in DIR")
    cli.add_log_flags(p)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    cli.setup_logging(0 if args.quiet else args.verbose)
    _, rest, fmt = cli.split_legacy(args.words)
    if len(rest) != 2:
        p.error("give a movie and a frame folder")
    from deepdream.io.extraction import extract_frames
    if fmt and args.format and fmt != args.format:
        raise FramesError(f"two formats given: {fmt} and --format {args.format}")
    extract_frames(rest[0], rest[1], args.format or fmt or "png", args.start, args.end,
                   args.fps, args.jpg_qscale, args.overwrite, progress=cli.progress_flag(not args.quiet))


if __name__ == "__main__":
    cli.run(main, "The frames of this run were not kept: run the same command again (with "
                  "--overwrite where the folder already holds frames).")
