"""Reading text-to-text data: plain two-column tables, and run_translation.py's `{"translation": {"en": .., ..}}`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...data.tables import check_data_file, read_table
from ...errors import TextuneError

TRANSLATION = "translation"
# Column names that say which column is the input and which the reference, when the flags do not name them
INPUT_NAMES = ("document", "article", "text", "source", "input", "dialogue")
TARGET_NAMES = ("summary", "highlights", "abstract", "target", "output", "reference")


def read_translation_json(path: Path, encoding: str | None, flag: str) -> pd.DataFrame | None:
    """Rows of a JSON (Lines) file whose rows are `{"translation": {"en": ..., "es": ...}}`, one column per
    language; None for any other file (the plain table reader takes it).

    Raises:
        TextuneError: A row's "translation" is not an object of language -> text (naming the row).
    """
    path, suffix = check_data_file(path, flag)
    if suffix not in (".json", ".jsonl"):
        return None
    frame = read_table(path, encoding, flag)
    if TRANSLATION not in frame.columns:
        return None
    pairs = frame[TRANSLATION]
    for number, pair in enumerate(pairs, start=1):
        if not isinstance(pair, dict):
            raise TextuneError(f"{flag} {path}: row {number}'s \"translation\" is {type(pair).__name__}, not an object "
                               "of language code -> text like {\"en\": \"Hi\", \"es\": \"Hola\"}")
    languages = pd.DataFrame(pairs.tolist(), index=frame.index)
    # the nested column stays too: it tells `TranslationTask.detect` what the file was
    return pd.concat([frame, languages.drop(columns=[c for c in languages.columns if c in frame.columns])], axis=1)


def pick_columns(columns: list[str], text: str | None, target: str | None) -> tuple[str, str | None]:
    """The input and reference columns: the flags' (or languages'), else a known name, else the first and second
    columns as run_summarization.py takes them."""
    text = text or next((name for name in INPUT_NAMES if name in columns), None)
    target = target or next((name for name in TARGET_NAMES if name in columns and name != text), None)
    rest = [name for name in columns if name not in (text, target, TRANSLATION) and name.lower() != "id"]
    text = text or (rest.pop(0) if rest else None)
    target = target or (rest.pop(0) if rest else None)
    if text is None:
        raise TextuneError("the data has no column to read inputs from; name it with --text_column")
    return text, target
