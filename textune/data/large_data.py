"""Training on a file too big to hold tokenized in RAM: the train file goes to memory-mapped Arrow on disk.

The normal path reads the train file into pandas and tokenizes it into Python lists, which takes about 75
times the file's size in RAM (a 23 MB CSV of 200k tweets: +1.7 GB). Here (`--large_data true`, or `auto`
for a train file of 64 MB or more) the file is read a chunk at a time into an Arrow file, rows with an
empty text or a missing label are dropped on the way, and `Dataset.map` tokenizes it into another Arrow
file: Trainer reads both memory-mapped, so the operating system pages rows in and out and RAM holds
neither table. Only the label column stays in memory (label inference and the stratified validation
split need every label; a few bytes per row).

Everything else is the normal path's: the same columns, checks and messages, the same seeded stratified
validation split (computed on the labels alone, it selects the same rows), shuffling, caps and
tokenization. The Arrow files live in a folder of their own under HF_DATASETS_CACHE and are deleted when
the run ends. The validation and test files are read into memory as usual.

Example:
    >>> splits = load_run_splits(DataArguments(train_file="big.csv", large_data="true"), seed=42)
    >>> train_set = encode_split(task, splits, "train", tokenizer, where="--train_file")
    >>> train_set.cache_files  # the tokenized rows, on disk
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..training.arguments import DataArguments
from .tables import DEFAULT_LABEL_COLUMN, resolve_columns, stratified_split, unusable_rows
from ..errors import TextuneError
from .splits import (DataInput, Splits, cap_rows, check_test, checked_validation, load_splits, read_other_splits,
                     stratifiable)
from .table_chunks import TableReader

logger = logging.getLogger(__name__)

LARGE_FILE_BYTES = 64 * 2**20  # --large_data auto: the normal path would need ~5 GB of RAM for such a file
CHUNK_ROWS = 50_000  # rows converted to Arrow at a time
MAP_BATCH_ROWS = 1000  # rows tokenized per Dataset.map batch, and written per Arrow record batch
REPORT_SAMPLE_ROWS = 10_000  # rows of train (and of a held-out validation split) the run report reads
ROW = "__row__"  # position of a row in the on-disk table, carried through the split, shuffle and caps
CAP_FLAGS = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_predict_samples"}


@dataclass
class OnDiskSplits(Splits):
    """Splits whose train rows (and held-out validation rows) live in a memory-mapped Arrow table.

    `train` (and `validation`, when held out from train) hold only the label column, in the order the run
    uses the rows, so label inference and row counts work as on in-memory splits; `rows` maps each of those
    roles to the rows' positions in `table`. The report reads a sample (`for_report`).
    """

    table: object = None  # datasets.Dataset: every usable row of --train_file, label column left out
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    cache_dir: Path | None = None
    accounting: dict[str, dict] = field(default_factory=dict)  # per split: SplitRows' fields, counted while loading

    def for_report(self) -> Splits:
        """Plain splits for the run report: seeded samples of train and held-out validation, with text."""
        from ..report.data_summary import SplitRows

        frames, accounting = {}, []
        for role in ("train", "validation", "test"):
            frame = getattr(self, role)
            if frame is None:
                continue
            frames[role] = frame
            if role in self.rows:
                take = np.sort(np.random.default_rng(0).permutation(len(frame))[:REPORT_SAMPLE_ROWS])
                frames[role] = self.table.select(self.rows[role][take]).to_pandas()
                frames[role][self.columns.label] = frame[self.columns.label].to_numpy()[take]
            accounting.append(SplitRows(role, used=len(frame), **self.accounting[role]))
        sampled = [f"{role} ({len(frames[role]):,} of {len(getattr(self, role)):,} rows)" for role in self.rows
                   if len(frames[role]) < len(getattr(self, role))]
        notes = [f"Large data (--large_data): label counts, token lengths and validation errors are from a seeded "
                 f"sample of {', '.join(sampled)}; the metrics are from every row."] if sampled else []
        return Splits(frames.get("train"), frames.get("validation"), frames.get("test"), self.columns, self.source,
                      row_accounting=accounting, notes=notes)


def use_large_data(data_args: DataArguments, given: dict | None = None) -> bool:
    """Whether the run's train file goes through Arrow on disk (`--large_data`, auto by the file's size).

    Raises:
        TextuneError: `--large_data true` without a --train_file to read from disk.
    """
    from_file = bool(data_args.train_file) and not data_args.dataset_name and not (given or {}).get("train")
    if data_args.large_data == "true":
        if not from_file:
            raise TextuneError("--large_data true reads --train_file from disk in chunks; pass --train_file "
                               "(not --dataset_name or data in code), or drop --large_data")
        return True
    if data_args.large_data == "false" or not from_file:
        return False
    path = Path(data_args.train_file).expanduser()  # its size on disk: a .csv.gz holds several times more
    return path.is_file() and path.stat().st_size >= LARGE_FILE_BYTES


def load_run_splits(data_args: DataArguments, seed: int, need_train: bool = True,
                    given: dict[str, DataInput | None] | None = None) -> Splits:
    """`load_splits`, or `load_on_disk_splits` when the train file is large (see `use_large_data`).

    Records the mode taken in `data_args.large_data` ("true" or "false"), so the run record says which it was.
    """
    given = {role: data for role, data in (given or {}).items() if data is not None}
    if use_large_data(data_args, given):
        if data_args.large_data == "auto":
            logger.info("--train_file %s is %.0f MB: training from memory-mapped Arrow files on disk "
                        "(--large_data false to read it into memory)", data_args.train_file,
                        Path(data_args.train_file).expanduser().stat().st_size / 2**20)
        data_args.large_data = "true"
        return load_on_disk_splits(data_args, seed)
    if data_args.large_data == "auto":
        data_args.large_data = "false"
    return load_splits(data_args, seed, need_train, given)


def load_on_disk_splits(data_args: DataArguments, seed: int) -> OnDiskSplits:
    """Convert --train_file to Arrow on disk a chunk at a time, then split, shuffle and cap as `load_splits` does.

    Raises:
        TextuneError: Bad input, with `load_splits`' messages (missing file or column, no usable row, ...).
    """
    reader = TableReader.open(data_args.train_file, data_args.encoding, "--train_file")
    cache_dir = _new_cache_dir(reader.path)
    try:
        table, columns, labels, counts = _convert(reader, data_args, cache_dir)
        accounting = {"train": dict(source=data_args.train_file, **counts)}
        others = read_other_splits(data_args)
        validation = others.get("validation")
        if validation is not None:
            validation = checked_validation(validation, columns, f"--validation_file {data_args.validation_file}")
            empty, missing = unusable_rows(others["validation"], columns)
            accounting["validation"] = dict(source=data_args.validation_file, read=len(others["validation"]),
                                            empty_text=int(empty.sum()), missing_label=int((missing & ~empty).sum()))
        if "test" in others:
            check_test(others["test"], columns, f"--test_file {data_args.test_file}")
            accounting["test"] = dict(source=data_args.test_file, read=len(others["test"]))
        frames = {"train": pd.DataFrame({columns.label: labels, ROW: np.arange(len(labels))}),
                  "validation": validation, "test": others.get("test")}
        if validation is None:
            frames["train"], frames["validation"] = _hold_out(frames["train"], columns.label, data_args, seed)
            accounting["validation"] = dict(source="held out from train", read=None)
            accounting["train"]["held_out"] = len(frames["validation"])
        if data_args.shuffle_train_dataset:
            frames["train"] = frames["train"].sample(frac=1.0, random_state=data_args.shuffle_seed)
        for role, flag in CAP_FLAGS.items():
            if frames[role] is not None:
                capped = cap_rows(frames[role].reset_index(drop=True), getattr(data_args, flag))
                accounting[role]["capped"] = len(frames[role]) - len(capped)
                frames[role] = capped
        rows = {role: frames[role].pop(ROW).to_numpy() for role in ("train", "validation") if ROW in frames[role]}
    except BaseException:
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    splits = OnDiskSplits(frames["train"], frames["validation"], frames["test"], columns, data_args.train_file,
                          table=table, rows=rows, cache_dir=cache_dir, accounting=accounting)
    weakref.finalize(splits, shutil.rmtree, cache_dir, ignore_errors=True)  # at the end of the run, or at exit
    return splits


def _hold_out(train: pd.DataFrame, label: str, data_args: DataArguments, seed: int):
    """load_splits' seeded, stratified hold-out, on the labels alone: it holds out the same rows."""
    stratify = data_args.label_delimiter is None and data_args.do_regression is not True
    train, validation = stratified_split(train, label, data_args.validation_split_percentage, seed,
                                         stratify=stratify and stratifiable(train[label]))
    logger.info("no --validation_file: held out %d%% of train (%d rows) for validation, seed %d",
                data_args.validation_split_percentage, len(validation), seed)
    return train, validation


