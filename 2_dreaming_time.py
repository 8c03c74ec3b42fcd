#!/usr/bin/env python3
"""Stage 2: let a Caffe net dream on every frame, each blended with the previous dream.

  2_dreaming_time.py -i frames -o processed [--gpu]
"""
import argparse

from deepdream import cli
from deepdream.errors import DeepDreamError
from deepdream.pipeline import DreamSettings as DEFAULTS


def parser():
    p = argparse.ArgumentParser(description="Dreaming in videos.")
    a = p.add_argument
    a("-i", "--input", help="folder of extracted frames (00000001.png, ...)")
    a("-o", "--output", help="folder for the dreamed frames")
    a("-it", "--image_type", "--image-type", choices=["jpg", "png"],
      help="frame type (default: what the input folder holds)")
    a("--gpu", nargs="?", const="0", metavar="N", help="dream on CUDA GPU N (default 0)")
    a("--device", help="cpu, cuda, cuda:N, mps or auto (default auto: a GPU if there is one)")
    a("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
      help="arithmetic of the net: fp32 (Caffe's, default), bf16 (about twice as fast on "
           "GPUs and CPUs with AVX512-BF16 or AMX) or fp16 (GPUs); see BENCHMARKS.md")
    a("--engine", default="torch", choices=["torch", "caffe"],
      help="the engine that runs the net: torch, or a real pycaffe (scripts/install_caffe.sh)")
    a("--model", help="a model of the registry, fetched on first use (default "
                      "bvlc_googlenet; python -m deepdream.models list)")
    a("--mirror", help="fetch model files from BASE_URL/<file name> (or $DEEPDREAM_MIRROR)")
    a("-t", "--model_path", "--model-path", help="folder with deploy.prototxt and the model")
    a("-m", "--model_name", "--model-name", default="bvlc_googlenet.caffemodel",
      help="the .caffemodel file in that folder (default bvlc_googlenet.caffemodel)")
    a("-p", "--preview", type=int, default=0, metavar="WIDTH",
      help="dream at this width and scale back up (fast previews)")
    a("-oct", "--octaves", type=int, default=4, help="octaves (default 4)")
    a("-octs", "--octavescale", type=float, default=1.5, help="octave scale (default 1.5)")
    a("-itr", "--iterations", type=int, default=5, help="steps per octave (default 5)")
    a("-j", "--jitter", type=int, default=32, help="jitter in pixels (default 32)")
    a("-z", "--zoom", type=float, default=1.0,
      help="zoom into the previous dream by this factor each frame (default 1: none)")
    a("-s", "--stepsize", type=float, default=1.5, help="step size (default 1.5)")
    a("-b", "--blend", type=cli.blend_value, default=0.5,
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
    a("--workers", type=int, default=2, help="Ray workers (one GPU or a share of the CPUs "
                                              "each; default 2)")
    a("--warmup", type=int, default=10, help="frames each segment dreams before its first "
                                             "(not written; default 10)")
    a("--segment-length", type=int, default=100, help="frames per segment between scene "
                                                      "cuts (default 100)")
    a("--retries", type=int, default=3, help="times a segment whose Ray worker dies is "
                                             "tried again before the run stops (default 3)")
    a("--batch-segments", type=int, default=1, metavar="N",
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
    from deepdream import load_net, models, pipeline, schedules
    from deepdream.engine import IMAGENET_MEAN_BGR
    if args.extract:
        if not (args.input and args.output):
            raise DeepDreamError("-e/--extract needs -i MOVIE and -o FOLDER")
        pipeline.extract_frames(args.input, args.output, args.image_type or "png",
                                progress=args.verbose > 0)
        return 0
    if not args.list_layers and not (args.input and args.output):
        raise DeepDreamError("give the frame folder with -i and the output folder with -o")
    if args.model and args.model_path:
        raise DeepDreamError("give either --model or -t/--model_path, not both")
    model = models.resolve(args.model, args.model_path, args.model_name, args.mirror,
                           progress=args.verbose > 0)
    caffemodel = model.caffemodel
    if args.layers in (None, ["customloop"]):
        layers = model.entry.layers if model.entry and not args.layers else schedules.CUSTOM_LOOP
    else:
        layers = tuple(args.layers)
    if args.flow and args.zoom != 1:
        raise DeepDreamError("--zoom and --flow do not go together: the flow already moves "
                             "the dream with the picture")
    settings = pipeline.DreamSettings(
        layers=layers, octaves=args.octaves, octave_scale=args.octavescale,
        iterations=args.iterations, jitter=args.jitter, step_size=args.stepsize,
        blend=args.blend, preview=args.preview, zoom=args.zoom, guide_image=args.guide_image,
        seed=args.seed, tile=args.tile, flow=args.flow, flow_blend=args.flow_blend,
        flow_decay=args.flow_decay, flow_smooth=args.flow_smooth,
        scene_cuts=not args.no_scene_cuts, scene_threshold=args.scene_threshold)
    if not args.list_layers:
        settings.check()                      # before the net is loaded
    device = cli.device_from_flags(args.device, args.gpu)
    if args.ray and (args.engine != "torch" or args.batch_segments != 1):
        raise DeepDreamError("--ray dreams with the torch engine, one segment at a time on "
                             "each worker: leave out --engine caffe and --batch-segments")
    if args.ray and args.retries < 0:
        raise DeepDreamError("--retries must be 0 or more")
    # under --ray the workers hold the nets; the driver's is for checking names, on the CPU
    net = load_net(caffemodel, model.deploy, device="cpu" if args.ray else device,
                   engine=args.engine,
                   precision="fp32" if args.ray else args.precision,
                   mean=model.entry.mean_bgr if model.entry else IMAGENET_MEAN_BGR)
    if args.list_layers:
        print(pipeline.layer_table(net, caffemodel.name, args.input, args.image_type,
                                   args.preview))
        return 0
    for layer in set(layers):
        net.resolve(layer)
    if args.ray:
        from deepdream.cluster import dream_frames_ray
        report = dream_frames_ray(args.input, args.output, caffemodel, model.deploy, net.mean,
                                  settings, args.ray, args.workers, device, args.warmup,
                                  args.segment_length, args.image_type, args.start_frame,
                                  args.end_frame, args.overwrite, progress=args.verbose > 0,
                                  precision=args.precision, retries=args.retries)
    else:
        report = pipeline.dream_frames(args.input, args.output, net, settings, caffemodel,
                                       args.image_type, args.start_frame, args.end_frame,
                                       args.overwrite, args.verbose > 0, args.batch_segments,
                                       args.warmup)
    print(f"{report.dreamed} frames dreamed ({report.skipped} already done) in {args.output}")
    return 0


if __name__ == "__main__":
    cli.run(main, "Finished frames are kept: run the same command again to resume.")
