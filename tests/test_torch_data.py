"""Deep methods on torch Datasets and DataLoaders (the contract: data need not fit in
memory): one streaming pass for the statistics, then minibatches from the loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import transferkit as tk
from transferkit import errors
from transferkit.feature import DANN, DeepCORAL
from transferkit.feature.presets import adapt_two_moons_settings
from transferkit.heterogeneous import HeDANN
from transferkit.nn import Trainer
from transferkit.nn.streams import LoaderDomain


def _ds(*arrays) -> TensorDataset:
    return TensorDataset(*(torch.as_tensor(a) for a in arrays))


class Rows(Dataset):
    """A map-style Dataset that builds each row when asked (nothing stacked up front)."""

    def __init__(self, X, y=None):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        x = torch.tensor(self.X[i], dtype=torch.float32)
        return x if self.y is None else (x, torch.tensor(self.y[i]))


def test_dann_on_datasets_adapts_and_predicts_like_on_arrays():
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    params = {**adapt_two_moons_settings("DANN"), "epochs": 400}

    def fit(seed, **kw):
        return DANN(**{**params, **kw}, random_state=seed).fit(Rows(Xs, ys), None, Rows(Xt))

    on = np.mean([fit(s).score(Xt, yt) for s in (0, 1)])  # 0.93 (0.98, 0.88)
    off = np.mean([fit(s, lambda_=0.0).score(Xt, yt) for s in (0, 1)])  # 0.83
    assert on >= 0.9 and on >= off + 0.05, (on, off)
    m = DANN(**{**params, "epochs": 50}, random_state=0).fit(Rows(Xs, ys), None, Rows(Xt))
    assert list(m.classes_) == [0, 1]
    loader = DataLoader(_ds(Xt), batch_size=7)  # unshuffled, odd batch size
    np.testing.assert_array_equal(m.predict(loader), m.predict(Xt))
    np.testing.assert_allclose(m.predict_proba(_ds(Xt)), m.predict_proba(Xt))
    np.testing.assert_allclose(m.transform(loader), m.transform(Xt))
    assert m.score(_ds(Xt, yt)) == m.score(Xt, yt)
    assert len(m.history_["domain"]) == 50


def test_streamed_statistics_equal_the_array_ones():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(300, 200, n_features=4, task="regression",
                                                      random_state=0)
    Xs[:, 3] = 5.0  # a constant column keeps scale 1
    Xt[:, 3] = 5.0
    a = DANN(epochs=1, random_state=0).fit(Xs, ys, Xt)
    b = DANN(epochs=1, random_state=0).fit(DataLoader(_ds(Xs, ys), batch_size=64), None,
                                           _ds(Xt))
    assert b.task_ == "regression" and b.n_features_in_ == 4
    np.testing.assert_allclose(b.x_mean_, a.x_mean_, rtol=1e-10)
    np.testing.assert_allclose(b.x_scale_, a.x_scale_, rtol=1e-8)
    assert b.x_scale_[3] == 1.0
    assert b.y_mean_ == pytest.approx(a.y_mean_) and b.y_scale_ == pytest.approx(a.y_scale_)


def test_labelled_target_items_join_the_loss_and_a_small_domain_cycles():
    Xs, ys, Xt, yt = tk.datasets.make_digits_shift(shift="rotation", angle=20, random_state=0)
    Xs, Xt = Xs / 16.0, Xt / 16.0
    partial = np.full(len(yt), -1)
    partial[:40] = yt[:40]  # -1 marks an unlabelled target row
    source = DataLoader(_ds(Xs, ys), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))

    def fit(target):
        return DeepCORAL(epochs=3, random_state=0).fit(source, None, target)

    with_labels, without = fit(_ds(Xt, partial)), fit(_ds(Xt))
    assert list(with_labels.classes_) == list(range(10))
    assert not np.allclose(with_labels.predict_proba(Xt), without.predict_proba(Xt))
    tiny = fit(_ds(Xt[:20]))  # one target batch against the source's 15: it cycles
    assert len(tiny.history_["loss"]) == 3


def test_hedann_on_datasets_with_different_columns():
    Xs, ys, Xt, yt = tk.datasets.make_heterogeneous_moons()
    few = np.full(len(yt), np.nan)
    few[:10] = yt[:10]
    m = HeDANN(epochs=5, random_state=0).fit(_ds(Xs, ys), None, _ds(Xt, few))
    assert m.n_features_in_ == 3 and m.n_source_features_ == 2
    assert m.transform(_ds(Xs), domain="source").shape == (100, 64)
    with pytest.raises(errors.MissingTargetLabelsError):
        HeDANN(epochs=1).fit(_ds(Xs, ys), None, _ds(Xt))


class Stream(IterableDataset):
    def __iter__(self):
        yield torch.zeros(2), torch.tensor(0)


@pytest.mark.parametrize("source,ys,target,error,needle", [
    (_ds(np.zeros((4, 2))), None, _ds(np.zeros((4, 2))), errors.InputError, "must be"),
    (_ds(np.zeros((4, 2)), np.arange(4)), np.arange(4), _ds(np.zeros((4, 2))),
     errors.InputError, "ys=None"),
    (_ds(np.zeros((4, 2)), np.arange(4)), None, np.zeros((4, 2)), errors.InputError, "both"),
    (Stream(), None, _ds(np.zeros((4, 2))), errors.InputError, "IterableDataset"),
    (_ds(np.full((4, 2), np.nan), np.arange(4) % 2), None, _ds(np.zeros((4, 2))),
     errors.InputError, "NaN"),
    (_ds(np.zeros((4, 2)), np.zeros(4, dtype=int)), None, _ds(np.zeros((4, 2))),
     errors.SingleClassError, "single class"),
    (_ds(np.zeros((4, 2)), np.arange(4) % 2), None, _ds(np.zeros((4, 3))),
     errors.FeatureMismatchError, "features"),
    (_ds(np.zeros((4, 2)), np.array([0, 1, np.nan, 1])), None, _ds(np.zeros((4, 2))),
     errors.InputError, "without a label"),
])
def test_bad_torch_data_gets_a_clear_error(source, ys, target, error, needle):
    with pytest.raises(error, match=needle):
        DANN(epochs=1, random_state=0).fit(source, ys, target)


def test_the_trainer_mixes_tensor_and_loader_domains():
    """A task sees a LoaderDomain's batches as it sees tensor batches."""
    seen = []

    class Task:
        module = torch.nn.Linear(2, 1)

        def loss(self, batch, progress):
            seen.append((len(batch["a"][0]), len(batch["b"][0])))
            return {"loss": self.module(batch["a"][0]).mean() + self.module(batch["b"][0]).mean()}

    loader = DataLoader(_ds(np.ones((10, 2), dtype=np.float32)), batch_size=4)
    domain = LoaderDomain(loader, lambda batch, device: (batch[0].to(device),))
    Trainer(epochs=2, batch_size=3, random_state=0).fit(
        Task(), {"a": (torch.zeros(5, 2),), "b": domain})
    # 3 loader batches (4, 4, 2) set the epoch; the 5 tensor rows cycle in batches of 3
    assert seen == [(3, 4), (3, 4), (3, 2)] * 2


