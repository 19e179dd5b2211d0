"""What a server serves: a `Predictor` on a run folder, its results as JSON-ready records, and what the demo shows.

Everything model-related goes through `textune.inference.prediction.Predictor`; this module only reshapes its table
(`prediction` plus `prob_<label>` columns) into one record per text and gathers the run's metadata.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import TextuneError
from ..tasks.classification.labels import MULTI, REGRESSION, SINGLE
from ..inference.prediction import Predictor
from ..run_folder import read_run_file

logger = logging.getLogger(__name__)

EXAMPLES_FILE = "textune_examples.json"  # written by export-space, where the validation file does not travel
METRICS_FILE = "eval_results.json"
# Metrics shown on the demo page, in this order, when the run computed them.
HEADLINE_METRICS = ("accuracy", "f1", "precision", "recall", "matthews_correlation", "roc_auc",
                    "mse", "mae", "r2", "pearsonr", "spearmanr")
NUM_EXAMPLES = 6


@dataclass
class ModelInfo:
    """What the demo page and `/v1/labels` say about the model.

    Attributes:
        name: Display name (the run folder's name unless a title is given).
        problem_type: single_label_classification, multi_label_classification or regression.
        labels: Ordered label names (empty for regression).
        threshold: Probability above which a label is predicted (multi-label).
        base_model: The model the run was fine-tuned from.
        metrics: Validation metrics of the run, without the `eval_` prefix.
        examples: A few validation texts to try.
    """

    name: str
    problem_type: str
    labels: list[str]
    threshold: float = 0.5
    base_model: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def headline_metrics(self) -> dict[str, float]:
        return {name: self.metrics[name] for name in HEADLINE_METRICS if name in self.metrics}


class ModelService:
    """A predictor plus its metadata, answering one JSON-ready record per text.

    Records: single-label `{"label": str, "scores": {label: prob}}`; multi-label
    `{"labels": [str], "scores": {label: prob}}`; regression `{"value": float}`.

    Example:
        >>> service = ModelService.from_run("experiments/")
        >>> service.predict(["Forest fire near La Ronge Sask. Canada"])
        [{'label': '1', 'scores': {'0': 0.08, '1': 0.92}}]
    """

    def __init__(self, predictor: Predictor, info: ModelInfo):
        if predictor.columns.text_pair is not None:
            raise TextuneError("this run classifies text pairs; serving takes single texts only (not supported yet)")
        self.predictor = predictor
        self.info = info

    @classmethod
    def from_run(cls, run_dir: str | Path, batch_size: int = 32, allow_pickle: bool = False,
                 name: str | None = None, backend: str = "auto") -> "ModelService":
        """Load a run folder written by `textune train` (or the `model/` folder of an exported Space)."""
        run_dir = Path(run_dir).expanduser()
        predictor = Predictor.from_run(run_dir, batch_size=batch_size, allow_pickle=allow_pickle, backend=backend)
        return cls(predictor, read_model_info(run_dir, predictor, name))

    def predict(self, texts: list[str]) -> list[dict]:
        """One record per text, in order (blocking; the server calls it from its batching thread)."""
        if not texts:
            return []
        return table_to_records(self.predictor.predict(list(texts)), self.info)


def table_to_records(table: pd.DataFrame, info: ModelInfo) -> list[dict]:
    """Reshape Predictor.predict's table into the API's per-text records."""
    if info.problem_type == REGRESSION:
        return [{"value": float(value)} for value in table["prediction"]]
    probabilities = table[[f"prob_{name}" for name in info.labels]].to_numpy()
    records = []
    for predicted, row in zip(table["prediction"], probabilities):
        scores = {name: float(p) for name, p in zip(info.labels, row)}
        if info.problem_type == MULTI:
            # The task predicts a label when its probability is strictly above the threshold.
            records.append({"labels": [name for name in info.labels if scores[name] > info.threshold],
                            "scores": scores})
        else:
            records.append({"label": str(predicted), "scores": scores})
    return records


def read_model_info(run_dir: Path, predictor: Predictor, name: str | None = None) -> ModelInfo:
    """The run's name, labels, validation metrics and example texts (missing pieces are left empty)."""
    record = read_run_file(run_dir)
    labels = predictor.task.labels
    return ModelInfo(
        name=name or run_dir.resolve().name,
        problem_type=labels.problem_type,
        labels=list(labels.display_names) if labels.problem_type != REGRESSION else [],
        threshold=getattr(predictor.task, "threshold", 0.5),
        base_model=record.get("base_model"),
        metrics=read_metrics(run_dir),
        examples=read_examples(run_dir, record, predictor),
    )


def read_metrics(run_dir: Path) -> dict[str, float]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        logger.warning("%s is not valid JSON; the demo shows no metrics", path)
        return {}
    return {key.removeprefix("eval_"): value for key, value in values.items()
            if isinstance(value, (int, float)) and key.startswith("eval_")}


def read_examples(run_dir: Path, record: dict, predictor: Predictor, limit: int = NUM_EXAMPLES) -> list[str]:
    """Example texts: the Space's examples file, else a few rows of the run's validation split."""
    path = run_dir / EXAMPLES_FILE
    if path.exists():
        try:
            return [str(text) for text in json.loads(path.read_text(encoding="utf-8"))][:limit]
        except (json.JSONDecodeError, TypeError):
            logger.warning("%s is not a JSON list of texts; the demo shows no examples", path)
            return []
    try:
        validation = load_validation_frame(record)
    except Exception as error:  # the data may have moved since training; examples are a nicety
        logger.warning("no examples for the demo: the run's validation data could not be read (%s)", error)
        return []
    if validation is None or validation.empty:
        return []
    return pick_examples(validation, predictor, limit)


def load_validation_frame(record: dict) -> pd.DataFrame | None:
    """The run's validation rows, rebuilt the way training built them (same files, same seeded hold-out)."""
    from ..training.arguments import DataArguments
    from ..data.splits import load_splits

    data_args = dict(record.get("data_args") or {})
    if not data_args or data_args.get("dataset_name"):
        return None  # a hub dataset would mean a download at server start
    if data_args.get("large_data") == "true":
        return None  # reading a train file too big for memory, at every server start, for a few examples
    known = DataArguments.__dataclass_fields__
    arguments = DataArguments(**{key: value for key, value in data_args.items() if key in known})
    seed = (record.get("training_args") or {}).get("seed", 42)
    from ..tasks import task_from_dict

    return load_splits(arguments, seed, task=task_from_dict(record["task"])).validation


def pick_examples(frame: pd.DataFrame, predictor: Predictor, limit: int) -> list[str]:
    """Up to `limit` distinct texts; for single-label runs, taken in turn from each label so all classes show."""
    columns = predictor.columns
    texts = pd.Series(columns.texts(frame), index=frame.index)
    if predictor.task.labels.problem_type == SINGLE and columns.label in frame.columns:
        groups = [group.tolist() for _, group in texts.groupby(frame[columns.label].astype(str), sort=True)]
        ordered = [group[i] for i in range(max(map(len, groups), default=0)) for group in groups if i < len(group)]
    else:
        ordered = texts.tolist()
    picked: list[str] = []
    for text in ordered:
        if text.strip() and text not in picked:
            picked.append(text)
        if len(picked) == limit:
            break
    return picked
