"""The deepdream maths: octave pyramid, jitter, normalised gradient ascent, clipping.

``dream`` is Google's 2015 ``deepdream()`` (as DeepDreamVideo's 2_dreaming_time.py ran it) step
for step: octaves made as ``scipy.ndimage.zoom(order=1)`` makes them, detail carried up the
pyramid, a random roll before each step and back after it, a step of ``step_size / mean(|g|)``,
and a clip to [-mean, 255 - mean] after every step. The whole frame stays on the net's device
from the preprocessed input to the last step: the pyramid and the detail's resizing are torch
operations, so a GPU never waits on the host inside a frame.
"""
from __future__ import annotations

import functools
import logging
import math
import weakref

import numpy as np
import torch

from ..errors import ImageTooSmallError, SettingsError, ZeroGradientError
from ..nets import checks
from ..nets.base import Net
from . import objectives
from .jitter import Roll, octave_rolls

log = logging.getLogger(__name__)


def preprocess(image: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB (0..255) to Caffe's 3 x H x W BGR float32 with the mean subtracted."""
    bgr = np.asarray(image, dtype=np.float32)[:, :, ::-1].transpose(2, 0, 1)
    return bgr - mean.reshape(3, 1, 1)


def deprocess(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The inverse of ``preprocess``: 3 x H x W BGR minus mean to H x W x 3 RGB float32."""
    return np.ascontiguousarray((x + mean.reshape(3, 1, 1))[::-1].transpose(1, 2, 0))


@functools.lru_cache(maxsize=256)
def _zoom_taps(size: int, new_size: int,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each of ``new_size`` output positions, the two input positions (of ``size``) it
    lies between and their weights, as scipy's zoom (order 1, corners aligned, mode
    'constant') computes them in float64: output position o reads input coordinate
    o * (size - 1) / (new_size - 1), and a coordinate that rounding puts past the last
    sample (239.00000000000003 of 240) reads the constant 0 there -- scipy's zero edge lines
    (scipy#4922), which the original deepdream had and Caffe's golden dreams hold."""
    step = (size - 1) / (new_size - 1) if new_size > 1 else 1.0
    coords = np.arange(new_size, dtype=np.float64) * step
    low = np.minimum(np.floor(coords).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    inside = coords <= size - 1
    w_high = coords - low
    weights = np.stack([(1.0 - w_high) * inside, w_high * inside]).astype(np.float32)
    # kept on the device: a copy from the host at every resize would wait for the GPU
    return tuple(torch.as_tensor(a, device=device) for a in (low, high, weights))


def zoom_bilinear(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The images ``x`` (..., h, w) resized to ``height`` x ``width`` by linear interpolation
    along each axis with the corners aligned: what ``scipy.ndimage.zoom(order=1)`` computes
    (to float32 rounding), on ``x``'s device."""
    for dim, new_size in ((-2, height), (-1, width)):
        size = x.shape[dim]
        if size == new_size:
            continue
        low, high, weights = _zoom_taps(size, new_size, x.device)
        shape = (-1, 1) if dim == -2 else (-1,)
        x = (x.index_select(dim, low) * weights[0].reshape(shape) +
             x.index_select(dim, high) * weights[1].reshape(shape))
    return x


def octave_sizes(height: int, width: int, octave_n: int,
                 octave_scale: float) -> list[tuple[int, int]]:
    """The (height, width) of each octave, largest first: each one ``octave_scale`` times
    smaller than the one before, rounded as scipy's zoom rounds (``round(side / scale)``)."""
    sizes = [(height, width)]
    for _ in range(octave_n - 1):
        h, w = sizes[-1]
        sizes.append((int(round(h / octave_scale)), int(round(w / octave_scale))))
    return sizes


def octave_pyramid(base: torch.Tensor, octave_n: int,
                   octave_scale: float) -> list[torch.Tensor]:
    """``base`` (..., H, W) and ``octave_n - 1`` successively smaller copies, largest first,
    each made from the one before (as the original's ``nd.zoom`` loop made them)."""
    octaves = [base]
    for h, w in octave_sizes(*base.shape[-2:], octave_n, octave_scale)[1:]:
        octaves.append(zoom_bilinear(octaves[-1], h, w))
    return octaves


def check_size(net: Net, end: str, height: int, width: int, octave_n: int,
               octave_scale: float) -> None:
    """Raise ImageTooSmallError, naming the smallest size that works, if the smallest octave
    of a height x width image cannot reach ``end`` (the original simply crashed)."""
    small_h, small_w = octave_sizes(height, width, octave_n, octave_scale)[-1]
    if small_h >= 1 and small_w >= 1 and _reaches(net, end, small_h, small_w):
        return
    need = _smallest_side(net, end)
    if need is None:
        raise ImageTooSmallError(f"layer '{end}' cannot be reached from a {width}x{height} "
                                 "image at any octave size; dream on an earlier layer")
    side = smallest_frame_side(need, octave_n, octave_scale)
    use = f"frames of at least {side}x{side} pixels, " if side else ""
    raise ImageTooSmallError(
        f"a {width}x{height} image is too small for {octave_n} octaves of scale "
        f"{octave_scale} at layer '{end}': the smallest octave would be "
        f"{small_w}x{small_h}, and that layer needs at least {need}x{need}. Use "
        f"{use}fewer octaves (-oct) or an earlier layer (-l)")


def smallest_frame_side(need: int, octave_n: int, octave_scale: float) -> int | None:
    """The smallest side whose smallest octave is still ``need`` pixels (None: over a
    million): a bisection over the side (each octave's size grows with it), bounded by
    need * scale**(octaves - 1) plus the rounding of each octave."""
    if (octave_n - 1) * math.log(octave_scale) > math.log(1e6 / need):
        return None

    def enough(side: int) -> bool:
        return min(octave_sizes(side, side, octave_n, octave_scale)[-1]) >= need
    high = int(math.ceil(need * octave_scale ** (octave_n - 1))) + octave_n
    low = need
    while low < high:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid + 1
    return low


def _reaches(net: Net, end: str, height: int, width: int) -> bool:
    """Whether a height x width input reaches ``end`` (asked once per net, layer and size:
    for a net whose shapes take a real pass, that pass is made once)."""
    def compute():
        try:
            return all(d > 0 for d in net.end_shape(height, width, end))
        except ImageTooSmallError:
            return False
    return _layer_fact(net, ("reaches", end, height, width), compute)


# Per net, facts about a layer that depend on the net alone: asked for every frame (and, for
# tiles, every step), worked out once.
_LAYER_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _layer_fact(net: Net, key: tuple, compute):
    facts = _LAYER_FACTS.setdefault(net, {})
    if key not in facts:
        facts[key] = compute()
    return facts[key]


def _smallest_side(net: Net, end: str, limit: int = 4096) -> int | None:
    """The smallest square input that reaches ``end``."""
    return _layer_fact(net, ("smallest side", end, limit),
                       lambda: _search_smallest_side(net, end, limit))


def _search_smallest_side(net: Net, end: str, limit: int) -> int | None:
    """The blob sizes grow with the input's: double the side until it reaches ``end`` (so
    that no input is larger than twice the answer), then a binary search below that. None
    for a layer that no size reaches, or that takes one size only."""
    high = 1
    while not _reaches(net, end, high, high):
        if high >= limit:
            return None
        high = min(2 * high, limit)
    if not _reaches(net, end, high + 1, high + 1):
        return None         # a layer of one input size (a classifier's), hit by the doubling
    low = high // 2 + 1
    while low < high:
        mid = (low + high) // 2
        if _reaches(net, end, mid, mid):
            high = mid
        else:
            low = mid + 1
    return low


def fixed_view(net: Net, end: str) -> tuple[int, int] | None:
    """The (height, width) at which ``end`` sees every image if it can take no other size
    (a classifier behind a fixed-size InnerProduct, as GoogLeNet's loss3/classifier: only
    224x224 reaches it), else None."""
    def compute():
        if _smallest_side(net, end) is not None:
            return None
        size = tuple(net.input_shape[2:4])
        return size if _reaches(net, end, *size) else None
    return _layer_fact(net, ("fixed view", end), compute)


def view_gradient(net: Net, x: torch.Tensor, end: str, objective: objectives.Objective,
                  size: tuple[int, int]) -> torch.Tensor:
    """The input gradient of ``objective`` at ``end`` seeing the images ``x`` scaled to
    ``size`` (bilinear, antialiased): the gradient at the scaled view, carried back through
    the scaling to every pixel of ``x``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        view = torch.nn.functional.interpolate(x, size=size, mode="bilinear",
                                               align_corners=False, antialias=True)
        (g,) = torch.autograd.grad(view, x, net.gradient(view.detach(), end, objective))
    return g


def tile_bounds(size: int, tile: int, align: int = 1, offset: int = 0) -> list[tuple[int, int]]:
    """0..size cut by a grid of lines ``tile`` apart starting at ``offset`` (on multiples of
    ``align``), with pieces shorter than half a tile merged into their neighbour."""
    lines = [align * round(c / align) for c in range(offset % tile, size, tile) if c > 0]
    edges = [0]
    for line in lines:
        if line - edges[-1] >= tile // 2 and size - line >= tile // 2:
            edges.append(line)
    edges.append(size)
    return list(zip(edges[:-1], edges[1:]))


def net_stride(net: Net, end: str) -> int:
    """How many input pixels one position of the blob at ``end`` stands for (16 for
    GoogLeNet's inception_4c): tiles must start on this grid to see what the whole sees."""
    return _layer_fact(net, ("stride", end),
                       lambda: max(1, round(1024 / net.end_shape(1024, 1024, end)[2])))


def tiled_gradient(net: Net, x: torch.Tensor, end: str, objective: objectives.Objective,
                   tile: int, rng: np.random.Generator) -> torch.Tensor:
    """The input gradient computed tile by tile, so that memory is bounded by the tile size
    rather than the frame's (TensorFlow's deepdream tutorial's tiled gradients). The tile
    grid is moved by a random offset at every step, so its seams never stay in place; tiles
    start on the net's stride, so away from the seams they agree with the whole."""
    h, w = x.shape[2:]
    align = net_stride(net, end)
    dy, dx = (align * int(rng.integers(0, max(1, tile // align))) for _ in range(2))
    g = torch.empty_like(x)
    for y0, y1 in tile_bounds(h, tile, align, dy):
        for x0, x1 in tile_bounds(w, tile, align, dx):
            g[:, :, y0:y1, x0:x1] = net.gradient(x[:, :, y0:y1, x0:x1], end, objective)
    return g


# What a dream ascends: (layer, weight, objective) terms whose weighted gradients add up
Target = list[tuple[str, float, objectives.Objective]]


def target_gradient(net: Net, x: torch.Tensor, target: Target, tile: int | None,
                    rng: np.random.Generator) -> torch.Tensor:
    """The input gradient of the weighted sum of the target's objectives (in tiles of
    ``tile`` pixels where the images are larger; a layer that takes one input size only
    seeing the images scaled to it)."""
    g = None
    for layer, weight, objective in target:
        view = _view(net, layer, *x.shape[2:])
        if view is not None:
            term = view_gradient(net, x, layer, objective, view)
        elif _tiled(net, layer, *x.shape[2:], tile):
            term = tiled_gradient(net, x, layer, objective, tile, rng)
        else:
            term = net.gradient(x, layer, objective)
        term = term if weight == 1 else term * weight
        g = term if g is None else g + term
    return g


def _view(net: Net, layer: str, height: int, width: int) -> tuple[int, int] | None:
    """The size at which ``layer`` sees height x width images: None for their own size, the
    one size it takes if it cannot take theirs."""
    return None if _reaches(net, layer, height, width) else fixed_view(net, layer)


def _tiled(net: Net, layer: str, height: int, width: int, tile: int | None) -> bool:
    """Whether the gradient at ``layer`` of height x width images is computed in tiles."""
    return bool(tile) and (height > tile or width > tile) and \
        _view(net, layer, height, width) is None


def make_target(net: Net, spec: str, guide: np.ndarray | None = None) -> Target:
    """The target of a layer specification (``objectives.parse``), each layer checked; with
    ``guide`` (features at the one plain layer of ``spec``) the original's guided objective."""
    terms = objectives.parse(spec)
    for term in terms:
        net.resolve(term.layer)
    if guide is None:
        return [(t.layer, t.weight, t.objective()) for t in terms]
    layer = objectives.plain_layer(terms)
    if layer is None:
        raise SettingsError("a guide image dreams towards one plain layer (-l LAYER), not "
                            f"towards objective terms such as '{spec}'")
    return [(layer, 1.0, objectives.guided(guide))]


def check_target(net: Net, target: Target, height: int, width: int, octave_n: int,
                 octave_scale: float, tile: int | None = None) -> None:
    """Raise ImageTooSmallError if a height x width image cannot be dreamed towards
    ``target`` with these octaves (or tiles): before any work, and at every frame."""
    small_h, small_w = octave_sizes(height, width, octave_n, octave_scale)[-1]
    for layer, _, _ in target:
        if not (small_h >= 1 and small_w >= 1 and _reaches(net, layer, small_h, small_w)) \
                and fixed_view(net, layer) is not None:
            continue                   # it sees every octave scaled to its one size
        check_size(net, layer, height, width, octave_n, octave_scale)
        if tile:
            need = _smallest_side(net, layer)
            if need is None or tile < 2 * need:
                raise ImageTooSmallError(f"tiles of {tile} pixels are too small for layer "
                                         f"'{layer}': use --tile {2 * (need or 1)} or more")


def make_step(net: Net, x: torch.Tensor, target: Target, step_size: float, jitter: int,
              clip_low: torch.Tensor | None, clip_high: torch.Tensor | None,
              rngs: list[np.random.Generator],
              tile: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One normalised gradient-ascent step on the images ``x`` (N, 3, H, W) towards
    ``target``, each image jittered by its own random roll (``rngs``, one per image) and
    stepped by its own gradient scale; with ``tile``, the gradient is computed in tiles of
    that size.

    Returns the stepped images (``x`` is left as it was) and each one's gradient scale
    mean(|g|), (N, 1, 1, 1), on the device: an image whose gradient is zero is left as it
    was, and the caller checks the scales when it next waits for the device anyway (a check
    here would stall a GPU's queue at every step)."""
    x = x.clone()
    (roll,) = octave_rolls(rngs, jitter, 1, 1, x.shape, x.device)
    clip = None if clip_low is None else (clip_low, clip_high)
    return x, step_(net, x, target, step_size, roll, clip, rngs[0], tile)


def step_(net: Net, x: torch.Tensor, target: Target, step_size: float,
          roll: Roll | None, clip: tuple[torch.Tensor, torch.Tensor] | None,
          rng: np.random.Generator, tile: int | None) -> torch.Tensor:
    """``make_step`` on ``x`` in place, jittered by ``roll`` (None: no jitter), clipped to
    ``clip`` (low, high); ``rng`` draws the tiles' grid offsets. Returns the gradient scales
    (N, 1, 1, 1), on the device."""
    seen = x if roll is None else roll(x)                             # (N, 3, H, W)
    g = target_gradient(net, seen, target, tile, rng)
    # mean(|g|) summed in float64 (where the device has it): the same float32 scale whatever
    # order the threads add in, so a frame dreams the same in any process (Ray workers too)
    wide = torch.float32 if g.device.type == "mps" else torch.float64
    scale = g.abs().mean(dim=(1, 2, 3), keepdim=True, dtype=wide).float()       # (N, 1, 1, 1)
    g = (step_size / scale.clamp_min(torch.finfo(torch.float32).tiny)) * g
    # the step rolled back onto x: the sums of the rolled images', element for element
    x += g if roll is None else roll.back(g)
    if clip is not None:
        x.clamp_(*clip)
    return scale


def dream(net: Net, image: np.ndarray, end: str, iter_n: int = 10, octave_n: int = 4,
          octave_scale: float = 1.4, jitter: int = 32, step_size: float = 1.5,
          clip: bool = True, guide: np.ndarray | None = None,
          seed: int | np.random.Generator | None = None, tile: int | None = None) -> np.ndarray:
    """Dream on ``image`` (H x W x 3 RGB, 0..255, uint8 or float) at layer ``end``.

    Returns the dreamed image as H x W x 3 float32 RGB (not rounded, not clipped to 0..255
    when ``clip`` is False). ``guide`` is the C x h x w features of a guide image at ``end``
    (see ``guide_features``); ``seed`` makes the jitter reproducible; ``tile`` computes the
    gradients in tiles of that many pixels (bounded memory for 4K frames).

    ``end`` may also be a weighted sum of objective terms (``objectives.parse``).
    Raises UnknownLayerError, ImageTooSmallError or ZeroGradientError.
    """
    return dream_batch(net, [image], end, iter_n, octave_n, octave_scale, jitter, step_size,
                       clip, guide, [seed], tile)[0]


def dream_batch(net: Net, images: list[np.ndarray], end: str, iter_n: int = 10,
                octave_n: int = 4, octave_scale: float = 1.4, jitter: int = 32,
                step_size: float = 1.5, clip: bool = True, guide: np.ndarray | None = None,
                seeds: list | None = None, tile: int | None = None) -> list[np.ndarray]:
    """``dream`` on several images of one size at once: one forward and backward pass for
    all of them per step (independent frames, e.g. of different segments of a film, sharing
    the GPU). Each image keeps its own jitter (``seeds``, one per image) and step scale, so
    the result is each image's ``dream`` (up to float rounding)."""
    target = make_target(net, end, guide)
    images = [np.asarray(image) for image in images]
    if any(im.ndim != 3 or im.shape[2] != 3 for im in images):
        raise ValueError("dream() takes H x W x 3 RGB images")
    if len({im.shape for im in images}) != 1:
        raise ValueError("dream_batch() takes images of one size")
    height, width = images[0].shape[:2]
    check_target(net, target, height, width, octave_n, octave_scale, tile)
    seeds = seeds or [None] * len(images)
    rngs = [s if isinstance(s, np.random.Generator) else np.random.default_rng(s)
            for s in seeds]
    device = net.device
    mean = torch.as_tensor(net.mean, device=device).reshape(1, 3, 1, 1)
    clip = (-mean, 255.0 - mean) if clip else None

    inputs = torch.as_tensor(np.stack([preprocess(im, net.mean) for im in images]),
                             device=device)                            # (N, 3, H, W)
    octaves = octave_pyramid(inputs, octave_n, octave_scale)[::-1]    # smallest first
    detail = torch.zeros_like(octaves[0])
    for octave, base in enumerate(octaves):
        h, w = base.shape[-2:]
        # the detail dreamed at the previous (smaller) octave, brought up to this one's size
        x = base + zoom_bilinear(detail, h, w)                         # stepped in place
        # the octave's rolls drawn at once, unless tiles draw their grid's offsets from the
        # first generator between steps (the same numbers in the same order: --seed's frames)
        at_once = 1 if any(_tiled(net, layer, h, w, tile) for layer, _, _ in target) \
            else iter_n
        rolls = octave_rolls(rngs, jitter, iter_n, at_once, x.shape, device)
        scales = []
        with checks.deferred_checks() as noted:           # one wait for the device an octave
            for i, roll in enumerate(rolls):
                scales.append(step_(net, x, target, step_size, roll, clip, rngs[0], tile))
                log.debug("octave %d step %d at %s, %dx%d", octave, i, end, w, h)
            if scales:
                noted.require((torch.cat(scales) > 0).all(), ZeroGradientError(
                    f"the gradient at layer '{end}' is zero for this image (a blank frame, or "
                    "a layer that is silent on it): there is nothing to dream"))
        detail = x - base
    results = x.cpu().numpy()                                         # (N, 3, H, W)
    return [deprocess(r, net.mean) for r in results]


def guide_features(net: Net, image: np.ndarray, end: str, max_side: int = 224) -> np.ndarray:
    """The C x h x w features of a guide image at ``end``. A guide larger than ``max_side``
    is shrunk to fit (as the original script did); any smaller guide is used as it is, down to
    the smallest size the layer can take, below which it is enlarged."""
    from PIL import Image

    pil = Image.fromarray(np.asarray(image, dtype=np.uint8))
    w, h = pil.size
    if max(w, h) > max_side:
        r = max_side / float(max(w, h))
        pil = pil.resize((max(1, int(r * w)), max(1, int(r * h))), Image.BILINEAR)
    need = _smallest_side(net, end)
    if need is not None and min(pil.size) < need:
        r = need / float(min(pil.size))
        pil = pil.resize((int(np.ceil(r * pil.size[0])), int(np.ceil(r * pil.size[1]))),
                         Image.BILINEAR)
    x = preprocess(np.asarray(pil, dtype=np.float32), net.mean)[None]
    return net.forward(x, end)[0]
