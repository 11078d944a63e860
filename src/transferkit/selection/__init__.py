"""Choosing a method: compare methods on one problem, and rank fitted models without
target labels (importance-weighted, deep embedded and reverse validation, entropy,
soft neighbourhood density) or with a few (target cross-validation)."""

from .compare import Leaderboard, compare
from .criteria import (
    CRITERIA,
    DEV,
    IWCV,
    PredictionEntropy,
    ReverseValidation,
    SelectionCriterion,
    SoftNeighborhoodDensity,
    TargetCV,
    get_criterion,
    select,
)

__all__ = ["compare", "Leaderboard", "select", "get_criterion", "SelectionCriterion", "IWCV",
           "DEV", "ReverseValidation", "PredictionEntropy", "SoftNeighborhoodDensity",
           "TargetCV", "CRITERIA"]
