"""Transferability scores: which pretrained model or source to transfer from, before training.

Each score looks at the target data once (features of a frozen pretrained model, or the
predictions of a source classifier on the target inputs) together with the few target labels,
and returns a number that is higher when fine-tuning or a linear probe on that candidate is
expected to do better on the target. None of them trains anything, and no single one wins
everywhere, so :func:`rank_models` and :func:`rank_sources` show them side by side.

=============  =========================================  ======================================
score          input                                      reference
=============  =========================================  ======================================
``logme``      target features ``F`` (n, D)               You et al., ICML 2021
``hscore``     target features ``F`` (n, D)               Bao et al., ICIP 2019
``transrate``  target features ``F`` (n, D)               Huang et al., ICML 2022
``leep``       source-model probabilities ``θ`` (n, Z)    Nguyen et al., ICML 2020
``nce``        source-model hard labels ``z`` (n,)        Tran et al., ICCV 2019
=============  =========================================  ======================================

All scores are "higher is better". Their scales differ (LogME is a log-evidence per sample,
LEEP and NCE are ≤ 0, H-score and TransRate are ≥ 0), which is why the rankings combine ranks,
not values. Everything here is NumPy; no loop runs over samples.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 3, 300)
>>> good = np.eye(3)[y] + 0.5 * rng.normal(size=(300, 3))
>>> noise = rng.normal(size=(300, 3))
>>> table = rank_models({"good": good, "noise": noise}, y)
>>> table.index[0]
'good'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validation import _to_numpy, check_X, check_y
from .errors import InputError, ParameterError, SingleClassError, TransferkitError

__all__ = [
    "logme",
    "leep",
    "nce",
    "h_score",
    "transrate",
    "rank_models",
    "rank_sources",
    "FEATURE_SCORES",
    "PROBA_SCORES",
]

#: Scores computed from target features of a pretrained model.
FEATURE_SCORES: tuple[str, ...] = ("logme", "hscore", "transrate")
#: Scores computed from a source classifier's predictions on the target inputs.
PROBA_SCORES: tuple[str, ...] = ("leep", "nce")
_ALIASES = {"h_score": "hscore", "h-score": "hscore", "log_me": "logme"}


# --------------------------------------------------------------------------- input checks
def _labels(y: Any, n: int, name: str = "y") -> tuple[np.ndarray, int]:
    """Integer codes 0..K-1 of the target labels and K; at least two classes are needed."""
    arr = check_y(y, n, name)
    classes, codes = np.unique(arr, return_inverse=True)
    if classes.shape[0] < 2:
        raise SingleClassError(
            f"{name} holds a single class ({classes[0]!r}); a transferability score compares "
            "how well a candidate separates the target classes, so give labels of at least "
            "two classes."
        )
    return codes.ravel(), int(classes.shape[0])


def _features(features: Any, name: str = "features") -> np.ndarray:
    return check_X(features, name)


def _probs(probs: Any, name: str = "source_probs") -> np.ndarray:
    """A row-stochastic (n, Z) matrix of source-class probabilities (rows renormalised)."""
    P = check_X(probs, name)
    if (P < 0).any():
        raise InputError(
            f"{name} has negative entries; pass the source classifier's predict_proba output "
            "on the target inputs (apply a softmax to logits first)."
        )
    sums = P.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        bad = int(np.argmax(np.abs(sums - 1.0)))
        raise InputError(
            f"{name} rows must sum to 1 (row {bad} sums to {sums[bad]:.4g}); pass the source "
            "classifier's predict_proba output (apply a softmax to logits first)."
        )
    return P / sums[:, None]


def _one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((codes.shape[0], k))
    out[np.arange(codes.shape[0]), codes] = 1.0
    return out


def _rank_tol(s: np.ndarray, shape: tuple[int, ...]) -> float:
    """Singular values at or below this are numerically zero (NumPy's ``matrix_rank`` rule)."""
    return float(s.max(initial=0.0) * max(shape) * np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- LogME
def _logme_evidence(F: np.ndarray, Y: np.ndarray, tol: float = 1e-6,
                    max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximised log-evidence of each column of ``Y`` (n, K) given ``F``; also α and β."""
    n, D = F.shape
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    keep = s > _rank_tol(s, F.shape)
    U, s = U[:, keep], s[keep]
    sigma = (s**2)[:, None]                       # (r, 1) eigenvalues of FᵀF
    z = U.T @ Y                                   # (r, K) targets in the left singular basis
    z2 = z**2
    outside = np.maximum((Y**2).sum(axis=0) - z2.sum(axis=0), 0.0)  # ‖y‖² off span(F)
    K = Y.shape[1]

    def evidence_at(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, ...]:
        t = alpha + beta * sigma                  # (r, K) eigenvalues of A = αI + βFᵀF
        # ratios in [0, 1]: no overflow when α → ∞ (features that carry no signal)
        fit, shrink = beta * sigma / t, alpha / t
        gamma = fit.sum(axis=0)
        m2 = (fit**2 * z2 / sigma).sum(axis=0)                  # ‖m‖²
        res2 = (shrink**2 * z2).sum(axis=0) + outside           # ‖Fm − y‖²
        # ½ log|A| − D/2 log α = ½ Σ_i log(t_i / α), written stably
        log_det = np.log1p(beta * sigma / alpha).sum(axis=0)
        ev = (n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi) - beta / 2 * res2
              - alpha / 2 * m2 - log_det / 2)
        return ev, gamma, m2, res2

    alpha, beta = np.ones(K), np.ones(K)
    lo, hi = 1e-100, 1e100
    ev = evidence_at(alpha, beta)[0]
    for _ in range(max_iter):
        _, gamma, m2, res2 = evidence_at(alpha, beta)
        new_alpha = np.clip(gamma / np.maximum(m2, lo), lo, hi)
        new_beta = np.clip((n - gamma) / np.maximum(res2, lo), lo, hi)
        new_ev = evidence_at(new_alpha, new_beta)[0]
        step = max(np.max(np.abs(new_alpha - alpha) / alpha),
                   np.max(np.abs(new_beta - beta) / beta))
        alpha, beta = new_alpha, new_beta
        converged = step <= tol or np.max(np.abs(new_ev - ev)) <= tol * 1e-3 * n
        ev = new_ev
        if converged:
            break
    evidence = ev
    return evidence, alpha, beta


def logme(features: Any, y: Any) -> float:
    r"""LogME: log of the maximum evidence of a Bayesian linear model on the features.

    For each class :math:`k` the one-hot target column :math:`y_k \in \{0, 1\}^n` is
    modelled as :math:`y_k = F w + \varepsilon` with prior :math:`w \sim N(0, \alpha^{-1}
    I_D)` and noise :math:`\varepsilon \sim N(0, \beta^{-1} I_n)`. The evidence is

    .. math::

        \mathcal L(\alpha, \beta) = \log p(y_k \mid F, \alpha, \beta)
        = \tfrac n2 \log\beta + \tfrac D2 \log\alpha - \tfrac n2 \log 2\pi
          - \tfrac\beta2 \lVert F m - y_k\rVert^2 - \tfrac\alpha2 m^\top m
          - \tfrac12 \log\lvert A\rvert,

    with :math:`A = \alpha I + \beta F^\top F` and :math:`m = \beta A^{-1} F^\top y_k`. It is
    maximised by the fixed-point iteration :math:`\gamma = \sum_i \beta\sigma_i /
    (\alpha + \beta\sigma_i)`, :math:`\alpha \leftarrow \gamma / m^\top m`, :math:`\beta
    \leftarrow (n - \gamma) / \lVert Fm - y_k\rVert^2`, where :math:`\sigma_i` are the
    eigenvalues of :math:`F^\top F`; one SVD of :math:`F` serves every class and iteration.
    The score is :math:`\frac1K \sum_k \mathcal L_k^\ast / n`.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target inputs embedded by the candidate pretrained model.
    y : array-like of shape (n_samples,)
        Target class labels (at least two classes).

    Returns
    -------
    float
        Average maximum log-evidence per sample; higher is better.

    References
    ----------
    You, K., Liu, Y., Wang, J. & Long, M. LogME: Practical Assessment of Pre-trained Models
    for Transfer Learning. ICML 2021.
    """
    F = _features(features)
    codes, k = _labels(y, F.shape[0])
    evidence, _, _ = _logme_evidence(F, _one_hot(codes, k))
    return float(evidence.mean() / F.shape[0])


# --------------------------------------------------------------------------- LEEP / NCE
def leep(source_probs: Any, y: Any) -> float:
    r"""LEEP: log expected empirical prediction of a source classifier on the target.

    With :math:`\theta(x_i) \in \Delta^{Z}` the source model's predicted distribution over
    its :math:`Z` source labels for target input :math:`x_i`, the empirical joint and
    conditional are

    .. math::

        \hat P(y, z) = \frac1n \sum_{i: y_i = y} \theta(x_i)_z, \qquad
        \hat P(y \mid z) = \frac{\hat P(y, z)}{\sum_{y'} \hat P(y', z)},

    and :math:`\mathrm{LEEP} = \frac1n \sum_i \log \sum_z \hat P(y_i \mid z)\,
    \theta(x_i)_z \le 0`. It is 0 when the source labels determine the target labels.

    Parameters
    ----------
    source_probs : array-like of shape (n_samples, n_source_classes)
        ``predict_proba`` of the source classifier on the target inputs (rows sum to 1).
    y : array-like of shape (n_samples,)
        Target class labels (at least two classes).

    Returns
    -------
    float
        LEEP score (≤ 0); higher is better.

    References
    ----------
    Nguyen, C. V., Hassner, T., Seeger, M. & Archambeau, C. LEEP: A New Measure to Evaluate
    Transferability of Learned Representations. ICML 2020.
    """
    P = _probs(source_probs)
    n = P.shape[0]
    codes, k = _labels(y, n)
    joint = _one_hot(codes, k).T @ P / n              # (K, Z)
    pz = joint.sum(axis=0)
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)   # P(y | z)
    eep = np.einsum("iz,iz->i", P, cond[codes])       # Σ_z P(y_i | z) θ(x_i)_z
    return float(np.mean(np.log(np.maximum(eep, np.finfo(np.float64).tiny))))


def nce(source_labels: Any, y: Any) -> float:
    r"""NCE: negative conditional entropy of the target labels given the source labels.

    With :math:`z_i` the source model's hard label for target input :math:`x_i` (for example
    the ``argmax`` of its probabilities) and :math:`\hat P` the empirical distributions,

    .. math::

        \mathrm{NCE}(Y \mid Z) = -H(Y \mid Z)
        = \sum_{y, z} \hat P(y, z) \log \frac{\hat P(y, z)}{\hat P(z)} \le 0.

    It is 0 when the source label determines the target label.

    Parameters
    ----------
    source_labels : array-like of shape (n_samples,)
        Hard labels the source model gives the target inputs (any hashable values).
    y : array-like of shape (n_samples,)
        Target class labels (at least two classes).

    Returns
    -------
    float
        NCE score (≤ 0, in nats); higher is better.

    References
    ----------
    Tran, A. T., Nguyen, C. V. & Hassner, T. Transferability and Hardness of Supervised
    Classification Tasks. ICCV 2019.
    """
    raw = _to_numpy(source_labels)
    if raw.ndim == 2 and raw.shape[1] > 1:
        raise InputError(
            f"source_labels has shape {raw.shape}; pass one hard source label per sample, e.g. "
            "source_probs.argmax(axis=1), or use leep() on the probabilities."
        )
    z_arr = check_y(raw, raw.shape[0], "source_labels")
    n = z_arr.shape[0]
    codes, k = _labels(y, n)
    _, z_codes = np.unique(z_arr, return_inverse=True)
    z_codes = z_codes.ravel()
    joint = np.zeros((k, int(z_codes.max()) + 1))
    np.add.at(joint, (codes, z_codes), 1.0)
    joint /= n
    pz = joint.sum(axis=0)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / pz)[nz])))


# --------------------------------------------------------------------------- H-score
def h_score(features: Any, y: Any, shrinkage: float | str | None = None) -> float:
    r"""H-score: how much of the feature covariance the class-conditional means explain.

    .. math::

        H(f) = \operatorname{tr}\!\left(\operatorname{cov}(f(X))^{-1}\,
               \operatorname{cov}\!\left(\mathbb E[f(X) \mid Y]\right)\right),

    where :math:`\operatorname{cov}(\mathbb E[f \mid Y]) = \sum_y \hat P(y)
    (\mu_y - \mu)(\mu_y - \mu)^\top` is the between-class covariance. With the default
    (pseudo-)inverse the score is invariant to any invertible linear map of the features and
    lies in :math:`[0, \min(K - 1, \operatorname{rank} F)]`. Estimated from few samples in
    many dimensions the inverse is unstable; ``shrinkage`` replaces :math:`\Sigma` by
    :math:`(1 - \lambda)\Sigma + \lambda \frac{\operatorname{tr}\Sigma}{D} I`
    (Ibrahim et al., 2022), which gives up exact invariance.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target inputs embedded by the candidate pretrained model.
    y : array-like of shape (n_samples,)
        Target class labels (at least two classes).
    shrinkage : None, float in [0, 1] or "auto", default=None
        ``None``: Moore–Penrose pseudo-inverse of the covariance. A float: that shrinkage
        :math:`\lambda`. ``"auto"``: the Ledoit–Wolf :math:`\lambda`.

    Returns
    -------
    float
        H-score (≥ 0); higher is better.

    References
    ----------
    Bao, Y., Li, Y., Huang, S.-L., Zhang, L., Zheng, L., Zamir, A. & Guibas, L. An
    Information-Theoretic Approach to Transferability in Task Transfer Learning. ICIP 2019.
    Ibrahim, S., Ponomareva, N. & Mazumder, R. Newer is not always better: Rethinking
    transferability metrics, their peculiarities, stability and performance. ECML PKDD 2022.
    """
    F = _features(features)
    n, D = F.shape
    codes, k = _labels(y, n)
    Fc = F - F.mean(axis=0)
    _, s, Vt = np.linalg.svd(Fc, full_matrices=False)
    keep = s > _rank_tol(s, Fc.shape)
    s, Vt = s[keep], Vt[keep]
    counts = np.bincount(codes, minlength=k).astype(float)
    means = (_one_hot(codes, k).T @ Fc) / counts[:, None]       # μ_y − μ, (K, D)
    proj = means @ Vt.T                                         # in the span of Fc, (K, r)
    eig = s**2 / n                                              # eigenvalues of Σ
    if shrinkage is None:
        denom = eig
    else:
        if isinstance(shrinkage, str):
            if shrinkage != "auto":
                raise ParameterError(f"shrinkage must be None, a float in [0, 1] or 'auto'; "
                                     f"got {shrinkage!r}.")
            from sklearn.covariance import ledoit_wolf_shrinkage

            lam = float(ledoit_wolf_shrinkage(Fc, assume_centered=True))
        else:
            lam = float(shrinkage)
            if not 0.0 <= lam <= 1.0:
                raise ParameterError(f"shrinkage must lie in [0, 1]; got {shrinkage!r}.")
        denom = (1 - lam) * eig + lam * eig.sum() / D
    if denom.size == 0:
        return 0.0
    return float(np.sum(counts / n * np.sum(proj**2 / denom, axis=1)))


# --------------------------------------------------------------------------- TransRate
def _coding_rate(Z: np.ndarray, eps: float) -> float:
    """R(Z, ε) = ½ log det(I + ZᵀZ / (n ε)), via singular values (Sylvester's identity)."""
    s = np.linalg.svd(Z, compute_uv=False)
    return float(0.5 * np.sum(np.log1p(s**2 / (Z.shape[0] * eps))))


def transrate(features: Any, y: Any, eps: float = 1e-4, center_classes: bool = True) -> float:
    r"""TransRate: coding-rate reduction of the features by the target labels.

    The features are centred and scaled so that the mean squared row norm is 1 (the score is
    then invariant to translation and scale). With :math:`Z_y` the rows of class :math:`y`
    (:math:`n_y` of them),

    .. math::

        R(Z, \epsilon) = \tfrac12 \log\det\!\left(I_D + \tfrac{1}{n\epsilon} Z^\top Z\right),
        \qquad
        R(Z \mid Y, \epsilon) = \sum_y \frac{n_y}{n}\, R(Z_y, \epsilon),

        \mathrm{TrR}(Z, Y) = R(Z, \epsilon) - R(Z \mid Y, \epsilon) \ge 0.

    High when the features as a whole fill many directions (informative) while each class
    occupies few (separable). TransRate estimates the mutual information
    :math:`H(Z) - H(Z \mid Y)`, so each class is centred on its own mean before its coding
    rate is taken (``center_classes=True``): a differential entropy does not depend on where
    the class sits. Without it (as in the authors' code) the class offset from the global
    mean is coded inside :math:`R(Z_y)`, and for two Gaussian classes with a small
    :math:`\epsilon` the score stays near 0 however far apart they are. The class weights
    :math:`n_y / n` are those of the rate reduction of Yu et al. (2020); with them the score
    is provably non-negative (the within-class second moments average to at most the total
    one and the log-determinant is concave). They equal the reference code's :math:`1/K`
    for balanced classes.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target inputs embedded by the candidate pretrained model.
    y : array-like of shape (n_samples,)
        Target class labels (at least two classes).
    eps : float, default=1e-4
        Distortion :math:`\epsilon` of the coding rate (> 0).
    center_classes : bool, default=True
        Centre each class on its own mean before its coding rate; ``False`` reproduces the
        reference implementation (features centred globally only).

    Returns
    -------
    float
        TransRate (≥ 0, in nats); higher is better.

    References
    ----------
    Huang, L.-K., Huang, J., Rong, Y., Yang, Q. & Wei, Y. Frustratingly Easy Transferability
    Estimation. ICML 2022.
    Yu, Y., Chan, K. H. R., You, C., Song, C. & Ma, Y. Learning Diverse and Discriminative
    Representations via the Principle of Maximal Coding Rate Reduction. NeurIPS 2020.
    """
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ParameterError(f"eps must be a number > 0; got {eps!r}.")
    F = _features(features)
    n = F.shape[0]
    codes, k = _labels(y, n)
    Z = F - F.mean(axis=0)
    scale = np.sqrt(np.mean(np.sum(Z**2, axis=1)))
    if scale == 0:
        return 0.0
    Z = Z / scale
    counts = np.bincount(codes, minlength=k)
    r_cond = 0.0
    for c in range(k):
        Zc = Z[codes == c]
        if center_classes:
            Zc = Zc - Zc.mean(axis=0)
        r_cond += counts[c] / n * _coding_rate(Zc, eps)
    return max(_coding_rate(Z, eps) - r_cond, 0.0)


# --------------------------------------------------------------------------- rankings
_FEATURE_FUNCS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "logme": logme, "hscore": h_score, "transrate": transrate}


def _proba_score(name: str, P: np.ndarray, y: Any) -> float:
    if name == "leep":
        return leep(P, y)
    return nce(np.argmax(_probs(P), axis=1), y)


def _score_names(scores: Sequence[str] | str, allowed: tuple[str, ...], where: str) -> list[str]:
    if isinstance(scores, str):
        scores = (scores,)
    names = [_ALIASES.get(str(s).lower(), str(s).lower()) for s in scores]
    if not names:
        raise ParameterError("scores is empty; name at least one of " + ", ".join(allowed) + ".")
    for name in names:
        if name not in allowed:
            hint = (" (LEEP and NCE need a source classifier's probabilities: use "
                    "rank_sources(..., probs=...))" if name in PROBA_SCORES else "")
            raise ParameterError(f"unknown score {name!r} for {where}; choose from "
                                 f"{', '.join(allowed)}{hint}.")
    return list(dict.fromkeys(names))


def _check_candidates(mapping: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise InputError(f"{what} must be a dict mapping each candidate's name to its array; "
                         f"got {type(mapping).__name__}.")
    return dict(mapping)


def _table(rows: dict[str, dict[str, float]], names: list[str]) -> pd.DataFrame:
    """One row per candidate, one column per score, the mean rank last, best first."""
    table = pd.DataFrame.from_dict(rows, orient="index", columns=names, dtype=float)
    table.index.name = "candidate"
    ranks = table.rank(ascending=False, method="average", na_option="keep")
    table["mean_rank"] = ranks.mean(axis=1, skipna=True)
    return table.sort_values("mean_rank", kind="stable")


def _score_candidate(label: str, func: Callable[[], float]) -> float:
    try:
        return func()
    except TransferkitError as exc:
        raise type(exc)(f"candidate {label!r}: {exc}") from None


def rank_models(features: Mapping[str, Any], y: Any,
                scores: Sequence[str] | str = FEATURE_SCORES) -> pd.DataFrame:
    """Rank pretrained models by the transferability of their features to the target task.

    Parameters
    ----------
    features : dict of str to array-like of shape (n_samples, n_features_m)
        For each candidate model, the target inputs embedded by it (the same samples in the
        same order for every model; feature counts may differ).
    y : array-like of shape (n_samples,)
        Target class labels.
    scores : sequence of str, default=("logme", "hscore", "transrate")
        Feature scores to compute (see :data:`FEATURE_SCORES`).

    Returns
    -------
    pandas.DataFrame
        Indexed by candidate (``index.name == "candidate"``), one column per score and a
        ``mean_rank`` column (1 is best; each score ranks candidates from highest to
        lowest, ties share the average rank), sorted by ``mean_rank``.
        ``table.to_dict(orient="index")`` gives ``{candidate: {score: value}}``.

    Examples
    --------
    >>> table = rank_models({"bert": F1, "minilm": F2}, y)  # doctest: +SKIP
    >>> table.index[0]                                     # doctest: +SKIP
    'minilm'
    """
    names = _score_names(scores, FEATURE_SCORES, "rank_models")
    cands = _check_candidates(features, "features")
    if not cands:
        raise InputError("features is empty; pass {model_name: target_features} for at least "
                         "one model.")
    rows: dict[str, dict[str, float]] = {}
    for label, F in cands.items():
        X = _score_candidate(label, lambda F=F, label=label: _features(F, f"features[{label!r}]"))
        rows[label] = {s: _score_candidate(label, lambda s=s, X=X: _FEATURE_FUNCS[s](X, y))
                       for s in names}
    return _table(rows, names)


def rank_sources(features: Mapping[str, Any] | None, y: Any, *,
                 probs: Mapping[str, Any] | None = None,
                 scores: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Rank source datasets (or source models) by their expected transfer to the target.

    A source may be described by the target inputs' features under a model trained on it
    (LogME, H-score, TransRate apply), by that source classifier's predicted probabilities
    on the target inputs (LEEP, and NCE on their ``argmax``), or by both. Scores whose input
    a source lacks are NaN in its row, never dropped.

    Parameters
    ----------
    features : dict of str to array-like of shape (n_samples, n_features), or None
        Target features per source.
    y : array-like of shape (n_samples,)
        Target class labels.
    probs : dict of str to array-like of shape (n_samples, n_source_classes), optional
        ``predict_proba`` of each source's classifier on the target inputs.
    scores : sequence of str, optional
        Scores to compute; default: every feature score if any features are given, then
        ``"leep"`` and ``"nce"`` if any probabilities are given.

    Returns
    -------
    pandas.DataFrame
        As :func:`rank_models`: one row per source, one column per score, ``mean_rank``
        (over the scores available to that source), best first.
    """
    feats = _check_candidates(features, "features")
    proba = _check_candidates(probs, "probs")
    if not feats and not proba:
        raise InputError("no sources given; pass features={source: target_features} and/or "
                         "probs={source: source_model.predict_proba(X_target)}.")
    allowed = FEATURE_SCORES + PROBA_SCORES
    if scores is None:
        scores = (FEATURE_SCORES if feats else ()) + (PROBA_SCORES if proba else ())
    names = _score_names(scores, allowed, "rank_sources")
    rows: dict[str, dict[str, float]] = {}
    for label in list(dict.fromkeys([*feats, *proba])):
        row = dict.fromkeys(names, np.nan)
        if label in feats:
            X = _score_candidate(
                label, lambda label=label: _features(feats[label], f"features[{label!r}]"))
            for s in names:
                if s in FEATURE_SCORES:
                    row[s] = _score_candidate(label, lambda s=s, X=X: _FEATURE_FUNCS[s](X, y))
        if label in proba:
            P = _score_candidate(label, lambda label=label: _probs(proba[label],
                                                                    f"probs[{label!r}]"))
            for s in names:
                if s in PROBA_SCORES:
                    row[s] = _score_candidate(label, lambda s=s, P=P: _proba_score(s, P, y))
        rows[label] = row
    return _table(rows, names)
