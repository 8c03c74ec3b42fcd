"""The dream: objectives, the octave pyramid, jitter and the normalised gradient step, tiles.
Imports deepdream.nets, io, errors and this folder."""
