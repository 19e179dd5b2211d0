"""Training on a file too big to hold tokenized in RAM: the train file goes to memory-mapped Arrow on disk.

The normal path reads the train file into pandas and tokenizes it into Python lists, which takes about 75
times the file's size in RAM (a 23 MB CSV of 200k tweets: +1.7 GB). Here (`--large_data true`, or `auto`
for a train file of 64 MB or more) the file is read a chunk at a time into an Arrow file, rows the task
cannot use (`Task.unusable_rows`) are dropped on the way, and `Dataset.map` encodes it (`Task.encode`) into
another Arrow file: Trainer reads both memory-mapped, so the operating system pages rows in and out and RAM holds
neither table. Only the task's target columns stay in memory (`Task.target_columns`: the task is built
from every target, and the stratified validation split needs them; a few bytes per row).

Everything else is the normal path's: the same columns, checks and messages, the same seeded stratified
validation split (computed on the targets alone, it selects the same rows), shuffling, caps and
the task's encoding. The Arrow files live in a folder of their own under HF_DATASETS_CACHE and are deleted when
the run ends. The validation and test files are read into memory as usual.

Example:
    >>> splits = load_run_splits(DataArguments(train_file="big.csv", large_data="true"), seed=42)
    >>> train_set = encode_split(splits.task, splits, "train", tokenizer, where="--train_file")
    >>> train_set.cache_files  # the tokenized rows, on disk
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
import weakref
from itertools import count
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..training.arguments import DataArguments
from .tables import stratified_split
from ..errors import TextuneError
from .splits import DataInput, Splits, cap_rows, load_splits, read_other_splits
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

    `train` (and `validation`, when held out from train) hold only the task's target columns, in the order the
    run uses the rows, so the task and row counts work as on in-memory splits; `rows` maps each of those
    roles to the rows' positions in `table`. The report reads a sample (`for_report`).
    """

    table: object = None  # datasets.Dataset: every usable row of --train_file, targets left out
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    cache_dir: Path | None = None
    accounting: dict[str, dict] = field(default_factory=dict)  # per split: SplitRows' fields, counted while loading

    def for_report(self) -> Splits:
        """Plain splits for the run report: seeded samples of train and held-out validation, with every column."""
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
                for name in frame.columns:  # the columns kept in memory (the task's targets)
                    frames[role][name] = frame[name].to_numpy()[take]
            accounting.append(SplitRows(role, used=len(frame), **self.accounting[role]))
        sampled = [f"{role} ({len(frames[role]):,} of {len(getattr(self, role)):,} rows)" for role in self.rows
                   if len(frames[role]) < len(getattr(self, role))]
        notes = [f"Large data (--large_data): target counts, token lengths and validation errors are from a seeded "
                 f"sample of {', '.join(sampled)}; the metrics are from every row."] if sampled else []
        return Splits(frames.get("train"), frames.get("validation"), frames.get("test"), self.task, self.source,
                      row_accounting=accounting, notes=notes)


def use_large_data(data_args: DataArguments, given: dict | None = None, *, task=None, task_args=None) -> bool:
    """Whether the run's train file goes through Arrow on disk (`--large_data`, auto by the file's size).

    Only for a task that can be trained that way (`Task.trains_on_disk`); `auto` reads the others in memory.

    Raises:
        TextuneError: `--large_data true` without a --train_file to read from disk, or for such a task.
    """
    from_file = bool(data_args.train_file) and not data_args.dataset_name and not (given or {}).get("train")
    if data_args.large_data == "true":
        if not from_file:
            raise TextuneError("--large_data true reads --train_file from disk in chunks; pass --train_file "
                               "(not --dataset_name or data in code), or drop --large_data")
        task_class = run_task_class(data_args, task, task_args)
        if not task_class.trains_on_disk:
            raise TextuneError(f"--large_data true: the {task_class.name} task cannot be trained from a file read "
                               "in chunks; drop --large_data (or pass --large_data false)")
        return True
    if data_args.large_data == "false" or not from_file:
        return False
    path = Path(data_args.train_file).expanduser()  # its size on disk: a .csv.gz holds several times more
    if not (path.is_file() and path.stat().st_size >= LARGE_FILE_BYTES):
        return False
    task_class = run_task_class(data_args, task, task_args)
    if not task_class.trains_on_disk:
        logger.info("--train_file %s is %.0f MB, but the %s task cannot be trained from a file read in chunks: "
                    "reading it into memory", data_args.train_file, path.stat().st_size / 2**20, task_class.name)
        return False
    return True


def run_task_class(data_args: DataArguments, task=None, task_args=None) -> type:
    """The run's task class as `build_task` will choose it (a saved task, --task, `task_args`' task, else the one
    the train file's columns show), without building it or logging the choice."""
    from ..tasks import TASKS, detect_task
    from .splits import table_columns

    if task is not None:
        return type(task)
    if data_args.task in TASKS:
        return TASKS[data_args.task]
    by_arguments = next((cls for cls in TASKS.values() if type(task_args) is cls.arguments), None)
    if by_arguments is not None:
        return by_arguments
    return detect_task(table_columns(data_args.train_file, data_args.encoding, "--train_file"))[0]


