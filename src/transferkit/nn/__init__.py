"""Torch building blocks: the one Trainer, default networks, a scikit-learn wrapper."""

from .estimator import MLPClassifier, MLPRegressor, TorchEstimator
from .networks import mlp
from .trainer import Trainer, TrainTask, resolve_device, seed_from

__all__ = ["Trainer", "TrainTask", "TorchEstimator", "MLPClassifier", "MLPRegressor", "mlp",
           "resolve_device", "seed_from"]
