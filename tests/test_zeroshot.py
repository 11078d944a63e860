"""Zero-shot learning: ESZSL recognises classes it never saw from their descriptions."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import errors
from transferkit.parameter import ESZSL


def _classes(n_classes=12, n_attributes=5, d=20, per_class=60, noise=0.5, seed=0):
    """Inputs generated from class attribute vectors through one hidden linear map."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_classes, n_attributes))
    W = rng.normal(size=(n_attributes, d))
    y = np.repeat(np.arange(n_classes), per_class)
    X = A[y] @ W + noise * rng.normal(size=(len(y), d)) + 3.0  # an offset fit must centre
    return X, y, A


def test_unseen_classes_are_recognised_from_their_descriptions_only():
    X, y, A = _classes()
    seen, unseen = y < 9, y >= 9
    m = ESZSL(gamma=1.0, lambda_=1.0).fit(X[seen], y[seen], attributes=A[:9])
    acc = np.mean(m.predict(X[unseen], attributes=A[9:], classes=[9, 10, 11]) == y[unseen])
    assert acc >= 0.95, acc  # chance: 1/3
    # the descriptions carry the transfer: with the unseen classes' rows permuted the
    # same model is wrong on most rows
    wrong = np.mean(m.predict(X[unseen], attributes=A[[10, 11, 9]], classes=[9, 10, 11])
                    == y[unseen])
    assert wrong <= 0.2, wrong
    # seen classes keep working, and a dict names the classes
    assert m.score(X[seen], y[seen]) >= 0.95
    as_dict = m.predict(X[unseen], attributes={c: A[c] for c in (9, 10, 11)})
    assert np.mean(as_dict == y[unseen]) == acc


def test_too_few_seen_classes_to_span_the_descriptions_are_warned_about():
    X, y, A = _classes(n_classes=10, n_attributes=8)
    with pytest.warns(UserWarning, match="span 7 of the 8"):
        ESZSL().fit(X[y < 7], y[y < 7], attributes=A[:7])


@pytest.mark.parametrize("per_class", [60, 1])  # more rows than features (20), and fewer
def test_the_closed_form_solves_the_papers_normal_equations(per_class):
    X, y, A = _classes(per_class=per_class)
    m = ESZSL(gamma=0.7, lambda_=2.0).fit(X, y, attributes=A)
    Xc = (X - X.mean(0)).T
    Y = -np.ones((len(y), 12))
    Y[np.arange(len(y)), y] = 1.0
    S = A.T
    lhs = (Xc @ Xc.T + 0.7 * np.eye(Xc.shape[0])) @ m.V_ @ (S @ S.T + 2.0 * np.eye(5))
    np.testing.assert_allclose(lhs, Xc @ Y @ S.T, atol=1e-8 * np.abs(Xc @ Y @ S.T).max())


def test_a_fitted_model_saves_and_loads(tmp_path):
    import transferkit as tk

    X, y, A = _classes()
    m = ESZSL().fit(X, y, attributes=A)
    tk.io.save(m, tmp_path / "z")
    np.testing.assert_array_equal(tk.load(tmp_path / "z").predict(X), m.predict(X))


def test_bad_descriptions_get_clear_errors():
    X, y, A = _classes()
    with pytest.raises(errors.InputError, match="attributes"):
        ESZSL().fit(X, y)
    with pytest.raises(errors.InputError, match="one row per class"):
        ESZSL().fit(X, y, attributes=A[:3])
    with pytest.raises(errors.InputError, match="two seen classes"):
        ESZSL().fit(X[y == 0], y[y == 0], attributes=A[:1])
    with pytest.raises(errors.ParameterError, match="gamma"):
        ESZSL(gamma=0).fit(X, y, attributes=A)
    m = ESZSL().fit(X, y, attributes=A)
    with pytest.raises(errors.InputError, match="attributes"):
        m.predict(X, attributes=A[:, :3])
    with pytest.raises(errors.NotFittedError):
        ESZSL().predict(X)


def test_descriptions_and_parameters_are_checked():
    X, y, A = _classes()
    m = ESZSL().fit(X, y, attributes=A)
    with pytest.raises(errors.InputError, match="names its classes"):
        m.predict(X, attributes={0: A[0], 1: A[1]}, classes=[0, 1])
    with pytest.raises(errors.ParameterError, match="number"):
        ESZSL(gamma="a").fit(X, y, attributes=A)