def encode_split(task, splits: Splits, role: str, tokenizer, where: str, num_proc: int | None = None):
    """The model inputs of one split: `task.encode` in memory, or `Dataset.map` into Arrow on disk.

    On-disk rows are tokenized by the task's own `tokenize` (preprocessing, text joining, truncation), a
    thousand rows at a time, into a memory-mapped file: `dataset.cache_files` names it.
    """
    frame = getattr(splits, role)
    if not isinstance(splits, OnDiskSplits) or role not in splits.rows:
        return task.encode(frame, tokenizer, where=where)
    from datasets import Features, List, Value

    targets = np.asarray(task.labels.encode(frame[splits.columns.label], where=where))
    rows = splits.table.select(splits.rows[role])

    def tokenize(batch: dict, indices: list[int]) -> dict:
        # every stored column is text; dtype "str" turns Arrow's nulls into the NaN read_table gives
        features = task.tokenize(tokenizer, pd.DataFrame(dict(batch), dtype="str"))
        features["labels"] = targets[indices].tolist()
        return features

    keys = task.tokenize(tokenizer, pd.DataFrame(rows[:1], dtype="str")).keys()
    # narrow types: a tweet's ~40 tokens then take ~240 bytes on disk instead of ~1 KB as int64
    features = Features({key: List(Value("int32" if key == "input_ids" else "int8")) for key in keys})
    if targets.ndim == 2:
        features["labels"] = List(Value("float32"))  # multi-hot
    else:
        features["labels"] = Value("float32" if targets.dtype.kind == "f" else "int64")  # regression or class id
    encoded = rows.map(tokenize, batched=True, batch_size=MAP_BATCH_ROWS, with_indices=True,
                       remove_columns=rows.column_names, features=features, num_proc=num_proc,
                       cache_file_name=str(splits.cache_dir / f"{role}-tokenized.arrow"),
                       writer_batch_size=MAP_BATCH_ROWS, new_fingerprint=uuid.uuid4().hex,
                       load_from_cache_file=False, desc=f"Tokenizing {role}")
    _warn_truncated(encoded, task, tokenizer, where)
    logger.info("%s: %d rows tokenized into %s (memory-mapped)", role, len(encoded), splits.cache_dir)
    return encoded


