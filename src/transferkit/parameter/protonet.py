"""Prototypical networks: a metric learned across tasks, classes as mean embeddings."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._validation import CLASSIFICATION, check_X, check_y
from ..errors import InputError, ParameterError
from ..nn.networks import mlp
from ..nn.trainer import distributed_info, resolve_device
from .maml import _copy_module, _global_step, _MetaLearner
from .tasks import Task, episode_rng

__all__ = ["ProtoNet", "PrototypeClassifier", "prototype_logits"]


def prototype_logits(z_support: torch.Tensor, y_support: torch.Tensor, z_query: torch.Tensor,
                     n_classes: int) -> torch.Tensor:
    """Negative squared Euclidean distances of queries to class prototypes.

    ``z_support`` (T, n_s, e) with labels ``y_support`` (T, n_s) in ``0..n_classes-1``;
    ``z_query`` (T, n_q, e). The prototype of class k is the mean support embedding
    c_k = mean_{i: y_i = k} z_i, and the logits are −‖z_q − c_k‖², so that
    p(y = k | x) = softmax_k(−‖f(x) − c_k‖²) (Snell et al., 2017, eq. 2). Returns
    (T, n_q, n_classes).
    """
    onehot = F.one_hot(y_support, n_classes).to(z_support.dtype)  # (T, n_s, K)
    counts = onehot.sum(1).clamp_min(1.0).unsqueeze(-1)  # (T, K, 1)
    protos = onehot.transpose(1, 2) @ z_support / counts  # (T, K, e)
    # ‖q − c‖² = ‖q‖² − 2 q·c + ‖c‖², as matrix products (no (T, n_q, K, e) tensor).
    d2 = (z_query.pow(2).sum(-1, keepdim=True) - 2 * z_query @ protos.transpose(1, 2)
          + protos.pow(2).sum(-1).unsqueeze(1))
    return -d2


class _ProtoTask:
    """The Trainer's task: the prototypical loss on a freshly sampled meta-batch."""

    def __init__(self, encoder: nn.Module, sampler: Any, est: ProtoNet, seed: int,
                 total: int, n_ways: int) -> None:
        self.module, self.sampler, self.est = encoder, sampler, est
        self.seed, self.total, self.n_ways = seed, total, n_ways
        self.rank = distributed_info()[0]

    def loss(self, batch: Any, progress: float) -> dict[str, torch.Tensor]:
        device = next(self.module.parameters()).device
        rng = episode_rng(self.seed, _global_step(progress, self.total), self.rank)
        tasks = self.sampler.sample(int(self.est.meta_batch_size), rng)
        Xs, ys, Xq, yq = self.est._episode_tensors(tasks, device, self.n_ways)
        logits = self.est._logits(self.module, Xs, ys, Xq, self.n_ways)
        loss = F.cross_entropy(logits.reshape(-1, self.n_ways), yq.reshape(-1))
        return {"loss": loss, "query_accuracy": (logits.argmax(-1) == yq).float().mean()}


