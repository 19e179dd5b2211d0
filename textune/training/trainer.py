"""textune's Trainer: transformers' own, with the new head's parameters at `--head_learning_rate`, dropout as
`--dropout` says (by default none in a run that sees each training row once), and evaluation in dataset order."""

from __future__ import annotations

import logging

from transformers import Trainer

from .dropout import TrainingDropout
from ..errors import TextuneError
from .head_learning_rate import new_parameter_names, split_head_parameters

logger = logging.getLogger(__name__)

# What torch's Optimizer.load_state_dict raises when the saved parameter groups do not match the optimizer's.
_OPTIMIZER_LAYOUT_ERRORS = ("loaded state dict has a different number of parameter groups",
                            "loaded state dict contains a parameter group that doesn't match")


class TextuneTrainer(Trainer):
    """transformers.Trainer whose optimizer gives the parameters the checkpoint lacked a rate of their own, and
    which trains without dropout where `args.dropout` says so."""

    def __init__(self, *args, loss_is_scaled_for_ga: bool | None = None, evaluation_outputs=None, **kwargs):
        """`loss_is_scaled_for_ga`: Trainer's attribute of that name, settable by a task's `training_options`
        (None: Trainer decides from the model, as plain Trainer does). `evaluation_outputs`: a task's
        `(model, inputs) -> outputs` computing evaluation's outputs instead of the forward pass's (a generating
        task's generated ids, as Seq2SeqTrainer's predict_with_generate); the loss is still the forward pass's."""
        super().__init__(*args, **kwargs)
        self._evaluation_outputs = evaluation_outputs
        if loss_is_scaled_for_ga is not None:
            self.loss_is_scaled_for_ga = loss_is_scaled_for_ga
        self._dropout = TrainingDropout(getattr(self.args, "dropout", "model"))  # plain TrainingArguments: "model"
        self.add_callback(self._dropout)

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        try:
            return super().train(resume_from_checkpoint, *args, **kwargs)
        except ValueError as error:  # torch's Optimizer.load_state_dict, before any step is taken
            if resume_from_checkpoint and str(error).startswith(_OPTIMIZER_LAYOUT_ERRORS):
                raise TextuneError(
                    f"--resume: the optimizer saved in {resume_from_checkpoint} groups its parameters differently "
                    f"from this run (another --head_learning_rate); resume with the --head_learning_rate it was "
                    f"trained with (--head_learning_rate {self.args.learning_rate:g} if it used one rate for all)"
                ) from error
            raise
        finally:  # also when training fails: the model object keeps its own dropout rates
            self._dropout.restore()

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if self._evaluation_outputs is None or prediction_loss_only:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        loss, _, _ = super().prediction_step(model, inputs, True, ignore_keys=ignore_keys)
        outputs = self._evaluation_outputs(self.accelerator.unwrap_model(model), inputs)
        # Trainer gathers outputs only beside labels, and pads both across batches with -100
        return loss, outputs, inputs.get("labels")

    def _get_eval_sampler(self, eval_dataset):
        # transformers 5 groups evaluation batches by length under group_by_length; the engine's compute_metrics
        # decodes the outputs for the validation rows in order (Task.decode), so evaluation keeps the dataset's order.
        # Several processes: no sampler, as Trainer does without grouping; accelerate shards the batches in order
        # and gathers them back in order.
        if super()._get_eval_sampler(eval_dataset) is None or self.args.world_size > 1:
            return None
        from torch.utils.data import SequentialSampler

        return SequentialSampler(eval_dataset)

    def create_optimizer(self, model=None):
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        names = new_parameter_names(self.model)
        rate = getattr(self.args, "head_learning_rate", self.args.learning_rate)  # plain TrainingArguments: one rate
        if fresh and names and rate != self.args.learning_rate:
            moved = split_head_parameters(optimizer, self.model if model is None else model, names, rate)
            if moved:
                logger.info("learning rate %g for %d new head parameters (%s), %g for the pretrained rest",
                            rate, len(moved), ", ".join(moved[:4]) + (", ..." if len(moved) > 4 else ""),
                            self.args.learning_rate)
            else:
                logger.warning("--head_learning_rate: the optimizer's parameters do not match the model's names; "
                               "every parameter trains at --learning_rate %g", self.args.learning_rate)
        return optimizer
