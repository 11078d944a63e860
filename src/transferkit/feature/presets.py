"""Ready-made settings of the deep methods for known problems.

A deep method's accuracy on a small problem depends on its networks and optimiser more
than on anything else; these presets record the ones a published experiment used, so
that a user (and ``transferkit run`` on its embedded default) reproduces it in one line.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..registry import get_method

__all__ = ["adapt_two_moons_settings"]


def adapt_two_moons_settings(method: str = "DANN") -> dict[str, Any]:
    """Parameters reproducing ADAPT's Two Moons tutorial for a deep method (fresh each call).

    Networks as in ADAPT's tutorial: ADAPT's default encoder (one Dense(10, relu)), the
    tutorial's task network (two Dense(10, relu) then one sigmoid unit, here its logit)
    and, where the method has one, a Dense(10, relu) discriminator. Training as Keras
    does it there: raw inputs, Glorot-uniform initialisation, Adam(lr=1e-3, β₁=0.5),
    800 epochs, batch size 34; DANN with λ=1 and the Ganin schedule; MCD with one
    encoder step per batch. Use as
    ``DANN(**adapt_two_moons_settings("DANN"), random_state=s)`` on
    :func:`~transferkit.datasets.make_two_moons_shift`.

    Parameters
    ----------
    method : str, default="DANN"
        A registered deep method (DANN, ADDA, DeepCORAL, DAN, MCD, MDD, CDAN).
    """
    cls = get_method(method).cls
    accepted = inspect.signature(cls).parameters
    head = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(),
                         nn.Linear(10, 1))
    params: dict[str, Any] = {
        "hidden_layer_sizes": (10,), "head": head, "standardize": False, "init": "glorot",
        "trainer_params": {"optimizer_params": {"betas": (0.5, 0.999)}},
        "epochs": 800, "batch_size": 34, "lr": 1e-3}
    if "discriminator_hidden" in accepted:
        params["discriminator_hidden"] = (10,)
    if cls.__name__ == "DANN":
        params.update(lambda_=1.0, schedule="ganin", gamma=10.0)
    if "num_k" in accepted:  # MCD: one encoder step per batch, as ADAPT's MCD takes
        params["num_k"] = 1
    missing = set(params) - set(accepted)
    if missing:
        raise ValueError(f"{method} is not a deep method with an encoder and a head "
                         f"(it has no {sorted(missing)}).")
    return params
