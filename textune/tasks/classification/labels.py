"""The label space of a run: problem type and the ordered label list, inferred from training labels."""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ...errors import TextuneError

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


def parse_label_names(value, flag: str = "--label_names") -> dict[str, str] | list[str] | None:
    """`--label_names` as {raw label: name}, or as a list of names in label order when no raw labels are given.

    Accepted: `"0=not a disaster,1=disaster"` (split on commas, then on the first `=`), several words that are
    each one pair or one name (a name with a comma needs this or a mapping), a JSON mapping or list in one word
    (what `--config` passes for a YAML mapping), or a dict or list from Python or a JSON arguments file.
    """
    if value is None or (isinstance(value, (str, list, tuple)) and not value):
        return None
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
        word = value[0].strip()
        if word.startswith(("{", "[")):
            try:
                value = json.loads(word)
            except json.JSONDecodeError as error:
                raise TextuneError(f"{flag} {word!r} is not valid JSON ({error.msg}); "
                                   'write it as "0=not a disaster,1=disaster"') from None
        else:
            value = word.split(",")
    if isinstance(value, dict):
        pairs = [(_label_name(raw), "" if name is None else str(name).strip()) for raw, name in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [str(item).strip() for item in value if str(item).strip()]
        if not any("=" in item for item in items):
            if not items:
                raise TextuneError(f"{flag} gives no names; write it as \"0=not a disaster,1=disaster\"")
            return items
        if not all("=" in item for item in items):
            bare = next(item for item in items if "=" not in item)
            raise TextuneError(f"{flag} mixes raw=name pairs and a bare name ({bare!r}); give every label as "
                               "raw=name, or only names in label order")
        pairs = [tuple(part.strip() for part in item.split("=", 1)) for item in items]
    else:
        raise TextuneError(f"{flag} must be raw=name pairs or a list of names, not {type(value).__name__}")
    for raw, name in pairs:
        if not raw or not name:
            raise TextuneError(f"{flag}: {raw!r}={name!r} lacks a label or a name; "
                               'write it as "0=not a disaster,1=disaster"')
    raws = [raw for raw, _ in pairs]
    twice = next((raw for raw in raws if raws.count(raw) > 1), None)
    if twice is not None:
        raise TextuneError(f"{flag} names label {twice!r} twice; give each label one name")
    return dict(pairs)


@dataclass
class LabelSpec:
    """The problem type and the ordered list of labels; id2label/label2id derive from it.

    Attributes:
        problem_type: single_label_classification, multi_label_classification or regression.
        labels: Ordered raw labels, as the data files write them (empty for regression). Index i is class id i.
        delimiter: How a multi-label string cell is split, when labels were given as delimited strings.
        names: Display names, one per label in the same order (`--label_names`); empty when the raw labels are
            shown. Outputs, id2label and the API show these; data files and submission.csv keep the raw labels.
    """

    problem_type: str
    labels: list[str] = field(default_factory=list)
    delimiter: str | None = None
    names: list[str] = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        return 1 if self.problem_type == REGRESSION else len(self.labels)

    @property
    def display_names(self) -> list[str]:
        """What outputs call each class: its name from `--label_names`, else its raw label."""
        return self.names or self.labels

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.display_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.display_names)}

    def with_names(self, label_names, flag: str = "--label_names") -> "LabelSpec":
        """This label space with display names from `--label_names` (see `parse_label_names`); unnamed labels
        keep their raw value.

        Raises:
            TextuneError: The run is regression, a raw label is not among the training labels, the names are not
                one per label, or two classes would share a name (or a name is another class's raw label).
        """
        parsed = parse_label_names(label_names, flag)
        if parsed is None:
            return self
        if self.problem_type == REGRESSION:
            raise TextuneError(f"{flag} names classes, but this run is regression; drop {flag} "
                               "(or pass --do_regression false to treat the labels as classes)")
        found = ", ".join(self.labels[:20]) + (" ..." if len(self.labels) > 20 else "")
        if isinstance(parsed, list):
            if len(parsed) != len(self.labels):
                raise TextuneError(f"{flag} gives {len(parsed)} names for {len(self.labels)} labels ({found}); "
                                   "give one name per label in this order, or raw=name pairs")
            names = parsed
        else:
            unknown = next((raw for raw in parsed if raw not in self.labels), None)
            if unknown is not None:
                raise TextuneError(f"{flag}: label {unknown!r} is not among the training labels ({found}); "
                                   "fix the raw value before '='")
            names = [parsed.get(raw, raw) for raw in self.labels]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise TextuneError(f"{flag}: two labels would be called {twice!r}; give each label its own name")
        # a name that is another class's raw label would make a data file's labels ambiguous
        clash = next((name for i, name in enumerate(names) if name in self.labels and self.labels.index(name) != i),
                     None)
        if clash is not None:
            raise TextuneError(f"{flag}: the name {clash!r} is another label's raw value; choose another name")
        joiner = self.delimiter or ","  # how multi-label outputs join several names
        split = next((name for name in names if self.problem_type == MULTI and joiner in name), None)
        if split is not None:
            raise TextuneError(f"{flag}: the name {split!r} holds {joiner!r}, which joins several labels in the "
                               "outputs; choose a name without it")
        return replace(self, names=names if names != self.labels else [])

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
        # raw labels as in training, and the display names too (a file relabelled with them); never ambiguous,
        # since `with_names` refuses a name that is another class's raw label
        index = self.label2id | {raw: i for i, raw in enumerate(self.labels)}
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
        data = {"problem_type": self.problem_type, "labels": self.labels, "delimiter": self.delimiter}
        return data | {"names": self.names} if self.names else data

    @classmethod
    def from_dict(cls, data: dict) -> "LabelSpec":
        return cls(data["problem_type"], list(data.get("labels") or []), data.get("delimiter"),
                   list(data.get("names") or []))


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
