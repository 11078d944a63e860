"""Knowledge distillation (知識蒸留): a trained teacher's knowledge into a student network.

The teacher is trained (or given) first; the student then learns on a *transfer set*
from the labels it has and from what the teacher says about the same inputs: its
softened outputs (response-based), its intermediate features (feature-based) or the
relations between examples in its embedding (relation-based). With the teacher trained
on the source and the student on target inputs this is cross-domain distillation, the
seed tutorial's second experiment.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._random import seed_from
from .._validation import CLASSIFICATION, DomainData, check_choice, check_positive
from ..base import TransferEstimator, _is_torch_module, make_base_estimator
from ..errors import MissingTargetLabelsError, ParameterError
from ..nn.estimator import TorchEstimator, _reset_parameters, standard_scaling
from ..nn.networks import mlp
from ..nn.trainer import Trainer, resolve_device
from ..registry import register
from ._distill_losses import hint_loss, rkd_angle_loss, rkd_distance_loss, soft_target_loss

__all__ = ["KnowledgeDistillation", "parse_kind"]

KINDS = ("response", "feature", "relation")
TRANSFER_SETS = ("target", "source", "both")
_CHUNK = 65536


def parse_kind(kind: str | Sequence[str]) -> tuple[str, ...]:
    """The distillation terms named by ``kind``, in the order of ``KINDS``.

    ``kind`` is one of ``"response"``, ``"feature"``, ``"relation"``, several joined by
    ``"+"`` (``"response+relation"``), or a list/tuple of them.
    """
    if isinstance(kind, str):
        parts = [p.strip() for p in kind.split("+")]
    elif isinstance(kind, (list, tuple, set, frozenset)):
        parts = [str(p) for p in kind]
    else:
        parts = []
    bad = [p for p in parts if p not in KINDS]
    if not parts or bad:
        raise ParameterError(
            f"kind must be 'response', 'feature', 'relation', several joined by '+' (e.g. "
            f"'response+relation') or a tuple of them; got {kind!r}.")
    return tuple(k for k in KINDS if k in parts)


class _Tap:
    """Catches one layer's activations with a forward hook: no model surgery.

    ``layer`` names a submodule (``module.get_submodule(layer)``, e.g. ``"encoder"`` or
    ``"3"`` or ``"backbone.layer4"``) whose *output* is caught; ``None`` on an
    ``nn.Sequential`` catches the *input* of its last child (the penultimate
    representation, the embedding before the output layer).
    """

    def __init__(self, module: nn.Module, layer: str | None, who: str) -> None:
        self.value: torch.Tensor | None = None
        if layer is None:
            if not isinstance(module, nn.Sequential) or len(module) < 2:
                raise ParameterError(
                    f"the {who} is a {type(module).__name__}, not an nn.Sequential, so it has "
                    f"no default feature layer; name one with {who}_layer=..., one of "
                    f"{_layer_names(module)}.")
            self._handle = module[-1].register_forward_pre_hook(self._catch_input)
            return
        try:
            target = module.get_submodule(str(layer))
        except AttributeError:
            raise ParameterError(
                f"{who}_layer={layer!r} is not a submodule of the {who}; choose one of "
                f"{_layer_names(module)}.") from None
        self._handle = target.register_forward_hook(self._catch_output)

    def _catch_input(self, mod: nn.Module, args: tuple) -> None:
        self.value = args[0]

    def _catch_output(self, mod: nn.Module, args: tuple, out: Any) -> None:
        self.value = out[0] if isinstance(out, (tuple, list)) else out

    def take(self, n: int) -> torch.Tensor:
        value, self.value = self.value, None
        if value is None:
            raise ParameterError("the chosen feature layer was not run by the forward pass; "
                                 "choose a layer the module's forward() uses.")
        return value.reshape(n, -1)

    def remove(self) -> None:
        self._handle.remove()


def _layer_names(module: nn.Module, limit: int = 12) -> list[str]:
    names = [n for n, _ in module.named_modules() if n]
    return names[:limit] + (["..."] if len(names) > limit else [])


def _as_logits(out: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(n, n_classes) logits; one binary logit z becomes [0, z] (softmax = sigmoid)."""
    out = out.reshape(len(out), -1)
    if n_classes == 2 and out.shape[1] == 1:
        return torch.cat([torch.zeros_like(out), out], dim=1)
    return out


