"""Heterogeneous transfer (異種転移): source and target described by different features.

When the domains do not share their columns (another sensor, another questionnaire,
another hospital's record format), no method of the other families applies: they all
need one feature space. The methods here learn a map from each space into a shared one,
using the labels both domains share.

- :class:`HeDANN` -- DANN with one encoder per domain and a shared head and domain
  discriminator; uses a few labelled target rows (the seed tutorial, [Yonekawa+19]).
"""

from .hedann import HeDANN

__all__ = ["HeDANN"]
