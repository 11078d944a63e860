"""Average thresholded confidence: the target accuracy a model's own confidence predicts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError
from .criteria import SelectionCriterion, _check_data, _check_model, _entropy, _need_ys, _proba

__all__ = ["ATC", "atc_threshold", "atc_terms"]

_SCORES = ("negative_entropy", "max_confidence")


def _confidence(P: np.ndarray, score: str) -> np.ndarray:
    return -_entropy(P) if score == "negative_entropy" else P.max(axis=1)


def atc_threshold(confidence: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """The threshold ``t`` and the credit ``w`` of a row exactly at it such that, on the
    held-out source rows, ``mean((conf > t) + w * (conf == t)) == mean(correct)``.

    Confidences tie often (k-NN, trees, saturated probabilities); counting every tied row
    as confident would overstate the accuracy, so rows at ``t`` get partial credit.
    ``(inf, 0)`` when nothing is correct.
    """
    k = int(np.sum(correct))
    if k == 0:
        return np.inf, 0.0
    t = float(np.sort(confidence)[::-1][k - 1])
    above, at = int(np.sum(confidence > t)), int(np.sum(confidence == t))
    return t, (k - above) / at


def atc_terms(confidence: np.ndarray, t: float, w: float) -> np.ndarray:
    """Per-row credit: 1 above ``t``, ``w`` at it, 0 below (see :func:`atc_threshold`)."""
    return (confidence > t) + w * (confidence == t)


class ATC(SelectionCriterion):
    r"""Average thresholded confidence (Garg et al., 2022): estimated target accuracy.

    Setting: unsupervised, classification; labelled held-out source rows. On the held-out
    source rows, pick the confidence threshold :math:`t` that as many rows exceed as the
    model classifies correctly; the estimated target accuracy is the fraction of target
    rows whose confidence exceeds :math:`t`:

    .. math:: \mathbb{E}_{x \sim S}[\mathbb{1}\{s(f(x)) \ge t\}] = \mathrm{acc}_S(f),
              \qquad \widehat{\mathrm{acc}}_T(f) = \mathbb{E}_{x \sim T}
              [\mathbb{1}\{s(f(x)) \ge t\}],

    with :math:`s` the negative entropy of the predicted probabilities (ATC-NE, the
    paper's better variant) or their maximum; rows tied at :math:`t` get the partial
    credit that makes the source equation exact. Unlike raw target confidence (``entropy``)
    it is calibrated per model: a model that is as confident on the source rows it gets
    wrong as on those it gets right needs a high threshold, so its confident target
    predictions count for less. It still trusts a model that is confidently wrong on the
    target in a way it never was on the source. **Higher is better.**

    Parameters
    ----------
    score : {"negative_entropy", "max_confidence"}, default="negative_entropy"

    References
    ----------
    Garg, S., Balakrishnan, S., Lipton, Z. C., Neyshabur, B. and Sedghi, H. (2022).
    Leveraging unlabeled data to predict out-of-distribution performance. ICLR.
    """

    name = "atc"
    greater_is_better = True

    def __init__(self, score: str = "negative_entropy"):
        if score not in _SCORES:
            raise ParameterError(f"score must be one of {', '.join(_SCORES)}; got {score!r}.")
        self.score_name = score

    def __repr__(self) -> str:
        return f"ATC(score={self.score_name!r})"

    def pointwise(self, model: Any, Xs_val: Any, ys_val: Any, Xt: Any, *,
                  Xs_train: Any = None, ys_train: Any = None, yt: Any = None) -> np.ndarray:
        """1 for each target row above the source-calibrated confidence threshold, 0 below
        (partial credit at it); their mean is the estimated target accuracy (higher is
        better)."""
        _check_model(model, proba=True)
        Xs, ys, Xt_arr = _check_data(Xs_val, ys_val, Xt)
        ys = _need_ys(ys, self.name)
        correct = np.asarray(model.predict(Xs)) == ys
        t, w = atc_threshold(_confidence(_proba(model, Xs), self.score_name), correct)
        return atc_terms(_confidence(_proba(model, Xt_arr), self.score_name), t, w)
