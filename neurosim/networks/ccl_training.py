"""Training loop of CCL and its baselines, as in the authors' code.

* one SGD optimiser per parameter group (CCL: ``forward`` and ``feedback``), each with
  its own learning rate and gradient clipping by global norm;
* optional gradient centralisation (subtract from each weight gradient its mean over
  the input axes; biases exempt);
* optional linear warm-up: during the first ``warmup`` steps of training the loss of
  batch ``i`` of the epoch is multiplied by ``(i + 1) / warmup`` (the authors' code: the
  condition counts steps since the start, the multiplier the batch index within the
  epoch, so it is a ramp only while ``warmup`` is below the batches per epoch);
* optional cosine annealing over ``cosine_epochs`` epochs down to ``eta_min``;
* :func:`fit`: 90/10 train/validation split, and the weights of the epoch with the
  lowest validation loss kept for the test (the authors' model selection).

A model here has ``training_loss(x, labels) -> (loss, output)``, ``parameter_groups()``
and ``forward(x)``; :class:`~neurosim.networks.ccl.CCLNet` and
:class:`~neurosim.networks.feedback_alignment.AlignmentMLP` do.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm


def _per_group(value: Any, groups: Mapping[str, Any], what: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        missing = sorted(set(groups) - set(value))
        if missing:
            raise ValueError(f"Trainer: {what} has no value for parameter group(s) {missing}")
        return dict(value)
    return {g: value for g in groups}


def centralize_gradients(params: list[nn.Parameter]) -> None:
    """Subtract from each weight gradient (2-D or 4-D) its mean over the input axes."""
    with torch.no_grad():
        for p in params:
            if p.grad is not None and p.grad.ndim in (2, 4):
                p.grad -= p.grad.mean(dim=tuple(range(1, p.grad.ndim)), keepdim=True)


class Trainer:
    """SGD per parameter group, with the options of the authors' code.

    Args:
        model: see the module docstring.
        lr, momentum, weight_decay, clip: a number for every group or a dict by group
            name (``clip=None``: no clipping).
        gradient_centralization, warmup, cosine_epochs, eta_min: see the module docstring.
    """

    def __init__(self, model: nn.Module, *, lr: float | Mapping[str, float] = 1.0,
                 momentum: float | Mapping[str, float] = 0.0,
                 weight_decay: float | Mapping[str, float] = 0.0,
                 clip: float | None | Mapping[str, float | None] = 1.0,
                 gradient_centralization: bool = False, warmup: int = 0, cosine_epochs: int = 0,
                 eta_min: float = 1e-3, data_parallel: Any = None) -> None:
        self.model = model
        #: a :class:`~neurosim.distributed.Partition` when each process trains on its rows
        #: of every batch: the gradients are summed before clipping and stepping (as DDP)
        self.dp = data_parallel
        self.groups = model.parameter_groups()
        lrs = _per_group(lr, self.groups, "lr")
        moms = _per_group(momentum, self.groups, "momentum")
        wds = _per_group(weight_decay, self.groups, "weight_decay")
        self.clip = _per_group(clip, self.groups, "clip")
        for g in self.groups:
            if not lrs[g] > 0:
                raise ValueError(f"Trainer: lr of group {g!r} must be > 0, got {lrs[g]}")
        self.optimizers = {g: torch.optim.SGD(ps, lr=lrs[g], momentum=moms[g], weight_decay=wds[g])
                           for g, ps in self.groups.items() if ps}
        if warmup < 0 or cosine_epochs < 0:
            raise ValueError("Trainer: warmup and cosine_epochs must be >= 0")
        self.warmup, self.gradient_centralization = int(warmup), bool(gradient_centralization)
        self.schedulers = ({g: torch.optim.lr_scheduler.CosineAnnealingLR(o, cosine_epochs, eta_min)
                            for g, o in self.optimizers.items()} if cosine_epochs else {})
        #: optimiser steps taken so far (the warm-up counts these)
        self.global_step = 0

    def step(self, x: torch.Tensor, labels: torch.Tensor, batch_index: int = 0,
             whole: int | None = None) -> tuple[float, torch.Tensor | None]:
        """One update from a batch; returns (loss, output) before the update. In a
        data-parallel run ``x`` is this process's rows of a batch of ``whole`` samples:
        its mean loss is weighted by its share, and the gradients summed over the
        processes, so the update is the whole batch's (``output`` then this process's)."""
        if self.dp is not None and whole is None:
            raise ValueError("Trainer.step: a data-parallel trainer needs whole= (the samples of the "
                             "whole batch, of which x is this process's share); fit() passes it")
        self.model.train()
        for o in self.optimizers.values():
            o.zero_grad(set_to_none=True)
        weight = 1.0 if self.dp is None else len(x) / whole
        output = None
        loss_value = torch.zeros((), dtype=torch.float64)
        if len(x):  # (a process may have no rows of a last, partial batch)
            loss, output = self.model.training_loss(x, labels)
            scaled = loss * ((batch_index + 1) / self.warmup) if self.global_step < self.warmup else loss
            (scaled * weight).backward()
            loss_value = loss.detach().double().cpu() * weight
            output = output.detach()
        if self.dp is not None:
            import torch.distributed as dist

            from neurosim.distributed import sum_gradients

            sum_gradients([p for ps in self.groups.values() for p in ps], self.dp)
            device = next(p for ps in self.groups.values() for p in ps).device
            total = loss_value.to(device)
            dist.all_reduce(total, group=self.dp.group)
            loss_value = total.cpu()
        for g, params in self.groups.items():
            if self.gradient_centralization:
                centralize_gradients(params)
            if self.clip[g] is not None and params:
                nn.utils.clip_grad_norm_(params, self.clip[g])
        for o in self.optimizers.values():
            o.step()
        self.global_step += 1
        return float(loss_value), output

    def end_epoch(self) -> None:
        for s in self.schedulers.values():
            s.step()


@dataclass
class Split:
    """Normalised samples and labels (``labels`` None for reconstruction)."""

    x: torch.Tensor
    labels: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.x)


def train_validation_split(x: torch.Tensor, labels: torch.Tensor | None, seed: int,
                           validation_fraction: float = 0.1) -> tuple[Split, Split]:
    """A seeded random split, ``validation_fraction`` of the samples kept out for validation."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = int(round(len(x) * validation_fraction))
    if n_val < 1 or n_val >= len(x):
        raise ValueError(f"{len(x)} samples are too few to hold out {validation_fraction:.0%} for "
                         "validation and train on the rest")
    val, train = order[:n_val], order[n_val:]
    pick = (lambda idx: labels[idx]) if labels is not None else (lambda idx: None)
    return Split(x[train], pick(train)), Split(x[val], pick(val))


