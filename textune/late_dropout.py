"""Late dropout: the model's dropout layers are off for the first pass over the training data, on after it.

Dropout regularises against memorising rows the model has seen before. In the first epoch no training row has
been seen before: each batch is fresh data, so the training loss is already an unbiased estimate of the loss on
new text and there is nothing to memorise (the reason single-pass LLM pre-training runs without dropout). There
dropout only adds noise to the gradient, and a one-epoch fine-tune, the tutorial's setting, ends under-trained.
From the second epoch on, rows repeat and the model's own rates apply. "Late dropout" is the name Liu et al.
(2023, "Dropout Reduces Underfitting") give this schedule.

Only the rates of `torch.nn` dropout layers change, for the duration of `train()`; the model's config and the
saved folder keep the checkpoint's rates.
"""

from __future__ import annotations

import logging

from torch import nn
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

_DROPOUT_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def in_first_pass(epoch: float | None) -> bool:
    """Whether training at `epoch` (Trainer's fractional count of passes) is still in the first pass."""
    return (epoch or 0.0) < 1.0 - 1e-9


class LateDropout(TrainerCallback):
    """Sets dropout layers to 0 while `state.epoch` is in the first pass, back to their rates after and at the end."""

    def __init__(self):
        self._rates: dict[nn.Module, float] = {}

    def _apply(self, model: nn.Module, epoch: float | None) -> None:
        if not self._rates:
            self._rates = {m: m.p for m in model.modules() if isinstance(m, _DROPOUT_LAYERS) and m.p > 0}
        off = in_first_pass(epoch)
        if self._rates and off != all(m.p == 0 for m in self._rates):
            for module, rate in self._rates.items():
                module.p = 0.0 if off else rate
            logger.info("dropout %s for %d layers (%s)", "off" if off else "back on", len(self._rates),
                        "first pass over the training data; --late_dropout false keeps it" if off
                        else "second epoch: training rows now repeat")

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self._apply(model, state.epoch)

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self._apply(model, state.epoch)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        for module, rate in self._rates.items():
            module.p = rate
