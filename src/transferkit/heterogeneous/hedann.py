"""Heterogeneous DANN: domain-adversarial training with one encoder per feature space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from .._validation import DomainData, check_choice, check_X
from ..base import _is_torch_data, _per_batch
from ..errors import ParameterError
from ..feature.dann import DANN, _DANNTask
from ..nn.adaptation import SupervisedLoss
from ..nn.estimator import standard_scaling
from ..registry import register

__all__ = ["HeDANN"]


@register(family="heterogeneous", settings=("heterogeneous",), backend="torch")
class HeDANN(DANN):
    """Heterogeneous DANN: source and target with different features, one encoder each.

    Setting: heterogeneous transfer (異種転移): the source and target domains have
    different feature spaces (different columns, even a different number of them) but the
    same labels, and a few target rows are labelled (``yt`` with NaN for the others;
    they are required: without any, nothing ties a target class to a source class). As
    described in the seed tutorial ([Yonekawa+19] there), HeDANN is DANN with a
    domain-specific encoder: a source encoder G_s and a target encoder G_t map each
    domain into one shared space, where a shared head G_y predicts the class and a
    domain discriminator G_d, behind a gradient-reversal layer R_λ, makes the two
    encoders' outputs indistinguishable:

        L = L_y(G_y(G_s(x_s)), y_s) + L_y(G_y(G_t(x_t^l)), y_t^l)
            + [−mean_s log(1 − G_d(R_λ(G_s(x_s)))) − mean_t log G_d(R_λ(G_t(x_t)))]

    The labelled target rows anchor the classes; the adversarial term aligns every
    target row (labelled or not) with the source, so the head learned on the plentiful
    source labels serves the target. ``predict``, ``predict_proba``, ``score`` and
    ``transform`` take target-domain rows; ``transform(X, domain="source")`` maps source
    rows into the shared space. Each domain is standardised on its own.

    Parameters
    ----------
    encoder : torch.nn.Module, "cnn" or None
        The target encoder G_t (``None``: an MLP with ``hidden_layer_sizes``).
    source_encoder : torch.nn.Module, "cnn" or None
        The source encoder G_s (``None``: an MLP with ``hidden_layer_sizes``); its output
        width must equal the target encoder's.
    head, discriminator, hidden_layer_sizes, discriminator_hidden, lambda_, schedule, \
gamma, standardize, init, epochs, batch_size, lr, weight_decay, optimizer, device, \
verbose, trainer_params, reinit, random_state
        As in :class:`~transferkit.feature.DANN`.

    Attributes
    ----------
    networks_ : torch.nn.ModuleDict
        ``encoder`` (target), ``source_encoder``, ``head`` and ``discriminator``.
    n_features_in_ : int
        Number of target features (what ``predict`` takes).
    n_source_features_ : int
        Number of source features.
    history_ : dict
        Per-epoch ``loss``, ``task`` and ``domain`` terms (``domain`` near 2·log 2 ≈ 1.386
        means the discriminator cannot tell the encoded domains apart).

    Notes
    -----
    On the seed's problem (:func:`~transferkit.datasets.make_heterogeneous_moons`: Two
    Moons in 2-D as the source, the same moons embedded in 3-D and turned 30° in the XZ
    plane as the target) with 10 labelled target rows and the seed's networks, see
    ``benchmarks/bench_heterogeneous.py`` and docs/benchmarks.md.

    References
    ----------
    The tutorial in ``seeds/000`` (異種転移, HeDANN, cited there as [Yonekawa+19]); the
    adversarial term is that of Y. Ganin et al., "Domain-Adversarial Training of Neural
    Networks", JMLR 17(59), 2016.

    Examples
    --------
    >>> import numpy as np
    >>> import transferkit as tk
    >>> Xs, ys, Xt, yt = tk.datasets.make_heterogeneous_moons()
    >>> Xs.shape, Xt.shape
    ((100, 2), (100, 3))
    >>> few = np.full(len(yt), np.nan); few[:10] = yt[:10]
    >>> m = tk.heterogeneous.HeDANN(epochs=20, random_state=0).fit(Xs, ys, Xt, few)
    >>> m.predict(Xt).shape, m.transform(Xs, domain="source").shape
    ((100,), (100, 64))
    """

    _needs_target_labels = True
    _heterogeneous = True

    def __init__(self, encoder: nn.Module | str | None = None,
                 source_encoder: nn.Module | str | None = None, head: nn.Module | None = None,
                 discriminator: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (64, 64),
                 discriminator_hidden: Sequence[int] = (64,), lambda_: float = 1.0,
                 schedule: str = "ganin", gamma: float = 10.0, standardize: bool = True,
                 init: str = "torch", epochs: int = 100, batch_size: int | None = 64,
                 lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam",
                 device: str = "auto", verbose: bool = False,
                 trainer_params: dict | None = None, reinit: bool = True,
                 random_state: Any = None) -> None:
        super().__init__(encoder=encoder, head=head, discriminator=discriminator,
                         hidden_layer_sizes=hidden_layer_sizes,
                         discriminator_hidden=discriminator_hidden, lambda_=lambda_,
                         schedule=schedule, gamma=gamma, standardize=standardize, init=init,
                         epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, optimizer=optimizer, device=device,
                         verbose=verbose, trainer_params=trainer_params, reinit=reinit,
                         random_state=random_state)
        self.source_encoder = source_encoder

    def _fit_scaling(self, data: DomainData) -> None:
        # Two feature spaces: no pooled statistics; each domain is scaled on its own.
        self.n_source_features_ = data.Xs.shape[1]
        self.source_mean_, self.source_scale_ = standard_scaling(data.Xs)
        self.x_mean_, self.x_scale_ = standard_scaling(data.Xt)

    def _stream_scaling(self, ms: Any, mt: Any) -> None:
        from ..nn.streams import moments_scaling

        self.n_source_features_ = int(ms.n_features)
        self.source_mean_, self.source_scale_ = moments_scaling(ms)
        self.x_mean_, self.x_scale_ = moments_scaling(mt)

    def _scale_source(self, X: np.ndarray) -> np.ndarray:
        return self._standardized(X, self.source_mean_, self.source_scale_)

    def _build_extra(self, nets: nn.ModuleDict, width: int, n_out: int) -> None:
        super()._build_extra(nets, width, n_out)
        n_in = self.n_source_features_
        nets["source_encoder"] = self._make_encoder(self.source_encoder, n_in, "source_encoder")
        got = self._width(nets["source_encoder"], n_in)
        if got != width:
            raise ParameterError(
                f"source_encoder outputs {got} features and the target encoder {width}; both "
                "must map into the same shared space (give them the same output width).")

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss) -> _DANNTask:
        check_choice("schedule", self.schedule, ("ganin", "constant"))
        return _DANNTask(nets, loss, self.lambda_, self.schedule, self.gamma,
                         source_encoder="source_encoder")

    def transform(self, X: Any, domain: str = "target") -> np.ndarray:
        """Rows of ``domain`` ("target" or "source") mapped into the shared space."""
        check_choice("domain", domain, ("target", "source"))
        if domain == "target":
            return super().transform(X)
        if _is_torch_data(X):
            return _per_batch(lambda x: self.transform(x, domain="source"), X)
        self._check_fitted()
        X = check_X(X, "X (source features)", n_features=self.n_source_features_)
        return self._outputs(X, "encoder", source=True)