_DEEP = [m for m in tk.methods() if issubclass(m.cls, tk.nn.adaptation.DeepAdaptation)
         and not m.cls._heterogeneous]


@pytest.mark.parametrize("info", _DEEP, ids=lambda m: m.name)
def test_every_deep_adaptation_method_takes_datasets(info):
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(80, 60, random_state=0)
    m = info.create(epochs=2, random_state=0).fit(_ds(Xs, ys), None, _ds(Xt))
    assert m.predict(_ds(Xt)).shape == (60,)
    assert 0.0 <= m.score(_ds(Xt, yt)) <= 1.0


def test_negative_classes_and_the_unlabelled_marker_are_told_apart():
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    signed = np.where(ys == 1, 1, -1)  # classes -1 and 1 in the source
    arrays = DANN(epochs=30, random_state=0).fit(Xs, signed, Xt)
    stream = DANN(epochs=30, random_state=0).fit(_ds(Xs, signed), None, _ds(Xt))
    assert list(stream.classes_) == [-1, 1]
    assert stream.score(Xs, signed) >= arrays.score(Xs, signed) - 0.05 >= 0.8
    # a float -1.0 in the target marks an unlabelled row when -1 is no source class
    partial = np.full(len(yt), -1.0)
    partial[:6] = yt[:6]
    m = DANN(epochs=2, random_state=0).fit(_ds(Xs, ys), None, _ds(Xt, partial))
    assert list(m.classes_) == [0, 1] and m.predict_proba(Xt).shape == (100, 2)
    # score reads the labelled items only, as fit does
    assert m.score(_ds(Xt, partial)) == m.score(Xt[:6], yt[:6])
    # a target -1 that is a source class is a label
    m = DANN(epochs=2, random_state=0).fit(_ds(Xs, signed), None,
                                         _ds(Xt, np.where(yt == 1, 1, -1)))
    assert m.score(_ds(Xt, np.where(yt == 1, 1, -1))) == m.score(Xt, np.where(yt == 1, 1, -1))


def test_a_run_resumed_on_datasets_ends_like_an_uninterrupted_one(tmp_path):
    Xs, ys, Xt, _ = tk.datasets.make_two_moons_shift()

    def fit(epochs, **trainer):
        # a constant λ: the loss does not depend on the planned number of epochs, so a
        # 3-epoch run is the 6-epoch one interrupted after epoch 3
        return DANN(epochs=epochs, batch_size=16, schedule="constant", random_state=0,
                    trainer_params={"checkpoint_dir": str(tmp_path), "checkpoint_every": 3,
                                    **trainer}).fit(_ds(Xs, ys), None, _ds(Xt))

    whole = DANN(epochs=6, batch_size=16, schedule="constant", random_state=0).fit(
        _ds(Xs, ys), None, _ds(Xt))
    fit(3)  # leaves a checkpoint after epoch 3
    resumed = fit(6, resume=True)
    np.testing.assert_allclose(resumed.predict_proba(Xt), whole.predict_proba(Xt), atol=1e-6)


def test_methods_without_torch_data_support_say_so():
    Xs, ys, Xt, _ = tk.datasets.make_two_moons_shift()
    with pytest.raises(errors.InputError, match="deep adaptation methods"):
        tk.make("KMM").fit(_ds(Xs, ys), None, _ds(Xt))


def test_regression_with_a_large_offset_keeps_its_precision():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(300, 200, task="regression",
                                                      random_state=0)
    ys, yt = 1e7 + 0.01 * ys, 1e7 + 0.01 * yt
    arrays = DeepCORAL(epochs=20, random_state=0).fit(Xs, ys, Xt)
    stream = DeepCORAL(epochs=20, random_state=0).fit(DataLoader(_ds(Xs, ys), batch_size=32),
                                                      None, _ds(Xt))
    assert stream.y_scale_ == pytest.approx(arrays.y_scale_, rel=1e-6)
    assert arrays.score(Xt, yt) > 0.5 and stream.score(Xt, yt) > 0.5
