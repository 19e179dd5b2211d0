"""Predicting on (and evaluating with) data files of any size: read a chunk, predict it, write it, forget it.

Memory stays flat whatever the number of rows: one chunk of input and its predictions are held at a time,
and the output CSV grows on disk. The output appears only when complete (a temporary file in the output's
folder is renamed over it), so an interrupted run never leaves a half-written file.

Example:
    >>> from textune.inference.batch_predict import predict_file
    >>> predict_file("runs/tweets", "big.csv", "big.predictions.csv").rows
    1000000
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write
from ..errors import TextuneError
from .prediction import Predictor
from ..data.table_chunks import CHUNK_ROWS, RowsReader, TableReader

logger = logging.getLogger(__name__)


@dataclass
class FilePredictions:
    """What `predict_file` wrote.

    Attributes:
        output: The predictions CSV.
        rows: Rows predicted: every row the task's `check_rows` keeps (without references it drops none, so
            every id gets a prediction).
        seconds: Wall time, reading and writing included.
    """

    output: Path
    rows: int
    seconds: float


def default_output(input_path: str | Path) -> Path:
    """Where `textune predict` writes without --output: <input>.predictions.csv next to the input."""
    return Path(input_path).with_suffix(".predictions.csv")


def predict_file(model: Predictor | str | Path, input_path: str | Path, output_path: str | Path | None = None, *,
                 chunk_rows: int = CHUNK_ROWS, encoding: str | None = None, batch_size: int = 32,
                 allow_pickle: bool = False, progress: bool = True) -> FilePredictions:
    """Predict every row of a csv, tsv, json, jsonl or parquet file and write predictions.csv's columns.

    The output is the task's `prediction_table` of the rows and their records: what `Predictor` gives on the
    whole table, written `chunk_rows` rows at a time (identical bytes with `batch_size=1`; otherwise other
    batches pad differently, which moves outputs in the last float32 digits).

    Args:
        model: A `Predictor`, or a run folder written by `textune train`.
        input_path: The rows to predict, in the run's input columns (references are not needed).
        output_path: The CSV to write (replaced only once complete). Default: `<input>.predictions.csv`.
        chunk_rows: Rows read, predicted and written at a time; memory grows with it, not with the file.
        encoding: Text encoding of the input; utf-8 (with a cp1252 fallback) when None.
        batch_size: Features per forward pass, when `model` is a run folder.
        allow_pickle: Allow pickle weights, when `model` is a run folder.
        progress: Show a progress bar over rows on stderr.

    Returns:
        The output path, the rows written, and the wall time.

    Raises:
        TextuneError: The run folder or input file is unusable, or an input column is missing (nothing is
            written).
    """
    started = time.perf_counter()
    predictor = _as_predictor(model, batch_size, allow_pickle)
    reader = RowsReader.open(input_path, encoding, "--input", predictor.task)
    output = Path(output_path) if output_path else default_output(input_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    task = predictor.task
    rows = 0
    # newline="": pandas writes its own line endings, as it does when given a path
    with _stop_on_sigterm(), _ProgressBar(reader, progress, "Predicting") as bar, \
            atomic_write(output, newline="") as sink:
        for chunk in reader.chunks(chunk_rows):
            # the index is each row's position in the file, as for a table read whole: a task numbering rows that
            # have no id (QA) numbers them across chunks, not from 0 in each
            chunk.index = pd.RangeIndex(rows, rows + len(chunk))
            chunk = task.check_rows(chunk, f"--input {input_path}", with_targets=False).reset_index(drop=True)
            table = task.prediction_table(chunk, predictor.records(chunk))
            table.to_csv(sink, index=False, header=rows == 0)
            rows += len(chunk)
            bar.update(len(chunk))
    return FilePredictions(output, rows, time.perf_counter() - started)


def evaluate_file(model: Predictor | str | Path, input_path: str | Path, *, chunk_rows: int = CHUNK_ROWS,
                  encoding: str | None = None, batch_size: int = 32, allow_pickle: bool = False,
                  progress: bool = True) -> dict[str, float]:
    """Metrics of a run on a file with references, reading it in chunks and keeping only rows and records.

    Rows the task cannot score (its `check_rows` drops them, e.g. an empty input or no reference) are left out,
    as training leaves them out. The result is `Predictor.evaluate`'s on the whole file: keys prefixed `eval_`
    like Trainer's, plus `eval_samples`. The task scores every row at once (`task.score`), so the rows and their records are
    held, not the model's outputs.

    Raises:
        TextuneError: The input lacks a column the task needs, a reference is unusable, or no row is usable.
    """
    predictor = _as_predictor(model, batch_size, allow_pickle)
    reader = RowsReader.open(input_path, encoding, "--input", predictor.task)
    task = predictor.task
    where = f"--input {input_path}"
    kept, records = [], []
    read = 0
    with _ProgressBar(reader, progress, "Evaluating") as bar:
        # the references keep their own type (not text), so they read as they do in training
        for chunk in reader.chunks(chunk_rows, typed=task.target_columns()):
            chunk.index = pd.RangeIndex(read, read + len(chunk))  # positions in the file, as in predict_file
            usable = task.check_rows(chunk, where, with_targets=True).reset_index(drop=True)
            read += len(chunk)
            if len(usable):
                kept.append(usable)
                records.append(predictor.records(usable))
            bar.update(len(chunk))
    used = sum(len(rows) for rows in kept)
    if used < read:
        logger.warning("evaluate: scored %d of %d rows (the others were left out, as the warnings above say)",
                       used, read)
    if not kept:
        raise TextuneError(f"{where}: no row can be scored (see the warnings above); check the file")
    return predictor.score(pd.concat(kept, ignore_index=True), pd.concat(records, ignore_index=True))


def _as_predictor(model: Predictor | str | Path, batch_size: int, allow_pickle: bool) -> Predictor:
    """A ready Predictor as it is, or a run folder loaded into one."""
    if isinstance(model, Predictor):
        return model
    return Predictor.from_run(model, batch_size, allow_pickle, batch_job=True)


@contextlib.contextmanager
def _stop_on_sigterm():
    """SIGTERM (a job scheduler, `kill`) unwinds like Ctrl-C, so the temporary output is removed on the way out."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _ProgressBar:
    """tqdm over rows, with the total when it is cheap to know (parquet metadata, a line count of text files)."""

    def __init__(self, reader: TableReader, enabled: bool, description: str):
        from tqdm.auto import tqdm

        total = reader.estimated_rows() if enabled else None
        self.bar = tqdm(total=total, desc=description, unit="row", disable=not enabled)

    def __enter__(self):
        return self

    def update(self, rows: int) -> None:
        self.bar.update(rows)

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None and self.bar.total is not None and self.bar.n != self.bar.total:
            self.bar.total = self.bar.n  # the line count overestimates when quoted texts hold newlines
            self.bar.refresh()
        self.bar.close()
