"""パラメータ転移 — parameter transfer: reuse a trained network's weights.

Fine-tuning a network trained on the source (or a pretrained backbone), knowledge
distillation from a teacher into a student, and meta-learned initialisations.
"""

from .finetune import FineTune

__all__ = ["FineTune"]
