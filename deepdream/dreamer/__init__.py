"""The dreamer: what a frame is dreamed towards (objectives), the octave pyramid, the jitter and
the normalised gradient step, tiles. Imports deepdream.nets, io, errors and this folder. (Not
named ``dream``: ``deepdream.dream`` is the dream function.)"""
