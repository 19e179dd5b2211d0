"""Reading a data file a chunk of rows at a time, so files larger than memory can be predicted on or converted.

The checks and messages are `read_table`'s; what differs is that no more than one chunk is ever in memory.

Example:
    >>> reader = TableReader.open("big.csv", flag="--input")
    >>> for chunk in reader.chunks(10_000):
    ...     print(len(chunk))
"""

from __future__ import annotations

import codecs
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from .tables import FALLBACK_ENCODINGS, check_data_file, is_json_array, read_table, unreadable
from ..errors import TextuneError

logger = logging.getLogger(__name__)

CHUNK_ROWS = 4096  # rows per chunk: large enough to batch by length, small enough that memory stays flat
SCAN_BLOCK = 1 << 22  # bytes per read while checking the encoding and counting lines


@dataclass
class TableReader:
    """A csv, tsv, json, jsonl or parquet file (optionally compressed) read in chunks of rows.

    Attributes:
        path: The file.
        kind: Its format, as `check_data_file` names it (".csv", ".tsv", ".json", ".jsonl", ".parquet").
        encoding: The text encoding asked for; None means utf-8 with `read_table`'s cp1252 fallback.
        flag: The flag that named the file, for error messages.
    """

    path: Path
    kind: str
    encoding: str | None = None
    flag: str = "--input"
    _scan: tuple[str, int] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path, encoding: str | None = None, flag: str = "--input") -> "TableReader":
        """Check the file as `read_table` does (exists, known kind, not empty) without reading it.

        Raises:
            TextuneError: The file is missing, a directory, empty or of an unsupported kind.
        """
        path, kind = check_data_file(path, flag)
        return cls(path, kind, encoding, flag)

    @property
    def is_text(self) -> bool:
        return self.kind != ".parquet"

    def estimated_rows(self) -> int | None:
        """Rows in the file: exact for parquet (its metadata), an upper bound for text formats (lines), for progress."""
        if self.kind == ".parquet":
            import pyarrow.parquet as pq

            try:
                return pq.ParquetFile(self.path).metadata.num_rows
            except (OSError, ValueError) as error:
                raise unreadable(error, self.path, self.kind, self.flag) from None
        lines = self._scanned()[1]
        # csv/tsv lines include the header; quoted fields that hold newlines make this an overestimate
        return max(lines - (1 if self.kind in (".csv", ".tsv") else 0), 0)

    def chunks(self, chunk_rows: int = CHUNK_ROWS, typed: Iterable[str] = ()) -> Iterator[pd.DataFrame]:
        """The file's rows in order, `chunk_rows` at a time, each chunk indexed from 0.

        Every column is text except those named in `typed` (e.g. the label), whose types are inferred per
        chunk: a chunk of digits-only texts or ids then reads the same as the whole file would, and a tweet
        "NA" stays text, as in `read_table`.

        Raises:
            TextuneError: The file cannot be parsed or decoded, or has no data rows.
        """
        if chunk_rows < 1:
            raise TextuneError(f"--chunk_rows must be at least 1, got {chunk_rows}")
        typed = set(typed)
        rows = 0
        try:
            for chunk in self._raw_chunks(chunk_rows, typed):
                if len(chunk):
                    rows += len(chunk)
                    yield chunk.reset_index(drop=True)
        except UnicodeDecodeError as error:  # only with a wrong --encoding that decodes but not everywhere
            raise TextuneError(
                f"{self.flag} {self.path} is not {self._scanned()[0]} text ({error.reason}); pass its encoding "
                "with --encoding, e.g. --encoding latin-1"
            ) from None
        except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, OSError) as error:
            raise unreadable(error, self.path, self.kind, self.flag) from None
        if rows == 0:
            raise TextuneError(f"{self.flag} {self.path} has no data rows")

    # -- formats ------------------------------------------------------------------------------------------------

    def _raw_chunks(self, chunk_rows: int, typed: set[str]) -> Iterator[pd.DataFrame]:
        if self.kind == ".parquet":
            yield from self._parquet_chunks(chunk_rows, typed)
            return
        encoding = self._scanned()[0]
        if self.kind in (".csv", ".tsv"):
            sep = "," if self.kind == ".csv" else "\t"
            header = pd.read_csv(self.path, sep=sep, encoding=encoding, nrows=0)
            dtype = {name: str for name in header.columns if name not in typed}
            # keep_default_na=False: a tweet that reads "NA" or "null" is text, as read_table reads it
            with pd.read_csv(self.path, sep=sep, encoding=encoding, keep_default_na=False, na_values=[""],
                             dtype=dtype, chunksize=chunk_rows) as reader:
                yield from reader
        elif is_json_array(self.path, encoding):
            # one JSON array cannot be parsed in pieces; such files are small in practice, JSON Lines is the big format
            frame = read_table(self.path, self.encoding, self.flag)
            for start in range(0, len(frame), chunk_rows):
                yield as_text(frame.iloc[start:start + chunk_rows], typed)
        else:
            with pd.read_json(self.path, lines=True, chunksize=chunk_rows, encoding=encoding, dtype=False,
                              compression="infer") as reader:
                for chunk in reader:
                    yield as_text(chunk, typed)

    def _parquet_chunks(self, chunk_rows: int, typed: set[str]) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=chunk_rows):
            yield as_text(pa.Table.from_batches([batch]).to_pandas(), typed)

    # -- encoding and size ----------------------------------------------------------------------------------------

    def _scanned(self) -> tuple[str, int]:
        """(encoding, number of lines), from one pass over the bytes: cheap next to parsing, and it finds a file
        that is not UTF-8 before any output is written rather than halfway through it."""
        if self._scan is None:
            encoding = self.encoding or "utf-8"
            try:
                lines = _scan(self.path, encoding)
            except NotDecodable as error:
                if self.encoding is not None:
                    raise error.as_textune_error(self.flag, self.path, encoding) from None
                encoding, lines = self._fallback(error)
            self._scan = (encoding, lines)
        return self._scan

    def _fallback(self, error: "NotDecodable") -> tuple[str, int]:
        for candidate in FALLBACK_ENCODINGS:
            try:
                lines = _scan(self.path, candidate)
            except NotDecodable:
                continue
            logger.warning("%s %s is not UTF-8; read it as %s (pass --encoding to choose another)",
                           self.flag, self.path, candidate)
            return candidate, lines
        raise error.as_textune_error(self.flag, self.path, "utf-8") from None


