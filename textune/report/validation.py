"""The error half of a run report: the model's validation predictions, per-class scores, confusion, worst mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..tasks.classification.labels import MULTI, REGRESSION, SINGLE


@dataclass
class ValidationResults:
    """The model's predictions on the validation split and what the report derives from them.

    Attributes:
        table: One row per validation example: text, label, prediction, per-class probabilities, correct.
        per_class: Precision, recall, F1 and support per label (classification), else empty.
        confusion: Counts, rows = true label, columns = predicted label (single-label only), else None.
        wrong: The most confidently wrong examples (classification) or the largest errors (regression).
        references: True targets as the model sees them (class ids, multi-hot rows, or values).
        predictions: Predicted targets in the same form.
    """

    table: pd.DataFrame
    per_class: pd.DataFrame
    confusion: np.ndarray | None
    wrong: pd.DataFrame
    references: np.ndarray
    predictions: np.ndarray


def validation_results(frame: pd.DataFrame, task, logits: np.ndarray, top: int = 10) -> ValidationResults:
    """Score the validation frame's predictions (`logits`, one row per frame row) against its labels."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    problem = task.labels.problem_type
    references = np.asarray(task.labels.encode(frame[task.columns.label], where="validation"))
    if problem == MULTI:
        references = references.astype(np.int64)
    scores = task.scores(logits)
    predictions = task.hard_predictions(scores)
    true = frame[task.columns.label].to_numpy()
    if task.labels.names:  # --label_names: true labels named as the predictions are
        true = task.label_strings(references, task.labels.names)
    table = pd.DataFrame({"text": _texts(frame, task), "label": true})
    table = pd.concat([table, task.decode_logits(logits).reset_index(drop=True)], axis=1)

    per_class, confusion = pd.DataFrame(), None
    if problem == REGRESSION:
        table["error"] = predictions - references
        badness = np.abs(table["error"].to_numpy())
        wrong = table.assign(abs_error=badness).sort_values("abs_error", ascending=False, kind="stable")
        wrong = wrong[["text", "label", "prediction", "abs_error"]].head(top)
    else:
        names = task.labels.display_names
        if problem == SINGLE:
            correct = predictions == references
            confidence = scores[np.arange(len(scores)), predictions] if len(scores) else np.zeros(0)
            confusion = confusion_matrix(references, predictions, labels=list(range(len(names))))
            support_of = dict(labels=list(range(len(names))))
        else:  # MULTI: a row is wrong when any label is; its confidence is the surest wrong label's certainty
            mistakes = predictions != references
            correct = ~mistakes.any(axis=1)
            confidence = np.where(mistakes, np.maximum(scores, 1 - scores), 0).max(axis=1) if len(scores) else np.zeros(0)
            support_of = {}
        table["correct"] = correct
        table["confidence"] = confidence
        precision, recall, f1, support = precision_recall_fscore_support(
            references, predictions, average=None, zero_division=0, **support_of)
        per_class = pd.DataFrame({"label": names, "precision": precision, "recall": recall, "f1": f1,
                                  "support": support.astype(int)})
        wrong = table.loc[~table["correct"]].sort_values("confidence", ascending=False, kind="stable")
        wrong = wrong[["text", "label", "prediction", "confidence"]].head(top)
    return ValidationResults(table, per_class, confusion, wrong.reset_index(drop=True), references, predictions)


def _texts(frame: pd.DataFrame, task) -> list[str]:
    texts = task.columns.texts(frame)
    pairs = task.columns.pairs(frame)
    return texts if pairs is None else [f"{a} [SEP] {b}" for a, b in zip(texts, pairs)]

