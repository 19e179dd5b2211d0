"""The contract between the engine and a task: what training, prediction, serving, export and the report may ask.

A task is one package under `textune/tasks/<task>/` that implements `Task` and registers itself (`register_task`).
The generic layers (`textune.training`, `textune.inference`, `textune.serving`, `textune.report`) call only what is
declared here, so a new task gets the whole product by implementing it and passing the conformance suite
(`tests/tasks/test_conformance.py`). Change this file deliberately: every task implements it.

Vocabulary:
    rows: the user's table (a pandas DataFrame), one row per example, in the columns the task's arguments name.
    features: what the model reads (`datasets.Dataset` or a dict of lists); a row may make several features (QA
        splits a long context into windows), so features carry what the task needs to map them back.
    outputs: the model's raw outputs for the features, one float32 array per name in `output_names`, each with the
        features along the first axis, in feature order. Arrays with a sequence axis are padded (with 0) to the
        longest feature; a task reads only the positions of real tokens.
    records: the task's predictions, one table row per input row (`decode`), written to files and answered by the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, Sequence

import numpy as np
import pandas as pd


@dataclass
class Section:
    """One task-specific section of the run report (confusion matrix, answer lengths, ...).

    Attributes:
        title: Heading of the section.
        markdown: Its text (Markdown; tables allowed), shown in report.md and rendered into report.html.
        plots: PNG files the section shows, already written under the report's `plots/` folder.
    """

    title: str
    markdown: str
    plots: list[Path] = field(default_factory=list)


class Task(Protocol):
    """What the engine needs from a task. Class attributes first, then one group of methods per layer."""

    name: ClassVar[str]
    """Registry key and `--task` value, as transformers names pipelines: text-classification, question-answering."""

    arguments: ClassVar[type]
    """The task's own flags: a dataclass whose fields become `textune train` flags (every field documented)."""

    output_names: ClassVar[tuple[str, ...]]
    """Names of the model outputs `outputs` holds, in order: ("logits",) or ("start_logits", "end_logits")."""

    # -- choosing and rebuilding the task ----------------------------------------------------------------------

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        """Why a table with these columns is this task's (logged when `--task` is not given), or None."""

    @classmethod
    def from_arguments(cls, task_args, data_args, train_rows: pd.DataFrame, where: str) -> "Task":
        """The task for a new run, from its flags and the training rows (labels are read from them).

        Raises:
            TextuneError: A column or value the flags name is missing or unusable (one line naming it).
        """

    def to_dict(self) -> dict:
        """Everything needed to rebuild the task from a saved run (JSON-serialisable; includes `name`)."""

    @classmethod
    def from_dict(cls, data: dict) -> "Task":
        """Rebuild the task a run saved; must never import or run code named in `data`."""

    # -- data --------------------------------------------------------------------------------------------------

    @classmethod
    def read(cls, path: Path, encoding: str | None, flag: str) -> pd.DataFrame | None:
        """Rows of a file in a format only this task reads (SQuAD's nested JSON), or None for a plain table.

        A classmethod: the training file is read before the task is built from its rows (`from_arguments`), and
        before `detect` looks at its columns.
        """

    def check_rows(self, rows: pd.DataFrame, where: str, with_targets: bool) -> pd.DataFrame:
        """The rows with the task's columns checked (and cleaned); `with_targets` when references are needed.

        Raises:
            TextuneError: A column is missing or a value unusable, naming the file (`where`), column and flag.
        """

    def unusable_rows(self, rows: pd.DataFrame) -> dict[str, pd.Series]:
        """Why `check_rows(rows, ..., with_targets=True)` drops rows: one boolean mask per reason, in the order they
        are counted (a row counts for its first reason), e.g. {"empty_text": ..., "missing_label": ...}."""

    def target_columns(self) -> list[str]:
        """The columns holding the references (labels, answers). `--large_data` keeps them in memory with their
        types, and the other columns on disk as text."""

    def stratify_by(self, rows: pd.DataFrame) -> pd.Series | None:
        """Values to stratify on when validation rows are held out of the training file, or None."""

    def encode(self, rows: pd.DataFrame, tokenizer, for_training: bool, where: str = "data"):
        """Features of `rows`: with targets (for the loss) when `for_training`, else with what `decode` needs."""

    def collator(self, tokenizer, pad_to_max_length: bool) -> Callable:
        """Trainer's data collator for `encode`'s features."""

    def model_inputs(self, features) -> list[str]:
        """The feature columns the model's forward takes (the others are the task's bookkeeping)."""

    # -- model -------------------------------------------------------------------------------------------------

    def build_model(self, name_or_path: str, model_args, local_files_only: bool = False):
        """The pretrained model with this task's head, ready to train."""

    def load_model(self, run_dir: str | Path, allow_pickle: bool = False):
        """The model a run saved (predict, evaluate, serve and export load it through here)."""

    def training_options(self, training_args, train_features) -> dict[str, Any]:
        """Extra keyword arguments for Trainer (a loss function, ...): {} when the model's own loss is used."""

    # -- outputs -----------------------------------------------------------------------------------------------

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        """Metrics of `decode`'s records against the references in `rows` (no `eval_` prefix).

        Trainer's `compute_metrics` too: the engine decodes the EvalPrediction's arrays first (Trainer pads them
        with -100 along a sequence axis; a task reads only the positions of real tokens).
        """

    def decode(self, rows: pd.DataFrame, features, outputs: tuple[np.ndarray, ...]) -> pd.DataFrame:
        """Records: one row per input row, in the rows' order (e.g. prediction + prob_<label>, or answer + score)."""

    def agreement(self, expected: pd.DataFrame, got: pd.DataFrame) -> float:
        """Share of rows whose records give the same answer (a faster backend is kept only when this is high)."""

    def write_predictions(self, output_dir: Path, rows: pd.DataFrame, records: pd.DataFrame,
                          predictions_file: Path | None = None) -> dict[str, Path]:
        """The run's prediction files (through `textune.atomic`), by name: predictions.csv plus the task's own."""

    headline_metrics: ClassVar[tuple[str, ...]]
    """Metric names shown first (demo page, card, leaderboard), best known first; the first one ranks `compare`."""

    # -- serving -----------------------------------------------------------------------------------------------

    def api(self) -> "TaskApi":
        """The JSON API's request and record schema for this task."""

    def demo(self) -> "TaskDemo":
        """The Gradio demo's inputs and outputs for this task."""

    def describe(self) -> dict:
        """What the served task expects and answers (`GET /v1/labels`): labels, input fields, thresholds."""

    # -- report and card ---------------------------------------------------------------------------------------

    def report_sections(self, rows: pd.DataFrame | None, records: pd.DataFrame | None, plots_dir: Path) -> list[Section]:
        """The report's task-specific sections from the validation rows and their records (None: not computed)."""

    def card(self) -> dict:
        """Model-card facts: `kind` ("text classifier"), `pipeline_tag`, `tags`, `outputs` (one line), `example`."""


