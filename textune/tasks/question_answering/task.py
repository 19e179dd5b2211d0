"""Extractive question answering: the answer to a question is a span of its context (SQuAD v1.1 and v2.0)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import pandas as pd

from ...atomic import atomic_write, write_text_atomically
from ...data.tables import require_columns
from ...errors import TextuneError
from ..protocol import Section
from .arguments import QuestionAnsweringArguments
from .features import BOOKKEEPING, CLS_INDEX, EXAMPLE_INDEX, OFFSET_END, OFFSET_START, TARGETS, encode_windows
from .metrics import squad_metrics
from .postprocess import postprocess_qa_predictions
from .squad import ANSWERS, ID, id_column, normalise_answers, read_squad

logger = logging.getLogger(__name__)

RECORD_COLUMNS = ("id", "question", "answer", "score", "start", "end")


@dataclass
class QuestionAnsweringTask:
    """Extractive QA with AutoModelForQuestionAnswering; its settings are run_qa.py's flags, resolved for the data.

    Attributes:
        settings: The flags, with `version_2_with_negative` turned on when the training rows hold unanswerable
            questions. Without `answer_column_name`, each file's own `answers` (or `answer`) column is used, so a
            run trained on SQuAD JSON evaluates a CSV with an `answer` column.
    """

    settings: QuestionAnsweringArguments

    name: ClassVar[str] = "question-answering"
    arguments: ClassVar[type] = QuestionAnsweringArguments
    output_names: ClassVar[tuple[str, ...]] = ("start_logits", "end_logits")
    headline_metrics: ClassVar[tuple[str, ...]] = ("f1", "exact_match")
    metric_scale: ClassVar[float] = 100.0  # SQuAD's convention, as run_qa.py and the leaderboards report them
    # SQuAD JSON is not a plain table, and decode reads each question's context, which on-disk splits leave on disk
    trains_on_disk: ClassVar[bool] = False

    @property
    def question_column(self) -> str:
        return self.settings.question_column_name

    @property
    def context_column(self) -> str:
        return self.settings.context_column_name

    @property
    def version_2(self) -> bool:
        return self.settings.version_2_with_negative

    # -- choosing and rebuilding the task ----------------------------------------------------------------------

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        """Question and context columns mean extractive QA (the defaults of --question/--context_column_name)."""
        defaults = QuestionAnsweringArguments()
        wanted = (defaults.question_column_name, defaults.context_column_name)
        if all(name in columns for name in wanted):
            return f"the data has {wanted[0]!r} and {wanted[1]!r} columns"
        return None

    @classmethod
    def from_arguments(cls, task_args: QuestionAnsweringArguments | None, train_rows: pd.DataFrame,
                       where: str) -> "QuestionAnsweringTask":
        """The task for a new run; unanswerable training questions turn SQuAD v2 on.

        Raises:
            TextuneError: The question, context or answer column is missing, or an answer is not in its context.
        """
        task = cls(task_args or QuestionAnsweringArguments())
        rows = task.check_rows(train_rows, where, with_targets=True)
        unanswerable = sum(1 for answers in rows[answer_column(task.settings, rows, where)] if not answers["text"])
        if unanswerable and not task.version_2:
            logger.warning("%s: %d of %d questions have no answer, so they are treated as SQuAD v2.0 "
                           "(--version_2_with_negative): the model may answer nothing", where, unanswerable, len(rows))
            task.settings = replace(task.settings, version_2_with_negative=True)
        return task

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self.settings)}

    @classmethod
    def from_dict(cls, data: dict) -> "QuestionAnsweringTask":
        """Rebuild a saved run's task from `to_dict`'s output (plain values; nothing is imported or run)."""
        known = {field.name for field in fields(QuestionAnsweringArguments)}
        try:
            return cls(QuestionAnsweringArguments(**{key: value for key, value in data.items() if key in known}))
        except TypeError as error:
            raise TextuneError(f"the run's task description is incomplete ({error}); retrain the run") from None

    # -- data --------------------------------------------------------------------------------------------------

    @classmethod
    def read(cls, path: Path, encoding: str | None, flag: str) -> pd.DataFrame | None:
        """SQuAD JSON (`{"data": [...]}`, nested or flattened) as rows with id, title, question, context, answers.

        A class method too, so that the training file can be read before the task is built from it.
        """
        return read_squad(path, encoding, flag)

    def check_rows(self, rows: pd.DataFrame, where: str, with_targets: bool) -> pd.DataFrame:
        """The rows with questions and contexts as text, an `id` when they have none, and answers in SQuAD's shape.

        A missing id is the row's index: its position in the file, also in a chunk of it (`textune predict`).

        Raises:
            TextuneError: A missing column (naming the flag), or an answer not in its context (naming the row).
        """
        require_columns(rows, [self.question_column], "--question_column_name", where)
        require_columns(rows, [self.context_column], "--context_column_name", where)
        rows = rows.copy()
        for column in (self.question_column, self.context_column):
            rows[column] = rows[column].fillna("").astype(str)
        if id_column(rows) is None:
            rows[ID] = [str(i) for i in rows.index]
        ids = rows[id_column(rows)].astype(str)
        if ids.duplicated().any():
            logger.warning("%s: %d ids repeat (e.g. %r); predictions.json keeps one answer per id", where,
                           int(ids.duplicated().sum()), ids[ids.duplicated()].iloc[0])
        answers = answer_column(self.settings, rows, where, required=with_targets)
        if with_targets:
            require_columns(rows, [answers], "--answer_column_name", where)
        if answers in rows.columns:
            rows[answers] = normalise_answers(rows, answers, self.context_column, where)
        return rows.reset_index(drop=True)

    def unusable_rows(self, rows: pd.DataFrame) -> dict[str, pd.Series]:
        return {}  # check_rows drops no row: an empty answer is SQuAD v2's "no answer", not a missing one

    def target_columns(self) -> list[str]:
        return [self.settings.answer_column_name or ANSWERS]

    def stratify_by(self, rows: pd.DataFrame) -> pd.Series | None:
        """SQuAD v2: answerable or not, so a held-out validation split keeps the share of unanswerable questions."""
        column = answer_column(self.settings, rows, "the rows", required=False)
        if not self.version_2 or column not in rows.columns:
            return None
        return rows[column].map(lambda answers: len(answers["text"]) > 0).astype(int)

    def encode(self, rows: pd.DataFrame, tokenizer, for_training: bool, where: str = "data"):
        """Windows of each question's context: with start/end targets for training (a `datasets.Dataset`), else with
        `decode`'s bookkeeping (a dict of lists)."""
        answers = None
        if for_training:
            answers = rows[answer_column(self.settings, rows, where)].tolist()
        windows = encode_windows(
            tokenizer, rows[self.question_column].tolist(), rows[self.context_column].tolist(), answers,
            max_seq_length=self.settings.max_seq_length, doc_stride=self.settings.doc_stride,
            pad_to_max_length=self.settings.pad_to_max_length, where=where,
        )
        if not for_training:
            return windows
        from datasets import Dataset

        return Dataset.from_dict(windows)

    def collator(self, tokenizer) -> Callable:
        return WindowCollator(tokenizer, self.settings.pad_to_max_length)

    def model_inputs(self, features) -> list[str]:
        names = features.column_names if hasattr(features, "column_names") else list(features)
        return [name for name in names if name not in BOOKKEEPING]

    # -- model -------------------------------------------------------------------------------------------------

    def build_model(self, name_or_path: str, model_args, local_files_only: bool = False):
        """The pretrained encoder with a new span head (`qa_outputs`), or a QA checkpoint's own head."""
        from transformers import AutoConfig, AutoModelForQuestionAnswering

        from ...training.head_learning_rate import mark_new_parameters

        common = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
                      trust_remote_code=model_args.trust_remote_code, local_files_only=local_files_only)
        config = AutoConfig.from_pretrained(model_args.config_name or name_or_path, **common)
        model, loading = AutoModelForQuestionAnswering.from_pretrained(
            name_or_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
            use_safetensors=None if model_args.allow_pickle else True, output_loading_info=True, **common,
        )
        mark_new_parameters(model, [*loading["missing_keys"], *(key for key, *_ in loading["mismatched_keys"])])
        return model

    def load_model(self, run_dir: str | Path, allow_pickle: bool = False):
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering.from_pretrained(run_dir, use_safetensors=None if allow_pickle else True)

    def training_options(self, training_args, train_features) -> dict[str, Any]:
        return {}  # the model's own loss: cross-entropy of the start and end positions

    # -- outputs -----------------------------------------------------------------------------------------------

    def decode(self, rows: pd.DataFrame, features, outputs: tuple[np.ndarray, ...]) -> pd.DataFrame:
        """One record per question: id, question, answer, score, start, end (and null_odds with SQuAD v2)."""
        start_logits, end_logits = outputs
        answers = postprocess_qa_predictions(
            rows[self.context_column].tolist(), flat_column(features, EXAMPLE_INDEX),
            ragged_column(features, OFFSET_START), ragged_column(features, OFFSET_END),
            flat_column(features, CLS_INDEX), start_logits, end_logits,
            n_best_size=self.settings.n_best_size, max_answer_length=self.settings.max_answer_length,
            version_2_with_negative=self.version_2, null_score_diff_threshold=self.settings.null_score_diff_threshold,
        )
        column = id_column(rows)
        records = pd.DataFrame({
            "id": rows[column].astype(str).tolist() if column else [str(i) for i in range(len(rows))],
            "question": rows[self.question_column].tolist(),
            "answer": [answer.text for answer in answers],
            "score": np.array([answer.score for answer in answers], dtype=np.float64),
            "start": pd.array([answer.start for answer in answers], dtype="Int64"),
            "end": pd.array([answer.end for answer in answers], dtype="Int64"),
        })
        if self.version_2:
            records["null_odds"] = [answer.null_odds for answer in answers]
        return records

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        """SQuAD's exact_match and f1 (and HasAns_/NoAns_ parts with v2) of the records against the rows' answers."""
        column = answer_column(self.settings, rows, "the rows")
        golds = normalise_answers(rows, column, self.context_column, "the rows")
        return squad_metrics([gold["text"] for gold in golds], records["answer"].tolist(), self.version_2)

    def agreement(self, expected: pd.DataFrame, got: pd.DataFrame) -> float:
        """Share of questions with the same answer text."""
        if len(expected) == 0:
            return 1.0
        return float(np.mean([a == b for a, b in zip(expected["answer"].tolist(), got["answer"].tolist())]))

    def write_predictions(self, output_dir: Path, rows: pd.DataFrame, records: pd.DataFrame,
                          predictions_file: Path | None = None) -> dict[str, Path]:
        """predictions.csv (id, question, answer, score, start, end), run_qa.py's predictions.json (id -> answer)
        and, with SQuAD v2, null_odds.json (id -> null score minus best span score), each written atomically."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        written = {"predictions": Path(predictions_file) if predictions_file else output_dir / "predictions.csv"}
        with atomic_write(written["predictions"], newline="") as handle:
            self.prediction_table(rows, records).to_csv(handle, index=False)
        answers = dict(zip(records["id"], records["answer"]))
        written["predictions_json"] = write_text_atomically(
            output_dir / "predictions.json", json.dumps(answers, indent=4, ensure_ascii=False) + "\n")
        if self.version_2 and "null_odds" in records.columns:
            odds = {key: (None if value is None or pd.isna(value) else float(value))
                    for key, value in zip(records["id"], records["null_odds"])}
            written["null_odds"] = write_text_atomically(
                output_dir / "null_odds.json", json.dumps(odds, indent=4, ensure_ascii=False) + "\n")
        return written

    def prediction_table(self, rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
        """predictions.csv's columns: id, question, answer, score and the answer's character offsets."""
        return records[list(RECORD_COLUMNS)]

    def saved_rows(self, run_dir: Path, limit: int) -> pd.DataFrame | None:
        return None  # a QA run keeps no validation rows of its own; the export reads the run's data files

    def example_rows(self, limit: int) -> pd.DataFrame | None:
        """Built-in questions on tweets, to check an exported model when the run's data files are gone."""
        from .serving import EXAMPLES

        return self.check_rows(pd.DataFrame(EXAMPLES[:limit]), "built-in examples", with_targets=False)

    # -- serving -----------------------------------------------------------------------------------------------

    def api(self):
        from .serving import QuestionAnsweringApi

        return QuestionAnsweringApi(self)

    def demo(self):
        from .serving import QuestionAnsweringDemo

        return QuestionAnsweringDemo(self)

    def describe(self) -> dict:
        """What `GET /v1/labels` answers for a QA model: its inputs, outputs and answer-picking settings."""
        return {
            "task": self.name,
            "inputs": {"question": "the question", "context": "the passage the answer is taken from"},
            "outputs": {"answer": "a span of the context (\"\" for no answer)", "score": "probability among the "
                        "n-best candidates", "start": "first character in the context", "end": "one past the last"},
            "version_2_with_negative": self.version_2,
            "null_score_diff_threshold": self.settings.null_score_diff_threshold if self.version_2 else None,
            "max_seq_length": self.settings.max_seq_length, "doc_stride": self.settings.doc_stride,
            "max_answer_length": self.settings.max_answer_length,
        }

    # -- report and card ---------------------------------------------------------------------------------------

    def report_sections(self, rows: pd.DataFrame | None, records: pd.DataFrame | None, plots_dir: Path,
                        splits: dict[str, pd.DataFrame] | None = None, tokenizer=None) -> list[Section]:
        if rows is None or records is None:
            return []
        from .report import report_sections

        column = answer_column(self.settings, rows, "the rows")
        golds = [gold["text"] for gold in normalise_answers(rows, column, self.context_column, "the rows")]
        return report_sections(rows[self.question_column].tolist(), golds, records, self.version_2, Path(plots_dir))

    def card(self) -> dict:
        return {
            "kind": "extractive question-answering model" + (" (SQuAD v2.0: it may answer nothing)"
                                                             if self.version_2 else ""),
            "pipeline_tag": "question-answering",
            "tags": ["question-answering", "extractive-qa", "squad_v2" if self.version_2 else "squad"],
            "outputs": "the span of the context that answers the question, its score and character offsets",
            "example": {"question": "Where was the fire?", "context": "Forest fire near La Ronge Sask. Canada"},
            "loss": "cross-entropy of the answer's start and end positions",
            "minimal_app_problem": "the minimal template is a text classifier's; use the default template",
        }


