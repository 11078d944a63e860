"""Instance transfer (事例転移): reweight source samples toward the target distribution."""

from ._base import BaseReweighting

__all__ = ["BaseReweighting"]
