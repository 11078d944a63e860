"""The one training loop every deep method in transferkit uses.

A method supplies a :class:`TrainTask` (its networks and its loss); the :class:`Trainer`
owns everything else: device, seeding, minibatches, the optimiser, threads, progress
and the loss history.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import nn

from .._random import seed_from

__all__ = ["Trainer", "TrainTask", "resolve_device", "seed_from"]


class TrainTask(Protocol):
    """What a method gives the Trainer.

    ``module`` holds every trainable parameter; ``loss(batch, progress)`` returns a dict
    of named loss terms whose ``"loss"`` entry is minimised (the others are logged).
    ``progress`` runs from 0 to 1 over training (for schedules such as DANN's λ).
    """

    module: nn.Module

    def loss(self, batch: tuple[torch.Tensor, ...], progress: float) -> dict[str, torch.Tensor]:
        ...


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else is used as given."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def _thread_policy(n_threads: int | None) -> Iterator[None]:
    # Small networks lose more to thread hand-offs than they gain from parallel GEMMs:
    # on a busy 2-core machine two intra-op threads made a 2x10x10x1 MLP ~100x slower.
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Trainer:
    """Minibatch training with a seeded shuffle, an optimiser and a loss history.

    Parameters
    ----------
    epochs : int, default=100
    batch_size : int or None, default=32
        ``None`` trains full-batch. A batch larger than the data is clipped to the data
        size, so an epoch always has at least one step.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    device : str, default="auto"
    num_threads : int, "auto" or None, default="auto"
        Intra-op threads while training; "auto" uses one thread for small networks
        (under 200 000 parameters) and leaves torch's setting otherwise.
    progress : bool, default=False
        Show a tqdm progress bar over epochs.
    random_state : int or None

    Attributes
    ----------
    history_ : dict[str, list[float]]
        Mean of every loss term per epoch.
    """

    def __init__(self, epochs: int = 100, batch_size: int | None = 32, optimizer: str = "adam",
                 lr: float = 1e-3, weight_decay: float = 0.0, device: str = "auto",
                 num_threads: int | str | None = "auto", progress: bool = False,
                 random_state: Any = None) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.device = device
        self.num_threads = num_threads
        self.progress = progress
        self.random_state = random_state

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        name = self.optimizer.lower()
        params = list(params)
        # The fused kernels update all tensors in one call: for small networks the
        # optimiser step is most of the step time, and fused halves it on the CPU.
        fused = all(p.dtype.is_floating_point and p.device.type in ("cpu", "cuda")
                    for p in params) or None
        if name == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay,
                                    fused=fused)
        if name == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay,
                                     fused=fused)
        if name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=0.9,
                                   weight_decay=self.weight_decay)
        raise ValueError(f"unknown optimizer {self.optimizer!r}; use 'adam', 'adamw' or 'sgd'.")

    def _threads(self, module: nn.Module) -> int | None:
        if self.num_threads == "auto":
            n_params = sum(p.numel() for p in module.parameters())
            return 1 if n_params < 200_000 else None
        return self.num_threads  # type: ignore[return-value]

    def fit(self, task: TrainTask, tensors: tuple[torch.Tensor, ...]) -> dict[str, list[float]]:
        """Train ``task.module`` on ``tensors`` (equal first dimension) and return the history."""
        n = int(tensors[0].shape[0])
        if n == 0:
            raise ValueError("cannot train on an empty data set.")
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)
        gen = torch.Generator().manual_seed(seed)
        bs = n if self.batch_size is None else max(1, min(int(self.batch_size), n))
        steps = math.ceil(n / bs)
        module = task.module.to(device)
        tensors = tuple(t.to(device) for t in tensors)
        opt = self.make_optimizer([p for p in module.parameters() if p.requires_grad])
        history: dict[str, list[float]] = {}
        bar = range(self.epochs)
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(bar, desc="training", leave=False)
        with _thread_policy(self._threads(module)):
            module.train()
            for epoch in bar:
                order = torch.randperm(n, generator=gen).to(device)
                # Accumulate on the device: a float() per step would sync a GPU every step.
                sums: dict[str, torch.Tensor] = {}
                for step in range(steps):
                    idx = order[step * bs:(step + 1) * bs]
                    progress = (epoch * steps + step) / max(1, self.epochs * steps)
                    terms = task.loss(tuple(t[idx] for t in tensors), progress)
                    opt.zero_grad(set_to_none=True)
                    terms["loss"].backward()
                    opt.step()
                    for k, v in terms.items():
                        sums[k] = sums[k] + v.detach() if k in sums else v.detach()
                for k, v in sums.items():
                    history.setdefault(k, []).append(float(v) / steps)
            module.eval()
        self.history_ = history
        return history
