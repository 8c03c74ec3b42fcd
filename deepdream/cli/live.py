"""``python -m deepdream --live SOURCE``: a camera, a stream or a movie dreamed as it plays
(``deepdream/run/live.py``), shown on a page and recorded."""
from __future__ import annotations

import dataclasses
import logging

from ..errors import DeepDreamError, SettingsError
from ..io import flow
from ..io.encoding import DEFAULT_CRF
from ..run.live import Live, LiveOptions, sigterm_stops
from .dream_flags import run_from

log = logging.getLogger(__name__)


def main(args) -> int:
    """``--live``'s command, from ``python -m deepdream``'s parsed flags: the page bound
    and the source opened (one line if either cannot be), then the net loaded and dreamed
    until the source ends, --duration passes, Ctrl-C or SIGTERM. Returns 0 (130 at a
    Ctrl-C before the dream began, or while it was being finished: the run's lines say
    what was recorded); raises a DeepDreamError (the recording kept) if the source stops
    giving frames."""
    live = LiveOptions(args.live, args.preview, args.output, args.serve,
                       args.host or LiveOptions.host, args.duration, args.input_format,
                       args.overwrite, LiveOptions.open_timeout if args.open_timeout is None
                       else args.open_timeout)
    refused = [flag for flag, given in (("--ray", args.ray), ("--sheet", args.sheet),
                                        ("-z/--zoom", args.zoom != 1),
                                        ("--batch-segments", args.batch_segments != 1),
                                        ("--work", args.work),
                                        ("--keep-frames", args.keep_frames),
                                        ("--crf", args.crf != DEFAULT_CRF))
               if given]
    if refused:
        raise SettingsError(f"{refused[0]} does not go with --live")
    session = None
    try:
        try:
            flow.require_opencv()
        except DeepDreamError:
            raise DeepDreamError("--live carries the dream along the optical flow, which "
                                 "needs OpenCV: pip install 'deepdream-video[flow]'") from None
        with sigterm_stops():
            settings, model, options = run_from(args)
            session, plan = Live.planned(live, dataclasses.replace(
                settings, flow=settings.flow or "dis"), model, options)
            with session:
                session.dream(plan.net, plan.timeline, options.threads)
    except KeyboardInterrupt:
        if session is None or not session.stats.frames:
            log.warning("stopped before the first frame was dreamed")
        return 130
    return 0
