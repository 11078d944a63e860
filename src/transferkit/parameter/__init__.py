"""パラメータ転移 — parameter transfer: reuse a trained network's weights.

Fine-tuning a network trained on the source (or a pretrained backbone), knowledge
distillation from a teacher into a student, a shared encoder learned with several tasks
at once (multi-task), meta-learned initialisations (few-shot),
and a compatibility between inputs and class descriptions that reaches classes never
seen in training (zero-shot).
"""

from .distill import KnowledgeDistillation
from .finetune import FineTune
from .maml import MAML, AdaptedModel, draw_adaptation_grid
from .multitask import MultiTaskNet
from .protonet import ProtoNet, PrototypeClassifier
from .tasks import ArrayTasks, RotatedMoonsTasks, SinusoidTasks, Task, TaskSampler
from .zeroshot import ESZSL

__all__ = ["FineTune", "KnowledgeDistillation", "MAML", "AdaptedModel", "draw_adaptation_grid",
           "ProtoNet", "PrototypeClassifier", "TaskSampler", "Task", "RotatedMoonsTasks",
           "ArrayTasks", "SinusoidTasks", "ESZSL", "MultiTaskNet"]
