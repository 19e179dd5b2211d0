"""Batched, length-sorted inference on a trained run, and the prediction files a run writes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import TextuneError
from .run_folder import read_run_file
from .tasks import Task, task_from_dict

logger = logging.getLogger(__name__)


class Predictor:
    """Predicts with a fine-tuned model: sorts inputs by length, batches them, runs without autograd.

    Example:
        >>> predictor = Predictor.from_run("experiments/")
        >>> predictor.predict(["Forest fire near La Ronge Sask. Canada"])
    """

    def __init__(self, model, tokenizer, task: Task, batch_size: int = 32):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.task = task
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run_dir: str | Path, batch_size: int = 32, allow_pickle: bool = False) -> "Predictor":
        """Load a run folder written by `textune train`."""
        from transformers import AutoTokenizer

        record = read_run_file(run_dir)
        task = task_from_dict(record["task"])
        tokenizer = AutoTokenizer.from_pretrained(run_dir)
        return cls(task.load_model(run_dir, allow_pickle), tokenizer, task, batch_size)

    @property
    def columns(self):
        return self.task.columns

    def logits(self, frame: pd.DataFrame, progress: bool = False) -> np.ndarray:
        """Raw model outputs for every row of `frame`, in the frame's order."""
        from transformers import DataCollatorWithPadding

        features = self.task.tokenize(self.tokenizer, frame)
        order = np.argsort([-len(ids) for ids in features["input_ids"]], kind="stable")
        collate = DataCollatorWithPadding(self.tokenizer)
        device = next(self.model.parameters()).device
        outputs: list[np.ndarray] = [None] * len(order)
        batches = range(0, len(order), self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Predicting", unit="batch")
        with torch.inference_mode():
            for start in batches:
                index = order[start:start + self.batch_size]
                batch = collate([{key: features[key][i] for key in features} for i in index])
                batch = {key: value.to(device) for key, value in batch.items()}
                logits = self.model(**batch).logits.float().cpu().numpy()
                for row, i in enumerate(index):
                    outputs[i] = logits[row]
        return np.stack(outputs) if outputs else np.zeros((0, self.task.labels.num_labels), dtype=np.float32)

    def predict(self, inputs: list[str] | pd.DataFrame) -> pd.DataFrame:
        """Predicted label and per-class probability for each text (or each row of a frame)."""
        frame = self._as_frame(inputs)
        return self.task.decode(self.logits(frame))

    def evaluate(self, frame: pd.DataFrame, where: str = "--input") -> dict[str, float]:
        """Metrics of the model on a labelled frame, with keys prefixed `eval_` like Trainer's."""
        from transformers import EvalPrediction

        if self.columns.label not in frame.columns:
            raise TextuneError(f"{where} has no label column {self.columns.label!r}; evaluation needs labels")
        references = np.asarray(self.task.labels.encode(frame[self.columns.label], where=where))
        logits = self.logits(frame, progress=True)
        metrics = self.task.compute_metrics(EvalPrediction(predictions=logits, label_ids=references))
        return {"eval_" + key: value for key, value in metrics.items()} | {"eval_samples": len(frame)}

    def _as_frame(self, inputs) -> pd.DataFrame:
        if isinstance(inputs, pd.DataFrame):
            return inputs
        if isinstance(inputs, str):
            inputs = [inputs]
        if self.columns.text_pair is not None:
            raise TextuneError("this model classifies text pairs: pass a table with both text columns")
        return pd.DataFrame({self.columns.text[0]: list(inputs)} | {c: "" for c in self.columns.text[1:]})


def prediction_table(frame: pd.DataFrame, task: Task, logits: np.ndarray) -> pd.DataFrame:
    """predictions.csv: the input's id column (if any), the text, the prediction and its probabilities."""
    columns = task.columns
    table = pd.DataFrame()
    if columns.id and columns.id in frame.columns:
        table[columns.id] = frame[columns.id].to_numpy()
    table["text"] = columns.texts(frame)
    if columns.text_pair:
        table["text_pair"] = columns.pairs(frame)
    decoded = task.decode(logits)
    for name in decoded.columns:
        table[name] = decoded[name].to_numpy()
    return table


def write_predictions(output_dir: str | Path, frame: pd.DataFrame, task: Task, logits: np.ndarray,
                      predictions_file: str | Path | None = None) -> dict[str, Path]:
    """Write predict_results.txt (run_classification.py's format), predictions.csv and, with ids, submission.csv."""
    output_dir = Path(output_dir)
    written = {}
    results = output_dir / "predict_results.txt"
    results.write_text("index\tprediction\n" + "".join(line + "\n" for line in task.result_lines(logits)))
    written["predict_results"] = results
    table = prediction_table(frame, task, logits)
    predictions = Path(predictions_file) if predictions_file else output_dir / "predictions.csv"
    table.to_csv(predictions, index=False)
    written["predictions"] = predictions
    if task.columns.id and task.columns.id in frame.columns:
        submission = output_dir / "submission.csv"
        pd.DataFrame({task.columns.id: table[task.columns.id], task.columns.label: table["prediction"]}).to_csv(
            submission, index=False
        )
        written["submission"] = submission
    return written