def _is_fitted(est: Any) -> bool:
    if isinstance(est, TransferEstimator):
        return hasattr(est, "task_")
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except Exception:  # noqa: BLE001 - sklearn's NotFittedError or a TypeError for non-estimators
        return False
    return True


class _TeacherNet:
    """A teacher as a torch module on raw inputs: the module, its input scaling, its
    classes (None: ours, in order) and the map of its regression output to label units."""

    def __init__(self, module: nn.Module, prep: Callable[[np.ndarray], np.ndarray],
                 classes: np.ndarray | None, to_label: Callable[[np.ndarray], np.ndarray]
                 ) -> None:
        self.module, self.prep, self.classes, self.to_label = module, prep, classes, to_label


def _teacher_net(teacher: Any) -> _TeacherNet | None:
    """The torch network inside a teacher, or None when it has none (sklearn models)."""
    if _is_torch_module(teacher):
        return _TeacherNet(teacher, lambda X: X, None, lambda o: o)
    module = getattr(teacher, "module_", None)
    if module is not None and _is_torch_module(module) and hasattr(teacher, "_scale"):
        # TorchEstimator: standardised inputs, regression outputs in standardised units.
        return _TeacherNet(module, teacher._scale, getattr(teacher, "classes_", None),
                           lambda o: o * teacher.y_scale_ + teacher.y_mean_)
    nets = getattr(teacher, "networks_", None)
    if isinstance(nets, nn.ModuleDict) and "student" in nets and hasattr(teacher, "_scale"):
        # A fitted KnowledgeDistillation: its student teaches the next one.
        return _TeacherNet(nets["student"], teacher._scale, getattr(teacher, "classes_", None),
                           lambda o: o * teacher.y_scale_ + teacher.y_mean_)
    if isinstance(nets, nn.ModuleDict) and "encoder" in nets and "head" in nets \
            and hasattr(teacher, "_scale"):
        # A fitted deep adaptation method (DANN, DeepCORAL, ...): encoder then head.
        net = nn.Sequential(OrderedDict(encoder=nets["encoder"], head=nets["head"]))
        return _TeacherNet(net, teacher._scale, getattr(teacher, "classes_", None),
                           lambda o: o * teacher.y_scale_ + teacher.y_mean_)
    return None


class _DistillTask:
    """The student's loss: α·KD + (1 − α)·CE on labelled rows, + β·(hint and/or RKD)."""

    def __init__(self, nets: nn.ModuleDict, tap: _Tap | None, kinds: tuple[str, ...],
                 n_classes: int, tau: float, alpha: float, beta: float, tau_squared: bool,
                 rkd_weights: tuple[float, float]) -> None:
        self.module, self.nets, self.tap, self.kinds = nets, nets, tap, kinds
        self.n_classes = n_classes  # 0 for regression
        self.tau, self.alpha, self.beta = float(tau), float(alpha), float(beta)
        self.tau_squared = bool(tau_squared)
        self.w_dist, self.w_angle = (float(w) for w in rkd_weights)

    def _outputs(self, out: torch.Tensor) -> torch.Tensor:
        return _as_logits(out, self.n_classes) if self.n_classes else out.reshape(-1)

    def loss(self, batch: dict, progress: float) -> dict[str, torch.Tensor]:
        xt, t_out, *t_rest = batch["transfer"]
        lab = batch.get("labelled")
        n = len(xt)
        out = self._outputs(self.nets["student"](xt if lab is None else torch.cat([xt, lab[0]])))
        terms: dict[str, torch.Tensor] = {}
        respond = "response" in self.kinds
        total = out.sum() * 0.0
        if lab is not None:
            y = lab[1]
            ce = (F.cross_entropy(out[n:], y.long()) if self.n_classes
                  else F.mse_loss(out[n:], y))
            terms["ce"] = ce
            total = total + (1.0 - self.alpha if respond else 1.0) * ce
        if respond:
            kd = (soft_target_loss(out[:n], t_out, self.tau, tau_squared=self.tau_squared)
                  if self.n_classes else F.mse_loss(out[:n], t_out))
            terms["kd"] = kd
            total = total + self.alpha * kd
        if self.tap is not None:
            s_feat, t_feat = self.tap.take(len(out))[:n], t_rest[0]
            if "feature" in self.kinds:
                hint = hint_loss(s_feat, t_feat, self.nets["regressor"])
                terms["hint"] = hint
                total = total + self.beta * hint
            if "relation" in self.kinds:
                dist = rkd_distance_loss(s_feat, t_feat)
                angle = rkd_angle_loss(s_feat, t_feat)
                terms["rkd_distance"], terms["rkd_angle"] = dist, angle
                total = total + self.beta * (self.w_dist * dist + self.w_angle * angle)
        return {"loss": total, **terms}


