"""Tasks are pluggable: each one turns frames into model inputs, builds its model, scores and decodes outputs.

A new task (QA, summarization, generation) implements `Task` and calls `register_task`; the training
flow and the predictor only speak to this protocol.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import pandas as pd


class Task(Protocol):
    """What the training flow and the predictor need from a task."""

    name: str

    def encode(self, frame: pd.DataFrame, tokenizer, with_labels: bool = True, where: str = "data") -> Any:
        """Tokenize a frame into a `datasets.Dataset` of model inputs (and targets when `with_labels`)."""

    def build_model(self, name_or_path: str, model_args, local_files_only: bool = False):
        """Load the pretrained model with this task's head."""

    def load_model(self, run_dir, allow_pickle: bool = False):
        """Reload the model a run saved (used by Predictor, so predict and serve need no loading code)."""

    def compute_metrics(self, eval_prediction) -> dict[str, float]:
        """Trainer's compute_metrics: an EvalPrediction to a dict of metric values."""

    def decode(self, logits) -> pd.DataFrame:
        """Raw model outputs to a table of predictions (one row per input)."""

    def to_dict(self) -> dict:
        """Everything needed to rebuild the task from a saved run."""


TASKS: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory) -> None:
    """Register a task class under `name` (its `from_dict` rebuilds it from a saved run)."""
    TASKS[name] = factory


def task_from_dict(data: dict) -> Task:
    """Rebuild a saved run's task from its `to_dict()` output."""
    from ..errors import TextuneError

    name = data.get("name")
    if name not in TASKS:
        raise TextuneError(f"the run's task {name!r} is not known to this textune (known: {', '.join(TASKS)})")
    return TASKS[name].from_dict(data)


from .classification import ClassificationTask  # noqa: E402  (registers itself)

__all__ = ["Task", "TASKS", "register_task", "task_from_dict", "ClassificationTask"]
