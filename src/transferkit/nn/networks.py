"""Default networks built from the input shape: MLPs for vectors, a small CNN for images."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU,
                "leaky_relu": nn.LeakyReLU}


def mlp(n_in: int, hidden: Sequence[int], n_out: int | None, activation: str = "relu",
        dropout: float = 0.0) -> nn.Sequential:
    """A multi-layer perceptron ``n_in -> hidden... -> n_out`` (no output activation).

    ``n_out=None`` ends after the last hidden layer (an encoder).
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, int(h)), _ACTIVATIONS[activation]()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    if n_out is not None:
        layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def image_shape(n_features: int) -> tuple[int, int, int]:
    """(channels, height, width) of a flattened square image with ``n_features`` values.

    A perfect square is one grey channel, three times a perfect square is RGB (no number
    is both); anything else has no square reading.
    """
    for channels in (1, 3):
        side = math.isqrt(n_features // channels)
        if n_features % channels == 0 and side * side * channels == n_features:
            return channels, side, side
    raise ValueError(
        f"{n_features} features are not a flattened square grey or RGB image; build the "
        "encoder with transferkit.nn.networks.cnn_encoder((channels, height, width)).")


def cnn_encoder(input_shape: Sequence[int], hidden: Sequence[int] = (128,),
                channels: Sequence[int] = (32, 64), activation: str = "relu") -> nn.Sequential:
    """A small CNN over flattened images: rows of ``C·H·W`` values -> features.

    Each block is conv 3×3 (same padding) -> activation -> 2×2 max-pool (skipped once the
    map is 1 pixel wide); then global average pooling to 2×2, flatten, and the
    ``hidden`` fully connected layers. The input stays a 2-D table (the estimator
    contract), so any deep method takes images through ``encoder=cnn_encoder(shape)``.
    """
    c, h, w = (int(v) for v in input_shape)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}")
    layers: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]
    size = min(h, w)
    for out in channels:
        layers += [nn.Conv2d(c, int(out), 3, padding=1), _ACTIVATIONS[activation]()]
        if size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c = int(out)
    layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
    layers += list(mlp(c * 4, hidden, None, activation))
    return nn.Sequential(*layers)
