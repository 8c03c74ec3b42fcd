"""Objectives: what a dream maximises, as callables from a layer's activations to a scalar.

The engines differentiate the scalar; the gradient with respect to the activations is what
Caffe's original scripts wrote into the end blob's ``diff`` by hand.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Objective = Callable[[torch.Tensor], torch.Tensor]


def l2(features: torch.Tensor) -> torch.Tensor:
    """0.5 * ||features||^2: its gradient is the activations themselves (the classic dream)."""
    return 0.5 * features.square().sum()


def guided(guide_features: np.ndarray | torch.Tensor) -> Objective:
    """The original script's guided objective for the C x h x w features of a guide image.

    At every position of the dreamed image's features, the guide feature vector with the
    largest dot product becomes the target; the objective is the dot product with that
    (fixed) target, so its gradient with respect to the activations is the target.
    """
    guide = torch.as_tensor(np.asarray(guide_features, dtype=np.float32))

    def objective(features: torch.Tensor) -> torch.Tensor:
        n, c = features.shape[:2]
        y = guide.to(features.device).reshape(c, -1)        # (C, guide positions)
        x = features.detach().reshape(n, c, -1)              # (N, C, positions)
        best = (x.transpose(1, 2) @ y).argmax(dim=2)         # (N, positions)
        target = y[:, best].permute(1, 0, 2)                 # (N, C, positions)
        return (features.reshape(n, c, -1) * target).sum()

    return objective
