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

Deep methods (torch, trained by the one :class:`~transferkit.nn.Trainer`; each uses
labelled target rows too when ``yt`` has some):

- :class:`DANN` -- a domain discriminator behind a gradient-reversal layer
  (Ganin et al., 2016).
- :class:`ADDA` -- a separate target encoder trained as a GAN generator against a
  discriminator of source features (Tzeng et al., 2017).
- :class:`DeepCORAL` -- the CORAL distance of the learned features as a loss
  (Sun & Saenko, 2016).
- :class:`DAN` -- multi-kernel MMD of the learned features (Long et al., 2015).
- :class:`MCD` -- two heads whose disagreement on the target the encoder minimises
  (Saito et al., 2018).
- :class:`MDD` -- margin disparity discrepancy with an adversarial auxiliary head
  (Zhang et al., 2019).
- :class:`CDAN` -- a discriminator conditioned on the class predictions, optionally
  entropy-weighted (Long et al., 2018).
"""

from .adda import ADDA
from .cdan import CDAN
from .coral import CORAL
from .dan import DAN
from .dann import DANN
from .deep_coral import DeepCORAL
from .fa import FA
from .mcd import MCD
from .mdd import MDD
from .sa import SA
from .tca import TCA

__all__ = ["CORAL", "SA", "TCA", "FA", "DANN", "ADDA", "DeepCORAL", "DAN", "MCD", "MDD",
           "CDAN"]
