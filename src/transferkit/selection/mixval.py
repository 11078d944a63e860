"""MixVal: mixed target samples as probes of the structure a model learned on the target."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_X
from ..errors import InputError, ParameterError
from .criteria import SelectionCriterion, _check_model

__all__ = ["MixVal"]


class MixVal(SelectionCriterion):
    r"""MixVal (Hu et al., 2023): how consistently a model labels mixed target samples.

    Setting: unsupervised, classification; needs only the target rows. Each target row
    :math:`x_i` is mixed with a random partner :math:`x_j`,
    :math:`\tilde x = \lambda x_i + (1 - \lambda) x_j` with :math:`\lambda > 1/2`, and
    the model should give :math:`\tilde x` the pseudo-label of the dominant row,
    :math:`f(x_i)`. Pairs with the same pseudo-label (intra-cluster) probe whether the
    region between them is one dense cluster (what SND measures); pairs with different
    ones (inter-cluster, :math:`\tilde x` near the middle) probe whether the boundary
    lies between the clusters rather than through one of them (what entropy measures).
    The score is the mean of the two accuracies. A model that predicts one class
    everywhere has no inter-cluster pair; that half scores 0. **Higher is better.**

    The mixing happens on the features the model takes (pixels, or a text encoder's
    embeddings). The same random partners are used for every model (``random_state``),
    so two models' terms are paired row by row.

    Parameters
    ----------
    mix : float, default=0.55
        :math:`\lambda`, in (0.5, 1): close to 0.5 puts the probes near the boundary.
    n_repeats : int, default=3
        Random partner sets averaged (less Monte-Carlo noise for ``n_repeats`` times the
        prediction cost).
    max_samples : int, default=5000
        Larger targets are subsampled (with ``random_state``).
    random_state : int, default=0
        Seeds the partners (and the subsample); an integer, so that every model is probed
        with the same pairs.

    References
    ----------
    Hu, D., Liang, J., Liew, J. H., Xue, C., Bai, S. and Wang, X. (2023). Mixed samples
    as probes for unsupervised model selection in domain adaptation. NeurIPS.
    """

    name = "mixval"
    greater_is_better = True

    def __init__(self, mix: float = 0.55, n_repeats: int = 3, max_samples: int = 5000,
                 random_state: int = 0):
        if not (isinstance(mix, (int, float)) and 0.5 < mix < 1):
            raise ParameterError(f"mix must be a weight in (0.5, 1) (0.55 in the paper); "
                                 f"got {mix!r}.")
        for name, value, low in (("n_repeats", n_repeats, 1), ("max_samples", max_samples, 2)):
            if not (isinstance(value, (int, np.integer)) and value >= low):
                raise ParameterError(f"{name} must be an integer >= {low}; got {value!r}.")
        if not isinstance(random_state, (int, np.integer)):
            raise ParameterError(f"random_state must be an integer (every model must see the "
                                 f"same mixed pairs); got {random_state!r}.")
        self.mix = float(mix)
        self.n_repeats = int(n_repeats)
        self.max_samples = int(max_samples)
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"MixVal(mix={self.mix}, n_repeats={self.n_repeats}, "
                f"max_samples={self.max_samples}, random_state={self.random_state})")

    def pointwise(self, model: Any, Xs_val: Any, ys_val: Any, Xt: Any, *,
                  Xs_train: Any = None, ys_train: Any = None, yt: Any = None) -> np.ndarray:
        """Per (subsampled) target row, its probes' hits weighted so that the mean over
        rows is the average of the intra- and inter-cluster accuracies (higher is better)."""
        _check_model(model)
        X = check_X(Xt, "Xt (target features)").astype(np.float64, copy=False)
        if X.shape[0] < 2:
            raise InputError("MixVal needs at least 2 target samples.")
        rng = np.random.default_rng(self.random_state)
        if X.shape[0] > self.max_samples:
            X = X[np.sort(rng.choice(X.shape[0], self.max_samples, replace=False))]
        n = X.shape[0]
        pseudo = np.asarray(model.predict(X))
        # partners[r, i]: row i's partner in repeat r (being its own partner, chance 1/n,
        # makes a trivial intra-cluster probe; not worth excluding)
        partners = np.stack([rng.permutation(n) for _ in range(self.n_repeats)])
        hit = np.stack([np.asarray(model.predict(self.mix * X + (1 - self.mix) * X[p])) == pseudo
                        for p in partners])  # one repeat at a time: memory O(n · d)
        intra = pseudo[partners] == pseudo[None]
        terms = np.zeros(partners.shape)
        for group in (intra, ~intra):
            share = group.mean()
            if share > 0:  # each half contributes its accuracy / 2 to the mean
                terms += np.where(group, hit, False) / (2 * share)
        return terms.mean(axis=0)
