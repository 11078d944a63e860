"""Zero-shot learning: classes never seen in training, recognised from their descriptions."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._validation import check_X, check_y
from ..errors import InputError, NotFittedError, ParameterError

__all__ = ["ESZSL"]


class ESZSL(ClassifierMixin, BaseEstimator):
    """Embarrassingly simple zero-shot learning (Romera-Paredes and Torr, ICML 2015).

    Setting: zero-shot transfer. Each class is described by a vector of attributes
    (hand-made properties, or an embedding of its name or description); a model learned
    on the *seen* classes must recognise *unseen* ones from their descriptions alone,
    without any of their examples. What is transferred is a bilinear compatibility
    ``f(x, s) = xᵀ V s`` between inputs and class descriptions. With ``X`` (d × m) the
    training inputs, ``Y ∈ {−1, 1}^{m × z}`` their classes one-vs-rest and ``S`` (a × z)
    the seen classes' attributes, minimising
    ``‖XᵀVS − Y‖² + γ‖VS‖² + λ‖XᵀV‖² + γλ‖V‖²`` has the closed form

        V = (X Xᵀ + γ I)⁻¹ X Y Sᵀ (S Sᵀ + λ I)⁻¹,

    and a row is given the class whose description scores highest. Inputs are centred on
    the training mean (stored; :meth:`predict` applies it). The seen classes'
    descriptions must span the attribute space (at least as many independent ones as
    attributes): a direction no seen class varies along is never learned, and ``fit``
    warns. On synthetic classes (``tests/test_zeroshot.py``: 9 seen, 3 unseen, 5
    attributes) unseen-class accuracy is ≥ 0.95; with 7 seen classes for 8 attributes
    it falls to 0.67.

    Parameters
    ----------
    gamma : float, default=1.0
        Ridge on the input side (γ).
    lambda_ : float, default=1.0
        Ridge on the attribute side (λ).

    Attributes
    ----------
    V_ : ndarray of shape (n_features, n_attributes)
    classes_ : ndarray
        The seen (training) classes, whose ``attributes`` ``fit`` received.
    attributes_ : ndarray of shape (n_classes, n_attributes)

    References
    ----------
    B. Romera-Paredes and P. H. S. Torr, "An embarrassingly simple approach to zero-shot
    learning", ICML 2015, eq. (5). The seeds (``001``, ``003``) describe zero-shot
    learning as transfer through an extra variable T that describes the task.

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.parameter import ESZSL
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(6, 4))              # 6 classes, 4 attributes each
    >>> W = rng.normal(size=(4, 10))             # attributes -> inputs
    >>> y = np.repeat(np.arange(6), 50)
    >>> X = A[y] @ W + 0.3 * rng.normal(size=(300, 10))
    >>> m = ESZSL().fit(X[y < 4], y[y < 4], attributes=A[:4])   # classes 4, 5 never seen
    >>> unseen = y >= 4
    >>> float(np.mean(m.predict(X[unseen], attributes=A[4:], classes=[4, 5]) == y[unseen]))
    1.0
    """

    def __init__(self, gamma: float = 1.0, lambda_: float = 1.0) -> None:
        self.gamma = gamma
        self.lambda_ = lambda_

    def fit(self, X: Any, y: Any, attributes: Any = None) -> ESZSL:
        """Learn V on the seen classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Seen classes.
        attributes : array-like of shape (n_classes, n_attributes), or dict
            The description of every class in ``y``: rows in the order of
            ``np.unique(y)``, or a dict class -> vector.
        """
        for name in ("gamma", "lambda_"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.number)) or not value > 0:
                raise ParameterError(f"{name} must be a number > 0; got {value!r}.")
        X = check_X(X, "X")
        y = check_y(y, X.shape[0], "y")
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise InputError("zero-shot learning needs at least two seen classes to learn "
                             "how descriptions relate to inputs.")
        S = self._attributes(attributes, classes, "fit").T  # (a, z)
        rank = np.linalg.matrix_rank(S)
        if rank < S.shape[0]:
            warnings.warn(f"the {len(classes)} seen classes' descriptions span {rank} of the "
                          f"{S.shape[0]} attribute directions; an unseen class is judged on "
                          "those alone (describe more seen classes, or use fewer attributes).",
                          UserWarning, stacklevel=2)
        self.x_mean_ = X.mean(0)
        Xc = (X - self.x_mean_).T  # (d, m)
        Y = -np.ones((X.shape[0], len(classes)))
        Y[np.arange(X.shape[0]), y_idx] = 1.0
        d, m = Xc.shape
        right = Y @ S.T @ np.linalg.inv(S @ S.T + self.lambda_ * np.eye(S.shape[0]))  # (m, a)
        if d <= m:  # (X Xᵀ + γI)⁻¹ X, or the same as X (XᵀX + γI)⁻¹ when rows are few
            self.V_ = np.linalg.solve(Xc @ Xc.T + self.gamma * np.eye(d), Xc @ right)
        else:
            self.V_ = Xc @ np.linalg.solve(Xc.T @ Xc + self.gamma * np.eye(m), right)
        self.classes_, self.attributes_ = classes, S.T
        self.n_features_in_ = d
        return self

    def decision_function(self, X: Any, attributes: Any = None) -> np.ndarray:
        """Compatibility xᵀ V s of every row with every class description (n, n_classes);
        ``attributes`` None: the seen classes'."""
        if not hasattr(self, "V_"):
            raise NotFittedError("this ESZSL is not fitted yet; call fit(X, y, attributes).")
        X = check_X(X, "X", n_features=self.n_features_in_)
        S = self.attributes_ if attributes is None else np.asarray(
            self._attributes(attributes, None, "predict"))
        if S.shape[1] != self.V_.shape[1]:
            raise InputError(f"class descriptions have {S.shape[1]} attributes; the model was "
                             f"fitted with {self.V_.shape[1]}.")
        return (X - self.x_mean_) @ self.V_ @ S.T

    def predict(self, X: Any, attributes: Any = None, classes: Any = None) -> np.ndarray:
        """The best-scoring class for each row, among the seen classes (default) or among
        the classes described by ``attributes`` (rows named by ``classes``, default
        0..k-1; a dict gives both)."""
        if isinstance(attributes, dict):
            if classes is not None:
                raise InputError("a dict of attributes names its classes; pass classes only "
                                 "with an array of attributes.")
            classes, attributes = list(attributes), np.asarray(list(attributes.values()))
        scores = self.decision_function(X, attributes)
        if attributes is None:
            names = self.classes_
        else:
            names = np.arange(scores.shape[1]) if classes is None else np.asarray(classes)
            if len(names) != scores.shape[1]:
                raise InputError(f"classes names {len(names)} classes for {scores.shape[1]} "
                                 "descriptions.")
        return names[scores.argmax(1)]

    @staticmethod
    def _attributes(attributes: Any, classes: np.ndarray | None, where: str) -> np.ndarray:
        if attributes is None:
            raise InputError(f"{where} needs attributes: one description vector per class.")
        if isinstance(attributes, dict):
            if classes is None:
                return np.asarray(list(attributes.values()), dtype=np.float64)
            missing = [c for c in classes if c not in attributes]
            if missing:
                raise InputError(f"attributes lack the classes {missing[:5]}.")
            return np.asarray([attributes[c] for c in classes], dtype=np.float64)
        S = check_X(attributes, "attributes")
        if classes is not None and len(S) != len(classes):
            raise InputError(f"attributes has {len(S)} rows for {len(classes)} classes; give one "
                             "row per class, in the order of np.unique(y).")
        return S
