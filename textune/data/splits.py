"""Assembling the train/validation/test frames of a run from files, a hub dataset, or the built-in demo.

The task checks the rows (`check_rows`) and says what to stratify the held-out validation rows on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import pandas as pd

from ..training.arguments import DataArguments
from .tables import check_data_file, read_table, stratified_split
from ..errors import TextuneError
from ..models.packaged import DEMO_DATA, demo_data_path

logger = logging.getLogger(__name__)


@dataclass
class Splits:
    """The frames of one run and the task that checked them; `test` may lack the task's reference columns."""

    train: pd.DataFrame | None
    validation: pd.DataFrame | None
    test: pd.DataFrame | None
    task: Any  # the run's Task (textune.tasks.protocol), built from the training rows or rebuilt from a saved run
    source: str  # where the data came from, for the log and the run record
    row_accounting: list | None = None  # the report's rows per split (SplitRows), when known without re-reading
    notes: list[str] = field(default_factory=list)  # said in the run report

    def for_report(self) -> "Splits":
        """The frames the run report reads; on-disk splits give a sample (large_data)."""
        return self


def _hub_splits(data_args: DataArguments) -> dict[str, pd.DataFrame]:
    from datasets import load_dataset

    try:
        loaded = load_dataset(data_args.dataset_name, data_args.dataset_config_name)
    except Exception as error:  # datasets raises many kinds; all mean the same to the user
        raise TextuneError(
            f"--dataset_name {data_args.dataset_name} could not be loaded ({type(error).__name__}); "
            "pass local files with --train_file/--validation_file instead"
        ) from None
    for name in (data_args.remove_splits or "").split(","):
        if name.strip():
            loaded.pop(name.strip(), None)
    wanted = {"train": data_args.train_split_name or "train",
              "validation": data_args.validation_split_name or "validation",
              "test": data_args.test_split_name or "test"}
    return {role: loaded[name].to_pandas() for role, name in wanted.items() if name in loaded}


DataInput = Union[pd.DataFrame, "datasets.Dataset", Callable[[], Any]]


def as_frame(data: DataInput, role: str) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a datasets.Dataset, or a callable returning either."""
    if callable(data) and not isinstance(data, pd.DataFrame) and not hasattr(data, "to_pandas"):
        data = data()
    if hasattr(data, "to_pandas") and not isinstance(data, pd.DataFrame):
        data = data.to_pandas()
    if not isinstance(data, pd.DataFrame):
        raise TextuneError(f"{role}_data must be a pandas DataFrame, a datasets.Dataset or a callable returning one; "
                           f"got {type(data).__name__}")
    if data.empty:
        raise TextuneError(f"{role}_data has no rows")
    return data.reset_index(drop=True)


def load_splits(data_args: DataArguments, seed: int, need_train: bool = True,
                given: dict[str, DataInput | None] | None = None, *, task=None, task_args=None) -> Splits:
    """Read the run's data, build (or take) its task, let the task check the rows, and hold out validation.

    Args:
        data_args: Which files or dataset, hold-out, shuffling and caps.
        seed: Seed of the held-out validation rows.
        need_train: Whether training rows are required (else the demo data is not used in their place).
        given: Data passed in code (DataFrame, Dataset or callable) by role; it wins over files.
        task: A saved run's task, to read its data again as training did; else one is built from the training rows
            (`--task`, else picked from their columns, with `task_args` or its default flags).
        task_args: The chosen task's flags (its `arguments` dataclass).
    """
    frames, source = read_frames(data_args, need_train, given)
    where = _where(data_args, "train", source)
    if task is None:
        task = build_task(data_args, task_args, frames["train"], where)
    train = task.check_rows(frames["train"], where, with_targets=True)
    if train.empty:
        raise TextuneError(f"{where}: no usable rows; check the columns the task's flags name")
    validation = frames.get("validation")
    if validation is not None:
        validation = task.check_rows(validation, f"--validation_file {data_args.validation_file}", with_targets=True)
    test = frames.get("test")
    if test is not None:
        test = task.check_rows(test, f"--test_file {data_args.test_file}", with_targets=False)
    if validation is None:
        if source.startswith("demo:"):
            # the demo also holds out a test split, so prediction has something the model never saw
            train, test = stratified_split(train, data_args.validation_split_percentage, seed,
                                           task.stratify_by(train))
        train, validation = stratified_split(train, data_args.validation_split_percentage, seed,
                                             task.stratify_by(train))
        logger.info("no --validation_file: held out %d%% of train (%d rows) for validation, seed %d",
                    data_args.validation_split_percentage, len(validation), seed)
    if data_args.shuffle_train_dataset:
        train = train.sample(frac=1.0, random_state=data_args.shuffle_seed).reset_index(drop=True)
    train = cap_rows(train, data_args.max_train_samples)
    validation = cap_rows(validation, data_args.max_eval_samples)
    test = cap_rows(test, data_args.max_predict_samples)
    return Splits(train, validation, test, task, source)


def read_frames(data_args: DataArguments, need_train: bool = True,
                given: dict[str, DataInput | None] | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """The run's tables by role (train, validation, test), as read, and where the training rows came from."""
    frames: dict[str, pd.DataFrame] = {}
    given = {role: data for role, data in (given or {}).items() if data is not None}
    if "train" in given:
        frames["train"], source = as_frame(given["train"], "train"), "train_data"
    elif data_args.dataset_name:
        frames, source = _hub_splits(data_args), f"hub dataset {data_args.dataset_name}"
    elif data_args.train_file:
        frames["train"] = read_rows(data_args.train_file, data_args.encoding, "--train_file", data_args.task)
        source = data_args.train_file
    elif need_train:
        path = demo_data_path()
        logger.info("no --train_file given: using the built-in demo data (%s, %s)", DEMO_DATA.name, path)
        frames["train"] = read_table(path, flag="demo data")
        source = f"demo:{DEMO_DATA.name}"
    else:
        source = "none"
    for role, flag in (("validation", "--validation_file"), ("test", "--test_file")):
        path = getattr(data_args, f"{role}_file")
        if role in given:
            frames[role] = as_frame(given[role], role)
        elif path:
            frames[role] = read_rows(path, data_args.encoding, flag, data_args.task)
    if data_args.remove_columns:
        for role in frames:
            frames[role] = _without_removed_columns(frames[role], data_args)
    if "train" not in frames:
        if need_train:
            raise TextuneError("no training data: pass --train_file (csv, tsv, json, jsonl or parquet)")
        raise TextuneError("internal: load_splits without training data needs a saved run's columns")
    return frames, source