@register(family="parameter", settings=("unsupervised", "semi-supervised", "supervised"),
          backend="torch")
class KnowledgeDistillation(TransferEstimator):
    """Knowledge distillation from a teacher into a student network (Hinton et al., 2015).

    Setting: parameter transfer. A teacher -- trained on the source, or any fitted model
    you pass -- teaches a (usually smaller) student on a *transfer set* of inputs; the
    student also learns from whatever labels the transfer set has. With
    ``transfer_set="target"`` (the default) the teacher comes from the source and the
    student learns on the target inputs: cross-domain distillation, the seed tutorial's
    second experiment; it needs no target labels (``yt=None`` distils on the teacher's
    soft targets alone) and uses those it gets.

    The student minimises, on each pair of minibatches (transfer rows, labelled rows),

        L = α · L_KD + (1 − α) · L_CE  [+ β · L_hint]  [+ β · (w_D · L_RKD-D + w_A · L_RKD-A)]

    - ``L_KD`` (``"response"`` in ``kind``): soft targets. With ŷ(τ) = softmax(z/τ),
      L_KD = KL(ŷᵀ(τ) ‖ ŷˢ(τ)) over the transfer rows -- the seed's
      Σ_i −ŷᵀ_i(τ) log ŷˢ_i(τ) less the teacher's entropy, a constant, so the same
      gradients (see :func:`~transferkit.parameter._distill_losses.soft_target_loss`).
      As in the seed there is no τ² factor unless ``tau_squared=True`` (Hinton et al.
      multiply by τ² so that changing τ does not rescale the soft term's gradients).
      For regression, L_KD is the squared error between student and teacher outputs
      (in standardised label units; τ is unused).
    - ``L_CE``: cross-entropy at τ = 1 (squared error for regression) on the labelled
      rows of the transfer set. Without ``"response"`` in ``kind`` its weight is 1.
    - ``L_hint`` (``"feature"``): FitNet hints (Romero et al., 2015): a linear regressor
      from the student's feature layer to the teacher's, trained with the student.
    - ``L_RKD`` (``"relation"``): relational KD (Park et al., 2019): Huber losses between
      the normalised pairwise distances (RKD-D) and the triplet angles (RKD-A) of the
      student's and the teacher's embeddings in each minibatch; the widths may differ.

    Teacher and student may have different architectures: the response term only needs
    the same classes, the hint term learns a regressor between the widths, and the
    relation term compares distances and angles, which have no width.

    Parameters
    ----------
    teacher : torch.nn.Module, estimator or None, default=None
        - ``None``: an MLP with ``teacher_hidden`` layers trained on the source
          ``(Xs, ys)`` (for ``teacher_epochs``; inputs standardised on the source when
          ``standardize``), then frozen.
        - a trained ``torch.nn.Module`` returning logits (one per class, classes in sorted
          order; or one logit for binary tasks), or one value in label units for
          regression. It is called on the raw features, as given to ``fit``, and never
          modified.
        - a fitted :class:`~transferkit.nn.TorchEstimator`, deep transferkit method
          (DANN, DeepCORAL, ...) or ``KnowledgeDistillation`` (its student): its network
          is used with its own input scaling, so feature and relation distillation reach
          its layers (a DANN teacher names its parts ``"encoder"`` and ``"head"``).
        - any other fitted classifier with ``predict_proba`` (scikit-learn, a transferkit
          method): its log-probabilities serve as logits (they differ from the logits by
          a per-row constant, which the softmax ignores at every τ); response only.
        - an unfitted estimator: cloned and fitted first -- a transferkit method on
          ``(Xs, ys, Xt, yt)``, anything else on ``(Xs, ys)``. (``sklearn.clone`` of a
          distiller returns unfitted teachers, which are then refitted.)
    student : torch.nn.Module or None, default=None
        ``None`` builds an MLP with ``hidden_layer_sizes`` and one logit per class. A
        given module is copied (and re-initialised from ``random_state`` unless
        ``reinit=False``); it takes standardised inputs (when ``standardize``) and
        returns logits (one per class, or one for binary) or one value for regression.
    kind : str or tuple of str, default="response"
        Which knowledge to distil: ``"response"``, ``"feature"``, ``"relation"``, or a
        combination (``"response+relation"`` or ``("response", "feature")``).
    tau : float, default=2.0
        Temperature τ > 0 of the soft targets.
    alpha : float, default=0.5
        Weight α ∈ [0, 1] of the response term; the labelled term gets 1 − α. ``alpha=0``
        trains the same student on the labels alone (same networks, data, steps).
    beta : float, default=1.0
        Weight β ≥ 0 of the feature and relation terms.
    tau_squared : bool, default=False
        Multiply the response term by τ² (Hinton et al.); ``False`` is the seed's formula.
    transfer_set : {"target", "source", "both"}, default="target"
        Inputs on which the student imitates the teacher, and whose labelled rows give
        L_CE: ``"target"`` (all target rows; labelled target rows in L_CE) -- the seed's
        experiment 2, cross-domain distillation; ``"source"`` (the source rows and their
        labels; target labels unused) -- the seed's experiment 1, distillation within the
        source domain; ``"both"`` (source and target rows; source and labelled target
        rows in L_CE).
    teacher_layer, student_layer : str or None, default=None
        Feature layers for the hint and relation terms, by submodule name
        (``module.get_submodule(name)``, e.g. ``"encoder"``, ``"2"``,
        ``"backbone.layer4"``); its output is caught by a forward hook. ``None`` on an
        ``nn.Sequential`` takes the input of its last module (the embedding before the
        output layer), which is what the default MLPs give.
    hidden_layer_sizes : tuple of int, default=(32,)
        Hidden layers of the default student.
    teacher_hidden : tuple of int, default=(128, 128)
        Hidden layers of the default teacher.
    teacher_epochs : int or None, default=None
        Epochs of the default teacher (``None``: ``epochs``).
    rkd_weights : tuple of float, default=(1.0, 2.0)
        (w_D, w_A): the distance and angle weights inside the relation term, in the 1:2
        ratio of Park et al. (25 and 50 in their metric-learning experiments).
    standardize : bool, default=True
        Scale each input feature by its pooled source+target mean and std before the
        student (and the default teacher's inputs by the source's); ``False`` feeds raw
        inputs.
    epochs : int, default=100
    batch_size : int or None, default=64
        Per domain (the transfer rows and the labelled rows are drawn separately, so a
        few labels are seen at every step).
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    optimizer : str, default="adam"
    device : str, default="auto"
    verbose : bool, default=False
    trainer_params : dict or None
        Further :class:`~transferkit.nn.Trainer` options.
    reinit : bool, default=True
        Re-initialise a given student before training.
    random_state : int or None

    Attributes
    ----------
    networks_ : torch.nn.ModuleDict
        ``student`` (and ``regressor``, the hint regressor, with ``"feature"``).
    teacher_ : object
        The teacher used: the one given, or the fitted default / cloned one.
    history_ : dict
        Per-epoch ``loss`` and its terms ``ce``, ``kd``, ``hint``, ``rkd_distance``,
        ``rkd_angle`` (those in use).

    Notes
    -----
    The seed's experiments in one call each (teacher trained on the source by default):
    experiment 1, distillation within the source domain, is
    ``KnowledgeDistillation(transfer_set="source").fit(Xs, ys, Xt)``; experiment 2,
    cross-domain distillation, is ``KnowledgeDistillation().fit(Xs, ys, Xt, yt)`` with the
    target labels the student has (NaN for the others). In ``benchmarks/bench_distill.py``
    (5 seeds, scarce target labels) response KD lifts the student from 0.70 to 0.87 on
    noisy digits (3 labels per class) and from 0.82 to 0.92 on the seed's Two Moons (5
    per class; relation KD 0.95), above the source-trained teachers (0.83 and 0.86).

    The teacher's outputs and features on the transfer set are computed once, before
    training (the teacher is frozen, in eval mode), so a large teacher costs one forward
    pass over the data. FitNets train the hint in a first stage and the soft targets in
    a second; here both are terms of one loss. ``transform`` returns the student's
    features at ``student_layer``.

    References
    ----------
    G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a Neural Network",
    NIPS Deep Learning Workshop, 2015 (arXiv:1503.02531). A. Romero, N. Ballas, S. E.
    Kahou, A. Chassang, C. Gatta and Y. Bengio, "FitNets: Hints for Thin Deep Nets", ICLR
    2015. W. Park, D. Kim, Y. Lu and M. Cho, "Relational Knowledge Distillation", CVPR
    2019.

    Examples
    --------
    >>> import numpy as np
    >>> import transferkit as tk
    >>> from transferkit.parameter.distill import KnowledgeDistillation
    >>> Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    >>> few = np.full(len(yt), np.nan)
    >>> few[:10] = yt[:10]
    >>> m = KnowledgeDistillation(epochs=30, random_state=0).fit(Xs, ys, Xt, few)
    >>> m.predict(Xt).shape
    (100,)
    """

    _backend = "torch"

    def __init__(self, teacher: Any = None, student: nn.Module | None = None,
                 kind: str | Sequence[str] = "response", tau: float = 2.0,
                 alpha: float = 0.5, beta: float = 1.0, tau_squared: bool = False,
                 transfer_set: str = "target", teacher_layer: str | None = None,
                 student_layer: str | None = None,
                 hidden_layer_sizes: Sequence[int] = (32,),
                 teacher_hidden: Sequence[int] = (128, 128), teacher_epochs: int | None = None,
                 rkd_weights: Sequence[float] = (1.0, 2.0), standardize: bool = True,
                 epochs: int = 100, batch_size: int | None = 64, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam", device: str = "auto",
                 verbose: bool = False, trainer_params: dict | None = None,
                 reinit: bool = True, random_state: Any = None) -> None:
        self.teacher = teacher
        self.student = student
        self.kind = kind
        self.tau = tau
        self.alpha = alpha
        self.beta = beta
        self.tau_squared = tau_squared
        self.transfer_set = transfer_set
        self.teacher_layer = teacher_layer
        self.student_layer = student_layer
        self.hidden_layer_sizes = hidden_layer_sizes
        self.teacher_hidden = teacher_hidden
        self.teacher_epochs = teacher_epochs
        self.rkd_weights = rkd_weights
        self.standardize = standardize
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.device = device
        self.verbose = verbose
        self.trainer_params = trainer_params
        self.reinit = reinit
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> tuple[str, ...]:
        kinds = parse_kind(self.kind)
        check_choice("transfer_set", self.transfer_set, TRANSFER_SETS)
        try:
            tau, alpha, beta = float(self.tau), float(self.alpha), float(self.beta)
        except (TypeError, ValueError):
            raise ParameterError(f"tau, alpha and beta must be numbers; got tau={self.tau!r}, "
                                 f"alpha={self.alpha!r}, beta={self.beta!r}.") from None
        if not (np.isfinite(tau) and tau > 0):
            raise ParameterError(f"tau (the temperature) must be a finite number > 0; got "
                                 f"{self.tau!r}. tau=1 is the plain softmax, larger is softer.")
        if not 0.0 <= alpha <= 1.0:
            raise ParameterError(f"alpha must be in [0, 1] (the weight of the distillation "
                                 f"term; the labels get 1 - alpha); got {self.alpha!r}.")
        check_positive("beta", beta)
        if not np.isfinite(beta):
            raise ParameterError(f"beta must be finite; got {self.beta!r}.")
        w = tuple(self.rkd_weights)
        if len(w) != 2 or any(not np.isfinite(v) or v < 0 for v in w):
            raise ParameterError(f"rkd_weights must be two finite weights >= 0 (distance, "
                                 f"angle); got {self.rkd_weights!r}.")
        if self.student is not None and not _is_torch_module(self.student):
            raise ParameterError(f"student must be a torch.nn.Module or None; got "
                                 f"{type(self.student).__name__}.")
        if self.teacher_epochs is not None and int(self.teacher_epochs) < 1:
            raise ParameterError(f"teacher_epochs must be >= 1 or None; got "
                                 f"{self.teacher_epochs!r}.")
        return kinds

    # ------------------------------------------------------------------ fit
    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        kinds = self._check_params()
        epochs = fit_params.pop("epochs", self.epochs)
        batch_size = fit_params.pop("batch_size", self.batch_size)
        verbose = bool(fit_params.pop("verbose", self.verbose))
        if fit_params:
            raise ParameterError(f"unknown fit parameters {sorted(fit_params)}; use epochs, "
                                 "batch_size or verbose.")
        classification = data.task == CLASSIFICATION
        n_classes = len(data.classes) if classification else 0
        seed = seed_from(self.random_state)

        # The transfer set and its labelled rows.
        lab_t = data.labeled
        if self.transfer_set == "target":
            X_tr, X_lab = data.Xt, data.Xt[lab_t]
            y_lab = data.yt[lab_t]
        elif self.transfer_set == "source":
            X_tr, X_lab, y_lab = data.Xs, data.Xs, data.ys
        else:
            X_tr = np.vstack([data.Xs, data.Xt])
            X_lab = np.vstack([data.Xs, data.Xt[lab_t]])
            y_lab = np.concatenate([data.ys, data.yt[lab_t]])
        if len(X_lab) == 0 and "response" not in kinds:
            raise MissingTargetLabelsError(
                f"kind={self.kind!r} without 'response' learns the student's features from "
                "the teacher but trains its output layer on labels only, and the transfer set "
                "has none: add 'response' to kind, pass labelled target rows in yt, or use "
                "transfer_set='both'.")

        # Scaling, as the deep adaptation methods do it.
        self.x_mean_, self.x_scale_ = standard_scaling(np.vstack([data.Xs, data.Xt]),
                                                       self.standardize)
        if classification:
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        else:
            self.y_mean_ = float(data.ys.mean())
            self.y_scale_ = float(data.ys.std()) or 1.0
            y_lab = (y_lab - self.y_mean_) / self.y_scale_
        self._n_classes = n_classes

        # The teacher, and what it says about the transfer set.
        self.teacher_ = self._fitted_teacher(data, seed, verbose)
        needs_features = "feature" in kinds or "relation" in kinds
        t_out, t_feat = self._teacher_outputs(X_tr, n_classes, needs_features)

        # The student (and the hint regressor), initialised from the seed.
        n_out = n_classes if classification else 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets = nn.ModuleDict({"student": self._build_student(data.Xs.shape[1], n_out,
                                                                 n_classes)})
            tap = (_Tap(nets["student"], self.student_layer, "student") if needs_features
                   else None)
            try:
                if "feature" in kinds:
                    with torch.no_grad():
                        nets.eval()  # a dry run must not touch batch-norm statistics
                        nets["student"](torch.zeros(2, data.Xs.shape[1]))
                        nets.train()
                    width = tap.take(2).shape[1]
                    nets["regressor"] = nn.Linear(width, t_feat.shape[1])
            except BaseException:
                tap.remove()
                raise
        f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        transfer = (f32(self._scale(X_tr)), f32(t_out)) + (
            (f32(t_feat),) if needs_features else ())
        batches = {"transfer": transfer}
        if len(X_lab):
            batches["labelled"] = (f32(self._scale(X_lab)), f32(y_lab))
        task = _DistillTask(nets, tap, kinds, n_classes, self.tau, self.alpha, self.beta,
                            self.tau_squared, tuple(self.rkd_weights))
        trainer = Trainer(epochs=epochs, batch_size=batch_size, optimizer=self.optimizer,
                          lr=self.lr, weight_decay=self.weight_decay, device=self.device,
                          progress=verbose, random_state=seed, **(self.trainer_params or {}))
        try:
            self.history_ = trainer.fit(task, batches)
        finally:
            if tap is not None:
                tap.remove()
        self.networks_ = nets.cpu().eval()

    def _fitted_teacher(self, data: DomainData, seed: int, verbose: bool) -> Any:
        teacher = self.teacher
        ys_user = data.classes[data.ys] if data.task == CLASSIFICATION else data.ys
        if teacher is None:
            est = TorchEstimator(
                task=data.task, hidden_layer_sizes=tuple(self.teacher_hidden),
                epochs=int(self.teacher_epochs or self.epochs), batch_size=self.batch_size,
                lr=self.lr, weight_decay=self.weight_decay, optimizer=self.optimizer,
                standardize=self.standardize, device=self.device, random_state=seed)
            return est.fit(data.Xs, ys_user, verbose=verbose)
        if _is_torch_module(teacher) or _is_fitted(teacher):
            return teacher
        if not hasattr(teacher, "fit"):
            raise ParameterError(
                f"teacher must be None, a trained torch.nn.Module or an estimator; got "
                f"{type(teacher).__name__}.")
        est = make_base_estimator(teacher, data.task, seed)
        if isinstance(est, TransferEstimator):
            if data.task == CLASSIFICATION:
                yt = np.empty(len(data.yt), dtype=object)
                yt[data.labeled] = data.classes[data.yt[data.labeled]]
            else:
                yt = data.yt
            return est.fit(data.Xs, ys_user, data.Xt, yt if data.labeled.any() else None)
        return est.fit(data.Xs, ys_user)

    @torch.no_grad()
    def _teacher_outputs(self, X: np.ndarray, n_classes: int, needs_features: bool
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        """The teacher's logits over our classes (-inf where it has no such class) or its
        standardised regression output, and its features, on the transfer rows."""
        teacher = self.teacher_
        net = _teacher_net(teacher)
        feats = None
        if net is None:
            if needs_features:
                raise ParameterError(
                    f"feature and relation distillation read the teacher's layers, but the "
                    f"teacher is a {type(teacher).__name__}, not a torch network; use "
                    "kind='response', or a torch.nn.Module / TorchEstimator teacher.")
            if n_classes:
                if not hasattr(teacher, "predict_proba"):
                    raise ParameterError(
                        f"the teacher ({type(teacher).__name__}) has no predict_proba, so it "
                        "gives no soft targets; use a probabilistic classifier or a torch "
                        "module returning logits.")
                with np.errstate(divide="ignore"):
                    raw = np.log(np.asarray(teacher.predict_proba(X), dtype=np.float64))
                classes = getattr(teacher, "classes_", None)
            else:
                raw = np.asarray(teacher.predict(X), dtype=np.float64)
                classes = None
        else:
            module = net.module
            was_training = module.training
            device = next((p.device for p in module.parameters()), torch.device("cpu"))
            dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()),
                         torch.float32)
            tap = _Tap(module, self.teacher_layer, "teacher") if needs_features else None
            outs, fs = [], []
            try:
                module.eval()
                for start in range(0, len(X), _CHUNK):
                    xb = torch.as_tensor(net.prep(X[start:start + _CHUNK]), dtype=dtype)
                    out = module(xb.to(device))
                    outs.append(out.reshape(len(xb), -1).double().cpu().numpy())
                    if tap is not None:
                        fs.append(tap.take(len(xb)).double().cpu().numpy())
            finally:
                module.train(was_training)
                if tap is not None:
                    tap.remove()
            raw = np.concatenate(outs)
            feats = np.concatenate(fs) if fs else None
            classes = net.classes
            if not n_classes:
                raw = net.to_label(raw)
        if not n_classes:
            raw = np.asarray(raw, dtype=np.float64).reshape(len(X), -1)
            if raw.shape[1] != 1:
                raise ParameterError(f"the teacher returns {raw.shape[1]} values per sample; a "
                                     "regression teacher must return one.")
            return (raw[:, 0] - self.y_mean_) / self.y_scale_, feats
        return self._map_classes(raw, classes, n_classes), feats

    def _map_classes(self, raw: np.ndarray, classes: np.ndarray | None, n_classes: int
                     ) -> np.ndarray:
        raw = _as_logits(torch.as_tensor(raw), n_classes if classes is None
                         else len(classes)).numpy()
        if classes is None:
            if raw.shape[1] != n_classes:
                raise ParameterError(
                    f"the teacher returns {raw.shape[1]} logits per sample but there are "
                    f"{n_classes} classes ({list(self.classes_)}); a torch teacher must "
                    "return one logit per class in sorted class order (or one for binary).")
            return raw
        ours = {c: i for i, c in enumerate(self.classes_.tolist())}
        cols = [(j, ours[c]) for j, c in enumerate(np.asarray(classes).tolist()) if c in ours]
        if not cols:
            raise ParameterError(f"the teacher's classes {list(classes)} share none with the "
                                 f"data's {list(self.classes_)}.")
        # Classes the teacher never saw get logit -inf (probability 0); classes only the
        # teacher knows are dropped (its softmax restricted to ours).
        out = np.full((len(raw), n_classes), -np.inf)
        for j, i in cols:
            out[:, i] = raw[:, j]
        return out

    def _build_student(self, n_in: int, n_out: int, n_classes: int) -> nn.Module:
        if self.student is None:
            return mlp(n_in, tuple(self.hidden_layer_sizes), n_out)
        student = copy.deepcopy(self.student)
        if self.reinit:
            _reset_parameters(student)
        with torch.no_grad():
            student.eval()
            got = int(student(torch.zeros(2, n_in)).reshape(2, -1).shape[1])
            student.train()
        ok = got == n_out or (n_classes == 2 and got == 1)
        if not ok:
            raise ParameterError(
                f"the student returns {got} outputs per sample but this task needs {n_out} "
                f"({'one logit per class' if n_classes else 'one value'}); change its last "
                "layer (return logits, no softmax).")
        return student.float()

    # ------------------------------------------------------------------ predict
    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_mean_) / self.x_scale_

    @torch.no_grad()
    def _outputs(self, X: np.ndarray, features: bool = False) -> np.ndarray:
        device = resolve_device(self.device)
        student = self.networks_["student"].to(device)
        tap = _Tap(student, self.student_layer, "student") if features else None
        outs = []
        try:
            for start in range(0, len(X), _CHUNK):
                xb = torch.as_tensor(self._scale(X[start:start + _CHUNK]), dtype=torch.float32)
                out = student(xb.to(device))
                if tap is not None:
                    out = tap.take(len(xb))
                elif self._n_classes:
                    out = _as_logits(out, self._n_classes)
                outs.append(out.reshape(len(xb), -1).cpu().numpy())
        finally:
            if tap is not None:
                tap.remove()
            student.cpu()
        return np.concatenate(outs)

    def transform(self, X: Any) -> np.ndarray:
        """The student's features of ``X`` at ``student_layer`` (its embedding)."""
        return self._outputs(self._check_predict_X(X), features=True)

    def _predict_proba_raw(self, X: np.ndarray) -> np.ndarray:
        return torch.softmax(torch.as_tensor(self._outputs(X)), dim=1).numpy()

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        if not self._n_classes:
            return self._outputs(X).ravel().astype(np.float64) * self.y_scale_ + self.y_mean_
        return self._outputs(X).argmax(1)
