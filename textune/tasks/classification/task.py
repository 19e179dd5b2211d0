"""Sequence classification: binary, multi-class, multi-label and regression on one or two text columns."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from ...data.tables import require_columns
from ...errors import TextuneError
from ...training.head_learning_rate import mark_new_parameters
from .arguments import DEFAULT_HEAD, ClassificationArguments
from .columns import (DEFAULT_TEXT_COLUMNS, ColumnSpec, drop_unusable_rows, resolve_columns, stratifiable,
                      unusable_rows)
from .files import EXAMPLE_TEXTS, prediction_table, saved_validation_rows, write_predictions
from .labels import MULTI, REGRESSION, LabelSpec
from .metrics import METRICS, Metric, compute_metrics, is_metric_script, resolve_metrics
from .preprocess import apply_steps, parse_steps

logger = logging.getLogger(__name__)

# Metrics shown first (demo page, card, leaderboard) when the run computed them, in this order.
CLASSIFICATION_HEADLINE = ("accuracy", "f1", "precision", "recall", "matthews_correlation", "roc_auc")
REGRESSION_HEADLINE = ("mse", "mae", "r2", "pearsonr", "spearmanr")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


@dataclass
class ClassificationTask:
    """Text (or text-pair) classification and regression with AutoModelForSequenceClassification.

    Attributes:
        columns: Where the text, pair, label and id live in the user's tables.
        labels: Problem type, ordered labels and their display names.
        max_seq_length: Token cap per example; longer inputs are truncated.
        pad_to_max_length: Pad every example to max_seq_length instead of per batch.
        metric_name: Extra metric beyond the problem type's defaults (name or script path).
        threshold: Probability above which a label is predicted in multi-label tasks.
        run_metric_script: Whether a `metric_name` naming a script may be imported. False for a task read from a
            saved run (`from_dict`): a run folder can come from anyone, and loading it must not run its code.
    """

    columns: ColumnSpec
    labels: LabelSpec
    max_seq_length: int = 128
    pad_to_max_length: bool = False
    metric_name: str | None = None
    threshold: float = 0.5
    head: str = DEFAULT_HEAD
    pooling: str | None = None
    head_dropout: float = 0.1
    preprocess: list[str] = field(default_factory=list)
    run_metric_script: bool = field(default=True, repr=False, compare=False)
    # training only (a saved run's task predicts without them): --class_weights, --loss, --focal_gamma
    class_weights: str = field(default="none", repr=False, compare=False)
    loss: str = field(default="cross_entropy", repr=False, compare=False)
    focal_gamma: float = field(default=2.0, repr=False, compare=False)

    name: ClassVar[str] = "text-classification"
    arguments: ClassVar[type] = ClassificationArguments
    metric_scale: ClassVar[float] = 1.0
    trains_on_disk: ClassVar[bool] = True  # one row, one feature: a chunk of rows encodes alone

    def __post_init__(self):
        from .heads import head_spec  # torch: imported once a task exists, not for `textune train --help`

        self._metrics = None  # resolved on first use: only training and evaluation need them, not predict or serve
        self.pooling = self.pooling or head_spec(self.head).pooling
        self.preprocess = parse_steps(",".join(self.preprocess))

    @property
    def metrics(self) -> dict[str, Metric]:
        """The metrics to compute; resolving them may import a metric script, so only when metrics are needed."""
        if self._metrics is None:
            self._metrics = self._resolve_metrics()
        return self._metrics

    def _resolve_metrics(self) -> dict[str, Metric]:
        name = self.metric_name
        if name is not None and name not in METRICS and not self.run_metric_script:
            if is_metric_script(name):
                logger.warning("this run was trained with the metric script %s, which is not run when a saved run is "
                               "loaded (it could hold any code); pass --metric_name %s to compute it", name, name)
            else:
                logger.warning("this run was trained with the metric %r, which this process has not registered; "
                               "import the module that calls register_metric to compute it", name)
            name = None
        return resolve_metrics(self.labels.problem_type, name)

    def with_metric(self, metric_name: str) -> "ClassificationTask":
        """This task computing `metric_name` (a name, or a script the user passed) instead of the run's own.

        Raises:
            TextuneError: `metric_name` is neither a known metric nor a metric script (checked now, before any data).
        """
        task = replace(self, metric_name=metric_name, run_metric_script=True)
        task.metrics  # noqa: B018 - resolved now, so a bad name fails before a file is read
        return task

    @property
    def uses_transformers_head(self) -> bool:
        """Whether the model is transformers' AutoModelForSequenceClassification (plain-loadable)."""
        return self.head == DEFAULT_HEAD and self.pooling == "cls"

    # -- data -------------------------------------------------------------------------------------------------

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        found = next((name for name in DEFAULT_TEXT_COLUMNS if name in columns), None)
        return f"it has a {found!r} column" if found else None

    @classmethod
    def from_arguments(cls, task_args: ClassificationArguments, train_rows: pd.DataFrame,
                       where: str) -> "ClassificationTask":
        """The task of a new run: its columns from the flags (or the defaults), its labels from the usable rows."""
        text_columns, label_column = task_args.text_columns, task_args.label_column_name
        if where.startswith("demo:"):  # the packaged Kaggle tweets (`textune.models.packaged.DEMO_DATA`)
            text_columns, label_column = text_columns or ["text"], label_column or "target"
        columns = resolve_columns(train_rows, text_columns, label_column, task_args.text_pair_column_name,
                                  task_args.text_column_delimiter, where=where)
        empty_text, missing_label = unusable_rows(train_rows, columns)
        usable = train_rows.loc[~(empty_text | missing_label), columns.label]
        if usable.empty:
            raise TextuneError(
                f"{where}: every row has an empty text or a missing label in column {columns.label!r}; "
                "check --label_column_name and --text_column_names"
            )
        labels = LabelSpec.infer(usable.reset_index(drop=True), task_args.problem_type, task_args.do_regression,
                                 task_args.label_delimiter, where=where).with_names(task_args.label_names)
        task = cls(columns, labels, task_args.max_seq_length, task_args.pad_to_max_length, task_args.metric_name,
                   head=task_args.head, pooling=task_args.pooling, head_dropout=task_args.head_dropout,
                   preprocess=parse_steps(task_args.preprocess), class_weights=task_args.class_weights,
                   loss=task_args.loss, focal_gamma=task_args.focal_gamma)
        task.metrics  # noqa: B018 - resolved now, so a bad --metric_name fails before anything is written
        logger.info("%s, %d labels %s", labels.problem_type, labels.num_labels, labels.display_names[:10])
        return task

    @classmethod
    def read(cls, path: Path, encoding: str | None, flag: str) -> pd.DataFrame | None:
        return None  # plain tables only

    def check_rows(self, rows: pd.DataFrame, where: str, with_targets: bool) -> pd.DataFrame:
        """Rows with the text columns (and, `with_targets`, the label); with targets, rows with an empty text or a
        missing label are dropped and counted in the log; without, every row is kept so every id gets a
        prediction, and empty texts are counted."""
        columns = self.columns
        # a file given to a saved run (`--input`) cannot rename its columns: the run's are fixed
        given_to_run = where.startswith("--input")
        text_flag = "--input (retrain with other --text_column_names)" if given_to_run else "--text_column_names"
        split = split_name(where)
        if with_targets:
            require_columns(rows, columns.text, text_flag, where)
            require_columns(rows, [columns.label], "--input" if given_to_run else "--label_column_name", where)
            return drop_unusable_rows(rows, columns, split)
        require_columns(rows, columns.text + ([columns.text_pair] if columns.text_pair else []), text_flag, where)
        empty = int(unusable_rows(rows, columns, with_label=False)[0].sum())
        if empty:
            logger.warning("%s: %d rows have empty text; they are kept so every row gets a prediction", split, empty)
        if columns.id in rows.columns and rows[columns.id].duplicated().any():
            repeated = rows[columns.id][rows[columns.id].duplicated()]
            logger.warning("%s: %d rows repeat an id of column %r (first: %r); each row still gets its own "
                           "prediction, but submission.csv will repeat those ids", split, len(repeated),
                           columns.id, repeated.iloc[0])
        return rows

    def unusable_rows(self, rows: pd.DataFrame) -> dict[str, pd.Series]:
        empty_text, missing_label = unusable_rows(rows, self.columns)
        return {"empty_text": empty_text, "missing_label": missing_label}

    def target_columns(self) -> list[str]:
        return [self.columns.label]

    def stratify_by(self, rows: pd.DataFrame) -> pd.Series | None:
        """The labels, when they are single classes (not several per row, not continuous values)."""
        labels = rows[self.columns.label]
        if self.labels.delimiter is not None or self.labels.problem_type == REGRESSION or not stratifiable(labels):
            return None
        return labels

    def collator(self, tokenizer):
        from transformers import DataCollatorWithPadding, default_data_collator

        return default_data_collator if self.pad_to_max_length else DataCollatorWithPadding(tokenizer)

    def tokenize(self, tokenizer, frame: pd.DataFrame) -> dict:
        frame = apply_steps(frame, self.columns, self.preprocess)
        return self._tokenize(tokenizer, self.columns.texts(frame), self.columns.pairs(frame))

    def tokenize_texts(self, tokenizer, texts: list) -> dict | None:
        """`tokenize` of a frame holding `texts` in the first text column, without building the frame.

        The predictor's fast path for a few texts, where building and cleaning a frame costs about a tenth of a
        one-tweet prediction. None when the frame is needed: preprocessing steps work on frames, text pairs need
        their second column, and values other than strings need the frame's cleaning.
        """
        if self.preprocess or self.columns.text_pair or not all(isinstance(text, str) for text in texts):
            return None
        # other text columns are empty, and still joined with the delimiter as `ColumnSpec.texts` joins them
        joined = self.columns.delimiter * (len(self.columns.text) - 1)
        return self._tokenize(tokenizer, [text + joined for text in texts] if joined else list(texts), None)

    def _tokenize(self, tokenizer, texts: list[str], pairs: list[str] | None) -> dict:
        max_length = min(self.max_seq_length, tokenizer.model_max_length or self.max_seq_length)
        return dict(tokenizer(
            texts,
            pairs,
            truncation=True,
            max_length=max_length,
            padding="max_length" if self.pad_to_max_length else False,
        ))

    def encode(self, frame: pd.DataFrame, tokenizer, for_training: bool = True, where: str = "data"):
        """A `datasets.Dataset` with labels for training; a dict of the tokenizer's lists for prediction."""
        features = self.tokenize(tokenizer, frame)
        cap = min(self.max_seq_length, tokenizer.model_max_length or self.max_seq_length)
        at_cap = sum(1 for mask in features["attention_mask"] if len(mask) == cap and mask[-1] == 1)
        if at_cap:
            logger.warning("%s: %d of %d texts reached --max_seq_length %d tokens and were truncated to it",
                           where, at_cap, len(frame), cap)
        if not for_training:
            return features
        from datasets import Dataset

        features["labels"] = self.labels.encode(frame[self.columns.label], where=where)
        return Dataset.from_dict(features)

    def model_inputs(self, features) -> list[str]:
        """The tokenizer's columns (the others, `labels`, are the loss's)."""
        names = features.column_names if hasattr(features, "column_names") else list(features)
        return [name for name in names if name != "labels"]

    # -- model ------------------------------------------------------------------------------------------------

    def build_model(self, name_or_path: str, model_args, local_files_only: bool = False):
        from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

        from .heads import EncoderClassifier

        if not self.uses_transformers_head:
            encoder = AutoModel.from_pretrained(
                name_or_path, cache_dir=model_args.cache_dir, revision=model_args.model_revision,
                token=model_args.token, trust_remote_code=model_args.trust_remote_code,
                local_files_only=local_files_only, use_safetensors=None if model_args.allow_pickle else True,
            )
            self._label_config(encoder.config)
            model = EncoderClassifier(encoder, self.head, self.pooling, self.labels.num_labels,
                                      self.labels.problem_type, self.head_dropout)
            mark_new_parameters(model, (name for name, _ in model.named_parameters() if name.startswith("head.")))
            return model
        common = dict(
            cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
            trust_remote_code=model_args.trust_remote_code, local_files_only=local_files_only,
        )
        config = AutoConfig.from_pretrained(
            model_args.config_name or name_or_path,
            num_labels=self.labels.num_labels,
            problem_type=self.labels.problem_type,
            finetuning_task=self.name,
            **common,
        )
        self._label_config(config)
        # A checkpoint fine-tuned for another label count keeps its encoder; its head is replaced on purpose.
        checkpoint_labels = AutoConfig.from_pretrained(name_or_path, **common).num_labels
        replace_head = checkpoint_labels != self.labels.num_labels
        if replace_head:
            logger.info("replacing the checkpoint's %d-output head with a new %d-output head",
                        checkpoint_labels, self.labels.num_labels)
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes or replace_head,
            use_safetensors=None if model_args.allow_pickle else True, output_loading_info=True, **common,
        )
        mark_new_parameters(model, [*loading["missing_keys"], *(key for key, *_ in loading["mismatched_keys"])])
        return model

    def _label_config(self, config) -> None:
        config.num_labels = self.labels.num_labels
        config.problem_type = self.labels.problem_type
        if self.labels.problem_type != REGRESSION:
            config.id2label, config.label2id = self.labels.id2label, self.labels.label2id
        else:
            config.id2label, config.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}

    def training_options(self, training_args, train_features) -> dict[str, Any]:
        """The loss Trainer uses (`--loss`, weighted by `--class_weights`), and how it scales over accumulation."""
        from .losses import build_compute_loss, class_weights

        weights = class_weights(self.class_weights, train_features["labels"], self.labels.problem_type,
                                self.labels.num_labels)
        # A classifier's loss (transformers' heads, textune's losses) is a mean over the batch's examples: Trainer
        # must average it over --gradient_accumulation_steps, not take it as normalised by the accumulated label count.
        return {"compute_loss_func": build_compute_loss(self.loss, self.labels.problem_type, weights, self.focal_gamma),
                "loss_is_scaled_for_ga": False}

    def load_model(self, run_dir: str | Path, allow_pickle: bool = False):
        """Reload the model a run saved: transformers' class, or the textune head on its encoder."""
        from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

        if self.uses_transformers_head:
            return AutoModelForSequenceClassification.from_pretrained(
                run_dir, use_safetensors=None if allow_pickle else True)
        from safetensors.torch import load_file

        from .heads import EncoderClassifier

        encoder = AutoModel.from_config(AutoConfig.from_pretrained(run_dir))
        model = EncoderClassifier(encoder, self.head, self.pooling, self.labels.num_labels,
                                  self.labels.problem_type, self.head_dropout)
        model.load_state_dict(load_file(Path(run_dir) / "model.safetensors"))
        return model

    # -- outputs ----------------------------------------------------------------------------------------------

    output_names: ClassVar[tuple[str, ...]] = ("logits",)

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        """--metric_name first when given, then the metrics the demo, card and leaderboard show, in this order."""
        shown = REGRESSION_HEADLINE if self.labels.problem_type == REGRESSION else CLASSIFICATION_HEADLINE
        return tuple(dict.fromkeys(name for name in (self.metric_name, *shown) if name))

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities per class (softmax, or sigmoid for multi-label); the value itself for regression."""
        logits = np.asarray(logits, dtype=np.float32)
        if self.labels.problem_type == REGRESSION:
            return logits.reshape(-1)
        if self.labels.problem_type == MULTI:
            return sigmoid(logits)
        return softmax(logits)

    def hard_predictions(self, scores: np.ndarray) -> np.ndarray:
        if self.labels.problem_type == REGRESSION:
            return scores
        if self.labels.problem_type == MULTI:
            return (scores > self.threshold).astype(np.int64)
        return scores.argmax(axis=-1)

    def decode(self, rows: pd.DataFrame | None, features, outputs: tuple[np.ndarray, ...]) -> pd.DataFrame:
        """A table with the predicted label (or value) and one probability column per class, one row per feature
        (a row makes one feature here, so `rows` and `features` are not read: `decode(None, None, (logits,))`)."""
        # (n, num_labels) also for no rows at all, where the engine's outputs have no class axis to go by
        scores = self.scores(np.asarray(outputs[0], dtype=np.float32).reshape(-1, self.labels.num_labels))
        hard = self.hard_predictions(scores)
        if self.labels.problem_type == REGRESSION:
            return pd.DataFrame({"prediction": scores})
        names = self.labels.display_names
        predicted = self.label_strings(hard, names)
        # one constructor call: adding the columns one by one took ~0.5 ms, a tenth of a one-tweet prediction
        return pd.DataFrame({"prediction": predicted} | {f"prob_{name}": scores[:, i] for i, name in enumerate(names)})

    def records_scores(self, records: pd.DataFrame) -> np.ndarray:
        """The scores `decode` wrote into `records` (its probability columns, or the values), as it computed them."""
        if self.labels.problem_type == REGRESSION:
            return records["prediction"].to_numpy(np.float32)
        columns = [f"prob_{name}" for name in self.labels.display_names]
        return records[columns].to_numpy(np.float32).reshape(len(records), len(columns))

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        """The task's metrics of `records` against the labels of `rows` (the rows' own label column).

        Raises:
            TextuneError: The rows have no label column, or a label training never saw.
        """
        label = self.columns.label
        if label not in rows.columns:
            raise TextuneError(f"the rows have no label column {label!r}; evaluation needs labels")
        references = np.asarray(self.labels.encode(rows[label], where="the rows scored"))
        if self.labels.problem_type == MULTI:
            references = references.astype(np.int64)
        scores = self.records_scores(records)
        return compute_metrics(self.metrics, self.labels.problem_type, self.labels.num_labels,
                               self.hard_predictions(scores), scores, references)

    def agreement(self, expected: pd.DataFrame, got: pd.DataFrame) -> float:
        """Share of rows with the same predicted label; for regression, a value within 1% (or 0.01 of small ones)."""
        if not len(expected):
            return 1.0
        if self.labels.problem_type == REGRESSION:
            x, y = expected["prediction"].to_numpy(float), got["prediction"].to_numpy(float)
            return float((np.abs(x - y) <= 0.01 * np.maximum(1.0, np.abs(x))).mean())
        return float((expected["prediction"].to_numpy() == got["prediction"].to_numpy()).mean())

    def raw_predictions(self, scores: np.ndarray) -> list | np.ndarray:
        """The predicted labels as the data files write them (raw, not `--label_names`): submission.csv's values."""
        hard = self.hard_predictions(scores)
        if self.labels.problem_type == REGRESSION:
            return hard
        return self.label_strings(hard, self.labels.labels)

    def label_strings(self, hard: np.ndarray, names: list[str]) -> list[str]:
        """Class ids (multi-hot rows for multi-label) as `names`, several labels joined by the label delimiter."""
        if self.labels.problem_type == MULTI:
            joiner = self.labels.delimiter or ","
            return [joiner.join(names[i] for i in np.flatnonzero(row)) for row in hard]
        return [names[i] for i in hard]

    def result_lines(self, scores: np.ndarray) -> list[str]:
        """Rows of predict_results.txt, formatted exactly as run_classification.py writes them."""
        hard = self.hard_predictions(scores)
        names = self.labels.display_names
        if self.labels.problem_type == REGRESSION:
            return [f"{i}\t{value:3.3f}" for i, value in enumerate(hard)]
        if self.labels.problem_type == MULTI:
            return [f"{i}\t{[names[j] for j in np.flatnonzero(row)]}" for i, row in enumerate(hard)]
        return [f"{i}\t{names[j]}" for i, j in enumerate(hard)]

    def prediction_table(self, rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
        """predictions.csv: the input's id column (if any), the text, the prediction and its probabilities."""
        return prediction_table(self.columns, rows, records)

    def write_predictions(self, output_dir: Path, rows: pd.DataFrame, records: pd.DataFrame,
                          predictions_file: Path | None = None) -> dict[str, Path]:
        """predict_results.txt (run_classification.py's format), predictions.csv and, with ids, submission.csv."""
        return write_predictions(self, Path(output_dir), rows, records, predictions_file)

    def input_rows(self, inputs: list) -> pd.DataFrame:
        """A table of plain texts in the run's text columns (the others empty)."""
        if self.columns.text_pair is not None:
            raise TextuneError("this model classifies text pairs: pass a table with both text columns")
        return self.columns.rows_of(inputs)

    def encode_inputs(self, inputs: list, tokenizer) -> dict:
        """Features of plain texts: `tokenize_texts` when it can skip the table, else the table's (same tokens)."""
        features = self.tokenize_texts(tokenizer, inputs)
        return features if features is not None else self.tokenize(tokenizer, self.input_rows(inputs))

    def saved_rows(self, run_dir: Path, limit: int) -> pd.DataFrame | None:
        """The validation rows of the report's validation_predictions.csv, in the run's columns."""
        return saved_validation_rows(self.columns, Path(run_dir), limit)

    def example_rows(self, limit: int) -> pd.DataFrame | None:
        """Built-in tweets in the run's text columns; None for text pairs, which have no sensible defaults."""
        if self.columns.text_pair:
            return None
        return self.input_rows(EXAMPLE_TEXTS[:limit])

    # -- serving ----------------------------------------------------------------------------------------------

    def api(self):
        """`POST /v1/predict` takes `{"texts": [...]}` and answers a label and scores (or a value) per text."""
        from .serving import ClassificationApi

        return ClassificationApi(self)

    def demo(self):
        """A text box in; gr.Label (or the labels, or a number) out."""
        from .serving import ClassificationDemo

        return ClassificationDemo(self)

    def describe(self) -> dict:
        """`GET /v1/labels`: problem_type, labels, and threshold for a multi-label model."""
        from .serving import describe

        return describe(self)

    # -- report and card ------------------------------------------------------------------------------------

    def report_sections(self, rows: pd.DataFrame | None, records: pd.DataFrame | None, plots_dir: Path,
                        splits: dict[str, pd.DataFrame] | None = None, tokenizer=None) -> list:
        """Per-class scores, confusion matrix, predicted vs true, the worst mistakes, labels and text lengths."""
        from .report import report_sections

        return report_sections(self, rows, records, plots_dir, splits, tokenizer)

    def card(self) -> dict:
        """Kind, pipeline tag, tags, labels, example, loss, minimal Space app and what loading needs."""
        from .report import card_facts

        return card_facts(self)

    # -- persistence ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "name": self.name, "columns": self.columns.to_dict(), "labels": self.labels.to_dict(),
            "max_seq_length": self.max_seq_length, "pad_to_max_length": self.pad_to_max_length,
            "metric_name": self.metric_name, "threshold": self.threshold, "head": self.head,
            "pooling": self.pooling, "head_dropout": self.head_dropout, "preprocess": self.preprocess,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ClassificationTask":
        """Rebuild a saved run's task; a metric script it names is never imported (see `run_metric_script`)."""
        try:
            return cls(
                columns=ColumnSpec(**data["columns"]), labels=LabelSpec.from_dict(data["labels"]),
                max_seq_length=data["max_seq_length"], pad_to_max_length=data.get("pad_to_max_length", False),
                metric_name=data.get("metric_name"), threshold=data.get("threshold", 0.5),
                head=data.get("head", DEFAULT_HEAD), pooling=data.get("pooling"),
                head_dropout=data.get("head_dropout", 0.1), preprocess=list(data.get("preprocess") or []),
                run_metric_script=False,
            )
        except (KeyError, TypeError) as error:
            raise TextuneError(f"the run's task description is incomplete (missing {error}); retrain the run") from None


def split_name(where: str) -> str:
    """"train" for "--train_file data/train.csv" (the log's name of a split), else `where` itself."""
    first = where.split(" ", 1)[0]
    return first[2:-len("_file")] if first.startswith("--") and first.endswith("_file") else where


from .. import register_task  # noqa: E402

register_task("text-classification", ClassificationTask)
