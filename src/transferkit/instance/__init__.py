"""Instance transfer (事例転移): reweight source samples toward the target distribution.

Without target labels, a density-ratio estimate w(x) ≈ p_t(x)/p_s(x) reweights the source
(KLIEP, KMM, ULSIF, RULSIF, NearestNeighborsWeighting, ClassifierWeighting); with a few
target labels, boosting moves weight away from source samples that disagree with the
target (TrAdaBoost, TrAdaBoostR2, TwoStageTrAdaBoostR2).
"""

from ._base import BaseReweighting
from .classifier import ClassifierWeighting
from .kliep import KLIEP
from .kmm import KMM
from .lsif import RULSIF, ULSIF
from .nnw import NearestNeighborsWeighting
from .tradaboost import TrAdaBoost, TrAdaBoostR2, TwoStageTrAdaBoostR2

__all__ = ["BaseReweighting", "KLIEP", "KMM", "ULSIF", "RULSIF", "NearestNeighborsWeighting",
           "ClassifierWeighting", "TrAdaBoost", "TrAdaBoostR2", "TwoStageTrAdaBoostR2"]
