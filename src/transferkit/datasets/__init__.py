"""Datasets with a known shift: synthetic generators and bundled real data."""

from .synthetic import DensityRatio, make_covariate_shift, make_digits_shift, make_two_moons_shift

__all__ = ["make_two_moons_shift", "make_covariate_shift", "make_digits_shift", "DensityRatio"]
