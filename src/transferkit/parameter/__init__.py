"""パラメータ転移 — parameter transfer: reuse a trained network's weights.

Fine-tuning a network trained on the source (or a pretrained backbone), knowledge
distillation from a teacher into a student, and meta-learned initialisations.
"""

from .distill import KnowledgeDistillation
from .finetune import FineTune
from .maml import MAML, AdaptedModel, draw_adaptation_grid
from .protonet import ProtoNet, PrototypeClassifier
from .tasks import ArrayTasks, RotatedMoonsTasks, SinusoidTasks, Task, TaskSampler

__all__ = ["FineTune", "KnowledgeDistillation", "MAML", "AdaptedModel", "draw_adaptation_grid",
           "ProtoNet", "PrototypeClassifier", "TaskSampler", "Task", "RotatedMoonsTasks",
           "ArrayTasks", "SinusoidTasks"]
