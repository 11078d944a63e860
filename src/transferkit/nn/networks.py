"""Default networks built from the input shape."""

from __future__ import annotations

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
