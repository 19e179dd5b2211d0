"""Classification heads on any encoder: a registry selectable by name (`--head`, `--pooling`).

The default (`linear` with `cls` pooling) is transformers' own AutoModelForSequenceClassification, so
the saved folder loads with plain transformers. Any other head wraps `AutoModel` in `EncoderClassifier`;
textune saves and reloads it (Predictor, serve) by the head's registered name.

Example:
    >>> import torch.nn as nn
    >>> from textune import register_head
    >>> register_head("two_layer", lambda hidden, num_labels, dropout: nn.Sequential(
    ...     nn.Linear(hidden, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, num_labels)))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ...errors import TextuneError
from .arguments import DEFAULT_HEAD  # noqa: F401  (defined where the flag is, so --help loads no torch)
from .losses import default_loss

POOLINGS = ("cls", "mean")


@dataclass(frozen=True)
class HeadSpec:
    """A head factory `(hidden_size, num_labels, dropout) -> nn.Module` and the pooling it defaults to."""

    build: Callable[[int, int, float], nn.Module]
    pooling: str = "cls"


HEADS: dict[str, HeadSpec] = {}


def register_head(name: str, build: Callable[[int, int, float], nn.Module], pooling: str = "cls") -> None:
    """Register a head under `name` for `--head name`; `build(hidden_size, num_labels, dropout)` makes it.

    The head gets the pooled encoder output (batch, hidden) and returns logits (batch, num_labels).
    A run trained with it reloads in any process that has registered the same name.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    HEADS[name] = HeadSpec(build, pooling)


def head_spec(name: str) -> HeadSpec:
    if name not in HEADS:
        raise TextuneError(
            f"--head {name!r} is not registered (known: {', '.join(HEADS)}); "
            "import the module that calls register_head before training or loading"
        )
    return HEADS[name]


def head_code_outside_textune(name: str) -> str | None:
    """The module defining a head that textune does not ship (it must be imported to load the model), else None.

    A head textune does not know at all (not registered in this process) counts as outside too: "unknown".
    """
    spec = HEADS.get(name)
    if spec is None:
        return "unknown"
    module = getattr(spec.build, "__module__", None) or "unknown"
    return None if module == __name__ or module.startswith(__package__ + ".") else module


def _linear(hidden: int, num_labels: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_labels))


def _mlp(hidden: int, num_labels: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, num_labels))


class MultiSampleDropout(nn.Module):
    """Averages the logits of several dropout masks in training (Inoue 2019); one plain pass in eval."""

    def __init__(self, hidden: int, num_labels: int, dropout: float, samples: int = 5):
        super().__init__()
        self.dropout = nn.Dropout(max(dropout, 0.3))
        self.classifier = nn.Linear(hidden, num_labels)
        self.samples = samples

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.classifier(pooled)
        return torch.stack([self.classifier(self.dropout(pooled)) for _ in range(self.samples)]).mean(0)


register_head("linear", _linear)
register_head("mlp", _mlp)
register_head("mean_pool", _linear, pooling="mean")
register_head("multisample_dropout", MultiSampleDropout)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, seq, hidden) to (batch, hidden): the first token, or the mean over real tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)


class EncoderClassifier(nn.Module):
    """An `AutoModel` encoder, a pooling step and a registered head; returns transformers-style outputs.

    Its loss is the problem type's default (cross-entropy, BCE, MSE) unless the Trainer gets a custom loss.
    """

    def __init__(self, encoder: nn.Module, head: str, pooling: str, num_labels: int, problem_type: str,
                 dropout: float = 0.1):
        super().__init__()
        if pooling not in POOLINGS:
            raise TextuneError(f"--pooling {pooling!r} is not known; use one of {', '.join(POOLINGS)}")
        self.encoder = encoder
        self.config = encoder.config  # Trainer and save code look for model.config
        self.head = head_spec(head).build(encoder.config.hidden_size, num_labels, dropout)
        self.pooling = pooling
        self.num_labels = num_labels
        self.problem_type = problem_type

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        logits = self.head(pool(hidden, attention_mask, self.pooling))
        loss = None
        if labels is not None:
            loss = default_loss(logits, labels, self.problem_type)
        return SequenceClassifierOutput(loss=loss, logits=logits)

