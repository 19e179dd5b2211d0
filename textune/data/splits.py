"""Assembling the train/validation/test frames of a run from files, a hub dataset, or the built-in demo."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import pandas as pd

from ..training.arguments import DataArguments
from .tables import ColumnSpec, drop_unusable_rows, read_table, require_columns, resolve_columns, stratified_split
from ..errors import TextuneError
from ..models.packaged import DEMO_DATA, demo_data_path

logger = logging.getLogger(__name__)


@dataclass
class Splits:
    """The frames of one run; `test` may lack the label column."""

    train: pd.DataFrame | None
    validation: pd.DataFrame | None
    test: pd.DataFrame | None
    columns: ColumnSpec
    source: str  # where the data came from, for the log and the run record
    row_accounting: list | None = None  # the report's rows per split (SplitRows), when known without re-reading
    notes: list[str] = field(default_factory=list)  # said in the run report

    def for_report(self) -> "Splits":
        """The frames the run report reads (texts and labels); on-disk splits give a sample (large_data)."""
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
                given: dict[str, DataInput | None] | None = None) -> Splits:
    """Read the run's data, pick its columns, drop unusable rows and hold out validation when needed.

    `given` holds data passed in code (DataFrame, Dataset or callable) by role; it wins over files.
    """
    text_columns, label_column = data_args.text_columns, data_args.label_column_name
    frames: dict[str, pd.DataFrame] = {}
    given = {role: data for role, data in (given or {}).items() if data is not None}
    if "train" in given:
        frames["train"], source = as_frame(given["train"], "train"), "train_data"
    elif data_args.dataset_name:
        frames, source = _hub_splits(data_args), f"hub dataset {data_args.dataset_name}"
    elif data_args.train_file:
        frames["train"] = read_table(data_args.train_file, data_args.encoding, "--train_file")
        source = data_args.train_file
    elif need_train:
        path = demo_data_path()
        logger.info("no --train_file given: using the built-in demo data (%s, %s)", DEMO_DATA.name, path)
        frames["train"] = read_table(path, flag="demo data")
        text_columns = text_columns or [DEMO_DATA.text_column]
        label_column = label_column or DEMO_DATA.label_column
        source = f"demo:{DEMO_DATA.name}"
    else:
        source = "none"
    for role, flag in (("validation", "--validation_file"), ("test", "--test_file")):
        path = getattr(data_args, f"{role}_file")
        if role in given:
            frames[role] = as_frame(given[role], role)
        elif path:
            frames[role] = read_table(path, data_args.encoding, flag)
    if data_args.remove_columns:
        for role in frames:
            frames[role] = frames[role].drop(columns=[c.strip() for c in data_args.remove_columns.split(",")],
                                             errors="ignore")
    if "train" not in frames:
        if need_train:
            raise TextuneError("no training data: pass --train_file (csv, tsv, json, jsonl or parquet)")
        raise TextuneError("internal: load_splits without training data needs a saved run's columns")
    columns = resolve_columns(frames["train"], text_columns, label_column, data_args.text_pair_column_name,
                              data_args.text_column_delimiter, where=_where(data_args, "train", source))
    train = drop_unusable_rows(frames["train"], columns, "train")
    if train.empty:
        raise TextuneError(
            f"{_where(data_args, 'train', source)}: every row has an empty text or a missing label in "
            f"column {columns.label!r}; check --label_column_name and --text_column_names"
        )
    validation = frames.get("validation")
    if validation is not None:
        validation = checked_validation(validation, columns, f"--validation_file {data_args.validation_file}")
    test = frames.get("test")
    if test is not None:
        check_test(test, columns, f"--test_file {data_args.test_file}")
    if validation is None:
        stratify = data_args.label_delimiter is None and data_args.do_regression is not True
        if source.startswith("demo:"):
            # the demo also holds out a test split, so prediction has something the model never saw
            train, test = stratified_split(train, columns.label, data_args.validation_split_percentage, seed)
        train, validation = stratified_split(train, columns.label, data_args.validation_split_percentage, seed,
                                             stratify=stratify and stratifiable(train[columns.label]))
        logger.info("no --validation_file: held out %d%% of train (%d rows) for validation, seed %d",
                    data_args.validation_split_percentage, len(validation), seed)
    if data_args.shuffle_train_dataset:
        train = train.sample(frac=1.0, random_state=data_args.shuffle_seed).reset_index(drop=True)
    train = cap_rows(train, data_args.max_train_samples)
    validation = cap_rows(validation, data_args.max_eval_samples)
    test = cap_rows(test, data_args.max_predict_samples)
    return Splits(train, validation, test, columns, source)


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


def checked_validation(validation: pd.DataFrame, columns: ColumnSpec, where: str) -> pd.DataFrame:
    """The validation frame with training's columns required and its unusable rows dropped."""
    require_columns(validation, columns.text, "--text_column_names", where)
    require_columns(validation, [columns.label], "--label_column_name", where)
    return drop_unusable_rows(validation, columns, "validation")


def check_test(test: pd.DataFrame, columns: ColumnSpec, where: str) -> None:
    """Require the text columns of a test frame and warn about rows it keeps though they look wrong."""
    require_columns(test, columns.text, "--text_column_names", where)
    empty = pd.Series(columns.texts(test)).str.strip().eq("").sum()
    if empty:
        logger.warning("test: %d rows have empty text; they are kept so every id gets a prediction", empty)
    if columns.id in test.columns and test[columns.id].duplicated().any():
        repeated = test[columns.id][test[columns.id].duplicated()]
        logger.warning("test: %d rows repeat an id of column %r (first: %r); each row still gets its own "
                       "prediction, but submission.csv will repeat those ids", len(repeated), columns.id,
                       repeated.iloc[0])


def stratifiable(labels: pd.Series) -> bool:
    # only hashable, discrete labels can be stratified (not lists, not continuous values)
    return labels.map(lambda v: isinstance(v, (str, int, bool)) or float(v).is_integer()
                      if not isinstance(v, (list, tuple)) else False).all()


def cap_rows(frame: pd.DataFrame | None, limit: int | None) -> pd.DataFrame | None:
    if frame is None or limit is None:
        return frame
    return frame.iloc[:limit].reset_index(drop=True)


def _where(data_args: DataArguments, role: str, source: str) -> str:
    path = getattr(data_args, f"{role}_file", None)
    return f"--{role}_file {path}" if path else source
