#!/usr/bin/env python3
"""Stage 3: put dreamed frames and the original's sound (cut to length) back into a movie.

  3_frames2movie.py FRAMES_DIR [-o OUT.mp4]
  3_frames2movie.py [ffmpeg|avconv|mplayer] FRAMES_DIR [ORIGINAL_MOVIE] [png|jpg]   (2015 form)
"""
from deepdream.cli import common as cli
from deepdream.io.encoding import DEFAULT_CRF


def parser():
    p = cli.ArgumentParser(description="Encode frames (and sound) into a movie.")
    p.add_argument("words", nargs="+", metavar="[TOOL] FRAMES_DIR [MOVIE] [FORMAT]",
                   help="the frame folder, optionally the original movie for sound and "
                        "frame rate (a leading ffmpeg/avconv/mplayer and a trailing "
                        "png/jpg are accepted, as in 2015)")
    p.add_argument("-o", "--output", help="the movie to write (default: "
                                          "<FRAMES_DIR>_done.mp4 in this folder)")
    p.add_argument("--fps", help="frame rate of the movie (default: stage 1's, from "
                                 "movie.json; else the original movie's; else 25)")
    p.add_argument("--gif", action="store_true", help="write an animated GIF instead")
    p.add_argument("--crf", type=int, default=DEFAULT_CRF,
                   help=f"H.264 quality, 0 (lossless) to 51 (default {DEFAULT_CRF})")
    p.add_argument("--codec", default="libx264", help="video codec (default libx264)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output if it exists (else it is refused)")
    cli.add_log_flags(p)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    cli.setup_logging(0 if args.quiet else args.verbose)
    _, rest, fmt = cli.split_legacy(args.words)
    if not 1 <= len(rest) <= 2:
        p.error("give a frame folder and, optionally, the original movie")
    from deepdream.io.encoding import make_movie
    make_movie(rest[0], args.output, rest[1] if len(rest) > 1 else None, args.fps, fmt,
               args.gif, args.crf, args.codec, progress=cli.progress_flag(not args.quiet),
               overwrite=args.overwrite)


if __name__ == "__main__":
    cli.run(main, "No movie was written: run the same command again.")
