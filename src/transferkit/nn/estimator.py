"""A torch network as a scikit-learn estimator: ``fit(X, y, sample_weight=None)``.

Every family uses it as a base learner: instance methods pass importance weights as
``sample_weight`` and the loss becomes the weighted empirical risk.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from torch import nn
from torch.nn import functional as F

from .._validation import CLASSIFICATION, REGRESSION, check_X, check_y, infer_task
from ..errors import InputError, NotFittedError
from .networks import mlp
from .trainer import Trainer, resolve_device, seed_from

__all__ = ["TorchEstimator", "MLPClassifier", "MLPRegressor"]


class _SupervisedTask:
    """Weighted cross-entropy / MSE on a module's outputs (logits for classification)."""

    def __init__(self, module: nn.Module, kind: str) -> None:
        self.module = module
        self.kind = kind  # "binary", "multiclass" or "regression"

    def loss(self, batch: tuple[torch.Tensor, ...], progress: float) -> dict[str, torch.Tensor]:
        X, y, w = batch
        out = self.module(X)
        if self.kind == "binary":
            per = F.binary_cross_entropy_with_logits(out.reshape(-1), y, reduction="none")
        elif self.kind == "multiclass":
            per = F.cross_entropy(out, y.long(), reduction="none")
        else:
            per = F.mse_loss(out.reshape(-1), y, reduction="none")
        # mean(w * l): with weights normalised to mean 1 this is the importance-weighted risk.
        return {"loss": (w * per).mean()}


def _reset_parameters(module: nn.Module) -> None:
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()


