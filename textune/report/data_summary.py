"""The data half of a run report: rows per split and why rows went unused (the task adds its own data sections)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace

from ..training.arguments import DataArguments
from ..data.large_data import unusable_counts
from ..data.splits import Splits, load_splits, read_rows

ROLES = ("train", "validation", "test")


@dataclass
class SplitRows:
    """How one split's rows were accounted for: read - dropped - moved - capped = used."""

    split: str
    source: str  # a file, "held out from train", or the hub/demo source
    read: int | None  # rows in the file; None when the split did not come from a file of its own
    dropped: dict[str, int] = field(default_factory=dict)  # by the task's reason (`Task.unusable_rows`)
    held_out: int = 0  # moved to another split (validation or test held out from train)
    capped: int = 0  # beyond --max_{train,eval,predict}_samples
    used: int = 0


@dataclass
class DataSummary:
    """What the report says about the data a run trained and was evaluated on."""

    rows: list[SplitRows]


CAP_FLAGS = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_predict_samples"}


@contextlib.contextmanager
def quiet(name: str = "textune"):
    """Silence textune's own logging while the data is read again: the training run already logged the drops."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def summarize_data(data_args: DataArguments, seed: int, splits: Splits) -> DataSummary:
    """Summarize the run's data; `splits` are the frames the run used (load_splits' output)."""
    rows = splits.row_accounting  # counted while loading, when the files are too big to read again
    if rows is None:
        with quiet():
            rows = split_rows(data_args, seed, splits)
    return DataSummary(rows)


def split_rows(data_args: DataArguments, seed: int, splits: Splits) -> list[SplitRows]:
    """Account for every row of every input file: dropped (and why), held out, capped, used."""
    uncapped = splits
    from_files = splits.source not in ("train_data",)  # data passed to train() in code cannot be re-read
    if from_files and any(getattr(data_args, flag) is not None for flag in CAP_FLAGS.values()):
        # the same split without the caps, to tell rows cut by --max_*_samples from rows held out
        uncapped = load_splits(replace(data_args, **{flag: None for flag in CAP_FLAGS.values()}), seed,
                               task=splits.task)
    files = {role: getattr(data_args, f"{role}_file") if from_files else None for role in ROLES}
    if splits.source.startswith("demo:") and not files["train"]:
        from ..models.packaged import demo_data_path

        files["train"] = str(demo_data_path())
    rows = []
    for role in ROLES:
        used_frame = getattr(splits, role)
        if used_frame is None:
            continue
        entry = SplitRows(role, files[role] or ("held out from train" if role != "train" else splits.source), None,
                          used=len(used_frame))
        if files[role]:
            raw = read_rows(files[role], data_args.encoding, f"--{role}_file", splits.task.name)
            if data_args.remove_columns:
                raw = raw.drop(columns=[c.strip() for c in data_args.remove_columns.split(",")], errors="ignore")
            entry.read = len(raw)
            if role != "test":  # test rows are kept whatever they hold, so every id gets a prediction
                entry.dropped = unusable_counts(splits.task, raw)[0]
        entry.capped = len(getattr(uncapped, role)) - len(used_frame)
        if role == "train" and entry.read is not None:
            entry.held_out = entry.read - sum(entry.dropped.values()) - len(uncapped.train)
        rows.append(entry)
    return rows
