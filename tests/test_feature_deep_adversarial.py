"""ADDA, MCD, MDD and CDAN: the adaptation term is live (changes the encoder, has a
non-zero encoder gradient, lowers a feature divergence), CDAN+E's weights, regression,
labelled target rows, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import transferkit as tk
from transferkit.errors import ParameterError, UnsupportedTaskError
from transferkit.feature.adda import ADDA
from transferkit.feature.cdan import CDAN
from transferkit.feature.mcd import MCD
from transferkit.feature.mdd import MDD
from transferkit.nn.adaptation import SupervisedLoss

METHODS = [ADDA, MCD, MDD, CDAN]
SMALL = {"hidden_layer_sizes": (16,), "batch_size": 32}


def _make(cls, **params):
    p = dict(SMALL, random_state=0)
    if "discriminator_hidden" in cls().get_params():
        p["discriminator_hidden"] = (16,)
    p.update(params)
    return cls(**p)


def _features(m, Xs, Xt):
    """Learned features of each domain (ADDA maps the source with its source encoder)."""
    if isinstance(m, ADDA):
        return m.transform(Xs, domain="source"), m.transform(Xt)
    return m.transform(Xs), m.transform(Xt)


def _mmd(zs, zt):
    """Biased Gaussian-kernel MMD² with the median bandwidth of the pooled features,
    measured on features rescaled to unit total variance (shrinking them cannot game it)."""
    z = np.vstack([zs, zt])
    z = (z - z.mean(0)) / (np.sqrt(((z - z.mean(0)) ** 2).sum(1).mean()) + 1e-12)
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    k = np.exp(-sq / np.median(sq[sq > 0]))
    n = len(zs)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


# --------------------------------------------------------------------------- (a)
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_adaptation_term_changes_the_encoder(cls):
    Xs, ys, Xt, _ = tk.datasets.make_two_moons_shift(n_samples=64)
    on = _make(cls, epochs=6).fit(Xs, ys, Xt)
    off = _make(cls, epochs=6, lambda_=0.0).fit(Xs, ys, Xt)
    w_on = torch.cat([p.reshape(-1) for p in on.networks_["encoder"].parameters()])
    w_off = torch.cat([p.reshape(-1) for p in off.networks_["encoder"].parameters()])
    assert not torch.allclose(w_on, w_off)
    # and the weight-0 model is exactly reproducible (the difference is the term)
    again = _make(cls, epochs=6, lambda_=0.0).fit(Xs, ys, Xt)
    np.testing.assert_array_equal(off.predict_proba(Xt), again.predict_proba(Xt))


# --------------------------------------------------------------------------- (b)
def _margin_disparity(m, Xs, Xt, steps=300):
    """Empirical MDD of the fitted head on the learned features: the loss a fresh
    adversary (a copy of the head) reaches when trained to agree with the head's decisions
    on the source and disagree on the target; a higher minimum = a smaller discrepancy."""
    zs, zt = (torch.as_tensor(m.transform(X), dtype=torch.float32) for X in (Xs, Xt))
    task = m._make_task(m.networks_, SupervisedLoss("binary"))
    torch.manual_seed(0)
    m.networks_["adversary"].reset_parameters()
    opt = torch.optim.Adam(m.networks_["adversary"].parameters(), lr=1e-2)
    z = torch.cat([zs, zt])
    for _ in range(steps):
        loss = task.adaptation(z, m.networks_["head"](z), len(zs), 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_adaptation_lowers_feature_divergence(cls):
    Xs, ys, Xt, _ = tk.datasets.make_covariate_shift(n_source=200, n_target=200,
                                                      shift=2.0, random_state=0)
    # MCD's encoder only has to defeat its own two heads, so it matches marginals when
    # it is not stronger than them (num_k=1); on Two Moons its MMD even rises.
    params = {"epochs": 150, **({"num_k": 1} if cls is MCD else {})}
    on = _make(cls, **params).fit(Xs, ys, Xt)
    off = _make(cls, lambda_=0.0, **params).fit(Xs, ys, Xt)
    if cls is MDD:
        # MDD does not match marginals (its MMD barely moves); it shrinks its own
        # divergence, the margin disparity discrepancy of the head on the features.
        assert _margin_disparity(on, Xs, Xt) > _margin_disparity(off, Xs, Xt) + 0.1
        return
    mmd_on, mmd_off = (_mmd(*_features(m, Xs, Xt)) for m in (on, off))
    assert mmd_on < (0.95 if cls is MCD else 0.8) * mmd_off, (mmd_on, mmd_off)


# --------------------------------------------------------------------------- (c)
def _built(cls, kind="binary", n_in=3, n_out=1, **params):
    m = _make(cls, **params)
    torch.manual_seed(0)
    nets = m._build(n_in, n_out)
    return nets, m._make_task(nets, SupervisedLoss(kind))


def _batch(n=20, n_in=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs, xt = torch.randn(n, n_in, generator=g), torch.randn(n, n_in, generator=g) + 1.0
    ys = (xs[:, 0] > 0).float()
    return xs, ys, xt


def _adaptation_term(cls, nets, task, xs, xt, coeff=1.0):
    """The term each method trains its (target) encoder with, on one batch."""
    if cls in (ADDA, MCD):  # GAN loss with inverted labels / the heads' discrepancy
        return task.adaptation(nets["encoder"](xt))
    z = nets["encoder"](torch.cat([xs, xt]))  # MDD, CDAN: through gradient reversal
    return task.adaptation(z, nets["head"](z), len(xs), coeff)


def _encoder_grad(nets, name="encoder"):
    grads = [p.grad for p in nets[name].parameters()]
    assert all(g is not None for g in grads)
    return torch.cat([g.reshape(-1) for g in grads])


@pytest.mark.parametrize("kind", ["binary", "regression"])
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_adaptation_term_has_encoder_gradient(cls, kind):
    if kind == "regression" and "regression" not in cls._tasks:
        pytest.skip("classification only")
    xs, _, xt = _batch()
    nets, task = _built(cls, kind)
    _adaptation_term(cls, nets, task, xs, xt).backward()
    grad = _encoder_grad(nets)
    assert grad.abs().max() > 1e-6
    if cls is ADDA:  # the frozen source encoder gets nothing from the GAN loss
        assert all(p.grad is None for p in nets["source_encoder"].parameters())
    if cls in (MDD, CDAN):
        # Through the reversal layer the encoder gets exactly −coeff times the gradient
        # the adversary's objective has: the sign flips with coeff and scales with it.
        for coeff, factor in ((-1.0, -1.0), (2.5, 2.5)):
            nets.zero_grad()
            _adaptation_term(cls, nets, task, xs, xt, coeff).backward()
            torch.testing.assert_close(_encoder_grad(nets), factor * grad)
        adversary = "discriminator" if cls is CDAN else "adversary"
        assert _encoder_grad(nets, adversary).abs().max() > 1e-6


def test_mcd_steps_move_heads_and_encoder_apart():
    """Step B moves only the heads, step C only the encoder (their optimisers)."""
    xs, ys, xt = _batch()
    nets, task = _built(MCD)
    made = []

    def make(params):
        made.append(list(params))
        return torch.optim.SGD(made[-1], lr=0.1)

    opts = task.configure_optimizers(make)
    assert {id(p) for p in made[0]} == {id(p) for p in nets["encoder"].parameters()}
    assert {id(p) for p in made[1]} == {id(p) for p in list(nets["head"].parameters())
                                        + list(nets["head2"].parameters())}
    batch = {"source": (xs, ys), "target": (xt, torch.zeros(len(xt)),
                                            torch.zeros(len(xt), dtype=torch.bool))}
    before = {k: [p.detach().clone() for p in nets[k].parameters()] for k in nets}
    terms = task.training_step(batch, 0.5, opts)
    assert terms["discrepancy"] > 0
    for k in nets:
        assert any(not torch.equal(a, b) for a, b in zip(before[k], nets[k].parameters()))


# --------------------------------------------------------------------------- (d)
def test_cdan_entropy_conditioning_changes_domain_weights():
    xs, _, xt = _batch()
    nets_e, task_e = _built(CDAN, entropy=True)
    nets_p, task_p = _built(CDAN, entropy=False)
    confident = torch.tensor([[0.99, 0.01], [0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    w = task_e.domain_weights(confident, 2)
    w_plain = task_p.domain_weights(confident, 2)
    torch.testing.assert_close(w_plain, torch.ones(4))
    assert w[0] > w[1] and w[2] > w[3]  # confident rows count more, per domain
    torch.testing.assert_close(w[:2].mean(), torch.tensor(1.0))
    torch.testing.assert_close(w[2:].mean(), torch.tensor(1.0))
    # with the same networks and batch, the conditioned domain loss differs (a sharp
    # head, so that the rows' prediction entropies differ)
    with torch.no_grad():
        nets_e["head"].weight.mul_(20.0)
    nets_p.load_state_dict(nets_e.state_dict())
    l_e = _adaptation_term(CDAN, nets_e, task_e, xs, xt)
    l_p = _adaptation_term(CDAN, nets_p, task_p, xs, xt)
    assert not torch.isclose(l_e, l_p)


def test_cdan_randomized_multilinear_map():
    nets, task = _built(CDAN, n_out=3, kind="multiclass", multilinear="randomized",
                        random_dim=32)
    assert nets["discriminator"][0].in_features == 32
    assert not nets["random_features"].weight.requires_grad
    xs, _, xt = _batch()
    _adaptation_term(CDAN, nets, task, xs, xt).backward()
    assert _encoder_grad(nets).abs().max() > 0
    # "auto" keeps the full map for small d·K and randomizes wide features
    full, _ = _built(CDAN, n_out=3, kind="multiclass")
    assert full["discriminator"][0].in_features == 16 * 3 and "random_features" not in full
    wide, _ = _built(CDAN, n_out=3, kind="multiclass", hidden_layer_sizes=(1400,),
                     random_dim=64)
    assert wide["discriminator"][0].in_features == 64
    # the projection stays fixed during training
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(120, 120, n_features=3)
    a = _make(CDAN, epochs=1, multilinear="randomized", random_dim=32).fit(Xs, ys, Xt)
    b = _make(CDAN, epochs=30, multilinear="randomized", random_dim=32).fit(Xs, ys, Xt)
    torch.testing.assert_close(a.networks_["random_features"].weight,
                               b.networks_["random_features"].weight)
    assert b.score(Xt, yt) > 0.65


# --------------------------------------------------------------------------- (e)
@pytest.mark.parametrize("cls", [MDD, MCD, ADDA], ids=lambda c: c.__name__)
def test_regression(cls):
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(200, 200, task="regression",
                                                      random_state=1)
    m = _make(cls, epochs=60, hidden_layer_sizes=(32,)).fit(Xs, ys, Xt)
    pred = m.predict(Xt)
    assert pred.shape == (len(Xt),) and np.isfinite(pred).all()
    assert m.score(Xt, yt) > 0.3
    with pytest.raises(UnsupportedTaskError):
        m.predict_proba(Xt)


def test_cdan_is_classification_only():
    Xs, ys, Xt, _ = tk.datasets.make_covariate_shift(50, 50, task="regression")
    with pytest.raises(UnsupportedTaskError):
        CDAN(epochs=1).fit(Xs, ys, Xt)


# --------------------------------------------------------------------------- misc
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_labelled_target_rows_are_used(cls):
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift(n_samples=64)
    part = np.full(len(yt), np.nan)
    part[:20] = yt[:20]
    un = _make(cls, epochs=6).fit(Xs, ys, Xt)
    semi = _make(cls, epochs=6).fit(Xs, ys, Xt, part)
    assert not np.allclose(un.predict_proba(Xt), semi.predict_proba(Xt))


def test_bad_parameters_raise():
    Xs, ys, Xt, _ = tk.datasets.make_two_moons_shift(n_samples=20)
    for m in (ADDA(pretrain=1.0), ADDA(pretrain=0.0), MCD(num_k=0), MDD(margin=-1.0),
              CDAN(multilinear="outer"), CDAN(schedule="linear")):
        with pytest.raises(ParameterError):
            m.set_params(epochs=1).fit(Xs, ys, Xt)


def test_adda_stages_and_encoders():
    Xs, ys, Xt, _ = tk.datasets.make_two_moons_shift(n_samples=64)
    m = _make(ADDA, epochs=10, pretrain=0.5).fit(Xs, ys, Xt)
    h = m.history_
    assert all(v == 0 for v in h["discriminator"][:5]) and all(v > 0 for v in
                                                                h["discriminator"][5:])
    # the source encoder is the pretrained one; prediction uses the adapted target one
    assert not np.allclose(m.transform(Xt), m.transform(Xt, domain="source"))
    off = _make(ADDA, epochs=10, pretrain=0.5, lambda_=0.0).fit(Xs, ys, Xt)
    np.testing.assert_allclose(off.transform(Xt), off.transform(Xt, domain="source"))


@pytest.mark.parametrize("cls,params", [(ADDA, {}), (MCD, {}),
                                        (CDAN, {"multilinear": "randomized",
                                                "random_dim": 16})],
                         ids=["ADDA", "MCD", "CDAN"])
def test_save_load_round_trip(cls, params, tmp_path):
    Xs, ys, Xt, _ = tk.datasets.make_two_moons_shift(n_samples=40)
    m = _make(cls, epochs=4, **params).fit(Xs, ys, Xt)
    m.save(tmp_path / "m")
    back = tk.load(tmp_path / "m")
    np.testing.assert_allclose(back.predict_proba(Xt), m.predict_proba(Xt))
    np.testing.assert_allclose(back.transform(Xt), m.transform(Xt))
