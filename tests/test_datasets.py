import numpy as np
import pytest

import transferkit as tk
from transferkit.datasets import make_covariate_shift, make_digits_shift, make_two_moons_shift


def test_two_moons_matches_the_seed_tables():
    # Values printed in the seed tutorial (first rows of the source and target tables).
    Xs, ys, Xt, yt = make_two_moons_shift()
    np.testing.assert_allclose(Xs[:2], [[-0.574753, 0.993981], [1.246100, -0.207939]], atol=1e-6)
    np.testing.assert_allclose(Xt[:2], [[-0.994741, 0.573436], [1.183124, 0.442970]], atol=1e-6)
    assert list(ys[:5]) == [0, 1, 0, 1, 1]
    np.testing.assert_array_equal(ys, yt)
    assert Xs.shape == Xt.shape == (100, 2)


def test_two_moons_rotation_preserves_norms():
    Xs, _, Xt, _ = make_two_moons_shift(rotation=75, random_state=3)
    np.testing.assert_allclose(np.linalg.norm(Xs, axis=1), np.linalg.norm(Xt, axis=1))


@pytest.mark.parametrize("d", [2, 10])
def test_covariate_shift_ratio_is_the_true_density_ratio(d):
    Xs, ys, Xt, yt, ratio = make_covariate_shift(n_source=200_000, n_target=200_000,
                                                 n_features=d, return_ratio=True)
    r = ratio(Xs)
    # Importance sampling identities: E_s[r] = 1 and E_s[r f] = E_t[f].
    assert abs(r.mean() - 1) < 0.05
    f = lambda X: np.tanh(X[:, 0])  # noqa: E731
    assert abs((r * f(Xs)).mean() - f(Xt).mean()) < 0.02
    assert set(np.unique(ys)) == {0, 1}


def test_covariate_shift_regression_and_determinism():
    a = make_covariate_shift(n_source=50, n_target=40, task="regression", random_state=1)
    b = make_covariate_shift(n_source=50, n_target=40, task="regression", random_state=1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert a[0].shape == (50, 2) and a[2].shape == (40, 2) and a[1].dtype.kind == "f"


@pytest.mark.parametrize("shift", ["rotation", "noise", "inversion"])
def test_digits_shift(shift):
    Xs, ys, Xt, yt = make_digits_shift(shift=shift)
    assert Xs.shape[1] == Xt.shape[1] == 64
    assert len(Xs) + len(Xt) == 1797
    assert Xt.min() >= 0 and Xt.max() <= 16
    assert set(ys) == set(range(10))
    if shift == "inversion":
        assert Xt.mean() > Xs.mean()  # mostly-dark images become mostly-bright


def test_keep_labels_keeps_a_few_per_class_and_hides_the_rest():
    y = np.array([0] * 30 + [1] * 20 + [2] * 10)
    few = tk.datasets.keep_labels(y, 3, random_state=0)
    kept = ~np.isnan(few)
    assert kept.sum() == 9 and np.array_equal(few[kept], y[kept])
    assert np.bincount(y[kept]).tolist() == [3, 3, 3]
    np.testing.assert_array_equal(few, tk.datasets.keep_labels(y, 3, random_state=0))
    words = tk.datasets.keep_labels(np.array(["a", "b"] * 5), 2, random_state=1)
    assert sum(v is not None for v in words) == 4 and words.dtype == object
    with pytest.raises(tk.errors.InputError, match="between 1 and 10"):
        tk.datasets.keep_labels(y, 11)


def test_keep_labels_wants_every_label():
    with pytest.raises(tk.errors.InputError, match="every label present"):
        tk.datasets.keep_labels(np.array([0.0, 1.0, np.nan, 1.0]), 1)
