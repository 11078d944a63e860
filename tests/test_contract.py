"""The estimator contract, checked on every registered method.

A method that joins the registry is covered here automatically: clone round trip,
NumPy / pandas / torch input, reproducibility, output shapes, untouched inputs and
hyper-parameters, and one documented error per kind of bad input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import transferkit as tk
from transferkit import errors

ALL = tk.methods()


def _data(task: str, seed: int = 0, n: int = 60):
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(
        n_source=n, n_target=n, n_features=3, task=task, random_state=seed)
    return Xs, ys, Xt, yt


def _partial(yt: np.ndarray, k: int = 12) -> np.ndarray:
    """Target labels with all but ``k`` entries marked unlabelled (NaN)."""
    out = np.full(yt.shape, np.nan)
    out[:k] = yt[:k]
    return out


def _cases():
    for info in ALL:
        for task in info.tasks:
            yield pytest.param(info, task, id=f"{info.name}-{task}")


def _fit(info, task, Xs, ys, Xt, yt, **params):
    m = info.create(random_state=0, **params)
    y_train = _partial(yt) if info.needs_target_labels else None
    return m.fit(Xs, ys, Xt, y_train)


def _outputs(m, X):
    out = [m.predict(X)]
    if m.task_ == "classification":
        out.append(m.predict_proba(X))
    return out


def test_registry_lists_every_family_and_metadata():
    assert len(ALL) >= 3
    for info in ALL:
        assert info.family in tk.registry.FAMILIES
        assert info.summary, f"{info.name} needs a one-line docstring summary"
        assert set(info.tasks) <= {"classification", "regression"}
        assert tk.get_method(info.name.lower()) is info
        assert info.needs_target_labels == getattr(info.cls, "_needs_target_labels", False)


@pytest.mark.parametrize("info,task", list(_cases()))
def test_contract(info, task):
    Xs, ys, Xt, yt = _data(task)
    copies = [a.copy() for a in (Xs, ys, Xt, yt)]
    m = info.create(random_state=0)
    params_before = m.get_params()

    # clone round trip: hyper-parameters only, nothing learned
    c = clone(m)
    assert c.get_params().keys() == params_before.keys()
    # (a hyper-parameter may end in "_", as ADAPT's ``lambda_`` does)
    assert not any(k.endswith("_") and not k.startswith("_") and k not in params_before
                   for k in vars(c))

    m = _fit(info, task, Xs, ys, Xt, yt)
    assert m.get_params().keys() == params_before.keys()
    for k, v in params_before.items():
        if isinstance(v, (int, float, str, type(None), tuple)):
            assert m.get_params()[k] == v, f"fit changed hyper-parameter {k}"
    for a, b in zip((Xs, ys, Xt, yt), copies):
        np.testing.assert_array_equal(a, b)  # the caller's arrays are untouched

    pred = m.predict(Xt)
    assert pred.shape == (len(Xt),)
    score = m.score(Xt, yt)
    assert isinstance(score, float)
    if task == "classification":
        proba = m.predict_proba(Xt)
        assert proba.shape == (len(Xt), len(np.unique(ys)))
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
        assert set(np.unique(pred)) <= set(np.unique(ys))
    else:
        assert np.isfinite(pred).all()
        with pytest.raises(errors.UnsupportedTaskError):
            m.predict_proba(Xt)

    # same random_state -> same results
    m2 = _fit(info, task, Xs, ys, Xt, yt)
    for a, b in zip(_outputs(m, Xt), _outputs(m2, Xt)):
        np.testing.assert_allclose(a, b)

    # pandas and torch inputs give the same model
    cols = [f"f{i}" for i in range(Xs.shape[1])]
    m3 = _fit(info, task, pd.DataFrame(Xs, columns=cols), pd.Series(ys),
              pd.DataFrame(Xt, columns=cols), yt)
    for a, b in zip(_outputs(m, Xt), _outputs(m3, pd.DataFrame(Xt, columns=cols))):
        np.testing.assert_allclose(a, b)
    m4 = _fit(info, task, torch.as_tensor(Xs), torch.as_tensor(ys), torch.as_tensor(Xt), yt)
    for a, b in zip(_outputs(m, Xt), _outputs(m4, torch.as_tensor(Xt))):
        np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("info", ALL, ids=[i.name for i in ALL])
def test_bad_input_raises_documented_errors(info):
    task = info.tasks[0]
    Xs, ys, Xt, yt = _data(task)
    y_train = _partial(yt) if info.needs_target_labels else None

    def fit(Xs_=Xs, ys_=ys, Xt_=Xt, yt_=y_train):
        return info.create(random_state=0).fit(Xs_, ys_, Xt_, yt_)

    bad = Xs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(errors.NonFiniteInputError, match="NaN"):
        fit(Xs_=bad)
    bad = Xt.copy()
    bad[0, 0] = np.inf
    with pytest.raises(errors.NonFiniteInputError):
        fit(Xt_=bad)
    if info.cls._heterogeneous:
        # different feature spaces are the point: predict then takes target-shaped rows
        m = fit(Xt_=Xt[:, :2])
        assert m.n_features_in_ == 2 and m.predict(Xt[:, :2]).shape == (len(Xt),)
        with pytest.raises(errors.FeatureMismatchError):
            m.predict(Xt)
    else:
        with pytest.raises(errors.FeatureMismatchError, match="heterogeneous"):
            fit(Xt_=Xt[:, :2])
    with pytest.raises(errors.EmptyDomainError):
        fit(Xt_=Xt[:0])
    with pytest.raises(errors.LabelLengthError):
        fit(ys_=ys[:-1])
    if y_train is not None or not info.needs_target_labels:
        with pytest.raises(errors.LabelLengthError):
            fit(yt_=_partial(yt)[:-1])
    if task == "classification":
        with pytest.raises(errors.SingleClassError):
            fit(ys_=np.zeros_like(ys))
    if info.needs_target_labels:
        with pytest.raises(errors.MissingTargetLabelsError):
            fit(yt_=None)
    with pytest.raises(errors.NotFittedError):
        info.create().predict(Xt)
    m = fit()
    with pytest.raises(errors.FeatureMismatchError):
        m.predict(Xt[:, :2])
    # every error is also a ValueError, so scikit-learn-style code keeps working
    assert issubclass(errors.TransferkitError, ValueError)


def test_unknown_method_name_suggests_close_matches():
    with pytest.raises(errors.UnknownMethodError, match="SourceOnly"):
        tk.make("SourceOnyl")


@pytest.mark.parametrize("info", [i for i in ALL if "classification" in i.tasks],
                         ids=lambda i: i.name)
def test_string_labels_round_trip(info):
    Xs, ys, Xt, yt = _data("classification")
    names = np.array(["cat", "dog"])
    y_train = None
    if info.needs_target_labels:
        y_train = np.array([names[v] for v in yt], dtype=object)
        y_train[12:] = None
    m = info.create(random_state=0).fit(Xs, names[ys], Xt, y_train)
    assert set(m.predict(Xt)) <= {"cat", "dog"}
    assert list(m.classes_) == ["cat", "dog"]