class ProtoNet(_MetaLearner):
    """Prototypical networks for few-shot classification (Snell, Swersky & Zemel, 2017).

    Setting: N-way K-shot classification over a distribution of tasks whose classes may
    never have been seen in training (metric-based meta-learning). An encoder f_φ maps
    inputs to an embedding space; each class of an episode is represented by the mean
    embedding of its support examples, its prototype c_k = (1/K) Σ_{(x, y=k) ∈ S} f_φ(x),
    and a query x is classified by a softmax over negative squared Euclidean distances,

        p_φ(y = k | x) = exp(−‖f_φ(x) − c_k‖²) / Σ_k' exp(−‖f_φ(x) − c_k'‖²).

    The encoder is trained episodically, minimising −log p_φ(y | x) of the query
    examples of sampled episodes, so that what is transferred to a new task is the
    metric: a new task needs no gradient step, only its support set's prototypes.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        f_φ: inputs (n, n_features) -> embeddings (n, e). ``None`` builds an MLP
        ``hidden_layer_sizes`` -> ``embedding_dim`` (linear last layer). A given module is
        copied (and re-initialised from ``random_state`` unless ``reinit=False``).
    hidden_layer_sizes : tuple of int, default=(128, 128)
    embedding_dim : int, default=64
    activation : str, default="relu"
    meta_batch_size : int, default=4
        Episodes per update (their losses are averaged).
    epochs : int, default=20
    steps_per_epoch : int, default=50
    lr : float, default=1e-3
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    standardize : bool, default=True
        Scale inputs with the mean and standard deviation of 64 pilot episodes.
    reinit : bool, default=True
    device : str, default="auto"
    verbose : bool, default=False
    trainer_params : dict or None
        Further :class:`~transferkit.nn.Trainer` options (not batch_size/epochs/
        random_state).
    random_state : int or None

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The trained encoder (on the CPU).
    n_ways_ : int
        Classes per training episode (prediction accepts any number of classes).
    n_features_in_ : int
    x_mean_, x_scale_ : ndarray
    history_ : dict[str, list[float]]
        Per epoch ``loss`` and ``query_accuracy`` of the training episodes.

    Notes
    -----
    Snell et al. train with more classes per episode than at test time ("higher way");
    here the training way is the sampler's ``n_ways``, and prediction works for any
    number of support classes. Squared Euclidean distance (a Bregman divergence) makes
    the classifier linear in the embedding, which the paper found better than cosine.

    References
    ----------
    J. Snell, K. Swersky and R. Zemel, "Prototypical Networks for Few-shot Learning",
    NeurIPS 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from transferkit.parameter import ArrayTasks, ProtoNet
    >>> X, y = load_digits(return_X_y=True)
    >>> train = ArrayTasks(X, y, n_ways=5, shots=5, classes=range(5))
    >>> net = ProtoNet(epochs=2, steps_per_epoch=20, random_state=0).fit(train)
    >>> test = ArrayTasks(X, y, n_ways=5, shots=5, classes=range(5, 10)).sample(1, rng=0)[0]
    >>> net.predict(test.X_query, support=(test.X_support, test.y_support)).shape
    (75,)
    """

    def __init__(self, encoder: nn.Module | None = None,
                 hidden_layer_sizes: Sequence[int] = (128, 128), embedding_dim: int = 64,
                 activation: str = "relu", meta_batch_size: int = 4, epochs: int = 20,
                 steps_per_epoch: int = 50, lr: float = 1e-3, optimizer: str = "adam",
                 standardize: bool = True, reinit: bool = True, device: str = "auto",
                 verbose: bool = False, trainer_params: dict | None = None,
                 random_state: Any = None) -> None:
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.embedding_dim = embedding_dim
        self.activation = activation
        self.meta_batch_size = meta_batch_size
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.lr = lr
        self.optimizer = optimizer
        self.standardize = standardize
        self.reinit = reinit
        self.device = device
        self.verbose = verbose
        self.trainer_params = trainer_params
        self.random_state = random_state

    def fit(self, sampler: Any) -> ProtoNet:
        """Train the encoder on episodes drawn from ``sampler`` (a classification
        :class:`~transferkit.parameter.TaskSampler`, e.g.
        :class:`~transferkit.parameter.ArrayTasks`)."""
        seed, task, n_ways = self._prepare(sampler)
        if task != CLASSIFICATION:
            raise InputError("ProtoNet classifies; the sampler draws regression tasks. Use "
                             "MAML for few-shot regression.")
        self.n_ways_ = int(n_ways)
        self.encoder_ = self._build(seed)
        world = distributed_info()[1]
        total = int(self.epochs) * math.ceil(int(self.steps_per_epoch) / world)
        self.history_ = self._train(
            _ProtoTask(self.encoder_, sampler, self, seed, total, self.n_ways_), seed)
        self.encoder_.cpu().eval()
        return self

    def _build(self, seed: int) -> nn.Module:
        if self.encoder is None:
            if isinstance(self.embedding_dim, bool) or not isinstance(
                    self.embedding_dim, (int, np.integer)) or self.embedding_dim < 1:
                raise ParameterError(f"embedding_dim must be a positive integer, got "
                                     f"{self.embedding_dim!r}.")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                module = mlp(self.n_features_in_, self.hidden_layer_sizes,
                             int(self.embedding_dim), self.activation)
        else:
            if not isinstance(self.encoder, nn.Module):
                raise ParameterError(f"encoder must be a torch.nn.Module or None, got "
                                     f"{type(self.encoder).__name__}.")
            module = _copy_module(self.encoder, self.reinit, seed)
        with torch.no_grad():
            out = module(torch.zeros(2, self.n_features_in_))
        if out.dim() < 2 or out.shape[0] != 2:
            raise ParameterError(f"the encoder must map (n, {self.n_features_in_}) inputs to "
                                 f"(n, embedding) outputs; got shape {tuple(out.shape)}.")
        return module.float()

    def _episode_tensors(self, tasks: Sequence[Task], device: torch.device, n_ways: int
                         ) -> tuple[torch.Tensor, ...]:
        Xs, ys, Xq, yq = self._check_task_arrays(tasks, self.n_features_in_)
        for y in (ys, yq):
            if y.size and (y.min() < 0 or y.max() >= n_ways):
                raise InputError(f"episode labels must lie in 0..{n_ways - 1}; got "
                                 f"{np.unique(y)[:10]}.")
        return (self._tensor(Xs, device), torch.as_tensor(ys, dtype=torch.long, device=device),
                self._tensor(Xq, device), torch.as_tensor(yq, dtype=torch.long, device=device))

    @staticmethod
    def _embed(encoder: nn.Module, X: torch.Tensor) -> torch.Tensor:
        """Embeddings of (T, n, d) inputs as (T, n, e), one encoder call."""
        T, n, d = X.shape
        return encoder(X.reshape(T * n, d)).reshape(T, n, -1)

    def _logits(self, encoder: nn.Module, Xs: torch.Tensor, ys: torch.Tensor,
                Xq: torch.Tensor, n_ways: int) -> torch.Tensor:
        return prototype_logits(self._embed(encoder, Xs), ys, self._embed(encoder, Xq), n_ways)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """Embeddings f_φ(X), shape (n, embedding)."""
        self._check_fitted()
        X = check_X(X, "X", n_features=self.n_features_in_)
        xt = torch.as_tensor(self._scale(X), dtype=torch.float32)
        return self.encoder_(xt).reshape(len(X), -1).numpy()

    def adapt(self, X_support: Any, y_support: Any) -> PrototypeClassifier:
        """A classifier for a new task: its support set's class prototypes.

        Any number of classes (at least one example each); labels may be any values.
        """
        Z = self.transform(X_support)
        y = check_y(y_support, Z.shape[0], "y_support")
        classes, inverse = np.unique(y, return_inverse=True)
        onehot = np.eye(len(classes))[inverse]
        protos = onehot.T @ Z / onehot.sum(0)[:, None]
        return PrototypeClassifier(self, classes, protos)

    def _support(self, support: Any) -> PrototypeClassifier:
        if support is None:
            raise InputError("ProtoNet predicts relative to a support set: pass "
                             "support=(X_support, y_support), or call adapt(X_support, "
                             "y_support) once and predict with the classifier it returns.")
        if not (isinstance(support, (tuple, list)) and len(support) == 2):
            raise InputError("support must be a pair (X_support, y_support).")
        return self.adapt(*support)

    def predict(self, X: Any, support: tuple[Any, Any] | None = None) -> np.ndarray:
        """Label of the nearest prototype (squared Euclidean) of ``support``'s classes."""
        return self._support(support).predict(X)

    def predict_proba(self, X: Any, support: tuple[Any, Any] | None = None) -> np.ndarray:
        """softmax(−‖f(x) − c_k‖²) over ``support``'s classes (sorted)."""
        return self._support(support).predict_proba(X)

    def score(self, X: Any, y: Any, support: tuple[Any, Any] | None = None) -> float:
        """Accuracy on ``(X, y)`` with prototypes from ``support``."""
        return self._support(support).score(X, y)

    def evaluate(self, tasks: Sequence[Task], chunk_size: int = 256) -> np.ndarray:
        """Query accuracy of every task (episodes of one shape, labels 0..k-1)."""
        self._check_fitted()
        tasks = list(tasks)
        if not tasks:
            raise InputError("no tasks given; pass at least one Task.")
        n_ways = int(max(int(np.max(t.y_support)) for t in tasks)) + 1
        device = resolve_device(self.device)
        encoder = self.encoder_.to(device)
        out = []
        try:
            with torch.no_grad():
                for start in range(0, len(tasks), chunk_size):
                    Xs, ys, Xq, yq = self._episode_tensors(tasks[start:start + chunk_size],
                                                           device, n_ways)
                    logits = self._logits(encoder, Xs, ys, Xq, n_ways)
                    out.append((logits.argmax(-1) == yq).float().mean(1).cpu().numpy())
        finally:
            encoder.cpu()
        return np.concatenate(out)


class PrototypeClassifier:
    """Nearest-prototype classifier of one task; returned by :meth:`ProtoNet.adapt`.

    Attributes
    ----------
    classes_ : ndarray
    prototypes_ : ndarray of shape (n_classes, embedding)
    """

    _estimator_type = "classifier"

    def __init__(self, net: ProtoNet, classes: np.ndarray, prototypes: np.ndarray) -> None:
        self.net_ = copy.copy(net)  # shallow: shares the trained encoder
        self.classes_ = classes
        self.prototypes_ = prototypes
        self.n_features_in_ = net.n_features_in_

    def decision_function(self, X: Any) -> np.ndarray:
        """−‖f(x) − c_k‖² for every class (n, n_classes)."""
        Z = self.net_.transform(X)
        P = self.prototypes_
        return -((Z**2).sum(1, keepdims=True) - 2 * Z @ P.T + (P**2).sum(1))

    def predict_proba(self, X: Any) -> np.ndarray:
        return torch.softmax(torch.as_tensor(self.decision_function(X)), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(1)]

    def score(self, X: Any, y: Any) -> float:
        from sklearn.metrics import accuracy_score

        pred = self.predict(X)
        return float(accuracy_score(check_y(y, len(pred), "y"), pred))
