"""Reading users' tables (csv, tsv, json, jsonl, parquet) and shaping them into train/validation/test frames."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..errors import TextuneError

logger = logging.getLogger(__name__)

# Columns that name a row, in the order they are looked for (any task: ids key predictions and submissions).
ID_COLUMNS = ("id", "ID", "Id", "idx", "index")


def _read_csv(path: Path, encoding: str, sep: str) -> pd.DataFrame:
    # keep_default_na=False: a tweet that reads "NA" or "null" is text, not a missing value.
    return pd.read_csv(path, sep=sep, encoding=encoding, keep_default_na=False, na_values=[""])


def is_json_array(path: Path, encoding: str = "utf-8") -> bool:
    """Whether a .json/.jsonl file is one JSON array; otherwise it is JSON Lines (what datasets writes as .json)."""
    from pandas.io.common import get_handle

    with get_handle(path, "r", encoding=encoding, compression="infer") as handle:
        return handle.handle.read(1024).lstrip().startswith("[")


def _read_json(path: Path, encoding: str) -> pd.DataFrame:
    return pd.read_json(path, lines=not is_json_array(path, encoding), encoding=encoding, dtype=False)


READERS = {
    ".csv": lambda path, encoding: _read_csv(path, encoding, ","),
    ".tsv": lambda path, encoding: _read_csv(path, encoding, "\t"),
    ".json": _read_json,
    ".jsonl": _read_json,
    ".parquet": lambda path, encoding: pd.read_parquet(path),
}


def read_table(path: str | Path, encoding: str | None = None, flag: str = "--train_file") -> pd.DataFrame:
    """Read one data file into a DataFrame, choosing the reader by the file's extension.

    Args:
        path: A .csv, .tsv, .json, .jsonl or .parquet file (also gzip-compressed, e.g. .csv.gz).
        encoding: Text encoding; utf-8 when None.
        flag: The flag that named the file, used in error messages.

    Raises:
        TextuneError: The file is missing, unreadable, or of an unsupported kind.
    """
    path, suffix = check_data_file(path, flag)
    try:
        frame = _read_with_fallback(READERS[suffix], path, encoding, flag)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, OSError) as error:
        raise unreadable(error, path, suffix, flag) from None
    if frame.empty:
        raise TextuneError(f"{flag} {path} has no data rows")
    return frame


def check_data_file(path: str | Path, flag: str) -> tuple[Path, str]:
    """The file's path and kind (".csv", ".tsv", ".json", ".jsonl" or ".parquet"), once it is known to be readable.

    Raises:
        TextuneError: The file is missing, a directory, empty, or of an unsupported kind.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise TextuneError(f"{flag} {path}: no such file; check the path")
    if path.is_dir():
        raise TextuneError(f"{flag} {path} is a directory; pass a data file inside it")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in READERS:
        raise TextuneError(
            f"{flag} {path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(READERS)}"
        )
    if path.stat().st_size == 0:
        raise TextuneError(f"{flag} {path} is empty; it needs a header row and data rows")
    return path, suffix


def unreadable(error: Exception, path: Path, suffix: str, flag: str) -> TextuneError:
    """The one-line error for a parser failure, with a hint when it is a quoting problem."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    hint = "; check the quoting and the number of fields on that line" if "tokenizing" in first_line else ""
    return TextuneError(f"{flag} {path} could not be read as {suffix[1:]}: {first_line}{hint}")


# Spreadsheet exports that are not UTF-8 are nearly always Windows-1252; tried when no --encoding is given.
FALLBACK_ENCODINGS = ("cp1252",)


def _read_with_fallback(reader, path: Path, encoding: str | None, flag: str) -> pd.DataFrame:
    try:
        return reader(path, encoding or "utf-8")
    except UnicodeDecodeError as error:
        if encoding is None:
            for candidate in FALLBACK_ENCODINGS:
                try:
                    frame = reader(path, candidate)
                except UnicodeDecodeError:
                    continue
                logger.warning("%s %s is not UTF-8; read it as %s (pass --encoding to choose another)",
                               flag, path, candidate)
                return frame
        raise TextuneError(
            f"{flag} {path} is not {encoding or 'utf-8'} text ({error.reason} at byte {error.start}); "
            "pass its encoding with --encoding, e.g. --encoding latin-1"
        ) from None


def decode_escapes(text: str) -> str:
    r"""Turn escapes typed in a shell (\n, \t, \r, \\) into the characters they mean."""
    out, i = [], 0
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _closest(name: str, options: list[str]) -> str:
    import difflib

    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def require_columns(frame: pd.DataFrame, columns: list[str], flag: str, where: str) -> None:
    """Raise a one-line error naming the missing column, the columns found and the closest match."""
    found = [str(c) for c in frame.columns]
    for column in columns:
        if column not in frame.columns:
            raise TextuneError(
                f"{where} has no column {column!r} (found: {', '.join(found)}); set {flag}{_closest(column, found)}"
            )


def stratified_split(frame: pd.DataFrame, percentage: int, seed: int,
                     stratify_by: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out `percentage` percent of the rows, keeping the proportions of `stratify_by`'s values when every
    value can be split (a task's `stratify_by`)."""
    from sklearn.model_selection import train_test_split

    if len(frame) < 2:
        raise TextuneError("--train_file has fewer than 2 usable rows: too few to hold out a validation split")
    groups = None if stratify_by is None else pd.Series(stratify_by).astype(str).to_numpy()
    if groups is not None and pd.Series(groups).value_counts().min() < 2:
        groups = None  # a value with one row cannot be split both ways; fall back to a plain random split
    n_val = max(1, round(len(frame) * percentage / 100))
    if groups is not None:
        n_val = max(n_val, len(set(groups)))
    train, validation = train_test_split(frame, test_size=n_val, random_state=seed, stratify=groups)
    return train.reset_index(drop=True), validation.reset_index(drop=True)