def _convert(reader: TableReader, data_args: DataArguments, cache_dir: Path):
    """One pass over the train file: usable rows to an Arrow file (all text), their labels to a Series."""
    import pyarrow as pa
    from datasets import Dataset

    where = f"--train_file {data_args.train_file}"  # as the in-memory path names it
    removed = [c.strip() for c in (data_args.remove_columns or "").split(",") if c.strip()]
    columns = schema = writer = sink = None
    labels, counts = [], {"read": 0, "empty_text": 0, "missing_label": 0}
    path = cache_dir / "train.arrow"
    try:
        for chunk in reader.chunks(CHUNK_ROWS, typed=[data_args.label_column_name or DEFAULT_LABEL_COLUMN]):
            chunk = chunk.drop(columns=removed, errors="ignore")
            if columns is None:
                columns = resolve_columns(chunk, data_args.text_columns, data_args.label_column_name,
                                          data_args.text_pair_column_name, data_args.text_column_delimiter, where)
                names = [str(name) for name in chunk.columns if name != columns.label]
                schema = pa.schema([(name, pa.large_string()) for name in names])
                sink = pa.OSFile(str(path), "wb")
                writer = pa.ipc.new_stream(sink, schema)  # the format datasets memory-maps
            empty, missing = unusable_rows(chunk, columns)
            keep = ~(empty | missing)
            counts["read"] += len(chunk)
            counts["empty_text"] += int(empty.sum())
            counts["missing_label"] += int((missing & ~empty).sum())
            usable = chunk.loc[keep]
            labels.append(usable[columns.label].reset_index(drop=True))
            body = usable.drop(columns=[columns.label]).reindex(columns=schema.names)
            for start in range(0, len(body), MAP_BATCH_ROWS):
                writer.write_table(pa.Table.from_pandas(body.iloc[start:start + MAP_BATCH_ROWS], schema=schema,
                                                        preserve_index=False))
    finally:
        if writer is not None:
            writer.close()
            sink.close()
    dropped = counts["empty_text"] + counts["missing_label"]
    if dropped:
        logger.warning("train: dropped %d of %d rows (%d with empty text, %d with a missing label)", dropped,
                       counts["read"], counts["empty_text"], counts["missing_label"])
    labels = pd.concat(labels, ignore_index=True)
    if labels.empty:
        raise TextuneError(f"{where}: every row has an empty text or a missing label in column {columns.label!r}; "
                           "check --label_column_name and --text_column_names")
    table = Dataset.from_file(str(path))
    logger.info("train: %d usable rows of %s converted to %s (memory-mapped)", len(table), reader.path, path)
    return table, columns, labels, counts


def _warn_truncated(encoded, task, tokenizer, where: str) -> None:
    """task.encode's warning about texts cut at --max_seq_length, counted on the Arrow column, not in Python."""
    import pyarrow.compute as pc

    cap = min(task.max_seq_length, tokenizer.model_max_length or task.max_seq_length)
    masks = encoded.data.column("attention_mask")
    full = pc.equal(pc.list_value_length(masks), cap)
    if task.pad_to_max_length:  # every row is cap long; those whose last position is a real token were cut
        full = pc.and_(full, pc.equal(pc.list_element(masks, cap - 1), 1))
    at_cap = int(pc.sum(full).as_py() or 0)
    if at_cap:
        logger.warning("%s: %d of %d texts reached --max_seq_length %d tokens and were truncated to it",
                       where, at_cap, len(encoded), cap)


def _new_cache_dir(path: Path) -> Path:
    """A folder for this run's Arrow files under HF_DATASETS_CACHE (on disk: /tmp is often RAM), after removing
    folders that runs on this host left behind when they were killed."""
    from datasets import config

    root = Path(config.HF_DATASETS_CACHE) / "textune-large-data"
    host = socket.gethostname()
    if root.is_dir():
        for old in root.glob(f"{host}-*"):
            pid = old.name[len(host) + 1:].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
    folder = root / f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.stem}"
    folder.mkdir(parents=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


__all__ = ["LARGE_FILE_BYTES", "OnDiskSplits", "encode_split", "load_on_disk_splits", "load_run_splits",
           "use_large_data"]
