"""A contact sheet: one frame of a movie dreamed at each layer of a sweep, side by side with
its layer's name, so that a layer can be chosen before hours of rendering."""
from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import FramesError
from ..io import frames, video
from ..io.extraction import extract_frames
from ..run.dreaming import RunOptions, check_frames, load_model_net
from ..run.settings import DreamSettings
from ..run.threads import TorchThreads
from ..run.transforms import keep_colors

log = logging.getLogger(__name__)

LABEL_HEIGHT = 16      # pixels of the strip under each tile that holds its name


def movie_frame(movie: str | Path, number: int | None = None, width: int | None = None
                ) -> tuple[int, np.ndarray]:
    """Frame ``number`` of ``movie`` (numbered as stage 1 numbers them; default: the middle
    one), optionally scaled to ``width``: (its number, H x W x 3 uint8)."""
    info = video.probe(movie)
    count = int(info.duration * info.fps) if info.duration else 1
    number = number or max(1, (count + 1) // 2)
    start = info.first_picture + (number - 1) / float(info.fps)
    with tempfile.TemporaryDirectory(prefix="deepdream-sheet-") as folder:
        extract_frames(movie, folder, start=start, end=start + 0.5 / float(info.fps),
                       progress=False)
        found = frames.list_frames(folder, "png")
        if not found:
            raise FramesError(f"{movie} has no frame {number}")
        return number, frames.read_frame(next(iter(found.values())), width)


def contact_sheet(movie: str | Path, output: str | Path, settings: DreamSettings, model,
                  options: RunOptions | None = None) -> Path:
    """Dream one frame of ``movie`` (``options.start_frame``, else the middle one; at
    ``settings.preview`` width if set) at each layer of ``settings.layers``, and write the
    raw frame and the dreams as one picture, each with its name under it."""
    from ..dreamer.ascent import dream, guide_features
    settings.check()
    options = options or RunOptions()
    options.check()
    frames.picture_format(output)          # before hours of dreaming, not after
    number, image = movie_frame(movie, options.start_frame, settings.preview or None)
    net = load_model_net(model, options)
    check_frames(net, settings, *image.shape[:2])
    guide = frames.read_frame(settings.guide_image) if settings.guide_image else None
    threads = TorchThreads.for_run(net.device, options.threads)
    tiles = [("frame %d" % number, image)]
    for layer in dict.fromkeys(settings.layers):      # a layer, or objective terms
        log.info("dreaming frame %d at %s", number, layer)
        features = None if guide is None else guide_features(net, guide, layer)
        with threads.timing(settings, layer, *image.shape[:2]):
            dreamed = dream(net, image, layer, guide=features, seed=settings.seed,
                            **settings.ascent_options())
        if settings.keep_colors:
            dreamed = keep_colors(dreamed, image)
        tiles.append((layer, frames.to_uint8(dreamed)))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet = compose(tiles)
    frames.write_frame(output, np.asarray(sheet))
    log.info("%d tiles written to %s", len(tiles), output)
    return output


def compose(tiles: list[tuple[str, np.ndarray]]) -> Image.Image:
    """Tiles of one size in a grid as close to square as it goes, each over a strip with
    its name."""
    height, width = tiles[0][1].shape[:2]
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + LABEL_HEIGHT)), "black")
    draw = ImageDraw.Draw(sheet)
    for i, (name, image) in enumerate(tiles):
        x, y = i % columns * width, i // columns * (height + LABEL_HEIGHT)
        sheet.paste(Image.fromarray(image), (x, y))
        draw.text((x + 3, y + height + 2), name, fill="white")
    return sheet
