"""A contact sheet: one frame of a movie dreamed at each layer of a sweep, side by side with
its layer's name, so that a layer can be chosen before hours of rendering."""
from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import FramesError
from ..io import frames, ours, video
from ..io.extraction import extract_frames
from .plan import Plan, make_plan
from .settings import DreamSettings, RunOptions
from .threads import TorchThreads
from .timeline import Footage
from .transforms import keep_colors

log = logging.getLogger(__name__)

LABEL_HEIGHT = 16      # pixels of the strip under each tile that holds its name


def movie_frame(movie: str | Path, info: video.MovieInfo, number: int | None = None,
                width: int | None = None) -> tuple[int, np.ndarray]:
    """Frame ``number`` of ``movie`` (``info``: its probe; numbered as stage 1 numbers them;
    default: the middle one), optionally scaled to ``width``: (its number, H x W x 3 uint8).
    Extracted in a scratch folder of ours, removed at once."""
    start = info.first_picture + (number - 1) / float(info.fps)
    with ours.scratch(tempfile.gettempdir()) as folder:
        extract_frames(movie, folder / "frame", start=start,
                       end=start + 0.5 / float(info.fps), progress=False, info=info)
        found = frames.list_frames(folder / "frame", "png")
        if not found:
            raise FramesError(f"{movie} has no frame {number}")
        return number, frames.read_frame(next(iter(found.values())), width)


@dataclasses.dataclass
class SheetPlan:
    """A contact sheet's plan (``plan_sheet``): the movie (probed once), the frame, the
    sheet's file (checked) and the dream's plan (its net loaded)."""
    movie: Path
    info: video.MovieInfo
    number: int
    output: Path
    overwrite: bool
    plan: Plan


def plan_sheet(movie: str | Path, output: str | Path, settings: DreamSettings, model,
               options: RunOptions | None = None) -> SheetPlan:
    """The plan of a contact sheet of ``movie`` into ``output``, checked before anything is
    extracted or loaded: the sheet is a picture's name in a folder that exists, never the
    movie and never a file there already unless ``options.overwrite``; the frame
    (``options.start_frame``, else the middle one) is one of the movie's; the settings and
    layers (``make_plan``, which loads the net)."""
    options = options or RunOptions()
    movie, output = Path(movie), Path(output)
    if not movie.is_file():
        raise FramesError(f"movie not found: {movie}")
    frames.check_new_picture(output, movie, "--sheet", options.overwrite)
    probed: list[tuple[video.MovieInfo, int]] = []

    def movie_footage() -> Footage:             # once the settings are checked
        info = video.probe(movie)
        footage = Footage.of_movie(movie, info)
        count = footage.last_frame                  # None: a movie of unknown length
        number = options.start_frame or (max(1, (count + 1) // 2) if count else 1)
        if count is not None and number > count:
            raise FramesError(f"-sf/--start_frame {number} is past the end of {movie} "
                              f"({count} frames)")
        probed.append((info, number))
        return footage

    plan = make_plan(settings, options, model, movie_footage)
    info, number = probed[0]
    return SheetPlan(movie, info, number, output, options.overwrite, plan)


def contact_sheet(movie: str | Path, output: str | Path, settings: DreamSettings, model,
                  options: RunOptions | None = None) -> Path:
    """Dream one frame of ``movie`` (``options.start_frame``, else the middle one; at
    ``settings.preview`` width if set) at each layer of ``settings.layers``, and write the
    raw frame and the dreams as one picture, each with its name under it: planned
    (``plan_sheet``) and carried out (``draw_sheet``)."""
    return draw_sheet(plan_sheet(movie, output, settings, model, options))


def draw_sheet(sheet: SheetPlan) -> Path:
    """Carry out a contact sheet's plan. The sheet takes its name only where no file has
    taken it meanwhile (unless --overwrite)."""
    from ..dreamer.ascent import dream, guide_features
    plan = sheet.plan
    settings = plan.timeline.at(sheet.number)          # the frame's, where they follow time
    number, image = movie_frame(sheet.movie, sheet.info, sheet.number,
                                settings.preview or None)
    net = plan.net
    guide = frames.read_frame(settings.guide_image) if settings.guide_image else None
    threads = TorchThreads.for_run(net.device, plan.options.threads)
    tiles = [("frame %d" % number, image)]
    for spec in dict.fromkeys(settings.layers):       # a layer, or objective terms
        layer = plan.timeline.resolve(spec, number)
        log.info("dreaming frame %d at %s", number, layer)
        features = None if guide is None else guide_features(net, guide, layer)
        with threads.timing(settings, layer, *image.shape[:2]):
            dreamed = dream(net, image, layer, guide=features, seed=settings.seed,
                            **settings.ascent_options())
        if settings.keep_colors:
            dreamed = keep_colors(dreamed, image)
        tiles.append((layer, frames.to_uint8(dreamed)))
    sheet_picture = compose(tiles)
    ours.write_new(sheet.output, lambda tmp: sheet_picture.save(
        tmp, frames.picture_format(sheet.output)), "--sheet", sheet.overwrite)
    log.info("%d tiles written to %s", len(tiles), sheet.output)
    return sheet.output


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
