"""Datasets with a known shift: synthetic generators, and table loaders for user data."""

from .synthetic import DensityRatio, make_covariate_shift, make_digits_shift, make_two_moons_shift
from .tables import encode_features, load_table, split_domains

__all__ = ["make_two_moons_shift", "make_covariate_shift", "make_digits_shift", "DensityRatio",
           "load_table", "split_domains", "encode_features"]