class TaskApi(Protocol):
    """A task's part of the JSON API: `POST /v1/predict` validates the body with `request` and answers `records`."""

    request: ClassVar[type]
    """Pydantic model of the request body (classification: {"texts": [...]}; QA: {"inputs": [{question, context}]})."""

    record: ClassVar[type]
    """Pydantic model of one prediction in the response."""

    def inputs(self, body) -> list:
        """The request's inputs, one per prediction (what the micro-batcher queues)."""

    def rows(self, inputs: list) -> pd.DataFrame:
        """A table of `inputs` in the task's columns, for `Predictor`."""

    def to_records(self, records: pd.DataFrame) -> list[dict]:
        """`decode`'s table as JSON-ready records, one per input."""


class TaskDemo(Protocol):
    """A task's part of the Gradio demo; `textune.serving.ui` lays it out with the header and examples."""

    def inputs(self) -> list:
        """The input components (created inside the caller's `gr.Blocks`)."""

    def outputs(self) -> list:
        """The output components."""

    def to_input(self, *values) -> Any:
        """The input components' values as one API input (what `TaskApi.rows` takes)."""

    def show(self, record: dict) -> tuple:
        """One record as the output components' values."""

    def examples(self, rows: pd.DataFrame, limit: int) -> list[list]:
        """A few example inputs from validation rows, one value per input component."""