def read_rows(path, encoding: str | None, flag: str, task_name: str | None = None) -> pd.DataFrame:
    """A data file's rows: a task's own format first (SQuAD's nested JSON), else a plain table (`read_table`).

    With `task_name` only that task's reader is tried; without it, every registered task's.
    """
    check_data_file(path, flag)
    rows = task_format_rows(path, encoding, flag, task_name)
    return rows if rows is not None else read_table(path, encoding, flag)


def table_columns(path, encoding: str | None, flag: str) -> list[str]:
    """A data file's column names, to pick its task: a task's own format read whole, a plain table's first rows."""
    from .table_chunks import TableReader

    rows = task_format_rows(path, encoding, flag)
    if rows is None:
        rows = next(TableReader.open(path, encoding, flag).chunks(100))
    return [str(column) for column in rows.columns]


def task_format_rows(path, encoding: str | None, flag: str, task_name: str | None = None) -> pd.DataFrame | None:
    """The file's rows as the first task that knows its format reads them (`Task.read`), or None for a plain table."""
    from ..tasks import TASKS

    readers = [TASKS[task_name]] if task_name in TASKS else list(TASKS.values())
    for task_class in readers:
        rows = task_class.read(Path(path).expanduser(), encoding, flag)
        if rows is not None:
            return rows
    return None


def build_task(data_args: DataArguments, task_args, train_rows: pd.DataFrame, where: str):
    """The run's task from its flags and training rows: `--task` (or `task_args`' task), else detected."""
    from ..tasks import choose_task

    task_class = choose_task(data_args.task, train_rows.columns, where, task_args)
    if task_args is None:
        task_args = task_class.arguments()
    return task_class.from_arguments(task_args, train_rows, where)


def read_other_splits(data_args: DataArguments) -> dict[str, pd.DataFrame]:
    """The validation and test files, read whole and without their --remove_columns (those that are given)."""
    frames = {}
    for role, flag in (("validation", "--validation_file"), ("test", "--test_file")):
        path = getattr(data_args, f"{role}_file")
        if path:
            frames[role] = _without_removed_columns(read_table(path, data_args.encoding, flag), data_args)
    return frames


def _without_removed_columns(frame: pd.DataFrame, data_args: DataArguments) -> pd.DataFrame:
    if not data_args.remove_columns:
        return frame
    return frame.drop(columns=[c.strip() for c in data_args.remove_columns.split(",")], errors="ignore")


def cap_rows(frame: pd.DataFrame | None, limit: int | None) -> pd.DataFrame | None:
    if frame is None or limit is None:
        return frame
    return frame.iloc[:limit].reset_index(drop=True)


def _where(data_args: DataArguments, role: str, source: str) -> str:
    path = getattr(data_args, f"{role}_file", None)
    return f"--{role}_file {path}" if path else source
