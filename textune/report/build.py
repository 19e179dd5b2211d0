"""Building a run's report: gather what it shows from the run folder (or from memory right after training), then draw and render it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..training.arguments import DataArguments
from ..atomic import write_text_atomically
from ..errors import TextuneError
from ..run_folder import read_run_file
from .data_summary import DataSummary, summarize_data

logger = logging.getLogger(__name__)

GIVEN_IN_CODE = ("train_data",)  # load_splits' source name for data passed to train() as frames, not files


@dataclass
class ReportData:
    """Everything a report shows; sections whose inputs were unavailable are None, with the reason in `notes`."""

    run_dir: Path
    record: dict
    task: object
    metrics: dict[str, float]
    history: list[dict]
    data: DataSummary | None = None
    rows: pd.DataFrame | None = None  # the validation rows
    records: pd.DataFrame | None = None  # the model's records for them (`Task.decode`)
    splits: dict[str, pd.DataFrame] | None = None  # every split's rows by role, for the task's data sections
    tokenizer: object = None
    notes: list[str] = field(default_factory=list)
    task_sections: list = field(default_factory=list)  # `Task.report_sections`, filled by write_report


def collect_report_data(run_dir: str | Path, splits=None, task=None, model=None, tokenizer=None,
                        batch_size: int = 32) -> ReportData:
    """Read the run folder and, where needed, rebuild the data splits and rerun the model on validation.

    Args:
        run_dir: A run folder written by `textune train`.
        splits, task, model, tokenizer: What `train()` already holds in memory; each is rebuilt from the run
            folder when None (the splits from textune_run.json's data arguments, deterministically).
        batch_size: Features per forward pass for the validation records.

    Raises:
        TextuneError: The folder is not a textune run.
    """
    from ..inference.prediction import Predictor
    from ..tasks import task_from_dict

    run_dir = Path(run_dir)
    record = read_run_file(run_dir, flag="run folder")
    task = task or task_from_dict(record["task"])
    data = ReportData(run_dir, record, task, _read_json(run_dir / "all_results.json"), training_history(run_dir))
    if splits is None:
        try:
            splits = _rebuild_splits(record, task)
        except TextuneError as error:
            data.notes.append(f"Data summary and validation errors are missing: {error} (run `textune report` "
                              "from the folder the run was trained in, so its relative data paths resolve).")
            return data
    splits = splits.for_report()  # splits kept on disk (--large_data) give a sample of their rows
    data.notes.extend(splits.notes)
    if model is None or tokenizer is None:
        predictor = Predictor.from_run(run_dir, batch_size)
    else:
        predictor = Predictor(model, tokenizer, task, batch_size)
    data.data = summarize_data(_data_args(record), record["training_args"].get("seed", 42), splits)
    data.splits = {role: getattr(splits, role) for role in ("train", "validation", "test")
                   if getattr(splits, role) is not None}
    data.tokenizer = predictor.tokenizer
    if splits.validation is not None and len(splits.validation):
        data.rows = splits.validation
        data.records = predictor.predict(splits.validation)
        if not any(key.startswith("eval_") for key in data.metrics):
            computed = task.score(data.rows, data.records)
            data.metrics.update({f"eval_{key}": value for key, value in computed.items()})
            data.notes.append("The run did not evaluate (--do_eval); the validation metrics were computed by the report.")
    return data


def training_history(run_dir: Path) -> list[dict]:
    """Trainer's log_history, plus the final evaluation (train() evaluates after saving trainer_state.json)."""
    state = _read_json(run_dir / "trainer_state.json")
    history = list(state.get("log_history", []))
    final = _read_json(run_dir / "eval_results.json")
    step = state.get("global_step")
    if final and step is not None and not any("eval_loss" in entry and entry.get("step") == step for entry in history):
        history.append({key: value for key, value in final.items() if key != "eval_samples"} | {"step": step})
    return history


def _rebuild_splits(record: dict, task):
    from ..data.large_data import load_run_splits

    if record.get("data_source") in GIVEN_IN_CODE:
        raise TextuneError("the run's data was passed in code (train(..., train_data=...)), not read from files, "
                           "so it cannot be read again; call write_report(run_dir, splits=...) with it")
    return load_run_splits(_data_args(record), record["training_args"].get("seed", 42), task=task)


def _data_args(record: dict) -> DataArguments:
    known = {f.name for f in fields(DataArguments)}
    return DataArguments(**{key: value for key, value in record.get("data_args", {}).items() if key in known})


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        logger.warning("%s is not valid JSON; the report leaves it out", path)
        return {}


def write_report(run_dir: str | Path, splits=None, task=None, model=None, tokenizer=None,
                 batch_size: int = 32) -> dict[str, Path]:
    """Write report.html (self-contained), report.md, plots/*.png and the task's own files into `run_dir`.

    Arguments after `run_dir` are what `train()` already holds; `textune report` passes none and everything
    is rebuilt from the run folder.

    Returns:
        The files written, by name (as `RunResult.files` lists them).

    Example:
        >>> write_report("experiments/")["report"]
        PosixPath('experiments/report.html')
    """
    from .plots import draw_plots
    from .render import render_html, render_markdown, report_sections

    run_dir = Path(run_dir)
    data = collect_report_data(run_dir, splits, task, model, tokenizer, batch_size)
    files: dict[str, Path] = {}
    plots = draw_plots(data, run_dir / "plots")
    data.task_sections = data.task.report_sections(data.rows, data.records, run_dir / "plots",
                                                   splits=data.splits, tokenizer=data.tokenizer)
    plots.update({path.stem: path for section in data.task_sections for path in section.plots})
    files.update({name: path for section in data.task_sections for name, path in section.files.items()})
    sections = report_sections(data, plots)
    files["report"] = write_text_atomically(run_dir / "report.html", render_html(sections, data, run_dir))
    files["report_md"] = write_text_atomically(run_dir / "report.md", render_markdown(sections, run_dir))
    files.update({f"plot_{name}": path for name, path in plots.items()})
    return files


def report_after_training(run_dir: str | Path, **in_memory) -> dict[str, Path]:
    """write_report for the end of `train()`: a failing report must not fail a run whose model is already saved."""
    try:
        return write_report(run_dir, **in_memory)
    except Exception as error:  # noqa: BLE001 - logged with the way to retry; the run itself succeeded
        logger.warning("could not write the run report (%s: %s); retry with: textune report %s",
                       type(error).__name__, error, run_dir)
        return {}


def headline(data: ReportData) -> dict[str, float]:
    """The validation metrics worth a first glance, in the order people read them."""
    order = (*data.task.headline_metrics, "loss")
    shown = {name: data.metrics[f"eval_{name}"] for name in order if f"eval_{name}" in data.metrics}
    return {name: float(value) for name, value in shown.items() if value is not None and np.isfinite(value)}
