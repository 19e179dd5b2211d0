"""`--dropout auto`: a run that sees each training row at most once trains without dropout.

Dropout regularises against memorising rows the model has seen before. In a single pass over the data no
row repeats: each batch is fresh, so the training loss is already an unbiased estimate of the loss on new
text and there is nothing to memorise (the reason single-pass LLM pre-training runs without dropout). There
dropout only adds noise to the gradient, and a one-epoch fine-tune, the tutorial's setting, ends under-trained.
Runs of more than one epoch keep the model's rates: there rows repeat, and turning dropout off for their first
epoch only ("late dropout") gave a worse held-out loss in our measurements (docs/benchmarks.md).

Only the rates of `torch.nn` dropout layers change, for the duration of `train()`; the model's config and the
saved folder keep the checkpoint's rates. A model that keeps a dropout rate as a plain number (ModernBERT's
attention dropout, 0 by default) keeps that one; BERT-family attention reads its dropout layer's rate.
"""

from __future__ import annotations

import logging

from torch import nn
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

DROPOUT_MODES = ("auto", "model", "off")
_DROPOUT_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def dropout_is_off(mode: str, passes: int) -> bool:
    """Whether a run of `passes` epochs (Trainer's whole-epoch count, rounded up) trains without dropout."""
    return mode == "off" or (mode == "auto" and passes <= 1)


class TrainingDropout(TrainerCallback):
    """Sets the model's dropout layers to 0 for `train()` when `mode` says so, and back to their rates at its end."""

    def __init__(self, mode: str):
        if mode not in DROPOUT_MODES:
            raise ValueError(f"dropout mode must be one of {DROPOUT_MODES}, got {mode!r}")
        self.mode = mode
        self._rates: dict[nn.Module, float] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        # --auto_find_batch_size restarts training without on_train_end: decide again from the model's own rates
        self.restore()
        if model is None or not dropout_is_off(self.mode, state.num_train_epochs):
            return
        self._rates = {m: m.p for m in model.modules() if isinstance(m, _DROPOUT_LAYERS) and m.p > 0}
        for module in self._rates:
            module.p = 0.0
        if self._rates:
            logger.info("dropout off in %d layers for training (%s)", len(self._rates),
                        "--dropout off" if self.mode == "off" else
                        "one pass over the training data, where no row repeats; --dropout model keeps it")

    def on_train_end(self, args, state, control, **kwargs):
        self.restore()

    def restore(self) -> None:
        """Give the dropout layers back their rates (idempotent)."""
        for module, rate in self._rates.items():
            module.p = rate
        self._rates = {}
