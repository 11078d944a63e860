"""The estimator contract shared by every transferkit method.

``fit(Xs, ys, Xt, yt=None, **fit_params)`` takes labelled source data, target data and
optional target labels (NaN / None mark unlabelled target rows, so one argument covers
unsupervised, semi-supervised and supervised adaptation). ``predict``, ``predict_proba``
and ``score`` act on the target domain. Hyper-parameters live only in ``__init__``;
learned state ends in ``_``; ``get_params``/``set_params``/``clone`` work as in
scikit-learn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import accuracy_score, r2_score

from ._random import seed_from
from ._validation import CLASSIFICATION, REGRESSION, DomainData, check_domains, check_X, check_y
from .errors import InputError, NotFittedError, UnsupportedTaskError

__all__ = ["TransferEstimator", "make_base_estimator", "fit_weighted", "CLASSIFICATION",
           "REGRESSION"]


def make_base_estimator(estimator: Any, task: str, random_state: Any = None) -> Any:
    """A fresh, unfitted copy of ``estimator`` ready for ``fit(X, y, sample_weight)``.

    ``None`` gives a fast linear default (logistic regression or ridge); a
    ``torch.nn.Module`` is wrapped in :class:`transferkit.nn.TorchEstimator` so it trains
    with a weighted loss. When the copy exposes ``random_state`` and it is unset, ours is
    passed down so that one seed makes the whole method reproducible.
    """
    if estimator is None:
        from sklearn.linear_model import LogisticRegression, Ridge

        est = LogisticRegression(max_iter=1000) if task == CLASSIFICATION else Ridge()
    elif _is_torch_module(estimator):
        from .nn import TorchEstimator

        est = TorchEstimator(module=estimator, task=task)
    else:
        est = clone(estimator)
    if random_state is not None and "random_state" in est.get_params(deep=False):
        if est.get_params(deep=False)["random_state"] is None:
            est.set_params(random_state=seed_from(random_state))
    return est


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def fit_weighted(estimator: Any, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None,
                 **fit_params: Any) -> Any:
    """Fit ``estimator`` with ``sample_weight``; say clearly if it cannot take weights."""
    if sample_weight is None:
        return estimator.fit(X, y, **fit_params)
    try:
        return estimator.fit(X, y, sample_weight=sample_weight, **fit_params)
    except TypeError as exc:
        if "sample_weight" not in str(exc):
            raise
        raise UnsupportedTaskError(
            f"{type(estimator).__name__}.fit does not accept sample_weight, so it cannot be "
            "trained on reweighted instances; pass an estimator that does (most scikit-learn "
            "estimators, or a torch.nn.Module)."
        ) from None


class TransferEstimator(BaseEstimator):
    """Base class: validation, label encoding, target-domain ``predict``/``score``.

    Subclasses implement ``_fit(data, **fit_params)`` on a validated
    :class:`~transferkit._validation.DomainData` and ``_predict_raw(X)`` /
    ``_predict_proba_raw(X)`` on validated target-domain features. For classification the
    raw predictions are encoded class indices; the base class decodes them.
    """

    #: tasks the method handles; the registry copies this.
    _tasks: tuple[str, ...] = (CLASSIFICATION, REGRESSION)
    #: whether ``fit`` needs at least one labelled target sample.
    _needs_target_labels: bool = False
    #: whether source and target may have different features (heterogeneous transfer);
    #: ``predict`` then takes target-domain rows, ``n_features_in_`` counts their columns.
    _heterogeneous: bool = False

    # ------------------------------------------------------------------ contract
    def fit(self, Xs: Any, ys: Any, Xt: Any, yt: Any = None, **fit_params: Any):
        """Fit on labelled source data and (partly labelled) target data.

        Parameters
        ----------
        Xs : array-like of shape (n_source, n_features)
            Source features.
        ys : array-like of shape (n_source,)
            Source labels.
        Xt : array-like of shape (n_target, n_features)
            Target features.
        yt : array-like of shape (n_target,), optional
            Target labels; NaN (or None for string labels) marks an unlabelled sample.
        **fit_params
            Passed to the underlying estimator's ``fit`` (e.g. ``epochs``).

        Returns
        -------
        self
        """
        if _is_torch_data(Xs) or _is_torch_data(Xt):
            raise InputError(f"{type(self).__name__} takes arrays, DataFrames or tensors; torch "
                             "Datasets and DataLoaders go to the deep adaptation methods "
                             "(DANN, ADDA, DeepCORAL, DAN, MCD, MDD, CDAN, HeDANN).")
        data = check_domains(Xs, ys, Xt, yt, estimator=getattr(self, "estimator", None),
                             task=self._forced_task(),
                             needs_target_labels=self._needs_target_labels,
                             same_features=not self._heterogeneous)
        if data.task not in self._tasks:
            raise UnsupportedTaskError(
                f"{type(self).__name__} handles {' and '.join(self._tasks)}, not {data.task}; "
                "see transferkit.methods(task=...) for methods that do."
            )
        self.task_ = data.task
        self.n_features_in_ = data.Xt.shape[1]  # predict acts on the target domain
        if data.feature_names is not None:
            self.feature_names_in_ = data.feature_names
        if data.classes is not None:
            self.classes_ = data.classes
        self._fit(data, **fit_params)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict labels (or values) for target-domain samples (an array, or a torch
        Dataset / unshuffled DataLoader of ``x`` or ``(x, y)`` items, read batch by
        batch)."""
        if _is_torch_data(X):
            return _per_batch(self.predict, X)
        X = self._check_predict_X(X)
        raw = np.asarray(self._predict_raw(X))
        if self.task_ == CLASSIFICATION:
            return self.classes_[raw.astype(np.int64)]
        return raw.astype(np.float64).ravel()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities for target-domain samples (classification only; arrays or
        torch data, as in :meth:`predict`)."""
        if _is_torch_data(X):
            return _per_batch(self.predict_proba, X)
        X = self._check_predict_X(X)
        if self.task_ != CLASSIFICATION:
            raise UnsupportedTaskError(
                "predict_proba is only defined for classification; this model was fitted for "
                "regression, use predict."
            )
        return np.asarray(self._predict_proba_raw(X), dtype=np.float64)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy (classification) or R² (regression) on target-domain data (torch data:
        the labels come from its ``(x, y)`` items and ``y`` stays None)."""
        if _is_torch_data(X):
            if y is not None:
                raise InputError("with torch data the labels come from its (x, y) items; "
                                 "call score(data) without y.")
            classes = getattr(self, "classes_", None)
            numeric = classes is not None and np.asarray(classes).dtype.kind in "biuf"
            X, y = _labelled_rows(X, classes if numeric else None)
        X = self._check_predict_X(X)
        y = check_y(y, X.shape[0], "y")
        pred = self.predict(X)
        if self.task_ == CLASSIFICATION:
            return float(accuracy_score(y, pred, sample_weight=sample_weight))
        return float(r2_score(y.astype(np.float64), pred, sample_weight=sample_weight))

    # ------------------------------------------------------------------ helpers
    def _forced_task(self) -> str | None:
        return None

    def _check_fitted(self) -> None:
        if not hasattr(self, "task_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(Xs, ys, Xt) first."
            )

    def _check_predict_X(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return check_X(X, "X", n_features=self.n_features_in_)

    def _fit(self, data: DomainData, **fit_params: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X)

    def _predict_proba_raw(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self.estimator_, "predict_proba"):
            raise UnsupportedTaskError(
                f"the base estimator {type(self.estimator_).__name__} has no predict_proba; "
                "use a probabilistic classifier."
            )
        return self.estimator_.predict_proba(X)

    # persistence -------------------------------------------------------------
    def save(self, path: str) -> None:
        """Save to folder ``path`` (JSON + safetensors + skops; nothing that runs code)."""
        from .io import save

        save(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _is_torch_data(X: Any) -> bool:
    """A torch Dataset or DataLoader (checked only once torch is imported)."""
    if "torch" not in sys.modules:
        return False
    from .nn.streams import is_torch_data

    return is_torch_data(X)


def _per_batch(fn: Callable[[np.ndarray], np.ndarray], X: Any) -> np.ndarray:
    """``fn`` on each batch of torch data, concatenated: outputs in memory, inputs not."""
    from .nn.streams import iter_batches

    return np.concatenate([fn(x) for x, _ in iter_batches(X)])


def _labelled_rows(X: Any, classes: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the labelled ``(x, y)`` items of torch data (for ``score``;
    the rows ``fit`` reads as unlabelled, NaN or a negative non-class, are left out)."""
    import torch

    from .nn.streams import iter_batches, unlabelled

    xs, ys = [], []
    for x, y in iter_batches(X):
        if y is None:
            raise InputError("score needs (x, y) items to compare the predictions with.")
        keep = ~unlabelled(torch.as_tensor(y), None if classes is None else classes.tolist())
        xs.append(x[keep.numpy()])
        ys.append(y[keep.numpy()])
    if not sum(len(y) for y in ys):
        raise InputError("score found no labelled items (every label is NaN or -1).")
    return np.concatenate(xs), np.concatenate(ys)
