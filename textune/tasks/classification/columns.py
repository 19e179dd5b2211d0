"""Where a classification table keeps its text, text pair, label and row id, and which of its rows are usable."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from ...data.tables import ID_COLUMNS, decode_escapes, require_columns
from ...errors import TextuneError

logger = logging.getLogger(__name__)

DEFAULT_TEXT_COLUMNS = ("sentence", "text")
DEFAULT_LABEL_COLUMN = "label"


@dataclass
class ColumnSpec:
    """Which columns hold the text, the optional text pair, the label and the row id."""

    text: list[str]
    label: str
    text_pair: str | None = None
    delimiter: str = " "
    id: str | None = None

    def texts(self, frame: pd.DataFrame) -> list[str]:
        """The text of each row: the text columns joined by the delimiter (missing parts count as empty)."""
        parts = frame[self.text].fillna("").astype(str)
        if len(self.text) == 1:
            return parts[self.text[0]].tolist()
        return parts.agg(self.delimiter.join, axis=1).tolist()

    def pairs(self, frame: pd.DataFrame) -> list[str] | None:
        if self.text_pair is None:
            return None
        return frame[self.text_pair].fillna("").astype(str).tolist()

    def rows_of(self, texts, pairs=None) -> pd.DataFrame:
        """A table of whole texts in these columns: each in the first text column, the other text columns empty
        (joined as training joined them), and `pairs` in the pair column when given."""
        frame = pd.DataFrame({self.text[0]: list(texts)} | {name: "" for name in self.text[1:]})
        if pairs is not None:
            frame[self.text_pair] = list(pairs)
        return frame

    def to_dict(self) -> dict:
        return {"text": self.text, "label": self.label, "text_pair": self.text_pair,
                "delimiter": self.delimiter, "id": self.id}


def resolve_columns(frame: pd.DataFrame, text_columns: list[str] | None, label_column: str | None,
                    text_pair: str | None = None, delimiter: str = " ", where: str = "--train_file") -> ColumnSpec:
    """Decide the text, label and id columns of the training frame, failing loudly when one is missing."""
    if text_columns is None:
        found = [name for name in DEFAULT_TEXT_COLUMNS if name in frame.columns]
        if not found:
            columns = ", ".join(str(c) for c in frame.columns)
            raise TextuneError(
                f"{where} has no 'sentence' or 'text' column (found: {columns}); name the text column(s) "
                "with --text_column_names"
            )
        text_columns = found[:1]
    require_columns(frame, text_columns, "--text_column_names", where)
    if text_pair is not None:
        require_columns(frame, [text_pair], "--text_pair_column_name", where)
    label = label_column or DEFAULT_LABEL_COLUMN
    require_columns(frame, [label], "--label_column_name", where)
    id_column = next((c for c in ID_COLUMNS if c in frame.columns and c not in text_columns and c != label), None)
    return ColumnSpec(text=list(text_columns), label=label, text_pair=text_pair,
                      delimiter=decode_escapes(delimiter), id=id_column)


def drop_unusable_rows(frame: pd.DataFrame, columns: ColumnSpec, split: str, with_label: bool = True) -> pd.DataFrame:
    """Drop rows whose text is empty or whose label is missing, and log how many went and why."""
    empty_text, missing_label = unusable_rows(frame, columns, with_label)
    keep = ~(empty_text | missing_label)
    if not keep.all():
        logger.warning(
            "%s: dropped %d of %d rows (%d with empty text, %d with a missing label)",
            split, int((~keep).sum()), len(frame), int(empty_text.sum()), int((missing_label & ~empty_text).sum()),
        )
    return frame.loc[keep].reset_index(drop=True)


def unusable_rows(frame: pd.DataFrame, columns: ColumnSpec, with_label: bool = True) -> tuple[pd.Series, pd.Series]:
    """Boolean masks of the rows with an empty text and of those with a missing label (all False without labels)."""
    texts = pd.Series(columns.texts(frame), index=frame.index)
    empty_text = texts.str.strip().eq("")
    missing_label = pd.Series(False, index=frame.index)
    if with_label and columns.label in frame.columns:
        missing_label = frame[columns.label].map(_is_missing).astype(bool)
    return empty_text, missing_label


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, (list, tuple)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def stratifiable(labels: pd.Series) -> bool:
    # only hashable, discrete labels can be stratified (not lists, not continuous values)
    return labels.map(lambda v: isinstance(v, (str, int, bool)) or float(v).is_integer()
                      if not isinstance(v, (list, tuple)) else False).all()
