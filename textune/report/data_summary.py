"""The data half of a run report: rows per split and why rows went unused, label counts, text lengths in tokens."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..training.arguments import DataArguments
from ..data.tables import read_table
from ..tasks.classification.labels import MULTI, REGRESSION
from ..data.splits import Splits, load_splits

ROLES = ("train", "validation", "test")


@dataclass
class SplitRows:
    """How one split's rows were accounted for: read - dropped - moved - capped = used."""

    split: str
    source: str  # a file, "held out from train", or the hub/demo source
    read: int | None  # rows in the file; None when the split did not come from a file of its own
    empty_text: int = 0
    missing_label: int = 0
    held_out: int = 0  # moved to another split (validation or test held out from train)
    capped: int = 0  # beyond --max_{train,eval,predict}_samples
    used: int = 0


@dataclass
class DataSummary:
    """What the report says about the data a run trained and was evaluated on."""

    rows: list[SplitRows]
    label_counts: pd.DataFrame  # classification: one row per label, one column per split (counts)
    label_stats: pd.DataFrame  # regression: describe() of the targets per split
    token_lengths: dict[str, np.ndarray]  # per split, tokens per text before truncation
    max_seq_length: int


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


def summarize_data(data_args: DataArguments, seed: int, splits: Splits, task, tokenizer) -> DataSummary:
    """Summarize the run's data; `splits` are the frames the run used (load_splits' output)."""
    rows = splits.row_accounting  # counted while loading, when the files are too big to read again
    if rows is None:
        with quiet():
            rows = split_rows(data_args, seed, splits)
    frames = {role: getattr(splits, role) for role in ROLES if getattr(splits, role) is not None}
    counts, stats = label_distribution(frames, task)
    lengths = {role: token_lengths(frame, task, tokenizer) for role, frame in frames.items()}
    return DataSummary(rows, counts, stats, lengths, task.max_seq_length)


def split_rows(data_args: DataArguments, seed: int, splits: Splits) -> list[SplitRows]:
    """Account for every row of every input file: dropped (and why), held out, capped, used."""
    columns = splits.task.columns
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
            raw = read_table(files[role], data_args.encoding, f"--{role}_file")
            if data_args.remove_columns:
                raw = raw.drop(columns=[c.strip() for c in data_args.remove_columns.split(",")], errors="ignore")
            entry.read = len(raw)
            if role != "test":  # test rows are kept whatever they hold, so every id gets a prediction
                entry.empty_text, entry.missing_label = drop_reasons(raw, columns)
        entry.capped = len(getattr(uncapped, role)) - len(used_frame)
        if role == "train" and entry.read is not None:
            entry.held_out = entry.read - entry.empty_text - entry.missing_label - len(uncapped.train)
        rows.append(entry)
    return rows


def drop_reasons(frame: pd.DataFrame, columns) -> tuple[int, int]:
    """Rows that training drops: (empty text, missing label but non-empty text), as data.drop_unusable_rows counts them."""
    from ..tasks.classification.columns import drop_unusable_rows

    texts = pd.Series(columns.texts(frame), index=frame.index)
    empty = texts.str.strip().eq("")
    if columns.label not in frame.columns:
        return int(empty.sum()), 0
    with quiet():
        kept = len(drop_unusable_rows(frame.loc[~empty], columns, "report"))
    return int(empty.sum()), int((~empty).sum()) - kept


def label_distribution(frames: dict[str, pd.DataFrame], task) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts per label and split (classification), or summary statistics per split (regression)."""
    label = task.columns.label
    with_labels = {role: frame for role, frame in frames.items() if label in frame.columns}
    if task.labels.problem_type == REGRESSION:
        stats = pd.DataFrame({role: pd.to_numeric(frame[label], errors="coerce").describe()
                              for role, frame in with_labels.items()})
        return pd.DataFrame(), stats
    counts = {}
    names = task.labels.display_names
    for role, frame in with_labels.items():
        try:
            encoded = np.asarray(task.labels.encode(frame[label], where=role))
        except Exception:  # a test file's labels may hold classes training never saw; count them as given
            counts[role] = frame[label].astype(str).value_counts()
            continue
        if task.labels.problem_type == MULTI:
            counts[role] = pd.Series(encoded.sum(axis=0).astype(int), index=names)
        else:
            counts[role] = pd.Series(np.bincount(encoded, minlength=len(names)), index=names)
    table = pd.DataFrame(counts).fillna(0).astype(int)
    table.index.name = "label"
    return table, pd.DataFrame()


def token_lengths(frame: pd.DataFrame, task, tokenizer) -> np.ndarray:
    """Tokens per text (special tokens included) before truncation, so the histogram shows what was cut."""
    if len(frame) == 0:
        return np.zeros(0, dtype=int)
    encoded = tokenizer(task.columns.texts(frame), task.columns.pairs(frame), truncation=False, verbose=False)
    return np.asarray([len(ids) for ids in encoded["input_ids"]])


def length_table(summary: DataSummary) -> list[dict]:
    """One row per split: token-length percentiles and how many texts --max_seq_length truncates."""
    rows = []
    for role, lengths in summary.token_lengths.items():
        if len(lengths) == 0:
            continue
        truncated = int((lengths > summary.max_seq_length).sum())
        rows.append({
            "split": role, "texts": len(lengths), "min": int(lengths.min()),
            "median": int(np.median(lengths)), "p95": int(np.percentile(lengths, 95)), "max": int(lengths.max()),
            f"> {summary.max_seq_length} (truncated)": f"{truncated} ({truncated / len(lengths):.1%})",
        })
    return rows