class NotDecodable(Exception):
    """A file's bytes are not text in the encoding tried; `position` is the byte offset in the (decompressed) file."""

    def __init__(self, reason: str, position: int):
        super().__init__(reason)
        self.reason, self.position = reason, position

    def as_textune_error(self, flag: str, path: Path, encoding: str) -> TextuneError:
        return TextuneError(f"{flag} {path} is not {encoding} text ({self.reason} at byte {self.position}); "
                            "pass its encoding with --encoding, e.g. --encoding latin-1")


def _scan(path: Path, encoding: str) -> int:
    """Decode the whole file (raising NotDecodable where it is not `encoding`) and count its lines."""
    from pandas.io.common import get_handle

    decoder = codecs.getincrementaldecoder(encoding)()
    lines, last, offset = 0, b"\n", 0
    with get_handle(path, "rb", compression="infer", is_text=False) as handle:
        try:
            while block := handle.handle.read(SCAN_BLOCK):
                pending = len(decoder.getstate()[0])  # bytes of a character split across blocks
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as error:
                    raise NotDecodable(error.reason, offset - pending + error.start) from None
                lines += block.count(b"\n")
                last = block[-1:]
                offset += len(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise NotDecodable(error.reason, offset - len(decoder.getstate()[0]) + error.start) from None
    return lines + (last != b"\n")  # a last line without a newline still counts


def as_text(frame: pd.DataFrame, typed: set[str]) -> pd.DataFrame:
    """Every column but those in `typed` as strings, missing values kept missing (what csv's dtype=str gives)."""
    frame = frame.copy()
    for name in frame.columns:
        column = frame[name]
        if name in typed or pd.api.types.is_string_dtype(column):
            continue
        missing = column.map(_is_na).to_numpy(dtype=bool)
        text = column.astype(str).astype(object)
        text[missing] = np.nan
        frame[name] = text.astype("str")
    return frame


def _is_na(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays are values, not missing
        return False


@dataclass
class RowsReader:
    """`TableReader`'s interface over rows already read whole, by a task's own reader (SQuAD's nested JSON)."""

    rows: pd.DataFrame

    @classmethod
    def open(cls, path: str | Path, encoding: str | None, flag: str, task) -> "TableReader | RowsReader":
        """A task's own format read whole, else a plain table read in chunks (`TableReader`)."""
        reader = TableReader.open(path, encoding, flag)
        rows = task.read(reader.path, encoding, flag)
        return reader if rows is None else cls(rows)

    def estimated_rows(self) -> int:
        return len(self.rows)

    def chunks(self, chunk_rows: int = CHUNK_ROWS, typed: Iterable[str] = ()) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self.rows), chunk_rows):
            yield self.rows.iloc[start:start + chunk_rows].reset_index(drop=True)
