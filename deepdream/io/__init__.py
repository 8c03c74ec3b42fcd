"""Video and frame I/O: ffmpeg for every version, frame folders and their ledger, extraction,
encoding, scene cuts, optical flow, the flicker measures, live mode's source, recording and
page. Imports only deepdream.errors, deepdream.progress and this folder: never torch."""
