"""One error hierarchy for transferkit.

Every error a user can cause is a :class:`TransferkitError`, which is also a
``ValueError`` so that code written for scikit-learn keeps working. Each message says
what is wrong and how to fix it; the CLI prints it as a single line.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SkNotFittedError

__all__ = [
    "TransferkitError",
    "InputError",
    "NonFiniteInputError",
    "FeatureMismatchError",
    "EmptyDomainError",
    "SingleClassError",
    "LabelLengthError",
    "MissingTargetLabelsError",
    "UnknownMethodError",
    "MissingColumnError",
    "UnsupportedTaskError",
    "NotFittedError",
    "LoadError",
    "ParameterError",
]


class TransferkitError(ValueError):
    """Base class of every user-facing transferkit error."""


class InputError(TransferkitError):
    """The data given to ``fit``/``predict`` cannot be used as it is."""


class NonFiniteInputError(InputError):
    """An input array holds NaN or infinity."""


class FeatureMismatchError(InputError):
    """Source and target (or train and predict) have different numbers of features."""


class EmptyDomainError(InputError):
    """A domain has no samples."""


class SingleClassError(InputError):
    """The labelled source data of a classification task holds a single class."""


class LabelLengthError(InputError):
    """A label vector does not have one entry per sample."""


class MissingTargetLabelsError(InputError):
    """The method needs some labelled target samples and ``yt`` has none."""


class UnknownMethodError(TransferkitError):
    """No registered method has that name."""


class MissingColumnError(InputError):
    """A table lacks a column the user named (for example the label column)."""


class UnsupportedTaskError(TransferkitError):
    """The method does not handle this task type (classification / regression)."""


class NotFittedError(TransferkitError, _SkNotFittedError):
    """The estimator is used before ``fit``."""


class LoadError(TransferkitError):
    """A saved model folder is missing, corrupt or written by an incompatible version."""


class ParameterError(TransferkitError):
    """A hyper-parameter has a value the method cannot use."""


class DatasetUnavailableError(TransferkitError):
    """A data set that an installed package should ship is missing or unreadable.

    The message names what is missing and the exact command that installs it.
    """
