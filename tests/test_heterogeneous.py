"""Heterogeneous transfer: HeDANN on the seed's 2-D -> 3-D Two Moons problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import transferkit as tk
from transferkit import errors
from transferkit.diagnostics import proxy_a_distance
from transferkit.feature.presets import adapt_two_moons_settings
from transferkit.heterogeneous import HeDANN


def _few(yt: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    return tk.datasets.keep_labels(yt, k // 2, random_state=seed)


def test_heterogeneous_moons_is_the_seed_problem():
    Xs, ys, Xt, yt = tk.datasets.make_heterogeneous_moons(rotation=30)
    assert Xs.shape == (100, 2) and Xt.shape == (100, 3)
    np.testing.assert_array_equal(ys, yt)
    # undoing the 30° turn in the XZ plane gives back the source points with z = 0
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    back = np.column_stack([Xt[:, 0] * c + Xt[:, 2] * s, Xt[:, 1], -Xt[:, 0] * s + Xt[:, 2] * c])
    np.testing.assert_allclose(back, np.column_stack([Xs, np.zeros(len(Xs))]), atol=1e-12)


def test_hedann_reaches_the_seed_accuracy_and_aligns_the_domains():
    """The seed reports 1.0; with 10 labelled target rows HeDANN reaches 0.974 ± 0.027
    over seeds 0-4 (benchmarks/bench_heterogeneous.py). Without the adversarial term the
    same networks and labels reach 0.86 and the encoded domains stay separable."""
    Xs, ys, Xt, yt = tk.datasets.make_heterogeneous_moons()
    few = _few(yt)

    def fit(lam):
        params = {**adapt_two_moons_settings("HeDANN"), "lambda_": lam}
        return HeDANN(**params, random_state=0).fit(Xs, ys, Xt, few)

    on, off = fit(1.0), fit(0.0)
    assert on.score(Xt, yt) >= 0.95
    assert on.score(Xt, yt) >= off.score(Xt, yt) + 0.05
    pad = [proxy_a_distance(m.transform(Xs, domain="source"), m.transform(Xt))
           for m in (on, off)]
    assert pad[0] < 0.5 < 1.0 < pad[1], pad


def test_hedann_needs_target_labels_and_matching_encoder_widths():
    Xs, ys, Xt, yt = tk.datasets.make_heterogeneous_moons()
    with pytest.raises(errors.MissingTargetLabelsError):
        HeDANN(epochs=1).fit(Xs, ys, Xt)
    m = HeDANN(source_encoder=torch.nn.Linear(2, 8), hidden_layer_sizes=(16,), epochs=1)
    with pytest.raises(errors.ParameterError, match="same output width"):
        m.fit(Xs, ys, Xt, _few(yt))
    with pytest.raises(errors.ParameterError, match="domain"):
        HeDANN(epochs=1, random_state=0).fit(Xs, ys, Xt, _few(yt)).transform(Xt, "both")


def test_hedann_takes_each_domain_in_its_own_columns(tmp_path):
    Xs, ys, Xt, yt = tk.datasets.make_heterogeneous_moons()
    m = HeDANN(epochs=2, random_state=0).fit(Xs, ys, Xt, _few(yt))
    assert m.n_features_in_ == 3 and m.n_source_features_ == 2
    assert m.transform(Xs, domain="source").shape == m.transform(Xt).shape == (100, 64)
    with pytest.raises(errors.FeatureMismatchError):
        m.predict(Xs)  # predict takes target rows
    with pytest.raises(errors.FeatureMismatchError):
        m.transform(Xt, domain="source")
    m.save(tmp_path / "m")
    loaded = tk.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(Xt), m.predict_proba(Xt))
    np.testing.assert_allclose(loaded.transform(Xs, domain="source"),
                               m.transform(Xs, domain="source"), rtol=1e-6)


def test_homogeneous_methods_point_to_the_heterogeneous_family():
    Xs, ys, Xt, _ = tk.datasets.make_heterogeneous_moons()
    with pytest.raises(errors.FeatureMismatchError, match="family='heterogeneous'"):
        tk.feature.DANN(epochs=1).fit(Xs, ys, Xt)
    assert tk.methods(family="heterogeneous").names() == ["HeDANN"]
    assert "HeDANN" not in tk.methods(setting="semi-supervised").names()


def test_run_leaves_heterogeneous_methods_out_and_says_why():
    from transferkit.pipeline import select_methods

    chosen, skipped = select_methods("classification", with_target_labels=True)
    assert "HeDANN" not in [c.name for c in chosen]
    assert "different columns" in skipped["HeDANN"]
