"""Losses for imbalanced data: class weights (`--class_weights auto|none|w1,w2,...`) and focal loss (`--loss focal`).

A loss here is `fn(logits, labels, problem_type, weights, gamma) -> scalar tensor`, handed to Trainer as
`compute_loss_func`, so it works for transformers' heads and textune's alike.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from ...errors import TextuneError
from .labels import MULTI, REGRESSION

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}


def register_loss(name: str, fn: Callable[..., torch.Tensor]) -> None:
    """Register `fn(logits, labels, problem_type, weights, gamma)` for `--loss name`."""
    LOSSES[name] = fn


def default_loss(logits, labels, problem_type, weights=None, gamma=0.0):
    """The problem type's standard loss: cross-entropy, BCE (multi-label) or MSE (regression), optionally weighted."""
    if problem_type == REGRESSION:
        return nn.functional.mse_loss(logits.squeeze(-1), labels.float())
    if problem_type == MULTI:
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=weights)
    return nn.functional.cross_entropy(logits, labels.long(), weight=weights)


def _focal(logits, labels, problem_type, weights=None, gamma=2.0):
    """Focal loss (Lin et al. 2017): down-weights easy examples by (1 - p_true) ** gamma."""
    if problem_type == REGRESSION:
        raise TextuneError("--loss focal is for classification; regression uses mean squared error")
    if problem_type == MULTI:
        targets = labels.float()
        bce = nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=weights, reduction="none")
        p = torch.sigmoid(logits)
        p_true = p * targets + (1 - p) * (1 - targets)
        return ((1 - p_true) ** gamma * bce).mean()
    log_p = nn.functional.log_softmax(logits, dim=-1)
    log_p_true = log_p.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    loss = -((1 - log_p_true.exp()) ** gamma) * log_p_true
    if weights is not None:
        w = weights[labels.long()]
        return (w * loss).sum() / w.sum()
    return loss.mean()


register_loss("cross_entropy", default_loss)
register_loss("focal", _focal)


def class_weights(spec: str | None, encoded_labels: list, problem_type: str, num_labels: int) -> torch.Tensor | None:
    """Per-class weights from `--class_weights`: None for `none`, balanced inverse frequency for `auto`.

    For multi-label tasks they are BCE positive weights (negatives / positives per label).
    """
    if spec is None or spec == "none":
        return None
    if problem_type == REGRESSION:
        raise TextuneError("--class_weights is for classification; drop it for a regression task")
    if spec == "auto":
        if problem_type == MULTI:
            hot = np.asarray(encoded_labels, dtype=np.float64)
            positives = hot.sum(0).clip(min=1)
            return torch.tensor((len(hot) - positives) / positives, dtype=torch.float32)
        counts = np.bincount(np.asarray(encoded_labels, dtype=np.int64), minlength=num_labels).clip(min=1)
        return torch.tensor(len(encoded_labels) / (num_labels * counts), dtype=torch.float32)
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        raise TextuneError(f"--class_weights {spec!r}: use auto, none, or one number per class like 1,3") from None
    if len(values) != num_labels:
        raise TextuneError(f"--class_weights has {len(values)} values but the task has {num_labels} classes")
    return torch.tensor(values, dtype=torch.float32)


def build_compute_loss(name: str, problem_type: str, weights: torch.Tensor | None, gamma: float):
    """Trainer's `compute_loss_func`, or None when the model's own default loss is what was asked for."""
    if name not in LOSSES:
        raise TextuneError(f"--loss {name!r} is not known; use one of {', '.join(LOSSES)}")
    if name == "cross_entropy" and weights is None:
        return None
    fn = LOSSES[name]

    def compute_loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        w = None if weights is None else weights.to(logits.device)
        return fn(logits, labels, problem_type, w, gamma)

    return compute_loss
