"""What a dream maximises: the terms a layer may be named with, ``LAYER`` (the classic
dream), ``LAYER:C1,C2`` (those channels; on a classifier layer, those classes) and weighted
sums of them, ``W*TERM+W*TERM`` (a negative weight suppresses), each standing for one of the
objectives a net differentiates (``deepdream.nets.gradients``, whose names are here too).
"""
from __future__ import annotations

import dataclasses
import decimal
import re

from ..errors import SettingsError
from ..nets.gradients import Objective, channels, gradient, guided, l2

__all__ = ["Term", "parse", "plain_layer", "Objective", "channels", "gradient", "guided", "l2"]


@dataclasses.dataclass(frozen=True)
class Term:
    """One term of what a frame is dreamed towards: ``weight`` times the L2 objective of
    ``layer``'s activations, or of its ``channels`` only (the scores of those classes, on a
    classifier)."""
    layer: str
    weight: float = 1.0
    channels: tuple[int, ...] | None = None

    def objective(self) -> Objective:
        return l2 if self.channels is None else channels(self.channels, self.layer)


_DIGITS = r"(?:\d+\.?\d*|\.\d+)"
_WEIGHTED = re.compile(rf"\s*([-+]?{_DIGITS}(?:[eE][-+]?\d+)?)\s*\*\s*(.+)")
# a negative weight may join its term by its sign alone: 'a-0.5*b' is 'a+-0.5*b'
_MINUS_JOIN = re.compile(rf"(?<=[^+\s])\s*-\s*(?={_DIGITS}\s*\*)")
# a weight written with an exponent, '1e-05*b' (a scheduled weight's value, as Python writes
# it): its sign is not a join; written out in decimals before the terms are split
_EXPONENT = re.compile(rf"(?<![\w.])({_DIGITS}[eE][-+]?\d{{1,3}})(?=\s*\*)")


def parse(spec: str) -> tuple[Term, ...]:
    """The terms of a layer specification: 'LAYER', 'LAYER:C1,C2', 'W*TERM+W*TERM' (or
    'W*TERM-W*TERM'; W may be '[SCHEDULE]', a weight that follows keyframes or the sound).
    Raises SettingsError for one that cannot be read."""
    terms = []
    # a weight that follows a schedule, '[0:0.2, 4s:1]*LAYER' (run.timeline gives each frame's
    # value, and checks it): read as 1 here, taken out before the terms are split
    plain = re.sub(r"\[[^\[\]]*\]", "1", spec)
    plain = _EXPONENT.sub(lambda m: format(decimal.Decimal(m.group(1)), "f"), plain)
    for piece in _MINUS_JOIN.sub("+-", plain).split("+"):
        weighted = _WEIGHTED.fullmatch(piece)
        weight, rest = (float(weighted.group(1)), weighted.group(2)) if weighted else \
            (1.0, piece)
        layer, colon, listed = rest.strip().partition(":")
        channels = None
        if colon:
            try:
                channels = tuple(int(c) for c in listed.split(","))
            except ValueError:
                channels = ()
            if not channels or min(channels) < 0:
                raise SettingsError(f"'{spec}': after '{layer}:' give channel numbers "
                                    "(0, 1, ...) separated by commas")
        if not layer or "*" in layer:
            raise SettingsError(f"'{spec}' is not a layer, LAYER:C1,C2 or W*TERM+W*TERM")
        terms.append(Term(layer, weight, channels))
    return tuple(terms)


def plain_layer(terms: tuple[Term, ...]) -> str | None:
    """The layer of a plain specification (one layer, whole, weight 1), else None."""
    if len(terms) == 1 and terms[0].channels is None and terms[0].weight == 1:
        return terms[0].layer
    return None
