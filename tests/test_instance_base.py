import numpy as np
import pytest

from transferkit.errors import InputError
from transferkit.instance import BaseReweighting


class _Constant(BaseReweighting):
    def __init__(self, value=0.0, estimator=None, random_state=None):
        self.value = value
        self.estimator = estimator
        self.random_state = random_state

    def _fit_weights(self, Xs, Xt):
        return np.full(len(Xs), self.value)

    def _predict_weights(self, X):
        return np.full(len(X), self.value)


def test_all_zero_weights_are_refused_not_passed_on():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(InputError, match="zero"):
        _Constant(0.0).fit_weights(X, X)


def test_weights_are_normalised_to_mean_one_and_labelled_target_joins_training():
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(30, 2)), rng.normal(size=(10, 2))
    ys = (Xs[:, 0] > 0).astype(int)
    yt = np.full(10, np.nan)
    yt[:4] = [0, 1, 0, 1]
    m = _Constant(3.0).fit(Xs, ys, Xt, yt)
    np.testing.assert_allclose(m.weights_, 1.0)
    np.testing.assert_allclose(m.predict_weights(Xt), 1.0)
    assert m.estimator_.n_features_in_ == 2