def answer_column(settings: QuestionAnsweringArguments, rows: pd.DataFrame, where: str,
                  required: bool = True) -> str | None:
    """--answer_column_name, or the first of `answers` (SQuAD's) and `answer` the rows have.

    Raises:
        TextuneError: `required` and no answer column is found (naming the flag).
    """
    if settings.answer_column_name:
        return settings.answer_column_name
    found = next((name for name in (ANSWERS, "answer") if name in rows.columns), None)
    if found is None and required:
        columns = ", ".join(str(c) for c in rows.columns)
        raise TextuneError(f"{where} has no 'answers' or 'answer' column (found: {columns}); name the answer column "
                           "with --answer_column_name")
    return found


def flat_column(features, name: str) -> np.ndarray:
    """One int per window, from a `datasets.Dataset` (through Arrow) or a dict of lists."""
    if hasattr(features, "with_format"):
        return features.with_format("arrow")[name].to_numpy()
    return np.asarray(features[name])


def ragged_column(features, name: str) -> list[np.ndarray]:
    """One int array per window (windows differ in length), without building Python lists from a Dataset."""
    if not hasattr(features, "with_format"):
        return [np.asarray(row) for row in features[name]]
    column = features.with_format("arrow")[name]
    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    bounds = column.offsets.to_numpy()
    values = column.flatten().to_numpy()
    return np.split(values, bounds[1:-1] - bounds[0])


@dataclass
class WindowCollator:
    """Pads a batch of windows on the right (see `features`), leaving out `decode`'s bookkeeping columns."""

    tokenizer: Any
    pad_to_max_length: bool = False

    def __call__(self, features: list[dict]):
        from transformers import default_data_collator

        from ...inference.prediction import pad_right  # the predictor pads windows the same way

        features = [{key: value for key, value in feature.items() if key not in BOOKKEEPING}
                    for feature in features]
        if self.pad_to_max_length:
            return default_data_collator(features)
        targets = {name: [feature.pop(name) for feature in features] for name in TARGETS if name in features[0]}
        batch = pad_right(self.tokenizer, features, "pt")
        if targets:
            import torch

            batch.update({name: torch.tensor(values, dtype=torch.long) for name, values in targets.items()})
        return batch


from .. import register_task  # noqa: E402

register_task("question-answering", QuestionAnsweringTask)
