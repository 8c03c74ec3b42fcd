#!/usr/bin/env python3
"""Stage 2: let a Caffe net dream on every frame, each blended with the previous dream.

  2_dreaming_time.py -i frames -o processed [--gpu]
"""
import argparse

from deepdream import cli
from deepdream.errors import DeepDreamError
from deepdream.dreaming import RunOptions
from deepdream.runs import DreamSettings

DEFAULTS, RUN = DreamSettings(), RunOptions()


def parser():
    p = argparse.ArgumentParser(description="Dreaming in videos.")
    a = p.add_argument
    a("-i", "--input", help="folder of extracted frames (00000001.png, ...)")
    a("-o", "--output", help="folder for the dreamed frames")
    a("-it", "--image_type", "--image-type", choices=["jpg", "png"],
      help="frame type (default: what the input folder holds)")
    a("--gpu", nargs="?", const="0", metavar="N", help="dream on CUDA GPU N (default 0)")
    a("--device", help="cpu, cuda, cuda:N, mps or auto (default auto: a GPU if there is one)")
    a("--precision", default=RUN.precision, choices=["fp32", "bf16", "fp16"],
      help="arithmetic of the net: fp32 (Caffe's, default), bf16 (about twice as fast on "
           "GPUs and CPUs with AVX512-BF16 or AMX) or fp16 (GPUs); see BENCHMARKS.md")
    a("--engine", default=RUN.engine, choices=["torch", "caffe"],
      help="the engine that runs the net: torch, or a real pycaffe (scripts/install_caffe.sh)")
    a("--model", help="a model of the registry, fetched on first use (default "
                      "bvlc_googlenet; python -m deepdream.models list)")
    a("--mirror", help="fetch model files from BASE_URL/<file name> (or $DEEPDREAM_MIRROR)")
    a("-t", "--model_path", "--model-path", help="folder with deploy.prototxt and the model")
    a("-m", "--model_name", "--model-name", default="bvlc_googlenet.caffemodel",
      help="the .caffemodel file in that folder (default bvlc_googlenet.caffemodel)")
    a("-p", "--preview", type=int, default=DEFAULTS.preview, metavar="WIDTH",
      help="dream at this width and scale back up (fast previews)")
    a("-oct", "--octaves", type=int, default=DEFAULTS.octaves,
      help=f"octaves (default {DEFAULTS.octaves})")
    a("-octs", "--octavescale", type=float, default=DEFAULTS.octave_scale,
      help=f"octave scale (default {DEFAULTS.octave_scale})")
    a("-itr", "--iterations", type=int, default=DEFAULTS.iterations,
      help=f"steps per octave (default {DEFAULTS.iterations})")
    a("-j", "--jitter", type=int, default=DEFAULTS.jitter,
      help=f"jitter in pixels (default {DEFAULTS.jitter})")
    a("-z", "--zoom", type=float, default=DEFAULTS.zoom,
      help="zoom into the previous dream by this factor each frame (default 1: none)")
    a("-s", "--stepsize", type=float, default=DEFAULTS.step_size,
      help=f"step size (default {DEFAULTS.step_size})")
    a("-b", "--blend", type=cli.blend_value, default=DEFAULTS.blend,
      help="weight of the new frame against the previous dream: 0..1 (default 0.5), "
           "'loop' (0.5 to 1 and back) or 'random'")
    a("-l", "--layers", nargs="+",
      help="layers to cycle through frame by frame (default: the model's sweep; for "
           "GoogLeNets customloop, inception_4c up to 5b and back)")
    a("-v", "--verbose", type=int, default=1, choices=range(4), metavar="0-3",
      help="0 quiet, 1 progress (default), 2-3 every step")
    a("-gi", "--guide_image", "--guide-image", help="guide image for guided dreaming")
    a("-sf", "--start_frame", "--start-frame", type=int, help="first frame number")
    a("-ef", "--end_frame", "--end-frame", type=int, help="last frame number")
    a("-e", "--extract", type=int, nargs="?", const=1,
      help="extract the frames of the movie given as -i into -o, then stop")
    a("--flow", nargs="?", const="dis", choices=["dis", "farneback"],
      help="carry the previous dream along the optical flow instead of blending (default "
           "method dis)")
    a("--flow-blend", type=float, default=DEFAULTS.flow_blend,
      help=f"weight of the previous dream carried along the flow ({DEFAULTS.flow_blend})")
    a("--flow-decay", type=float, default=DEFAULTS.flow_decay,
      help="share of the carried dream dropped each frame, so that it never builds up "
           f"({DEFAULTS.flow_decay})")
    a("--flow-smooth", type=float, default=DEFAULTS.flow_smooth,
      help="pull each new dream towards the carried one where the flow can follow: less "
           f"flicker ({DEFAULTS.flow_smooth}; 0 for none)")
    a("--scene-threshold", type=float, default=DEFAULTS.scene_threshold,
      help=f"content change (0-255) that counts as a scene cut ({DEFAULTS.scene_threshold:g})")
    a("--no-scene-cuts", action="store_true",
      help="blend across scene cuts too, as the original did")
    a("--ray", nargs="?", const="local", metavar="ADDRESS",
      help="spread the frames over Ray workers: no address starts a local Ray, 'auto' or "
           "ray://host:port joins a cluster (folders on a shared filesystem)")
    a("--workers", type=int, default=RUN.workers, help="Ray workers (one GPU or a share of the CPUs "
                                              "each; default 2)")
    a("--warmup", type=int, default=RUN.warmup, help="frames each segment dreams before its first "
                                             "(not written; default 10)")
    a("--segment-length", type=int, default=RUN.segment_length, help="frames per segment between scene "
                                                      "cuts (default 100)")
    a("--retries", type=int, default=RUN.retries, help="times a segment whose Ray worker dies is "
                                             "tried again before the run stops (default 3)")
    a("--batch-segments", type=int, default=RUN.batch_segments, metavar="N",
      help="dream N segments of the film in one batch (GPUs; segments begin at scene cuts "
           "and start --warmup frames early)")
    a("--seed", type=int, help="seed the jitter for reproducible dreams")
    a("--tile", type=int, metavar="N", help="compute gradients in tiles of N pixels: "
                                            "bounded memory for 4K frames (e.g. 512)")
    a("--list-layers", action="store_true", help="list the net's layers and their sizes")
    a("--overwrite", action="store_true", help="dream again over frames made with other "
                                               "parameters")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    cli.setup_logging(args.verbose)
    import deepdream
    from deepdream import dreaming, models, schedules
    if args.extract:
        if not (args.input and args.output):
            raise DeepDreamError("-e/--extract needs -i MOVIE and -o FOLDER")
        deepdream.extract_frames(args.input, args.output, args.image_type or "png",
                                 progress=args.verbose > 0)
        return 0
    if not args.list_layers and not (args.input and args.output):
        raise DeepDreamError("give the frame folder with -i and the output folder with -o")
    if args.model and args.model_path:
        raise DeepDreamError("give either --model or -t/--model_path, not both")
    if args.flow and args.zoom != 1:
        raise DeepDreamError("--zoom and --flow do not go together: the flow already moves "
                             "the dream with the picture")
    model = models.resolve(args.model, args.model_path, args.model_name, args.mirror,
                           progress=args.verbose > 0)
    options = RunOptions(
        device=cli.device_from_flags(args.device, args.gpu), engine=args.engine,
        precision=args.precision, image_type=args.image_type, start_frame=args.start_frame,
        end_frame=args.end_frame, overwrite=args.overwrite, progress=args.verbose > 0,
        batch_segments=args.batch_segments, warmup=args.warmup, ray=args.ray,
        workers=args.workers, segment_length=args.segment_length, retries=args.retries)
    if args.list_layers:
        print(dreaming.list_layers(model, args.input, options, args.preview))
        return 0
    settings = DreamSettings(
        layers=schedules.CUSTOM_LOOP if args.layers == ["customloop"] else
        dreaming.default_layers(model) if args.layers is None else tuple(args.layers),
        octaves=args.octaves, octave_scale=args.octavescale, iterations=args.iterations,
        jitter=args.jitter, step_size=args.stepsize, blend=args.blend, preview=args.preview,
        zoom=args.zoom, guide_image=args.guide_image, seed=args.seed, tile=args.tile,
        flow=args.flow, flow_blend=args.flow_blend, flow_decay=args.flow_decay,
        flow_smooth=args.flow_smooth, scene_cuts=not args.no_scene_cuts,
        scene_threshold=args.scene_threshold)
    report = deepdream.dream_video(args.input, args.output, settings, model, options)
    print(f"{report.dreamed} frames dreamed ({report.skipped} already done) in {args.output}")
    return 0


if __name__ == "__main__":
    cli.run(main, "Finished frames are kept: run the same command again to resume.")
