"""The label space of a run: problem type and the ordered label list, inferred from training labels."""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import TextuneError

logger = logging.getLogger(__name__)

SINGLE = "single_label_classification"
MULTI = "multi_label_classification"
REGRESSION = "regression"


def _as_list(value, delimiter: str | None) -> list | None:
    """A multi-label cell as a list, or None if the cell holds a single label."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            try:
                parsed = ast.literal_eval(stripped)
            except (ValueError, SyntaxError):
                return None
            return list(parsed) if isinstance(parsed, (list, tuple)) else None
        if delimiter is not None:
            return [part.strip() for part in stripped.split(delimiter) if part.strip()]
    return None


def _label_name(value) -> str:
    """Labels are stored as strings (as in run_classification.py); 1.0 read from a CSV with gaps is '1'."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value).strip()


def _sort_key(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


@dataclass
class LabelSpec:
    """The problem type and the ordered list of label names; id2label/label2id derive from it.

    Attributes:
        problem_type: single_label_classification, multi_label_classification or regression.
        labels: Ordered label names (empty for regression). Index i is class id i.
        delimiter: How a multi-label string cell is split, when labels were given as delimited strings.
    """

    problem_type: str
    labels: list[str] = field(default_factory=list)
    delimiter: str | None = None

    @property
    def num_labels(self) -> int:
        return 1 if self.problem_type == REGRESSION else len(self.labels)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    @classmethod
    def infer(cls, labels: pd.Series, problem_type: str | None = None, do_regression: bool | None = None,
              delimiter: str | None = None, where: str = "--train_file") -> "LabelSpec":
        """Infer the label space from the training labels (missing values must already be dropped).

        Float labels that are not all whole numbers mean regression; lists (or delimited strings with
        `delimiter`) mean multi-label; anything else is single-label classification.
        `problem_type` or `do_regression` override the inference.
        """
        values = labels.tolist()
        if not values:
            raise TextuneError(f"{where} has no rows with a label; check --label_column_name")
        if do_regression and problem_type is None:
            problem_type = REGRESSION
        lists = [_as_list(v, delimiter) for v in values]
        if problem_type is None and do_regression is False:
            problem_type = MULTI if all(item is not None for item in lists) else SINGLE
        if problem_type is None:
            if all(item is not None for item in lists):
                problem_type = MULTI
            elif _mostly_fractional_numbers(labels):
                bad = labels[pd.to_numeric(labels, errors="coerce").isna()]
                raise TextuneError(
                    f"{where}: the label column holds fractional numbers but {len(bad)} row(s) are not numbers "
                    f"(first: {bad.iloc[0]!r}); fix those rows, or pass --do_regression false to treat labels as classes"
                )
            elif _is_float_regression(labels):
                problem_type = REGRESSION
                logger.info("labels are non-integer numbers: doing regression (pass --do_regression false to override)")
            else:
                problem_type = SINGLE
        if problem_type == REGRESSION:
            numbers = pd.to_numeric(labels, errors="coerce")
            if numbers.isna().any():
                bad = labels[numbers.isna()].iloc[0]
                raise TextuneError(
                    f"{where}: regression needs numeric labels, found {bad!r} in {int(numbers.isna().sum())} row(s); "
                    "fix those rows or pass --do_regression false"
                )
            return cls(REGRESSION)
        if problem_type == MULTI:
            if any(item is None for item in lists):
                raise TextuneError(
                    f"{where}: multi-label needs a list per row or --label_delimiter for delimited strings"
                )
            names = sorted({_label_name(v) for item in lists for v in item}, key=_sort_key)
        else:
            names = sorted({_label_name(v) for v in values}, key=_sort_key)
        if len(names) < 2:
            raise TextuneError(
                f"{where}: the label column holds a single class ({names[0] if names else 'none'}); "
                "classification needs at least two"
            )
        return cls(problem_type, names, delimiter)

    def encode(self, labels: pd.Series, where: str = "--validation_file") -> list:
        """Label cells as training targets: class ids, multi-hot float vectors, or floats."""
        if self.problem_type == REGRESSION:
            numbers = pd.to_numeric(labels, errors="coerce")
            if numbers.isna().any():
                raise TextuneError(f"{where}: regression labels must be numbers; {int(numbers.isna().sum())} are not")
            return numbers.astype("float32").tolist()
        index = self.label2id
        if self.problem_type == MULTI:
            encoded = []
            for cell in labels.tolist():
                hot = [0.0] * len(self.labels)
                items = _as_list(cell, self.delimiter)
                for value in [cell] if items is None else items:
                    hot[self._lookup(index, value, where)] = 1.0
                encoded.append(hot)
            return encoded
        return [self._lookup(index, value, where) for value in labels.tolist()]

    def _lookup(self, index: dict[str, int], value, where: str) -> int:
        name = _label_name(value)
        if name not in index:
            raise TextuneError(
                f"{where}: label {name!r} never occurs in training (known: {', '.join(self.labels)}); "
                "fix the label or add examples of it to --train_file"
            )
        return index[name]

    def to_dict(self) -> dict:
        return {"problem_type": self.problem_type, "labels": self.labels, "delimiter": self.delimiter}

    @classmethod
    def from_dict(cls, data: dict) -> "LabelSpec":
        return cls(data["problem_type"], list(data.get("labels") or []), data.get("delimiter"))


def _is_float_regression(labels: pd.Series) -> bool:
    numbers = pd.to_numeric(labels, errors="coerce")
    if numbers.isna().any() or labels.map(lambda v: isinstance(v, bool)).any():
        return False
    return bool(pd.api.types.is_float_dtype(labels.dtype) or labels.map(lambda v: isinstance(v, float)).all()) and \
        not bool((numbers == numbers.round()).all())


def _mostly_fractional_numbers(labels: pd.Series) -> bool:
    """Numbers with fractions in most rows but a few non-numbers: a regression column with typos."""
    numbers = pd.to_numeric(labels, errors="coerce")
    bad = int(numbers.isna().sum())
    valid = numbers.dropna()
    return 0 < bad <= len(labels) // 2 and len(valid) > 0 and not bool((valid == valid.round()).all())
