"""Runs: settings and run state (params.json, resume), schedules and frame-to-frame transforms,
the one run loop, the Ray strategy, ``dream_video`` and the whole job. Imports
deepdream.dreamer, nets, io, errors, progress and this folder."""