@torch.no_grad()
def evaluate(model: Any, data: Split, batch: int = 1000) -> dict[str, float]:
    """Cross-entropy and accuracy of the forward network (MSE for reconstruction)."""
    model.eval()
    total, correct = 0.0, 0
    for lo in range(0, len(data), batch):
        x = data.x[lo:lo + batch]
        out = model(x)
        if data.labels is None:
            total += float(F.mse_loss(out, x, reduction="sum")) / x[0].numel()
        else:
            y = data.labels[lo:lo + batch]
            total += float(F.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
    result = {"loss": total / max(1, len(data))}
    if data.labels is not None:
        result["accuracy"] = correct / max(1, len(data))
    return result


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None


def fit(model: Any, trainer: Any, train: Split, validation: Split, *, epochs: int,
        batch: int, seed: int, progress: bool | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        data_parallel: Any = None) -> FitResult:
    """Train for ``epochs``; keep the weights with the lowest validation loss.

    ``trainer`` has ``step(x, labels, batch_index) -> (loss, output)`` and ``end_epoch()``
    (a :class:`Trainer`, or a :class:`~neurosim.networks.ccl_rule_net.CCLRuleNet`, which
    is its own); ``model`` is called on inputs and has ``state_dict``/``load_state_dict``.
    Samples are shuffled each epoch from ``seed``. ``model`` holds the best weights
    when this returns. ``data_parallel``: each process trains on its contiguous share of
    every batch (``trainer`` a :class:`Trainer` given the same partition); every process
    validates on all of ``validation``, so all keep the same best weights. This is one
    process's training only for losses that are means over samples and models without
    batch statistics (the MLP with the code's loss; not BatchNorm, not the normalised
    loss's cross-sample term).
    """
    if epochs < 1 or batch < 1:
        raise ValueError(f"fit: epochs and batch must be >= 1, got {epochs} and {batch}")
    if getattr(trainer, "dp", None) is not data_parallel:
        raise ValueError("fit: give the trainer and fit the same data_parallel partition (a trainer "
                         "without it would not sum the processes' gradients)")
    gen = torch.Generator().manual_seed(seed)
    result = FitResult()
    best = math.inf
    n_batches = math.ceil(len(train) / batch)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(train), generator=gen)
        losses = []
        bar = tqdm(range(n_batches), desc=f"training epoch {epoch}/{epochs}", unit="batch",
                   disable=progress is False, leave=False)
        for i in bar:
            idx = order[i * batch:(i + 1) * batch]
            whole = len(idx)
            if data_parallel is not None:  # this process's rows of the batch
                idx = torch.tensor_split(idx, data_parallel.size)[data_parallel.rank]
            labels = train.labels[idx] if train.labels is not None else None
            if data_parallel is not None:
                loss, _ = trainer.step(train.x[idx], labels, i, whole=whole)
            else:
                loss, _ = trainer.step(train.x[idx], labels, i)
            if not np.isfinite(loss):
                raise FloatingPointError(f"training diverged: loss {loss} at epoch {epoch}, batch {i}; "
                                         "lower the learning rate or clip the gradients")
            losses.append(loss)
        bar.close()
        trainer.end_epoch()
        val = evaluate(model, validation)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                  **{f"validation_{k}": v for k, v in val.items()}}
        result.history.append(record)
        if val["loss"] < best:
            best, result.best_epoch = val["loss"], epoch
            result.best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(epoch, record)
    if result.best_state is not None:
        model.load_state_dict(result.best_state)
    return result
