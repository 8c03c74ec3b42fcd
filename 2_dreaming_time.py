#!/usr/bin/env python3
"""Stage 2: let a Caffe net dream on every frame, each blended with the previous dream.

  2_dreaming_time.py -i frames -o processed [--gpu]
"""
from deepdream.cli import common as cli
from deepdream.cli.dream_flags import (add_dream_flags, apply_recipe, model_from, options_from,
                                       run_from)
from deepdream.errors import DeepDreamError, plural


def parser():
    p = cli.ArgumentParser(description="Dreaming in videos.")
    p.add_argument("-i", "--input", help="folder of extracted frames (00000001.png, ...)")
    p.add_argument("-o", "--output", help="folder for the dreamed frames")
    p.add_argument("-e", "--extract", type=int, nargs="?", const=1,
                   help="extract the frames of the movie given as -i into -o, then stop")
    p.add_argument("--list-layers", action="store_true",
                   help="list the net's layers and their sizes")
    add_dream_flags(p)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    apply_recipe(p, args, argv)
    cli.setup_logging(args.verbose)
    import deepdream
    if args.extract is not None:
        if args.extract != 1:
            raise DeepDreamError("-e/--extract takes no value (or 1, as in 2015)")
        if not (args.input and args.output):
            raise DeepDreamError("-e/--extract needs -i MOVIE and -o FOLDER")
        deepdream.extract_frames(args.input, args.output, args.image_type or "png",
                                 progress=cli.progress_flag(args.verbose > 0))
        return 0
    if not args.list_layers and not (args.input and args.output):
        raise DeepDreamError("give the frame folder with -i and the output folder with -o")
    if args.list_layers:
        size = cli.frames_size(args.input, args.image_type) if args.input else None
        print(cli.list_layers(model_from(args), size, options_from(args), args.preview))
        return 0
    settings, model, options = run_from(args)
    report = deepdream.dream_video(args.input, args.output, settings, model, options)
    print(f"{plural(report.dreamed, 'frame')} dreamed ({report.skipped} already done) in "
          f"{args.output}")
    return 0


if __name__ == "__main__":
    cli.run(main, "Finished frames are kept: run the same command again to resume.")
