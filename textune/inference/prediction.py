"""Batched, length-sorted inference on a trained run: rows to features (the task's), outputs (the backend's), records.

The predictor speaks only the task protocol (`textune.tasks.protocol`): `encode` makes the features, the backend
runs their `model_inputs` in batches, and `decode` turns the outputs into records, one per input row.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .backends import AUTO, Backend, BackendSource, build_backend
from ..models.adapters import load_run_model
from ..run_folder import read_run_file
from ..tasks import Task, task_from_dict

logger = logging.getLogger(__name__)


class Predictor:
    """Predicts with a fine-tuned model: sorts features by length, batches them, runs without autograd.

    The forward pass goes through a backend (`textune.inference.backends`): PyTorch fp32, bf16 autocast, or ONNX
    Runtime on a model `textune export` wrote. `auto` uses an exported ONNX model whose parity check with
    PyTorch passed, else PyTorch fp32.

    Example:
        >>> predictor = Predictor.from_run("experiments/")            # backend="auto"
        >>> predictor.predict(["Forest fire near La Ronge Sask. Canada"])
        >>> Predictor.from_run("experiments/", backend="onnx")  # after `textune export experiments/ --format onnx`
    """

    def __init__(self, model, tokenizer, task: Task, batch_size: int = 32, backend: str | Backend = AUTO,
                 run_dir: str | Path | None = None, load_model: Callable[[], object] | None = None,
                 batch_job: bool = False, model_folder: str | Path | None = None):
        """
        Args:
            model: The PyTorch model, or None when `load_model` loads it (only if a backend or a caller needs it).
            tokenizer: The run's tokenizer.
            task: The run's task (encodes rows, decodes outputs).
            batch_size: Features per forward pass.
            backend: A name from `textune.inference.backends` (`auto`, `torch`, `torch-bf16`, `onnx`, `onnx-int8`) or a
                built backend.
            run_dir: The run folder, where the ONNX backends find their exported model (None: a model in memory).
            load_model: Loads the PyTorch model when `model` is None.
            batch_job: This process only predicts (a file): the backend may keep the cores busy between batches
                (see `textune.inference.backends.BackendSource`).
            model_folder: Where a model in memory that is no run was loaded from (a model folder, a hub id): a task
                generating with a causal engine honours `backend` on it. None with no `run_dir` (training's
                evaluation, the report): the model in memory generates itself.
        """
        self._model = model.eval() if model is not None else None
        self._load_model = load_model
        self.tokenizer = tokenizer
        self.task = task
        self.batch_size = batch_size
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if isinstance(backend, str) and hasattr(task, "with_engine"):
            # a task generating with a causal engine (optional in the protocol) checks and keeps the engine itself;
            # a model in memory (training's evaluation, the report) generates with itself
            source = self.run_dir if self.run_dir is not None else model_folder
            folder = Path(source).expanduser() if source is not None else None
            self.task = task.with_engine(backend if source is not None else "torch", self.model, tokenizer,
                                         folder if folder is not None and folder.is_dir() else None)
            backend = "torch"  # only what the task does not generate runs through it
        if isinstance(backend, str):
            backend = build_backend(backend, BackendSource(self.run_dir, lambda: self.model, task.output_names,
                                                           batch_job))
        self.backend = backend

    @classmethod
    def from_run(cls, run_dir: str | Path, batch_size: int = 32, allow_pickle: bool = False,
                 backend: str | Backend = AUTO, batch_job: bool = False) -> "Predictor":
        """Load a run folder written by `textune train`; the PyTorch model only if the backend needs it.

        Raises:
            TextuneError: The folder is not a complete run, or the backend cannot run (the message says why).
        """
        from transformers import AutoTokenizer

        record = read_run_file(run_dir)
        task = task_from_dict(record["task"])
        tokenizer = AutoTokenizer.from_pretrained(run_dir)
        return cls(None, tokenizer, task, batch_size, backend, run_dir=Path(run_dir).expanduser(),
                   load_model=lambda: load_run_model(task, run_dir, allow_pickle), batch_job=batch_job)

    @property
    def model(self):
        """The PyTorch model (loaded on first use when the backend did not need it)."""
        if self._model is None and self._load_model is not None:
            self._model = self._load_model().eval()
        return self._model

    def features(self, rows: pd.DataFrame):
        """The task's features of `rows` for prediction (no targets); {} for no rows (tokenizers reject those)."""
        if len(rows) == 0:
            return {}
        return self.task.encode(rows, self.tokenizer, False)

    def outputs(self, rows: pd.DataFrame, progress: bool = False) -> tuple[np.ndarray, ...]:
        """The model's outputs for the features of `rows` (see `run`)."""
        return self.run(self.features(rows), progress)

    def run(self, features, progress: bool = False) -> tuple[np.ndarray, ...]:
        """The model's outputs for `features`: one float32 array per `task.output_names`, features along axis 0 in
        feature order. An output whose other axes differ between batches (a sequence axis) is padded with 0 to the
        largest; within a batch, positions past a feature's own tokens hold what the model computed there."""
        names = [] if isinstance(features, dict) and not features else self.task.model_inputs(features)
        columns = feature_columns(features, names)
        count = len(columns[names[0]]) if names else 0
        if count == 0:
            return tuple(np.zeros((0,), dtype=np.float32) for _ in self.task.output_names)
        # Longest first: batches of similar lengths waste little compute on padding, and a too-large batch
        # runs out of memory at once rather than after an hour.
        order = np.argsort([-len(ids) for ids in columns[names[0]]], kind="stable")
        batches = range(0, count, self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Predicting", unit="batch")
        done: list[tuple[np.ndarray, tuple[np.ndarray, ...]]] = []
        # a task that generates (seq2seq) runs its own loop per batch on the PyTorch model (the protocol's hook)
        generate = getattr(self.task, "generate", None)
        for start in batches:
            index = order[start:start + self.batch_size]
            batch = pad_right(self.tokenizer, [{name: columns[name][i] for name in names} for i in index], "np")
            batch = {key: np.asarray(value, dtype=np.int64) for key, value in batch.items()}
            done.append((index, generate(self.model, self.tokenizer, batch) if generate else self.backend(batch)))
        return tuple(_regroup([(index, arrays[k]) for index, arrays in done], count)
                     for k in range(len(self.task.output_names)))

    def records(self, rows: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
        """The task's records for `rows` (one per row, in the rows' order)."""
        features = self.features(rows)
        return self.task.decode(rows, features, self.run(features, progress))

    def predict(self, inputs: list | pd.DataFrame) -> pd.DataFrame:
        """The task's records for a table of rows, or for a list of API inputs (a single one alone too).

        A list goes through the task's optional `encode_inputs`, which skips building rows (for one tweet that
        saved a tenth of the prediction; same features), else through `task.api().rows`.
        """
        if isinstance(inputs, pd.DataFrame):
            return self.records(inputs)
        inputs = [inputs] if isinstance(inputs, (str, dict)) else list(inputs)
        encode_inputs = getattr(self.task, "encode_inputs", None)
        if encode_inputs is None:
            return self.records(self.task.api().rows(inputs))
        features = encode_inputs(inputs, self.tokenizer) if inputs else {}
        return self.task.decode(None, features, self.run(features))

    def evaluate(self, rows: pd.DataFrame, where: str = "--input") -> dict[str, float]:
        """Metrics of the model on rows with references (unusable ones dropped, as training drops them), with keys
        prefixed `eval_` like Trainer's."""
        rows = self.task.check_rows(rows, where, with_targets=True).reset_index(drop=True)
        return self.score(rows, self.records(rows, progress=True))

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        """The task's metrics of `records` against `rows`: Trainer's `eval_` keys plus `eval_samples`."""
        metrics = self.task.score(rows, records)
        return {"eval_" + key: value for key, value in metrics.items()} | {"eval_samples": len(rows)}


def pad_right(tokenizer, features: list[dict], return_tensors: str):
    """A batch of features padded to its longest on the right, whatever side the tokenizer pads: a task reads its
    outputs at its features' own token positions (QA's windows map them to characters), which left padding shifts."""
    from transformers.data.data_collator import pad_without_fast_tokenizer_warning

    return pad_without_fast_tokenizer_warning(tokenizer, features, padding=True, return_tensors=return_tensors,
                                              padding_side="right")


def feature_columns(features, names: list[str]) -> dict[str, list]:
    """The `names` columns of features (a dict of lists, or a `datasets.Dataset`, read whole at once)."""
    if isinstance(features, dict):
        return {name: features[name] for name in names}
    return features.select_columns(names).to_dict()


def _regroup(parts: list[tuple[np.ndarray, np.ndarray]], count: int) -> np.ndarray:
    """One output's batches, (feature indices, values), as one float32 array in feature order, zero-padded."""
    shape = tuple(max(values.shape[axis] for _, values in parts) for axis in range(1, parts[0][1].ndim))
    result = np.zeros((count, *shape), dtype=np.float32)
    for index, values in parts:
        result[(index, *(slice(0, size) for size in values.shape[1:]))] = values
    return result
