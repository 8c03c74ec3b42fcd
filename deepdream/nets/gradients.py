"""The gradient a net writes into its end blob: objectives as a net differentiates them,
callables from a layer's activations to a scalar, whose gradient with respect to the
activations (``gradient``: written directly by the objectives here, which know it, else by
autograd) is what Caffe's original scripts wrote into the end blob's ``diff`` by hand. Which of them a frame is dreamed towards, and how a user
names them, is ``deepdream.dreamer.objectives``'s business.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import DeepDreamError

Objective = Callable[[torch.Tensor], torch.Tensor]


class L2:
    """0.5 * ||features||^2, the classic dream: its gradient is the activations themselves."""

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return 0.5 * features.square().sum()

    def gradient(self, features: torch.Tensor) -> torch.Tensor:
        return features


l2 = L2()


def gradient(objective: Objective, features: torch.Tensor) -> torch.Tensor:
    """The gradient of ``objective`` at ``features`` (detached): written directly by an
    objective that knows it (its ``gradient`` method: fewer operations, the same numbers),
    else by autograd."""
    direct = getattr(objective, "gradient", None)
    if direct is not None:
        return direct(features)
    features = features.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(objective(features), features)
    return g


def channels(index: tuple[int, ...], layer: str = "the layer") -> Objective:
    """The dream of those channels alone: 0.5 * ||features[:, index]||^2 of a layer's
    feature maps (N, C, H, W), as the classic dream of the whole layer; on a classifier's
    scores (N, classes) their sum, so that each class's score rises, whatever its sign."""
    return Channels(index, layer)


class Channels:
    """``channels``' objective, its index on the features' device from the first call on."""

    def __init__(self, index: tuple[int, ...], layer: str):
        self.index, self.layer = tuple(index), layer
        self._index = torch.as_tensor(self.index, dtype=torch.long)

    def _chosen(self, features: torch.Tensor) -> torch.Tensor:
        """The chosen channels of ``features``. Raises DeepDreamError for a channel that the
        layer does not have."""
        if max(self.index) >= features.shape[1]:
            raise DeepDreamError(f"{self.layer} has {features.shape[1]} channels (0 to "
                                 f"{features.shape[1] - 1}): there is no channel "
                                 f"{max(self.index)}")
        if self._index.device != features.device:
            self._index = self._index.to(features.device)          # once
        return features.index_select(1, self._index)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        chosen = self._chosen(features)
        return chosen.sum() if features.dim() == 2 else 0.5 * chosen.square().sum()

    def gradient(self, features: torch.Tensor) -> torch.Tensor:
        """The chosen channels' activations (a class's score: 1) where they are, zero
        elsewhere; a channel named twice counts twice."""
        chosen = self._chosen(features)
        chosen = torch.ones_like(chosen) if features.dim() == 2 else chosen
        return features.new_zeros(features.shape).index_add_(1, self._index, chosen)


def guided(guide_features: np.ndarray | torch.Tensor) -> Objective:
    """The original script's guided objective for the C x h x w features of a guide image.

    At every position of the dreamed image's features, the guide feature vector with the
    largest dot product becomes the target; the objective is the dot product with that
    (fixed) target, so its gradient with respect to the activations is the target.
    """
    return Guided(guide_features)


class Guided:
    """``guided``'s objective, its guide on the features' device from the first call on."""

    def __init__(self, guide_features: np.ndarray | torch.Tensor):
        guide = torch.as_tensor(np.asarray(guide_features, dtype=np.float32))
        self._guide = guide.reshape(guide.shape[0], -1)             # (C, guide positions)

    def target(self, features: torch.Tensor) -> torch.Tensor:
        """The guide's feature vector that best matches each position of ``features``
        (N, C, ...), as (N, C, positions)."""
        if self._guide.device != features.device:
            self._guide = self._guide.to(features.device)           # once
        n, c = features.shape[:2]
        y = self._guide                                      # (C, guide positions)
        x = features.detach().reshape(n, c, -1)              # (N, C, positions)
        best = (x.transpose(1, 2) @ y).argmax(dim=2)         # (N, positions)
        return y[:, best].permute(1, 0, 2)                   # (N, C, positions)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        n, c = features.shape[:2]
        return (features.reshape(n, c, -1) * self.target(features)).sum()

    def gradient(self, features: torch.Tensor) -> torch.Tensor:
        return self.target(features).reshape(features.shape)
