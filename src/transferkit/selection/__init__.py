"""Choosing a method: compare methods on one problem, rank fitted models without target
labels (importance-weighted, deep embedded and reverse validation, entropy, soft
neighbourhood density, average thresholded confidence, mixed-sample probes) or with a
few (target cross-validation), choose one (:func:`choose`) and judge whether transfer
helped (:func:`judge`)."""

from .atc import ATC
from .choice import AUTO_CRITERIA, CAUTIOUS_GUARD_SE, Choice, choose
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
    paired_choice,
    select,
)
from .mixval import MixVal
from .verdict import Verdict, judge, paired_difference

CRITERIA.update({ATC.name: ATC, MixVal.name: MixVal})

__all__ = ["compare", "Leaderboard", "select", "get_criterion", "SelectionCriterion", "IWCV",
           "DEV", "ReverseValidation", "PredictionEntropy", "SoftNeighborhoodDensity",
           "TargetCV", "ATC", "MixVal", "CRITERIA", "paired_choice", "choose", "Choice",
           "AUTO_CRITERIA", "CAUTIOUS_GUARD_SE", "judge", "Verdict", "paired_difference"]
