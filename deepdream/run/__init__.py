"""Runs: settings and run state (params.json, resume), schedules and frame-to-frame transforms,
the one run loop, the Ray strategy, ``dream_video``, the whole job and live mode's loop.
Imports deepdream.dreamer, nets, io, errors, progress and this folder."""
