"""Feature transfer (特徴転移): learn a representation in which the domains look alike.

Instead of reweighting source samples (instance transfer), feature-based methods change
the features themselves, so that a model trained on the labelled source works on the
target in the new representation. Every method here exposes
``transform(X, domain="source" | "target")`` for that representation and fits a base
estimator on it; ``predict`` maps target inputs with the target-side transform first.

Shallow methods (closed form, scikit-learn backend):

- :class:`CORAL` -- re-colour the source covariance into the target's
  (Sun, Feng & Saenko, 2016); unsupervised.
- :class:`SA` -- align the source PCA subspace with the target's (Fernando et al., 2013);
  unsupervised.
- :class:`TCA` -- a kernel embedding that keeps variance and shrinks the MMD between the
  domains (Pan et al., 2011); unsupervised.
- :class:`FA` -- feature augmentation ``[x, x, 0]`` / ``[x, 0, x]`` (Daumé III, 2007);
  needs labelled target samples.
"""

from .coral import CORAL
from .fa import FA
from .sa import SA
from .tca import TCA

__all__ = ["CORAL", "SA", "TCA", "FA"]