def load_run_splits(data_args: DataArguments, seed: int, need_train: bool = True,
                    given: dict[str, DataInput | None] | None = None, *, task=None, task_args=None) -> Splits:
    """`load_splits`, or `load_on_disk_splits` when the train file is large (see `use_large_data`).

    Records the mode taken in `data_args.large_data` ("true" or "false"), so the run record says which it was.
    """
    given = {role: data for role, data in (given or {}).items() if data is not None}
    if use_large_data(data_args, given, task=task, task_args=task_args):
        if data_args.large_data == "auto":
            logger.info("--train_file %s is %.0f MB: training from memory-mapped Arrow files on disk "
                        "(--large_data false to read it into memory)", data_args.train_file,
                        Path(data_args.train_file).expanduser().stat().st_size / 2**20)
        data_args.large_data = "true"
        return load_on_disk_splits(data_args, seed, task=task, task_args=task_args)
    if data_args.large_data == "auto":
        data_args.large_data = "false"
    return load_splits(data_args, seed, need_train, given, task=task, task_args=task_args)


def load_on_disk_splits(data_args: DataArguments, seed: int, *, task=None, task_args=None) -> OnDiskSplits:
    """Convert --train_file to Arrow on disk a chunk at a time, then split, shuffle and cap as `load_splits` does.

    Raises:
        TextuneError: Bad input, with `load_splits`' messages (missing file or column, no usable row, ...).
    """
    reader = TableReader.open(data_args.train_file, data_args.encoding, "--train_file")
    cache_dir = _new_cache_dir(reader.path)
    try:
        table, task, targets, counts = _convert(reader, data_args, cache_dir, task, task_args)
        accounting = {"train": dict(source=data_args.train_file, **counts)}
        others = read_other_splits(data_args)
        validation = others.get("validation")
        if validation is not None:
            validation = task.check_rows(validation, f"--validation_file {data_args.validation_file}", True)
            accounting["validation"] = dict(source=data_args.validation_file, read=len(others["validation"]),
                                            dropped=unusable_counts(task, others["validation"])[0])
        if "test" in others:
            others["test"] = task.check_rows(others["test"], f"--test_file {data_args.test_file}", False)
            accounting["test"] = dict(source=data_args.test_file, read=len(others["test"]))
        frames = {"train": targets.assign(**{ROW: np.arange(len(targets))}),
                  "validation": validation, "test": others.get("test")}
        if validation is None:
            frames["train"], frames["validation"] = _hold_out(frames["train"], task, data_args, seed)
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
    splits = OnDiskSplits(frames["train"], frames["validation"], frames["test"], task, data_args.train_file,
                          table=table, rows=rows, cache_dir=cache_dir, accounting=accounting)
    weakref.finalize(splits, shutil.rmtree, cache_dir, ignore_errors=True)  # at the end of the run, or at exit
    return splits


def unusable_counts(task, rows: pd.DataFrame) -> tuple[dict[str, int], pd.Series]:
    """Rows `check_rows` drops, counted by reason (a row counts for its first reason), and their mask."""
    counts, drop = {}, pd.Series(False, index=rows.index)
    for reason, mask in task.unusable_rows(rows).items():
        counts[reason] = int((mask & ~drop).sum())
        drop |= mask
    return counts, drop


def _hold_out(train: pd.DataFrame, task, data_args: DataArguments, seed: int):
    """load_splits' seeded, stratified hold-out, on the targets alone: it holds out the same rows."""
    train, validation = stratified_split(train, data_args.validation_split_percentage, seed, task.stratify_by(train))
    logger.info("no --validation_file: held out %d%% of train (%d rows) for validation, seed %d",
                data_args.validation_split_percentage, len(validation), seed)
    return train, validation


