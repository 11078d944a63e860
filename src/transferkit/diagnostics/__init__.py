"""When to transfer: measure how and how much the target differs from the source.

- :func:`diagnose` runs everything and returns a :class:`ShiftReport`.
- :func:`mmd_test`: kernel two-sample test with a permutation p-value (Gretton et al.
  2012), quadratic or block (B-test) estimator.
- :func:`proxy_a_distance`: domain-classifier distance (Ben-David et al. 2010).
- :func:`sliced_wasserstein`, :func:`coral_distance`: distribution distances.
- :func:`drift_ranking`: per-feature KS / chi-square tests (Rabanser et al. 2019).
- :func:`estimate_label_shift`: black-box shift estimation (Lipton et al. 2018).
- :func:`ben_david_bound`: the measurable terms of the adaptation bound.
"""

from .divergence import (
    coral_distance,
    domain_classifier_error,
    proxy_a_distance,
    sliced_wasserstein,
)
from .drift import drift_ranking
from .label_shift import ben_david_bound, estimate_label_shift
from .mmd import MMDResult, mmd_test
from .report import ShiftReport, diagnose

__all__ = [
    "MMDResult",
    "ShiftReport",
    "ben_david_bound",
    "coral_distance",
    "diagnose",
    "domain_classifier_error",
    "drift_ranking",
    "estimate_label_shift",
    "mmd_test",
    "proxy_a_distance",
    "sliced_wasserstein",
]
