"""``python -m deepdream.models``: list the registry's models, download one, show its path."""
from __future__ import annotations

from ..nets import registry
from .common import ArgumentParser, progress_flag, run, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m deepdream.models",
                            description="The Caffe models DeepDreamVideo knows.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the registry, and which models are here")
    for command in ("download", "path"):
        p = sub.add_parser(command, help=f"{command} a model's weights")
        p.add_argument("name")
        if command == "download":
            p.add_argument("--mirror", help="fetch BASE_URL/<file name> instead")
            p.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(1)
    if args.command == "list":
        for model in registry.registry().values():
            here = registry.local_weights(model)
            print(f"{model.name:24s} {'here' if here else '    '}  {model.title}")
        print(f"cache: {registry.cache_dir()}")
    elif args.command == "download":
        print(registry.fetch(args.name, args.mirror, progress=progress_flag(not args.quiet)))
    else:
        model = registry.entry(args.name)
        print(registry.local_weights(model) or registry.weights_path(model))
    return 0


def command() -> None:
    """``python -m deepdream.models``: ``main`` with a user's error as one line."""
    run(main, "Run the same command again to resume the download.")
