"""FineTune: each strategy does what it says to the backbone, and transfer helps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import transferkit as tk
from transferkit.parameter import FineTune
from transferkit.parameter.finetune import split_blocks

FAST = {"hidden_layer_sizes": (16, 16), "epochs": 60, "batch_size": 32}


@pytest.fixture(scope="module")
def moons():
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    few = np.full(len(yt), np.nan)
    idx = np.random.default_rng(0).choice(len(yt), 10, replace=False)
    few[idx] = yt[idx]
    return Xs, ys, Xt, yt, few


def _source_model(moons, **kw):
    """A FineTune with source training only (0 target epochs): the starting point."""
    Xs, ys, Xt, _, few = moons
    return FineTune(**{**FAST, "epochs": 0, **kw}, source_epochs=60, random_state=0).fit(
        Xs, ys, Xt, few)


def _params(m):
    return [p.detach().clone() for p in m.backbone_.parameters()]


def test_feature_extraction_keeps_the_backbone_and_full_changes_it(moons):
    Xs, ys, Xt, _, few = moons
    start = _params(_source_model(moons))
    frozen = FineTune(**FAST, strategy="feature_extraction", source_epochs=60,
                      random_state=0).fit(Xs, ys, Xt, few)
    full = FineTune(**FAST, strategy="full", source_epochs=60, random_state=0).fit(
        Xs, ys, Xt, few)
    assert all(torch.equal(a, b) for a, b in zip(start, _params(frozen)))
    assert not all(torch.equal(a, b) for a, b in zip(start, _params(full)))


def test_partial_freezes_exactly_the_first_blocks(moons):
    Xs, ys, Xt, _, few = moons
    start = _source_model(moons).backbone_
    m = FineTune(**FAST, strategy="partial", n_frozen=1, source_epochs=60,
                 random_state=0).fit(Xs, ys, Xt, few)
    for a, b in zip(start[0].parameters(), m.backbone_[0].parameters()):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(start[1].parameters(),
                                                       m.backbone_[1].parameters()))


def test_partial_with_gradual_unfreezing_keeps_the_frozen_blocks(moons):
    """Partial + gradual unfreezing trains on the frozen blocks' outputs computed once: the
    frozen block stays put, the top block moves, and the result differs from opening the
    top block from the start (the schedule is live)."""
    Xs, ys, Xt, _, few = moons
    start = _source_model(moons).backbone_
    kw = {**FAST, "strategy": "partial", "n_frozen": 1, "source_epochs": 60, "random_state": 0}
    gradual = FineTune(**kw, gradual_unfreezing=True).fit(Xs, ys, Xt, few)
    at_once = FineTune(**kw).fit(Xs, ys, Xt, few)
    for a, b in zip(start[0].parameters(), gradual.backbone_[0].parameters()):
        assert torch.equal(a, b)
    top = [(a, b, c) for a, b, c in zip(start[1].parameters(), gradual.backbone_[1].parameters(),
                                        at_once.backbone_[1].parameters())]
    assert not all(torch.equal(a, b) for a, b, _ in top)
    assert not all(torch.equal(b, c) for _, b, c in top)


def test_linear_probe_is_feature_extraction_then_fine_tuning_from_its_head(moons):
    """LP-FT: the probe stage is exactly feature extraction (same head, backbone untouched);
    fine-tuning then starts from that head (its first epoch's loss is where the probe
    ended, far below a run from a fresh head), and the backbone still learns."""
    Xs, ys, Xt, _, few = moons
    kw = {**FAST, "source_epochs": 60, "random_state": 0}
    start = _params(_source_model(moons))
    fe = FineTune(**{**kw, "epochs": 30}, strategy="feature_extraction").fit(Xs, ys, Xt, few)
    probe_only = FineTune(**{**kw, "epochs": 0}, linear_probe_epochs=30).fit(Xs, ys, Xt, few)
    # its own rate: ten times the fine-tuning rate gets the probe further in as many epochs
    # (measured: 0.470 vs 0.632)
    fast = FineTune(**{**kw, "epochs": 0}, linear_probe_epochs=30, linear_probe_lr=1e-2).fit(
        Xs, ys, Xt, few)
    assert fast.probe_history_["loss"][-1] < probe_only.probe_history_["loss"][-1] - 0.05
    for a, b in zip(fe.head_.parameters(), probe_only.head_.parameters()):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(start, _params(probe_only)))
    assert len(probe_only.probe_history_["loss"]) == 30

    lpft = FineTune(**kw, linear_probe_epochs=300).fit(Xs, ys, Xt, few)
    ft = FineTune(**kw).fit(Xs, ys, Xt, few)
    # measured: probe ends at 0.464, LP-FT starts at 0.464, plain fine-tuning at 0.673
    assert abs(lpft.history_["task"][0] - lpft.probe_history_["loss"][-1]) < 0.01
    assert lpft.history_["task"][0] < ft.history_["task"][0] - 0.1
    assert not all(torch.equal(a, b) for a, b in zip(start, _params(lpft)))


def test_freeze_batchnorm_keeps_the_running_statistics_and_learns_the_rest(moons):
    """With freeze_batchnorm the batch-norm layers normalise with their pretrained running
    statistics and keep them, while weights (BN scale and shift included) still learn;
    without it fine-tuning on the target overwrites the statistics."""
    Xs, ys, Xt, _, few = moons
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU()),
                             nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU()))
    with torch.no_grad():  # "pretrained" statistics, far from the target batches' own
        for m in backbone.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.fill_(0.3)
                m.running_var.fill_(2.0)
    kw = {**FAST, "backbone": backbone, "strategy": "full", "random_state": 0}

    def stats(m):
        return [t.clone() for b in m.backbone_.modules() if isinstance(b, nn.BatchNorm1d)
                for t in (b.running_mean, b.running_var)]

    frozen = FineTune(**kw, freeze_batchnorm=True).fit(Xs, ys, Xt, few)
    free = FineTune(**kw).fit(Xs, ys, Xt, few)
    assert all(torch.equal(t, torch.full_like(t, v)) for t, v in zip(stats(frozen), [.3, 2.] * 2))
    assert not any(torch.equal(t, torch.full_like(t, v)) for t, v in zip(stats(free), [.3, 2.] * 2))
    start = [p.detach() for p in backbone.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(start, _params(frozen)))


def test_l2_sp_keeps_weights_closer_to_the_start(moons):
    Xs, ys, Xt, _, few = moons
    start = _params(_source_model(moons))

    def drift(m):
        return sum(float(((a - b) ** 2).sum()) for a, b in zip(start, _params(m)))

    free = FineTune(**FAST, source_epochs=60, random_state=0).fit(Xs, ys, Xt, few)
    tied = FineTune(**FAST, source_epochs=60, l2_sp=10.0, random_state=0).fit(Xs, ys, Xt, few)
    assert "l2_sp" in tied.history_
    assert drift(tied) < 0.5 * drift(free)


def test_discriminative_rates_move_lower_blocks_less(moons):
    Xs, ys, Xt, _, few = moons
    start = _source_model(moons).backbone_

    def moved(m, i):
        return sum(float((a - b).abs().sum().detach()) for a, b in
                   zip(start[i].parameters(), m.backbone_[i].parameters()))

    flat = FineTune(**FAST, source_epochs=60, random_state=0).fit(Xs, ys, Xt, few)
    decayed = FineTune(**FAST, source_epochs=60, layer_lr_decay=10.0, random_state=0).fit(
        Xs, ys, Xt, few)
    assert moved(decayed, 0) < 0.3 * moved(flat, 0)


def test_gradual_unfreezing_schedule():
    blocks = [nn.Linear(2, 2) for _ in range(3)]
    m = FineTune(gradual_unfreezing=True)
    from transferkit.nn.adaptation import SupervisedLoss
    from transferkit.parameter.finetune import _Backbone, _FineTuneTask

    task = _FineTuneTask(_Backbone(blocks), nn.Linear(2, 1), SupervisedLoss("binary"), 0,
                         m.gradual_unfreezing, 0.0, 0.0, 1e-3, None, False)
    # head alone, then the top block, the top two, all three
    assert [task.unfrozen_from(p) for p in (0.0, 0.3, 0.55, 0.8)] == [3, 2, 1, 0]


def test_fine_tuning_beats_training_on_the_few_target_labels_alone():
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    tuned, scratch = [], []
    for seed in range(5):  # 10 labelled target rows, drawn per seed
        few = np.full(len(yt), np.nan)
        idx = np.random.default_rng(seed).choice(len(yt), 10, replace=False)
        few[idx] = yt[idx]
        tuned.append(FineTune(**FAST, source_epochs=100, random_state=seed).fit(
            Xs, ys, Xt, few).score(Xt, yt))
        # The same network trained on the labelled target rows only.
        scratch.append(tk.nn.MLPClassifier(hidden_layer_sizes=(16, 16), epochs=60,
                                           random_state=seed).fit(
            Xt[idx], yt[idx].astype(int)).score(Xt, yt))
    # measured: 0.814 vs 0.744
    assert np.mean(tuned) > np.mean(scratch) + 0.04


def test_forgetting_is_reported_with_a_source_validation_set(moons):
    Xs, ys, Xt, _, few = moons
    m = FineTune(**FAST, source_epochs=60, random_state=0).fit(
        Xs, ys, Xt, few, source_validation=(Xs, ys))
    assert 0.5 < m.source_score_before_ <= 1
    assert m.forgetting_ == pytest.approx(m.source_score_before_ - m.source_score_after_)
    frozen = FineTune(**FAST, strategy="feature_extraction", source_epochs=60,
                      random_state=0).fit(Xs, ys, Xt, few, source_validation=(Xs, ys))
    assert frozen.forgetting_ == 0


def test_pretrained_module_backbone_is_not_reinitialised(moons):
    Xs, ys, Xt, _, few = moons
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
    m = FineTune(backbone=backbone, strategy="feature_extraction", epochs=5,
                 random_state=0).fit(Xs, ys, Xt, few)
    assert m.source_history_ == {}  # a given backbone is already trained
    for a, b in zip(backbone.parameters(), m.backbone_.parameters()):
        assert torch.equal(a, b)
    assert len(split_blocks(backbone)) == 4


def test_regression_and_early_stopping():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(n_source=150, n_target=150,
                                                      task="regression", random_state=0)
    few = np.full(len(yt), np.nan)
    few[:40] = yt[:40]
    m = FineTune(**{**FAST, "epochs": 300}, lr=1e-2, early_stopping=5, random_state=0).fit(
        Xs, ys, Xt, few)
    assert "val_loss" in m.history_ and len(m.history_["loss"]) < 300  # measured: 22
    assert m.score(Xt, yt) > 0.3


def test_lr_schedule_is_the_trainers_schedule(moons):
    """``lr_schedule`` reaches every Trainer the fit builds (the Trainer's tests check the
    rates it sets): the same weights as passing it in ``trainer_params``, others than
    constant rates."""
    Xs, ys, Xt, _, few = moons
    kw = {**FAST, "strategy": "partial", "n_frozen": 1, "layer_lr_decay": 2.6,
          "random_state": 0}
    cos = FineTune(**kw, lr_schedule="cosine").fit(Xs, ys, Xt, few)
    via = FineTune(**kw, trainer_params={"lr_schedule": "cosine"}).fit(Xs, ys, Xt, few)
    const = FineTune(**kw).fit(Xs, ys, Xt, few)
    assert all(torch.equal(a, b) for a, b in zip(_params(cos), _params(via)))
    assert not all(torch.equal(a, b) for a, b in zip(_params(cos), _params(const)))
    assert not torch.equal(cos.head_.weight, const.head_.weight)


@pytest.mark.parametrize("params", [{"strategy": "lora"}, {"layer_lr_decay": 0.5},
                                    {"l2_sp": -1.0}, {"validation_fraction": 1.5},
                                    {"linear_probe_epochs": -1}, {"linear_probe_lr": 0.0},
                                    {"lr_schedule": "step"}, {"trainer_params": {"lr": 0.1}},
                                    {"lr_schedule": "cosine",
                                     "trainer_params": {"lr_schedule": "linear"}},
                                    {"strategy": "feature_extraction",
                                     "linear_probe_epochs": 5}])
def test_bad_parameters_raise(moons, params):
    Xs, ys, Xt, _, few = moons
    with pytest.raises(tk.errors.ParameterError):
        FineTune(**FAST, **params).fit(Xs, ys, Xt, few)


def test_needs_target_labels(moons):
    Xs, ys, Xt, _, _ = moons
    with pytest.raises(ValueError, match="label"):
        FineTune(**FAST).fit(Xs, ys, Xt)