def encode_split(task, splits: Splits, role: str, tokenizer, where: str, num_proc: int | None = None):
    """The model inputs of one split: `task.encode` in memory, or `Dataset.map` into Arrow on disk.

    On-disk rows are encoded by the task's own `encode` (with the targets kept in memory), a thousand rows at a
    time, into a memory-mapped file: `dataset.cache_files` names it.
    """
    frame = getattr(splits, role)
    if not isinstance(splits, OnDiskSplits) or role not in splits.rows:
        return task.encode(frame, tokenizer, True, where)
    rows = splits.table.select(splits.rows[role])
    # The task's warnings (e.g. texts cut at the token cap) are said for the first batch only, not once per
    # thousand rows: call 0 encodes the sample row, call 1 the first batch.
    tasks_log, level, calls = logging.getLogger("textune.tasks"), logging.getLogger("textune.tasks").level, count()

    def encode(batch: dict, indices: list[int]) -> dict:
        tasks_log.setLevel(level if next(calls) == 1 else logging.ERROR)
        # every stored column is text; dtype "str" turns Arrow's nulls into the NaN read_table gives
        part = pd.DataFrame(dict(batch), dtype="str")
        for name in frame.columns:
            part[name] = frame[name].to_numpy()[indices]
        features = task.encode(part, tokenizer, True, where)
        return features.to_dict() if hasattr(features, "to_dict") else dict(features)

    try:
        sample = encode(rows[:1], [0])
        encoded = rows.map(encode, batched=True, batch_size=MAP_BATCH_ROWS, with_indices=True,
                           remove_columns=rows.column_names, features=narrow_features(sample), num_proc=num_proc,
                           cache_file_name=str(splits.cache_dir / f"{role}-tokenized.arrow"),
                           writer_batch_size=MAP_BATCH_ROWS, new_fingerprint=uuid.uuid4().hex,
                           load_from_cache_file=False, desc=f"Tokenizing {role}")
    finally:
        tasks_log.setLevel(level)
    logger.info("%s: %d rows tokenized into %s (memory-mapped)", role, len(encoded), splits.cache_dir)
    return encoded


# Token ids need int32; masks and type ids fit int8: a tweet's ~40 tokens then take ~240 bytes on disk, not ~1 KB.
NARROW = {"input_ids": "int32", "attention_mask": "int8", "token_type_ids": "int8", "special_tokens_mask": "int8"}


def narrow_features(sample: dict):
    """The Arrow types of encoded features, from one encoded row: narrow integers for token columns, float32
    for float targets; None (datasets infers them) when a column is of another kind."""
    from datasets import Features, List, Value

    features = {}
    for key, values in sample.items():
        value = values[0]
        if isinstance(value, list):
            inner = value[0] if value else 0
            kind = "float32" if isinstance(inner, float) else NARROW.get(key, "int64")
            features[key] = List(Value(kind))
        elif isinstance(value, (bool, np.bool_)):
            features[key] = Value("bool")
        elif isinstance(value, (int, np.integer)):
            features[key] = Value("int64")
        elif isinstance(value, (float, np.floating)):
            features[key] = Value("float32")
        else:
            return None
    return Features(features)


def _convert(reader: TableReader, data_args: DataArguments, cache_dir: Path, task=None, task_args=None):
    """One pass over the train file: usable rows to an Arrow file (all text), their targets to a DataFrame.

    Returns the Arrow table, the task (built from the targets unless given), the targets and the row counts.
    """
    import pyarrow as pa
    from datasets import Dataset

    from .splits import build_task

    where = f"--train_file {data_args.train_file}"  # as the in-memory path names it
    removed = [c.strip() for c in (data_args.remove_columns or "").split(",") if c.strip()]
    first = next(reader.chunks(CHUNK_ROWS)).drop(columns=removed, errors="ignore")
    # the first chunk, typed as read_table types it, tells the task's columns
    typed_first = next(reader.chunks(CHUNK_ROWS, typed=list(first.columns))).drop(columns=removed, errors="ignore")
    checker = task if task is not None else build_task(data_args, task_args, typed_first, where)
    targets_columns = checker.target_columns()
    schema = pa.schema([(str(name), pa.large_string()) for name in first.columns if name not in targets_columns])
    targets, counts = [], {"read": 0}
    path = cache_dir / "train.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:  # the format datasets maps
        for chunk in reader.chunks(CHUNK_ROWS, typed=targets_columns):
            chunk = chunk.drop(columns=removed, errors="ignore")
            chunk_counts, drop = unusable_counts(checker, chunk)
            for reason, dropped in chunk_counts.items():
                counts[reason] = counts.get(reason, 0) + dropped
            counts["read"] += len(chunk)
            usable = chunk.loc[~drop]
            targets.append(usable[targets_columns].reset_index(drop=True))
            body = usable.drop(columns=targets_columns).reindex(columns=schema.names)
            for start in range(0, len(body), MAP_BATCH_ROWS):
                writer.write_table(pa.Table.from_pandas(body.iloc[start:start + MAP_BATCH_ROWS], schema=schema,
                                                        preserve_index=False))
    dropped = {reason: count for reason, count in counts.items() if reason != "read" and count}
    if dropped:
        logger.warning("train: dropped %d of %d rows (%s)", sum(dropped.values()), counts["read"],
                       ", ".join(f"{count} with {reason.replace('_', ' ')}" for reason, count in dropped.items()))
    targets = pd.concat(targets, ignore_index=True)
    if task is None:
        # the task is built from every usable row's targets; the other columns stay on disk, so it sees a
        # placeholder there (the rows were checked above)
        others = {name: "-" for name in schema.names}
        task = build_task(data_args, task_args, targets.assign(**others), where)
    table = Dataset.from_file(str(path))
    logger.info("train: %d usable rows of %s converted to %s (memory-mapped)", len(table), reader.path, path)
    return table, task, targets, {"read": counts.pop("read"), "dropped": counts}


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
