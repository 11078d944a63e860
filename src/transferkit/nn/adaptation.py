"""Base class of the deep domain-adaptation estimators.

A deep method defines its networks (``_build``) and its loss (a :class:`TrainTask`); this
class does the rest once for all of them: validation, scaling, default networks sized
from the data, the supervised loss on labelled source and target rows (classification or
regression), the Trainer, and prediction through encoder and head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._random import seed_from
from .._validation import CLASSIFICATION, REGRESSION, DomainData, check_choice
from ..base import TransferEstimator
from ..errors import (
    FeatureMismatchError,
    InputError,
    MissingTargetLabelsError,
    ParameterError,
    SingleClassError,
    UnsupportedTaskError,
)
from .estimator import _reset_parameters, standard_scaling
from .networks import cnn_encoder, image_shape, mlp
from .trainer import Trainer, resolve_device


def class_output(n_classes: int) -> tuple[str, int]:
    """(:class:`SupervisedLoss` kind, head outputs) of a classification with ``n_classes``:
    one logit for two classes, one per class otherwise."""
    return ("binary", 1) if n_classes == 2 else ("multiclass", n_classes)


class SupervisedLoss:
    """Cross-entropy (binary or multi-class) or squared error on labelled rows.

    ``target_labels`` says whether any target row is labelled: when none is (the
    unsupervised setting), the per-batch search for labelled target rows is skipped.
    """

    def __init__(self, kind: str, target_labels: bool = True) -> None:
        self.kind = kind  # "binary", "multiclass" or "regression"
        self.target_labels = target_labels

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.numel() == 0:
            return out.sum() * 0.0
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out.reshape(-1), y.float())
        if self.kind == "multiclass":
            return F.cross_entropy(out, y.long())
        return F.mse_loss(out.reshape(-1), y.float())

    def probabilities(self, out: torch.Tensor) -> torch.Tensor:
        """Class probabilities, shape (n, n_classes), for conditioning (CDAN) or entropy."""
        if self.kind == "binary":
            p = torch.sigmoid(out.reshape(-1, 1))
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(out, dim=1)


class DeepAdaptation(TransferEstimator):
    """Shared machinery of the deep adaptation methods (not registered itself).

    Subclasses set their hyper-parameters in ``__init__`` (calling nothing) and implement
    ``_make_task(nets, loss) -> TrainTask``; they may override ``_build_extra(width)`` to
    add networks (a discriminator, a second head) to ``nets``.

    Common parameters
    -----------------
    encoder, head : torch.nn.Module or None
        Feature extractor and task head. ``None`` builds an MLP encoder with
        ``hidden_layer_sizes`` and a linear head sized from the labels; a given module is
        copied (and re-initialised from ``random_state`` unless ``reinit=False``).
        ``encoder="cnn"`` reads each row as a flattened square image (grey when the
        feature count is a square, RGB when it is three times one) and builds
        :func:`~transferkit.nn.networks.cnn_encoder` ending in
        ``hidden_layer_sizes[-1]`` features; other image shapes take
        ``encoder=cnn_encoder((C, H, W))``.
    standardize : bool, default=True
        Scale each input feature by its pooled source+target mean and std before the
        encoder; ``False`` feeds the raw inputs (per-feature scaling changes the geometry
        of a shift: a rotation becomes a shear).
    init : {"torch", "glorot"}, default="torch"
        Initialisation of every linear layer: torch's default, or Glorot-uniform weights
        with zero biases (the Keras default, which ADAPT's networks use).
    epochs, batch_size, lr, weight_decay, optimizer, device, verbose, random_state
        Passed to the :class:`~transferkit.nn.Trainer`.
    trainer_params : dict or None
        Further Trainer options (``early_stopping``, ``checkpoint_dir``, ``resume``,
        ``optimizer_params``, ...).
    """

    _backend = "torch"

    # ------------------------------------------------------------------ fit
    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        check_choice("init", self.init, ("torch", "glorot"))
        self._fit_scaling(data)
        if data.task == CLASSIFICATION:
            kind, n_out = class_output(len(data.classes))
            ys, yt = data.ys.astype(np.float32), data.yt.astype(np.float32)
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        else:
            kind, n_out = "regression", 1
            self.y_mean_ = float(data.ys.mean())
            self.y_scale_ = float(data.ys.std()) or 1.0
            ys = ((data.ys - self.y_mean_) / self.y_scale_).astype(np.float32)
            yt = np.nan_to_num((data.yt - self.y_mean_) / self.y_scale_).astype(np.float32)
        trainer, task = self._prepare(kind, n_out, data.Xt.shape[1], bool(np.any(data.labeled)),
                                      fit_params)
        f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        batches = {"source": (f32(self._scale_source(data.Xs)), f32(ys)),
                   "target": (f32(self._scale(data.Xt)), f32(yt),
                              torch.as_tensor(data.labeled))}
        self.history_ = trainer.fit(task, batches)
        self.networks_.cpu().eval()

    def _prepare(self, kind: str, n_out: int, n_in: int, target_labels: bool,
                 fit_params: dict[str, Any]) -> tuple[Trainer, Any]:
        """Networks (seeded from ``random_state``), the method's task and the Trainer."""
        self._kind = kind
        seed = seed_from(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.networks_ = self._build(n_in, n_out)
        task = self._make_task(self.networks_, SupervisedLoss(kind, target_labels=target_labels))
        trainer = Trainer(
            epochs=fit_params.pop("epochs", self.epochs),
            batch_size=fit_params.pop("batch_size", self.batch_size), optimizer=self.optimizer,
            lr=self.lr, weight_decay=self.weight_decay, device=self.device,
            progress=bool(fit_params.pop("verbose", self.verbose)), random_state=seed,
            **(self.trainer_params or {}))
        if fit_params:
            raise InputError(f"unknown fit parameters {sorted(fit_params)}; use epochs, "
                             "batch_size or verbose.")
        return trainer, task

    # ------------------------------------------------------------- torch data
    def fit(self, Xs: Any, ys: Any, Xt: Any, yt: Any = None, **fit_params: Any):
        """Fit on arrays (see :meth:`TransferEstimator.fit`), or on torch data.

        ``Xs`` and ``Xt`` may be ``torch.utils.data`` Datasets or DataLoaders, so data
        need not fit in memory; the labels then come from the items (``ys`` and ``yt``
        None): source items ``(x, y)``, target items ``x`` or ``(x, y)`` where a NaN label,
        or a negative one that is no source class (such as -1), marks an unlabelled row.
        Class labels are numbers (their distinct values are the classes); a real-valued
        label makes a regression.
        A Dataset is read through a shuffling DataLoader of ``batch_size``; a DataLoader
        is used as it is (its batch size and order). One pass over each domain before
        training gathers the scaling statistics and the classes.
        """
        from .streams import is_torch_data

        if not (is_torch_data(Xs) or is_torch_data(Xt)):
            return super().fit(Xs, ys, Xt, yt, **fit_params)
        if not (is_torch_data(Xs) and is_torch_data(Xt)):
            raise InputError("pass both domains as torch Datasets/DataLoaders, or both as "
                             "arrays.")
        if ys is not None or yt is not None:
            raise InputError("with torch Datasets the labels come from the items (source "
                             "(x, y), target x or (x, y)); pass ys=None and no yt.")
        self._fit_stream(Xs, Xt, dict(fit_params))
        return self

    def _fit_stream(self, source: Any, target: Any, fit_params: dict[str, Any]) -> None:
        from torch.utils.data import DataLoader

        from .streams import LoaderDomain, as_loader, scan, split_item, unlabelled

        check_choice("init", self.init, ("torch", "glorot"))
        seed = seed_from(self.random_state)
        bs = fit_params.get("batch_size", self.batch_size)
        src, tgt = as_loader(source, bs, seed), as_loader(target, bs, seed + 1)
        ms = scan(src, "the source", True)
        mt = scan(tgt, "the target", False, ms.labels if ms.integral else None)
        if ms.n_features != mt.n_features and not self._heterogeneous:
            raise FeatureMismatchError(
                f"source items have {ms.n_features} features and target items "
                f"{mt.n_features}; both domains need the same features.")
        task = self._forced_task() or (CLASSIFICATION if ms.integral and (
            mt.integral or not mt.n_labelled) else REGRESSION)
        if task not in self._tasks:
            raise UnsupportedTaskError(f"{type(self).__name__} handles "
                                       f"{' and '.join(self._tasks)}, not {task}.")
        if self._needs_target_labels and not mt.n_labelled:
            raise MissingTargetLabelsError(
                "this method needs some labelled target samples: give target items (x, y) "
                "with NaN (or -1) for the unlabelled ones.")
        self.task_, self.n_features_in_ = task, int(mt.n_features)
        if task == CLASSIFICATION:
            if len(ms.labels) < 2:
                raise SingleClassError("the source labels hold a single class; a classifier "
                                       "needs at least two classes in the source.")
            self.classes_ = np.array(sorted(ms.labels | mt.labels))
            kind, n_out = class_output(len(self.classes_))
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        else:
            kind, n_out = "regression", 1
            self.y_mean_ = ms.y_mean
            self.y_scale_ = float(np.sqrt(ms.y_m2 / ms.n_labelled)) or 1.0
        self._stream_scaling(ms, mt)
        trainer, train_task = self._prepare(kind, n_out, int(mt.n_features), mt.n_labelled > 0,
                                            fit_params)
        classes = torch.as_tensor(getattr(self, "classes_", np.zeros(0)), dtype=torch.float64)
        source_classes = ms.labels if task == CLASSIFICATION else None

        def labels(y: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
            y = y.double()
            known = ~unlabelled(y, source_classes) if target else torch.ones_like(y, dtype=bool)
            y = torch.where(known, y, classes[0] if len(classes) else torch.zeros_like(y))
            y = (torch.searchsorted(classes, y) if task == CLASSIFICATION
                 else (y - self.y_mean_) / self.y_scale_)
            return y.float(), known

        def source_batch(batch: Any, device: torch.device) -> tuple:
            x, y = split_item(batch, "the source", True)
            x = torch.as_tensor(self._scale_source(x.numpy()), dtype=torch.float32)
            return x.to(device), labels(y)[0].to(device)

        def target_batch(batch: Any, device: torch.device) -> tuple:
            x, y = split_item(batch, "the target", False)
            x = torch.as_tensor(self._scale(x.numpy()), dtype=torch.float32)
            if y is None:
                y_enc, known = torch.zeros(len(x)), torch.zeros(len(x), dtype=torch.bool)
            else:
                y_enc, known = labels(y, target=True)
            return x.to(device), y_enc.to(device), known.to(device)

        # loaders built here are reseeded every epoch (reproducible resume); a caller's
        # DataLoader keeps its own order
        own = [None if isinstance(d, DataLoader) else seed + i for i, d in
               enumerate((source, target))]
        self.history_ = trainer.fit(train_task, {
            "source": LoaderDomain(src, source_batch, own[0]),
            "target": LoaderDomain(tgt, target_batch, own[1])})
        self.networks_.cpu().eval()

    def _stream_scaling(self, ms: Any, mt: Any) -> None:
        """Input scaling from the two domains' streamed moments (pooled, as for arrays)."""
        from .streams import moments_scaling

        self.x_mean_, self.x_scale_ = moments_scaling(ms, mt)

    def _fit_scaling(self, data: DomainData) -> None:
        """Input scaling: pooled source+target mean and std (one encoder reads both)."""
        self.x_mean_, self.x_scale_ = standard_scaling(np.vstack([data.Xs, data.Xt]))

    def _build(self, n_in: int, n_out: int) -> nn.ModuleDict:
        nets = nn.ModuleDict()
        nets["encoder"] = self._make_encoder(self.encoder, n_in, "encoder")
        width = self._width(nets["encoder"], n_in)
        nets["head"] = nn.Linear(width, n_out) if self.head is None else self._copy(self.head)
        self._build_extra(nets, width, n_out)
        if self.init == "glorot":
            # Called while _fit seeds torch from random_state: reproducible.
            for m in nets.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        return nets

    def _make_encoder(self, spec: nn.Module | str | None, n_in: int, name: str) -> nn.Module:
        """The encoder ``spec`` describes (None, "cnn" or a module) for ``n_in`` inputs."""
        if spec is None:
            return mlp(n_in, self.hidden_layer_sizes, None)
        if isinstance(spec, str):
            if spec != "cnn":
                raise ParameterError(f"{name} must be a torch.nn.Module, None or 'cnn'; got "
                                     f"{spec!r}.")
            try:
                shape = image_shape(n_in)
            except ValueError as exc:
                raise ParameterError(str(exc)) from None
            return cnn_encoder(shape, self.hidden_layer_sizes[-1:])
        return self._copy(spec)

    def _build_extra(self, nets: nn.ModuleDict, width: int, n_out: int) -> None:
        """Add method-specific networks (discriminators, second heads)."""

    def _copy(self, module: nn.Module) -> nn.Module:
        import copy

        m = copy.deepcopy(module)
        if getattr(self, "reinit", True):
            _reset_parameters(m)
        return m

    @staticmethod
    def _width(encoder: nn.Module, n_in: int) -> int:
        with torch.no_grad():
            return int(encoder(torch.zeros(2, n_in)).reshape(2, -1).shape[1])

    def _make_task(self, nets: nn.ModuleDict, loss: SupervisedLoss):  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ predict
    def _standardized(self, X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        if not self.standardize:
            return np.asarray(X, dtype=np.float64)
        return (X - mean) / scale

    def _scale(self, X: np.ndarray) -> np.ndarray:
        """Target-domain (prediction) inputs as the encoder reads them."""
        return self._standardized(X, self.x_mean_, self.x_scale_)

    def _scale_source(self, X: np.ndarray) -> np.ndarray:
        """Source inputs as the encoder reads them (the same scaling by default)."""
        return self._scale(X)

    @torch.no_grad()
    def _outputs(self, X: np.ndarray, part: str = "head", source: bool = False) -> np.ndarray:
        """``part``'s outputs on rows ``X`` of the target (or, ``source``, the source)."""
        device = resolve_device(self.device)
        nets = self.networks_.to(device)
        scale = self._scale_source if source else self._scale
        encoder = nets["source_encoder" if source and "source_encoder" in nets else "encoder"]
        outs = []
        for start in range(0, len(X), 65536):
            xb = torch.as_tensor(scale(X[start:start + 65536]), dtype=torch.float32)
            z = encoder(xb.to(device))
            outs.append((z if part == "encoder" else nets[part](z)).cpu().numpy())
        nets.cpu()
        return np.concatenate(outs).reshape(len(X), -1)

    def transform(self, X: Any) -> np.ndarray:
        """The learned (domain-invariant) features of ``X`` (an array or torch data)."""
        from ..base import _is_torch_data, _per_batch

        if _is_torch_data(X):
            return _per_batch(self.transform, X)
        return self._outputs(self._check_predict_X(X), "encoder")

    def _predict_proba_raw(self, X: np.ndarray) -> np.ndarray:
        out = torch.as_tensor(self._outputs(X))
        return SupervisedLoss(self._kind).probabilities(out).numpy()

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        if self._kind == "regression":
            return self._outputs(X).ravel().astype(np.float64) * self.y_scale_ + self.y_mean_
        return self._predict_proba_raw(X).argmax(1)


def encode_batch(batch: dict, nets: nn.ModuleDict, loss: SupervisedLoss,
                 head_on_target: bool = False, encoder: str = "encoder",
                 source_encoder: str | None = None
                 ) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]:
    """One encoder pass over a paired batch and the supervised loss every method shares.

    Returns ``(z, n_source, out, task)``: features of the source rows then the target
    rows, the number of source rows, the head's outputs (source rows only, or every row
    with ``head_on_target``) and the supervised loss on the source rows plus the labelled
    target rows. ``encoder`` names the network in ``nets`` to use; ``source_encoder``, if
    given, the one for the source rows (heterogeneous transfer: the domains have
    different inputs). One pass over the concatenated domains costs half the kernel
    launches of two, which dominates on small networks.
    """
    xs, ys = batch["source"]
    xt, yt, mask = batch["target"]
    n = len(xs)
    if source_encoder is None:
        z = nets[encoder](torch.cat([xs, xt]))
    else:
        z = torch.cat([nets[source_encoder](xs), nets[encoder](xt)])
    out = nets["head"](z if head_on_target else z[:n])
    task = loss(out[:n] if head_on_target else out, ys)
    if loss.target_labels and bool(mask.any()):  # labelled target rows join the loss
        out_t = out[n:][mask] if head_on_target else nets["head"](z[n:][mask])
        task = task + loss(out_t, yt[mask])
    return z, n, out, task


def labelled_target(batch: dict, nets: nn.ModuleDict, z_t: torch.Tensor, loss: SupervisedLoss
                    ) -> torch.Tensor:
    """Supervised loss on the labelled rows of a target batch (0 when there are none)."""
    _, yt, mask = batch["target"]
    if not (loss.target_labels and bool(mask.any())):
        return z_t.sum() * 0.0
    return loss(nets["head"](z_t[mask]), yt[mask])


HiddenSizes = Sequence[int]
