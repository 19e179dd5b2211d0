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
        id: Its anchor in report.html (tables in it get `<id>-table`); default: made from the title. A section
            titled like one of the report's own ("Data") adds to that section instead of making a new one.
        files: Other files the section wrote beside the report (e.g. {"validation_predictions": path}), by the
            name `write_report` (and `RunResult.files`) lists them under.
    """

    title: str
    markdown: str
    plots: list[Path] = field(default_factory=list)
    id: str = ""
    files: dict[str, Path] = field(default_factory=dict)


class Task(Protocol):
    """What the engine needs from a task. Class attributes first, then one group of methods per layer.

    Some members are optional: the engine looks them up with `getattr`/`hasattr` and does without them.
        `with_metric(metric_name) -> Task`: this task computing `metric_name` instead of the run's own metrics
            (`textune evaluate --metric_name`); a task without it refuses that flag in one line.
        `encode_inputs(inputs, tokenizer)`: the features of a list of API inputs without building their rows, for a
            task whose `decode` reads no rows (`Predictor.predict` then passes rows=None). Classification's saves a
            tenth of a one-tweet prediction with it; a task without it gets rows from `api().rows(inputs)`.
        `generate(model, tokenizer, batch) -> tuple[np.ndarray, ...]`: the outputs of one batch (a dict of int64
            arrays of `model_inputs`, padded on the right) for a task whose outputs are not one forward pass
            (sequence-to-sequence generation). `Predictor.run` calls it on the PyTorch model in place of the
            backend; the arrays follow `output_names` as the backend's would (float32, zero-padded between batches).
        `for_model(config) -> Task`: the task for the pretrained model about to be fine-tuned (its transformers
            config, loaded before any row is encoded), e.g. T5's default source prefix; `train` uses and saves the
            task it returns (the same one when nothing changes).
    A task that generates text has more (`textune.inference.generation`):
        `generation: GenerationSettings`: the settings it generates with (the run's own, overrides put over them).
        `with_generation(overrides: GenerationSettings) -> Task`: a copy generating with `overrides.over(generation)`
            (`textune predict --num_beams ...`, an API request's `parameters`); a task without it refuses those.
        `stream(model, tokenizer, input) -> Iterator[str]`: one API input's output text, piece by piece as it is
            generated (the demo shows it growing; the pieces joined equal its record's text).
        `with_engine(backend, model, tokenizer, folder) -> Task`: a copy whose `generate` and `stream` get their tokens
            from the causal generation engine `--backend` names (`textune.inference.causal_engines`; checked against
            `model`, whose files are in `folder`, a run folder or None); `Predictor` calls it in place of building a
            backend. A task without it runs on the backends of `textune.inference.backends`.
        `context_ids(input, tokenizer) -> list[int]`: the token ids the model generates from for one API input, as
            the task renders it (a chat with its system prompt and the chat template); the server counts a prompt
            against --max_prompt_tokens with it (a task without it: the plain tokenized prompt or chat).
        `chat: ClassVar[bool]`: True when `stream` and the API take `{"messages": [{"role", "content"}, ...]}` as well
            as a plain string, rendered with the tokenizer's chat template (the OpenAI-compatible chat routes and the
            chat demo need it); absent means False.
    """

    name: ClassVar[str]
    """Registry key and `--task` value, as transformers names pipelines: text-classification, question-answering.
    A class attribute (the registry and the CLI read it before any task is built), saved by `to_dict`."""

    arguments: ClassVar[type]
    """The task's own flags: a dataclass whose fields become `textune train` flags (every field documented)."""

    output_names: ClassVar[tuple[str, ...]]
    """Names of the model outputs `outputs` holds, in order: ("logits",) or ("start_logits", "end_logits")."""

    metric_scale: ClassVar[float]
    """A perfect score of the task's bounded metrics: 1.0 (accuracy 0-1) or 100.0 (SQuAD's percentages). Backend
    choice measures a metric's drop in points of it, and `compare` scales its axis by it."""

    trains_on_disk: ClassVar[bool]
    """Whether `--large_data` can train it from Arrow on disk (the train file read a chunk at a time as a plain
    table, each row checked and encoded alone). False: `--large_data true` is refused, `auto` reads it in memory."""

    # -- choosing and rebuilding the task ----------------------------------------------------------------------

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        """Why a table with these columns is this task's (logged when `--task` is not given), or None."""

    @classmethod
    def from_arguments(cls, task_args, train_rows: pd.DataFrame, where: str) -> "Task":
        """The task for a new run, from its own flags (`arguments`) and the training rows (labels are read from them).

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
        """The columns holding the references (labels, answers): they keep their own type when a file with
        references is read in chunks (`--large_data`, `textune evaluate` on a file); the others are read as text,
        as a tweet reading "NA" or "123" is text (`textune predict` reads every column as text)."""

    def stratify_by(self, rows: pd.DataFrame) -> pd.Series | None:
        """Values to stratify on when validation rows are held out of the training file, or None."""

    def encode(self, rows: pd.DataFrame, tokenizer, for_training: bool, where: str = "data"):
        """Features of `rows`, always with what `decode` needs, and with targets (for the loss) when `for_training`.

        The validation split is encoded for training (its loss) and decoded (its metrics) from the same features.
        For prediction (not `for_training`) a dict of lists: the server encodes every request, and building a
        `datasets.Dataset` costs milliseconds each time.
        """

    def collator(self, tokenizer) -> Callable:
        """Trainer's data collator for `encode`'s features (padding as the task's own `pad_to_max_length` says)."""

    def model_inputs(self, features) -> list[str]:
        """The feature columns the model's forward takes (the others are the task's bookkeeping)."""

    # -- model -------------------------------------------------------------------------------------------------

    def build_model(self, name_or_path: str, model_args, local_files_only: bool = False):
        """The pretrained model with this task's head, ready to train."""

    def load_model(self, run_dir: str | Path, allow_pickle: bool = False):
        """The model a run saved (predict, evaluate, serve and export load it through here)."""

    def training_options(self, training_args, train_features) -> dict[str, Any]:
        """Extra keyword arguments for Trainer (a loss function, ...): {} when the model's own loss is used.

        Besides transformers.Trainer's own, the engine's Trainer takes `evaluation_outputs`: a callable
        `(model, inputs) -> tuple[torch.Tensor, ...]` giving evaluation's outputs for one batch (the `output_names`
        arrays `decode` reads, a sequence axis padded with 0 or -100) instead of the forward pass's, e.g. generated
        ids (Seq2SeqTrainer's `predict_with_generate`). The evaluation loss is still the forward pass's.
        """

    # -- outputs -----------------------------------------------------------------------------------------------

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        """Metrics of `decode`'s records against the references in `rows` (no `eval_` prefix).

        Trainer's `compute_metrics` too: the engine decodes the EvalPrediction's arrays first (Trainer pads them
        with -100 along a sequence axis; a task reads only the positions of real tokens).
        """

    def decode(self, rows: pd.DataFrame | None, features, outputs: tuple[np.ndarray, ...]) -> pd.DataFrame:
        """Records: one row per input row, in the rows' order (e.g. prediction + prob_<label>, or answer + score).

        `rows` is None only for features made by the optional `encode_inputs` (see the class docstring), which a
        task has only when its `decode` does not read the rows.
        """

    def agreement(self, expected: pd.DataFrame, got: pd.DataFrame) -> float:
        """Share of rows whose records give the same answer (a faster backend is kept only when this is high)."""

    def write_predictions(self, output_dir: Path, rows: pd.DataFrame, records: pd.DataFrame,
                          predictions_file: Path | None = None) -> dict[str, Path]:
        """The run's prediction files (through `textune.atomic`), by name: predictions.csv plus the task's own."""

    def prediction_table(self, rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
        """predictions.csv's rows for `rows` and their records (`textune predict` writes it chunk by chunk)."""

    def saved_rows(self, run_dir: Path, limit: int) -> pd.DataFrame | None:
        """Up to `limit` validation rows the run folder keeps in the task's own files (the report's), or None.

        What an exported model is checked on when the caller has no rows, before the run's data files are read.
        """

    def example_rows(self, limit: int) -> pd.DataFrame | None:
        """Up to `limit` built-in rows to check an exported model on when a run has no validation rows, or None."""

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

    def report_sections(self, rows: pd.DataFrame | None, records: pd.DataFrame | None, plots_dir: Path,
                        splits: dict[str, pd.DataFrame] | None = None, tokenizer=None) -> list[Section]:
        """The report's task-specific sections from the validation rows and their records (None: not computed).

        A file a section writes beside the report (through `textune.atomic`) is listed in its `Section.files`.

        `splits` holds every split's rows by role (train, validation, test) and `tokenizer` is the run's, for
        sections about the data (target distribution, input lengths); both None when the data could not be read.
        """

    def card(self) -> dict:
        """Model-card facts, also used by the demo header, the Space's README and the report.

        Keys: `kind` ("text classifier"), `pipeline_tag`, `tags`, `outputs` (one line: what the model answers),
        `example` (one API input), `loss` (the training loss's name, for plots). Optional: `outputs_list`
        (Markdown, the card's Outputs section), `pipeline_kwargs` (for the card's transformers example),
        `limitations` (Markdown lines), `minimal_app` (source of a short transformers + Gradio app, formatted with
        `title` and `examples`) or `minimal_app_problem` (why there is none), `needs_code` (what the model needs
        beyond textune's code, e.g. "uses the head 'x' (defined in my_module)"; a Space refuses such a run).
        """


class TaskApi(Protocol):
    """A task's part of the JSON API: `POST /v1/predict` validates the body with `request` and answers `records`."""

    request: ClassVar[type]
    """Pydantic model of the request body (classification: {"texts": [...]}; QA: {"inputs": [{question, context}]}).

    Its first field holds the inputs (error messages name it); the example in its `json_schema_extra` is shown in
    the docs and sent once at server start to warm the model up."""

    record: ClassVar[type]
    """Pydantic model of one prediction in the response."""

    description: ClassVar[type]
    """Pydantic model of `Task.describe()`'s answer (the `GET /v1/labels` body, without `model`)."""

    def inputs(self, body) -> list:
        """The request's inputs, one per prediction (what the micro-batcher queues)."""

    def rows(self, inputs: list) -> pd.DataFrame:
        """A table of `inputs` in the task's columns, for `Predictor`."""

    def to_records(self, records: pd.DataFrame) -> list[dict]:
        """`decode`'s table as JSON-ready records, one per input."""

    # Optional, for a task with `with_generation`: `generation(body) -> GenerationSettings | None`, the request's
    # generation parameters (None: the run's own). The server checks them against its limits (422) and batches
    # only requests of equal settings together.


class TaskDemo(Protocol):
    """A task's part of the Gradio demo; `textune.serving.ui` lays it out with the header and examples."""

    def inputs(self) -> list:
        """The input components (created inside the caller's `gr.Blocks`)."""

    def outputs(self) -> list:
        """The output components."""

    def to_input(self, *values) -> Any:
        """The input components' values as one API input (what `TaskApi.rows` takes)."""

    def show(self, record: dict, given: Any = None) -> tuple:
        """One record as the output components' values; `given` is the input it answers (`to_input`'s value), for
        outputs that show the input too (QA highlights the answer in its context). Callers pass it."""

    def examples(self, rows: pd.DataFrame, limit: int) -> list[list]:
        """A few example inputs from validation rows, one value per input component."""