class TorchEstimator(BaseEstimator):
    """Train a torch module (or a default MLP) with a weighted loss, scikit-learn style.

    The module must return logits for classification (one output for binary with a
    sigmoid loss, or one per class with softmax cross-entropy) and one value per sample
    for regression; no final sigmoid/softmax.

    Parameters
    ----------
    module : torch.nn.Module or None, default=None
        The network. ``None`` builds an MLP from ``hidden_layer_sizes`` sized from the data.
        The given module is copied, never trained in place.
    task : {"classification", "regression"} or None
        ``None`` infers it from ``y``.
    hidden_layer_sizes : tuple of int, default=(100,)
    activation : str, default="relu"
    epochs : int, default=200
    batch_size : int or None, default=32
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    standardize : bool, default=True
        Scale inputs (and regression targets) to zero mean, unit variance using the
        training data; predictions are returned on the original scale.
    reinit : bool, default=True
        Re-initialise the copied module's parameters from ``random_state`` before
        training; set False to start from the weights it carries (e.g. pretrained).
    device : str, default="auto"
    verbose : bool, default=False
        Show a progress bar.
    random_state : int or None

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (on the CPU after ``fit``).
    classes_ : ndarray
        Class labels (classification).
    history_ : dict[str, list[float]]
        Training loss per epoch.

    Notes
    -----
    ``fit`` accepts ``epochs``, ``batch_size`` and ``verbose`` as fit parameters, as
    Keras does (``fit(X, y, epochs=800, batch_size=34)``).
    """

    def __init__(self, module: nn.Module | None = None, task: str | None = None,
                 hidden_layer_sizes: Sequence[int] = (100,), activation: str = "relu",
                 epochs: int = 200, batch_size: int | None = 32, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam", standardize: bool = True,
                 reinit: bool = True, device: str = "auto", verbose: bool = False,
                 random_state: Any = None) -> None:
        self.module = module
        self.task = task
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.standardize = standardize
        self.reinit = reinit
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None, epochs: int | None = None,
            batch_size: int | None | str = "default", verbose: Any = None) -> TorchEstimator:
        X = check_X(X, "X")
        y = check_y(y, X.shape[0], "y")
        task = self.task or infer_task(y)
        if task not in (CLASSIFICATION, REGRESSION):
            raise InputError(f"task must be 'classification' or 'regression', got {task!r}.")
        w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
        if w.shape != (X.shape[0],) or not np.isfinite(w).all() or (w < 0).any():
            raise InputError("sample_weight must hold one finite, non-negative weight per sample.")
        self.task_ = task
        self.n_features_in_ = X.shape[1]
        if task == CLASSIFICATION:
            self.classes_, y_enc = np.unique(y, return_inverse=True)
            kind = "binary" if len(self.classes_) == 2 else "multiclass"
            y_t = y_enc.astype(np.float32)
        else:
            kind = "regression"
            y_t = y.astype(np.float64)
        self.x_mean_, self.x_scale_ = standard_scaling(X, self.standardize)
        self.y_mean_, self.y_scale_ = 0.0, 1.0
        if kind == "regression" and self.standardize:
            self.y_mean_, self.y_scale_ = float(y_t.mean()), float(_safe_std(y_t[:, None])[0])
            y_t = (y_t - self.y_mean_) / self.y_scale_
        seed = seed_from(self.random_state)
        self._two_logit = False
        # Initialise inside a forked RNG so the caller's global torch state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module_ = self._build_module(kind)
        if self._two_logit:
            kind = "multiclass"  # two logits: softmax cross-entropy, not a sigmoid
        self._kind = kind
        trainer = Trainer(
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size if batch_size == "default" else batch_size,
            optimizer=self.optimizer, lr=self.lr, weight_decay=self.weight_decay,
            device=self.device, progress=bool(self.verbose if verbose is None else verbose),
            random_state=seed)
        tensors = tuple(torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)
                        for a in (self._scale(X), y_t, w))
        self.history_ = trainer.fit(_SupervisedTask(self.module_, kind), tensors)
        self.module_.cpu()
        return self

    def _build_module(self, kind: str) -> nn.Module:
        n_out = len(self.classes_) if kind == "multiclass" else 1
        if self.module is None:
            return mlp(self.n_features_in_, self.hidden_layer_sizes, n_out, self.activation)
        module = copy.deepcopy(self.module)
        if self.reinit:
            _reset_parameters(module)
        with torch.no_grad():
            out = module(torch.zeros(1, self.n_features_in_))
        got = int(out.reshape(1, -1).shape[1])
        ok = got == n_out or (kind == "binary" and got == 2)
        if not ok:
            raise InputError(
                f"the module returns {got} outputs per sample but this {kind} task needs "
                f"{n_out}; change its last layer (return logits, no sigmoid/softmax)."
            )
        if kind == "binary" and got == 2:
            self._two_logit = True
        return module

    # ------------------------------------------------------------------ predict
    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_mean_) / self.x_scale_

    @torch.no_grad()
    def _forward(self, X: Any) -> np.ndarray:
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first.")
        X = check_X(X, "X", n_features=self.n_features_in_)
        device = resolve_device(self.device)
        module = self.module_.to(device).eval()
        outs = []
        for start in range(0, X.shape[0], 65536):
            xb = torch.as_tensor(self._scale(X[start:start + 65536]), dtype=torch.float32)
            outs.append(module(xb.to(device)).cpu().numpy())
        module.cpu()
        return np.concatenate(outs).reshape(X.shape[0], -1)

    def decision_function(self, X: Any) -> np.ndarray:
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        if getattr(self, "task_", None) != CLASSIFICATION:
            raise InputError("predict_proba needs a classifier; this model does regression.")
        out = self._forward(X)
        if self._kind == "multiclass":
            return torch.softmax(torch.as_tensor(out), dim=1).numpy()
        p = 1.0 / (1.0 + np.exp(-out.ravel()))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        if getattr(self, "task_", None) == CLASSIFICATION:
            return self.classes_[self.predict_proba(X).argmax(1)]
        return self._forward(X).ravel().astype(np.float64) * self.y_scale_ + self.y_mean_

    def save(self, path: str) -> None:
        """Save to folder ``path`` (JSON + safetensors; see :func:`transferkit.io.save`)."""
        from ..io import save

        save(self, path)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        from sklearn.metrics import accuracy_score, r2_score

        pred = self.predict(X)
        if self.task_ == CLASSIFICATION:
            return float(accuracy_score(y, pred, sample_weight=sample_weight))
        return float(r2_score(y, pred, sample_weight=sample_weight))


def _safe_std(X: np.ndarray) -> np.ndarray:
    s = X.std(0)
    return np.where(s > 1e-12, s, 1.0)


def standard_scaling(X: np.ndarray, enabled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (mean, std) of ``X`` to scale inputs with, a constant column's std taken
    as 1; ``(0, 1)`` (no scaling) when not ``enabled``."""
    if not enabled:
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    return X.mean(0), _safe_std(X)


class _MLPMixin:
    """Fixed-task MLP: the module is built from ``hidden_layer_sizes``."""

    module = None
    reinit = True

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,), activation: str = "relu",
                 epochs: int = 200, batch_size: int | None = 32, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam", standardize: bool = True,
                 device: str = "auto", verbose: bool = False, random_state: Any = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.standardize = standardize
        self.device = device
        self.verbose = verbose
        self.random_state = random_state


class MLPClassifier(_MLPMixin, ClassifierMixin, TorchEstimator):
    """A torch MLP classifier (weighted cross-entropy); see :class:`TorchEstimator`."""

    task = CLASSIFICATION


class MLPRegressor(_MLPMixin, RegressorMixin, TorchEstimator):
    """A torch MLP regressor (weighted squared error); see :class:`TorchEstimator`."""

    task = REGRESSION
